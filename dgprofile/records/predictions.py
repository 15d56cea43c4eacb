"""Predicted DiffusionGemma vs autoregressive Gemma 4 figures per scenario, the verdict, and the basis of each number.

Produced by ``dgprofile.model.speedup`` (the model) and ``dgprofile.model.verdict``; read by the report, `compare` and
`predict --json`. Times in seconds, rates in tokens per second, memory in bytes. Every figure that could not be
computed (a precision that does not fit, an engine that cannot run a format) is ``Unavailable(reason)``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
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


# How an engine launches its kernels: captured once and replayed (CUDA graphs), or one by one from the host.
ExecutionMode = Literal["cuda-graphs", "eager"]
# DiffusionGemma's acceptance rule per denoising step: the released entropy bound (nats), or a confidence
# threshold on each position's top probability.
SamplerKind = Literal["entropy-bound", "confidence-threshold"]
# The autoregressive baseline: Gemma 4 alone, or with its multi-token-prediction (MTP) drafter.
ArBaselineKind = Literal["plain", "mtp"]
# GPU-to-GPU links: NVLink, PCIe (with or without peer-to-peer), AMD's Infinity Fabric, or a network between hosts.
LinkKind = Literal["nvlink", "pcie", "infinity-fabric", "network"]
# Where a link's figures come from: all-reduces measured on this machine (`check --gpus N`), NVML's topology read
# on it, the datasheet entry, or --interconnect.
InterconnectSource = Literal["measured-all-reduce", "nvml-topology", "datasheet", "command-line"]
NO_ALL_REDUCE_MEASURED = Unavailable("no all-reduce was measured on this machine")


@dataclass(frozen=True)
class Interconnect:
    """The link tensor parallelism all-reduces over: usable bandwidth per direction, the latency of one small
    all-reduce the engine pays, and where the figures come from (``source``, in words ``basis``). Where
    all-reduces were measured, ``measured_latency_seconds`` is what one cost from Python (eager NCCL); an engine
    that captures CUDA graphs with its own all-reduce pays its prior instead (``all_reduce_latency_seconds``)."""

    kind: LinkKind
    description: str
    bytes_per_s: float
    all_reduce_latency_seconds: float
    peer_to_peer: bool
    basis: str
    source: InterconnectSource
    measured_latency_seconds: float | Unavailable = NO_ALL_REDUCE_MEASURED


@dataclass(frozen=True)
class Sampler:
    """DiffusionGemma's acceptance rule and its value (an entropy bound in nats, or a probability threshold)."""

    kind: SamplerKind
    value: float


@dataclass(frozen=True)
class ArBaseline:
    """What DiffusionGemma is compared with: plain Gemma 4, or Gemma 4 with its MTP drafter proposing
    ``draft_tokens`` tokens a step, each accepted with probability ``acceptance``."""

    kind: ArBaselineKind
    draft_tokens: int | Unavailable = Unavailable("plain decoding: no drafter")
    acceptance: float | Unavailable = Unavailable("plain decoding: no drafter")


PLAIN_BASELINE = ArBaseline("plain")
ENTROPY_BOUND_DEFAULT = Sampler("entropy-bound", 0.1)
ONE_GPU = Unavailable("one GPU: no tensor parallelism")


@dataclass(frozen=True)
class Scenario:
    """What is being predicted: a workload at a precision, concurrency and engine, on ``gpus`` GPUs, and the
    setup that moves the figures (README, "Setup knobs"): how the engine launches kernels, the link under tensor
    parallelism, DiffusionGemma's sampler and thinking mode (both move the steps per canvas), whether the logits
    come from quantised weights, the autoregressive baseline, and how the weight format runs on this
    architecture (``weight_format``, e.g. FP8 on Ampere as W8A16)."""

    workload: str
    precision: str
    concurrency: int
    engine: str
    prompt_tokens: int
    output_tokens: int
    steps_per_canvas: float
    gpus: int = 1
    execution_mode: ExecutionMode = "cuda-graphs"
    interconnect: Interconnect | Unavailable = ONE_GPU
    sampler: Sampler = ENTROPY_BOUND_DEFAULT
    thinking: bool = False
    quantised_logits: bool = False
    ar_baseline: ArBaseline = PLAIN_BASELINE
    weight_format: str = "not recorded"


@dataclass(frozen=True)
class PassEstimate:
    """One pass kind in one scenario.

    ``seconds = max(engine floor, device factor x body) + diffusion step overhead + interconnect``, the body being
    the pass's components one after another, each at the larger of its memory and compute time
    (``dgprofile.model.speedup``). ``terms_seconds`` holds every named term's own time (weights, kv-cache,
    activations, compute, dequantisation, sampler, overhead, interconnect) whether or not it bounds the pass;
    ``critical_seconds`` holds only those on the critical path, which sum to ``seconds`` (for stacked bars).

    ``hardware_seconds`` is the hardware side: the body at the device's achievable rates with no engine
    inefficiency, times the factor the measured passes set for this device (``hardware_basis`` says which
    measurement, or that nothing was measured). ``engine_added_seconds`` is what the engine adds to it (its
    kernels' efficiency, which can be negative, its per-pass floor, its diffusion step overhead, the
    interconnect): ``hardware_seconds + sum(engine_added_seconds) == seconds``.
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
    hardware_seconds: float | Unavailable = Unavailable("not recorded")
    hardware_basis: str = ""
    engine_added_seconds: dict[str, float] = field(default_factory=dict)


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
class PassFactor:
    """What a measured pass says about the device's kernels: the measured time against its roofline at the
    measured limits, relative to what the same kernels reach on the reference GPUs (``factor`` 1.0: as
    efficient as there; 1.3: 30% slower)."""

    pass_kind: PassKind
    concurrency: int
    factor: float
    measured_seconds: float
    roofline_seconds: float
    basis: str


NO_PASS_FACTORS = "no measured passes: factor 1"


@dataclass(frozen=True)
class Ceilings:
    """The device limits the model used, per GPU, on the achievable footing: measured figures as measured,
    datasheet figures times what the best benchmarks reach of them (see ``dgprofile.model.ceilings``).
    ``usable_memory_bytes`` is over all ``gpus``. ``floor_scale``: the measured kernel launch latency against
    the reference GPU's (engine floors scale with it); ``pass_factors``: the measured passes' factors, and
    ``pass_factors_basis`` what they rest on (or why there are none); the rest
    says what the architecture and the datasheet add (``approximate``: log-sigma of derived figures)."""

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
    architecture: str | Unavailable = Unavailable("not known")
    floor_scale: float = 1.0
    floor_scale_basis: str = "no launch latency measured: the reference GPU's assumed"
    eager_launch_seconds: float | Unavailable = Unavailable("not measured")
    pass_factors: tuple[PassFactor, ...] = ()
    pass_factors_basis: str = NO_PASS_FACTORS
    peer_to_peer: bool = True
    approximate: dict[str, float] = field(default_factory=dict)


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
    mtp_draft_step_fraction: float = 0.2
    mtp_acceptance: float = 0.7
    eager_host_factor: float = 1.0
    calibrated_mode: ExecutionMode = "cuda-graphs"


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
    ar_baseline: ArBaselineKind = "plain"


@dataclass(frozen=True)
class TransferCheck:
    """One published figure predicted by a fit that did not see it: ``held_out`` names what was left out (the
    run itself, or its whole hardware class); ``low``/``high`` is the band the prediction carried."""

    run_id: str
    hardware_class: str
    held_out: Literal["run", "hardware-class"]
    figure: str
    published: float
    predicted: float
    relative_error: float
    low: float
    high: float
    in_band: bool
    published_verdict: Verdict | Unavailable
    predicted_verdict: Verdict | Unavailable


@dataclass(frozen=True)
class TransferValidation:
    """How well the fit transfers: every published figure predicted leave-one-run-out and
    leave-one-hardware-class-out, the median errors, and how often the figure fell inside its band, for
    speedups (the band `check` and `predict` print, from ``speedup_log_sigma``) and for the other figures
    (``figure_log_sigma``)."""

    checks: tuple[TransferCheck, ...]
    median_speedup_error_leave_one_out: float
    median_figure_error_leave_one_out: float
    speedup_coverage_leave_one_out: float
    figure_coverage_leave_one_out: float
    speedup_coverage_leave_class_out: float
    figure_coverage_leave_class_out: float
    speedup_log_sigma: float
    figure_log_sigma: float
    band_z: float


@dataclass(frozen=True)
class CalibrationSummary:
    """Engine parameters fitted to ``calibration-runs.json``, how well they reproduce each run, and how well
    they predict runs they were not fitted to (``validation``)."""

    data_file: str
    engines: tuple[EngineParameters, ...]
    runs: tuple[RunReproduction, ...]
    max_abs_relative_error: float
    validation: TransferValidation | Unavailable = Unavailable("not recorded")


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
