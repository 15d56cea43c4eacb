"""What one timed generation hands back (no torch here: the server client builds the same records).

Times are seconds since the request was sent. With a scaled build (sampled layers, a slice of the vocabulary)
they are already scaled to the whole model (``dgprofile.probes.verify.timeline``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dgprofile.records.values import Unavailable
from dgprofile.records.verification import RequestFault

SnapshotKind = Literal["draft", "commit", "token"]


@dataclass(frozen=True)
class Snapshot:
    """What the user held at one moment: a DiffusionGemma draft (committed text plus the current canvas's
    argmax), a committed canvas, or Gemma 4's prefix after a token. ``text`` is Unavailable without a tokenizer
    (random weights)."""

    seconds: float
    kind: SnapshotKind
    output_tokens: int
    text: str | Unavailable


@dataclass(frozen=True)
class GenerationTrace:
    """One request to one model, as timed.

    ``pass_seconds`` are the intervals of the model's characteristic pass: between successive drafts of one
    canvas (a denoise pass with its sampler step) for DiffusionGemma, between successive tokens (a decode step)
    for Gemma 4. ``faults`` is empty when the request finished; a failed request keeps what it measured.
    """

    prompt_tokens: int | Unavailable
    output_tokens: int | Unavailable
    output_text: str | Unavailable
    total_seconds: float | Unavailable
    snapshots: tuple[Snapshot, ...]
    pass_seconds: tuple[float, ...]
    denoise_passes: int | Unavailable
    canvases: int | Unavailable
    tokens_per_forward: float | Unavailable
    peak_memory_bytes: float | Unavailable
    faults: tuple[RequestFault, ...] = ()
