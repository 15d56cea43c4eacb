"""Predicted DiffusionGemma vs autoregressive Gemma 4 figures per scenario, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dgprofile.values import Unavailable

VerdictClass = Literal["applies", "partial", "does-not-apply", "cannot-run"]


@dataclass(frozen=True)
class Scenario:
    """What is being predicted: a workload at a precision, concurrency and engine."""

    workload: str
    precision: str
    concurrency: int
    engine: str
    prompt_tokens: int
    output_tokens: int
    steps_per_canvas: float


@dataclass(frozen=True)
class ModeEstimate:
    """One decoding mode (diffusion or autoregressive) in one scenario."""

    tokens_per_s: float
    aggregate_tokens_per_s: float
    ttft_s: float
    first_draft_s: float
    total_latency_s: float
    memory_bytes: int
    pass_seconds: float
    breakdown_seconds: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    """Both modes in one scenario and the speedup band."""

    scenario: Scenario
    diffusion: ModeEstimate | Unavailable
    autoregressive: ModeEstimate | Unavailable
    speedup: float | Unavailable
    speedup_low: float | Unavailable
    speedup_high: float | Unavailable
    verdict: VerdictClass
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Predictions:
    """The headline scenario, the matrix and the basis of the numbers."""

    headline: Prediction
    matrix: tuple[Prediction, ...]
    advice: tuple[str, ...]
    basis: dict[str, str]
