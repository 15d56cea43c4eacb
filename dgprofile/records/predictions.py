"""Predicted DiffusionGemma vs autoregressive Gemma 4 figures per scenario, the verdict, and the basis of each number.

Produced by ``dgprofile.model.speedup`` (the model) and ``dgprofile.model.verdict``; read by the report, `compare` and
`predict --json`. Times in seconds, rates in tokens per second, memory in bytes. Every figure that could not be
computed (a precision that does not fit, an engine that cannot run a format) is ``Unavailable(reason)``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from dgprofile.exit_codes import ExitCode
from dgprofile.records.machine import MemoryClassKind
from dgprofile.records.passes import PassKind
from dgprofile.records.values import Unavailable, unreachable

# A verdict's page tone is its own name.
VerdictTone = Literal["applies", "partial", "does-not-apply", "cannot-run"]


class Verdict(str, enum.Enum):
    """Whether the advertised speedup holds on a machine. Each class carries its words and its exit code, and the
    type checker proves every property handles every class, so a class cannot be added without saying how every
    page, table and exit status shows it.

    ``label`` names the class, ``meaning`` says it in a sentence fragment, ``exit_code`` is what `check` exits
    with; ``tone`` is the page's colour of it (CSS class ``tone-<tone>``, ``dgprofile.pages.charts.TONE_COLOURS``).
    """

    APPLIES = "applies"
    PARTIAL = "partial"
    DOES_NOT_APPLY = "does-not-apply"
    CANNOT_RUN = "cannot-run"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        match self:
            case Verdict.APPLIES:
                return "Applies"
            case Verdict.PARTIAL:
                return "Partial"
            case Verdict.DOES_NOT_APPLY:
                return "Does not apply"
            case Verdict.CANNOT_RUN:
                return "Cannot run"
            case _:
                unreachable(self)

    @property
    def meaning(self) -> str:
        match self:
            case Verdict.APPLIES:
                return "the advertised multi-x speedup holds"
            case Verdict.PARTIAL:
                return "faster, but well short of the advertised speedup"
            case Verdict.DOES_NOT_APPLY:
                return "about even or slower: the advertised speedup does not apply"
            case Verdict.CANNOT_RUN:
                return "the model does not fit this machine in any supported precision"
            case _:
                unreachable(self)

    @property
    def exit_code(self) -> ExitCode:
        match self:
            case Verdict.APPLIES:
                return ExitCode.OK
            case Verdict.PARTIAL:
                return ExitCode.VERDICT_PARTIAL
            case Verdict.DOES_NOT_APPLY:
                return ExitCode.VERDICT_DOES_NOT_APPLY
            case Verdict.CANNOT_RUN:
                return ExitCode.VERDICT_CANNOT_RUN
            case _:
                unreachable(self)

    @property
    def tone(self) -> VerdictTone:
        match self:
            case Verdict.APPLIES:
                return "applies"
            case Verdict.PARTIAL:
                return "partial"
            case Verdict.DOES_NOT_APPLY:
                return "does-not-apply"
            case Verdict.CANNOT_RUN:
                return "cannot-run"
            case _:
                unreachable(self)


# Where a number comes from: measured on this machine, a datasheet, fitted to published runs, or assumed.
BasisKind = Literal["measured", "datasheet", "calibrated", "assumed"]
# The term that sets a pass's time: weight streaming, other memory traffic (KV cache, activations), arithmetic,
# or the engine's per-pass latency floor (launches, scheduling).
PassBound = Literal["weights", "memory-traffic", "compute", "overhead"]
CeilingsSource = Literal["measured", "datasheet"]


@dataclass(frozen=True)
class Scenario:
    """What is being predicted: a workload at a precision, concurrency and engine, on ``gpus`` GPUs."""

    workload: str
    precision: str
    concurrency: int
    engine: str
    prompt_tokens: int
    output_tokens: int
    steps_per_canvas: float
    gpus: int = 1


@dataclass(frozen=True)
class PassEstimate:
    """One pass kind in one scenario.

    ``seconds = overhead + max(launch floor, memory time, compute time) + sampler + interconnect``.
    ``terms_seconds`` holds every named term's own time (weights, kv-cache, activations, compute,
    dequantisation, sampler, overhead, interconnect) whether or not it bounds the pass; ``critical_seconds`` holds
    only those on the critical path, which sum to ``seconds`` (for stacked bars).
    """

    pass_kind: PassKind
    count_per_request: float
    seconds: float
    bound_by: PassBound
    terms_seconds: dict[str, float]
    critical_seconds: dict[str, float]
    bytes_moved: float
    flops: float
    basis: BasisKind


@dataclass(frozen=True)
class ModeEstimate:
    """One decoding mode (diffusion or autoregressive) in one scenario.

    ``tokens_per_s`` is the generation rate of one request (output tokens over the time after prefill, as vLLM's
    generation throughput counts it); ``aggregate_tokens_per_s`` is over all concurrent requests. For diffusion
    ``ttft_s`` is prefill + the whole first canvas with its commit (nothing final is emitted before).
    ``first_draft_s`` is the time to the first useful draft as ``dgprofile.model.speedup.USEFUL_DRAFT_DEFINITION``
    defines it (README, "What `check` tells you"); unavailable in files of schema 2 and older, which recorded a
    different quantity under this name. ``pass_seconds`` and ``breakdown_seconds`` describe the characteristic
    pass (a denoise pass, an AR step); ``passes`` holds every pass kind.
    """

    tokens_per_s: float
    aggregate_tokens_per_s: float
    ttft_s: float
    first_draft_s: float | Unavailable
    total_latency_s: float
    memory_bytes: int
    pass_seconds: float
    breakdown_seconds: dict[str, float]
    passes: tuple[PassEstimate, ...] = ()


@dataclass(frozen=True)
class Prediction:
    """Both modes in one scenario and the speedup band (end-to-end request latency, AR over DG)."""

    scenario: Scenario
    diffusion: ModeEstimate | Unavailable
    autoregressive: ModeEstimate | Unavailable
    speedup: float | Unavailable
    speedup_low: float | Unavailable
    speedup_high: float | Unavailable
    verdict: Verdict
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class MemoryFit:
    """Whether one precision fits the accelerator(s) at the scenario's concurrency, and what takes the memory.

    ``diffusion_needed_bytes`` is everything DiffusionGemma needs: weights, KV cache, its buffers
    (``diffusion_buffers_bytes``, the workspace included) and ``activation_headroom_bytes``; a model fits when its
    need is at most ``usable_bytes`` (the rule: ``dgprofile.model.memory_fit``).
    """

    precision: str
    gpus: int
    concurrency: int
    usable_bytes: int
    usable_basis: str
    weights_bytes: int
    diffusion_kv_cache_bytes: int
    autoregressive_kv_cache_bytes: int
    diffusion_buffers_bytes: int
    activation_headroom_bytes: int
    diffusion_needed_bytes: int
    autoregressive_needed_bytes: int
    fits_diffusion: bool
    fits_autoregressive: bool
    max_diffusion_concurrency: int
    engine_runs_it: bool
    note: str


@dataclass(frozen=True)
class CurvePoint:
    """One point of a curve: ``x`` is the varied quantity."""

    x: float
    speedup: float | Unavailable
    speedup_low: float | Unavailable
    speedup_high: float | Unavailable
    diffusion_tokens_per_s: float | Unavailable
    autoregressive_tokens_per_s: float | Unavailable


@dataclass(frozen=True)
class Curve:
    """Speedup as one quantity varies (``name``: "speedup-vs-output-tokens", "speedup-vs-concurrency"), the rest
    of the headline scenario fixed."""

    name: str
    x_label: str
    scenario: Scenario
    points: tuple[CurvePoint, ...]


@dataclass(frozen=True)
class Ceilings:
    """The device limits the model used, per GPU: datasheet figures, or measured ones converted to the same
    footing (see ``dgprofile.model.ceilings``). ``usable_memory_bytes`` is over all ``gpus``."""

    source: CeilingsSource
    device_name: str
    hardware_id: str | Unavailable
    vendor: str
    device_type: str
    gpus: int
    memory_class: MemoryClassKind
    bandwidth_bytes_per_s: float
    peak_flops_per_s: dict[str, float]
    native_precisions: tuple[str, ...]
    usable_memory_bytes: int
    usable_memory_basis: str
    interconnect_bytes_per_s: float | Unavailable
    launch_floor_seconds: float | Unavailable
    sources: tuple[str, ...]


@dataclass(frozen=True)
class EngineParameters:
    """One engine's behaviour as fitted to the published runs (see ``dgprofile.model.engines``).

    ``diffusion_workspace_fraction``: transient memory of a denoise pass beyond weights, KV cache and sampler
    buffers, as a share of the weights (eager transformers keeps large copies; 0 elsewhere). ``fitted`` names the
    parameters the data identified; ``priors`` states the rest.
    """

    engine: str
    pass_floor_seconds: float
    diffusion_step_overhead_seconds: float
    bandwidth_efficiency: float
    compute_efficiency: float
    diffusion_workspace_fraction: float
    fitted: tuple[str, ...]
    priors: tuple[str, ...]
    runs: tuple[str, ...]
    rms_log_residual: float


@dataclass(frozen=True)
class ObservableResidual:
    """One published figure against the calibrated model's value for it."""

    name: str
    published: float
    predicted: float
    relative_error: float
    used_in_fit: bool


@dataclass(frozen=True)
class RunReproduction:
    """One published run reproduced by the calibrated model."""

    run_id: str
    engine: str
    hardware: str
    observables: tuple[ObservableResidual, ...]
    published_speedup: float | Unavailable
    predicted_speedup: float
    published_verdict: Verdict | Unavailable
    predicted_verdict: Verdict


@dataclass(frozen=True)
class CalibrationSummary:
    """Engine parameters fitted to ``calibration-runs.json`` and how well they reproduce each run."""

    data_file: str
    engines: tuple[EngineParameters, ...]
    runs: tuple[RunReproduction, ...]
    max_abs_relative_error: float


@dataclass(frozen=True)
class Basis:
    """Where one quantity comes from."""

    quantity: str
    kind: BasisKind
    source: str


@dataclass(frozen=True)
class Predictions:
    """The headline scenario and its verdict, the matrix, curves, memory fit, and the basis of the numbers."""

    model_id: str
    hardware: str
    origin: CeilingsSource
    engine: str
    engine_reason: str
    headline: Prediction
    verdict: Verdict
    reasons: tuple[str, ...]
    advice: tuple[str, ...]
    matrix: tuple[Prediction, ...]
    curves: tuple[Curve, ...]
    memory: tuple[MemoryFit, ...]
    ceilings: Ceilings
    calibration: CalibrationSummary
    basis: tuple[Basis, ...]
