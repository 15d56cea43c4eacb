"""Measured decode passes at the real model shapes: AR step, DG denoise, DG commit, prefill."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dgprofile.timing import Timing
from dgprofile.values import Unavailable

PassKind = Literal["prefill", "ar-step", "dg-denoise", "dg-commit"]


@dataclass(frozen=True)
class PassMeasurement:
    """One pass kind at one precision and concurrency; ``seconds`` is the full 30-layer estimate."""

    pass_kind: PassKind
    precision: str
    concurrency: int
    tokens_per_request: int
    context_tokens: int
    seconds: float
    timing: Timing | Unavailable
    measured: bool
    basis: str
    layers_measured: int
    layers_total: int
    experts_touched_per_layer: float
    bytes_moved: float
    flops: float
    achieved_bytes_per_s: float
    achieved_flops_per_s: float
    bandwidth_floor_seconds: float
    compute_floor_seconds: float
    fraction_of_bandwidth_floor: float
    fraction_of_compute_floor: float
    breakdown_seconds: dict[str, float]


@dataclass(frozen=True)
class PassTimes:
    """All measured passes of one run."""

    model_id: str
    device: str
    passes: tuple[PassMeasurement, ...]
    reductions: tuple[str, ...]
    seconds_taken: float
