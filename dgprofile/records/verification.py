"""Measured runs of the real models (`dgprofile verify`): what was run, how, and what users would feel.

A measured run holds one record per request (both models, every prompt and concurrency) and, per workload and
concurrency, the median and spread of each figure with the prediction for the same scenario beside it and the
residual (measured median / predicted - 1). Figures that could not be measured are ``Unavailable(reason)``: a
request that failed, a quality measure on random weights, peak memory on a CPU.

Definitions (also in the README, "Verify on real weights"):

* time to first token: from sending the request to the first output the user holds (for DiffusionGemma the first
  committed canvas; for Gemma 4 the first token);
* time to first useful draft: the first moment the user holds text within normalised edit distance
  ``USEFUL_DRAFT_MAX_DISTANCE`` of the final output (a DiffusionGemma intermediate draft or committed canvas; the
  Gemma 4 growing prefix);
* normalised edit distance: Levenshtein distance divided by the longer text's length (0 equal, 1 nothing shared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dgprofile.records.predictions import Scenario, Verdict
from dgprofile.records.values import Unavailable

# The first draft within this normalised edit distance of the final output counts as useful.
USEFUL_DRAFT_MAX_DISTANCE = 0.1

VerifyBackend = Literal["transformers", "openai-server"]
ModelRole = Literal["diffusion", "autoregressive"]
WeightsSource = Literal["checkpoint", "random-weights", "server"]
# Why a request failed: the server could not be reached, answered 4xx/5xx, did not answer in time, cut the
# stream before it finished, sent a chunk that is not what the protocol says, ran out of memory, the run was
# interrupted (Ctrl-C, SIGTERM), or anything else (with its message).
FaultKind = Literal["unreachable", "http-error", "timeout", "stream-cut", "malformed-chunk", "out-of-memory",
                    "interrupted", "error"]


@dataclass(frozen=True)
class ModelUnderTest:
    """One of the two models as it was run: where its weights came from and how much of it ran.

    ``layers_run`` of ``layers_total`` layers and ``vocab_run`` of ``vocab_total`` vocabulary rows ran; where
    fewer ran, each timed part was scaled to the whole model as ``scaling`` says.
    """

    role: ModelRole
    model_id: str
    revision: str | Unavailable
    source: WeightsSource
    architecture: str
    dtype: str
    layers_run: int
    layers_total: int
    vocab_run: int
    vocab_total: int
    scaling: str


@dataclass(frozen=True)
class RequestFault:
    """Why one request did not finish."""

    kind: FaultKind
    message: str


@dataclass(frozen=True)
class DraftPoint:
    """What the user held at one moment: seconds since the request was sent, and the normalised edit distance
    of that text to the final output."""

    seconds: float
    edit_distance_to_final: float


@dataclass(frozen=True)
class RequestRecord:
    """One request to one model. ``faults`` is empty for a request that finished.

    ``pass_seconds`` is the median time of the model's characteristic pass within the request (a denoise pass
    for DiffusionGemma, a decode step for Gemma 4), read from the intervals between successive drafts or tokens.
    ``drafts`` is the convergence of the request (at most ``MAX_DRAFT_POINTS`` points, evenly thinned).
    """

    workload: str
    prompt_id: str
    role: ModelRole
    concurrency: int
    faults: tuple[RequestFault, ...]
    prompt_tokens: int | Unavailable
    output_tokens: int | Unavailable
    ttft_seconds: float | Unavailable
    first_useful_draft_seconds: float | Unavailable
    total_latency_seconds: float | Unavailable
    tokens_per_s: float | Unavailable
    pass_seconds: float | Unavailable
    steps_per_canvas: float | Unavailable
    tokens_per_forward: float | Unavailable
    peak_memory_bytes: float | Unavailable
    drafts: tuple[DraftPoint, ...]


MAX_DRAFT_POINTS = 48


@dataclass(frozen=True)
class MeasuredFigure:
    """The median and spread of one figure over a workload's requests, with the prediction for the same
    scenario and the residual ``median / predicted - 1`` (the unit is in the name of the field holding it)."""

    median: float
    p25: float
    p75: float
    minimum: float
    maximum: float
    samples: int
    predicted: float | Unavailable
    residual: float | Unavailable


@dataclass(frozen=True)
class ModeStatistics:
    """One model's figures over one workload at one concurrency."""

    role: ModelRole
    requests: int
    failed: int
    output_tokens: MeasuredFigure | Unavailable
    ttft_seconds: MeasuredFigure | Unavailable
    first_useful_draft_seconds: MeasuredFigure | Unavailable
    total_latency_seconds: MeasuredFigure | Unavailable
    tokens_per_s: MeasuredFigure | Unavailable
    pass_seconds: MeasuredFigure | Unavailable
    steps_per_canvas: MeasuredFigure | Unavailable
    tokens_per_forward: MeasuredFigure | Unavailable
    peak_memory_bytes: MeasuredFigure | Unavailable


@dataclass(frozen=True)
class WorkloadStatistics:
    """Both models over one workload at one concurrency, and the comparison between them.

    ``speedup`` is per prompt: Gemma 4's total latency over DiffusionGemma's (end to end, as the prediction's
    speedup); ``scenario`` is the scenario predicted beside it (the measured median prompt and output lengths and
    steps per canvas); ``measured_verdict`` classifies the measured speedup with the same rules as the prediction
    (its band: the quartiles over prompts).
    """

    workload: str
    concurrency: int
    prompts: int
    scenario: Scenario | Unavailable
    diffusion: ModeStatistics
    autoregressive: ModeStatistics
    speedup: MeasuredFigure | Unavailable
    edit_distance_between_models: MeasuredFigure | Unavailable
    measured_verdict: Verdict | Unavailable
    predicted_verdict: Verdict | Unavailable


@dataclass(frozen=True)
class RunSettings:
    """How the models were asked to generate.

    ``steps_per_canvas`` is the fixed number of denoise passes per canvas, or Unavailable when the checkpoint's
    adaptive stopping decided; ``reductions`` lists every departure from the workloads as defined (fewer prompts,
    capped lengths, sampled layers) in words.
    """

    dtype: str
    steps_per_canvas: int | Unavailable
    sampler: str
    autoregressive_decoding: str
    concurrencies: tuple[int, ...]
    ignore_eos: bool
    quick: bool
    prompts_source: str
    warmup: str
    reductions: tuple[str, ...]


@dataclass(frozen=True)
class MeasuredRun:
    """One `dgprofile verify` run: backend, engine and version, the models, the settings, per-workload figures
    beside the prediction for the same scenario, and every request. ``predicted_model`` is the id of the model
    configuration the predictions describe (the released model, or the miniature a quick CPU run builds)."""

    backend: VerifyBackend
    engine: str
    engine_version: str | Unavailable
    device: str
    started_at: str
    duration_seconds: float
    status: Literal["complete", "incomplete"]
    incomplete_reasons: tuple[str, ...]
    models: tuple[ModelUnderTest, ...]
    predicted_model: str | Unavailable
    settings: RunSettings
    prediction_basis: str
    workloads: tuple[WorkloadStatistics, ...]
    requests: tuple[RequestRecord, ...]
