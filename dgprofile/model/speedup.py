"""The speedup model: time of every pass from named terms, then request-level figures for both decoding modes.

A pass of ``dgprofile.specs.pass_cost`` (bytes and FLOPs by component) takes, on ``gpus`` GPUs::

    seconds = max(engine floor, memory time, compute time) + sampler + diffusion step overhead + interconnect

* memory time = (weights + KV cache + activations) / (bandwidth x engine bandwidth efficiency);
* compute time = matmul and attention FLOPs / (rate of the format they run in x engine compute efficiency),
  plus dequantisation work on the fp32 units when the hardware does not compute the weights' format natively
  (int4 everywhere, fp8 on Ampere and Apple): such a format moves its own bytes but multiplies at the bf16/fp16
  rate. Quantised layers (attention projections, dense MLP, experts) run in the weights' format; the bf16 LM head,
  self-conditioning product, router and attention scores run at the wide rate;
* sampler = the fp32 logits sweeps of the entropy-bound sampler (their own kernels after the forward);
* interconnect = two all-reduces of the hidden states per layer under tensor parallelism.

Requests: DiffusionGemma pays a prefill, then per 256-token canvas ``S`` denoise passes and a commit (engines that
commit the last canvas commit every one); an output shorter than a canvas pays the whole canvas. AR pays a
prefill (which yields the first token) and one step per further token. Concurrency ``c`` batches the requests
into each pass (a denoise pass of ``c x 256`` tokens). Context-dependent terms are taken at the mean context of
the request's passes (they are linear in it).

The first useful draft (``USEFUL_DRAFT_DEFINITION``) needs all but a tenth of the output's tokens final in what
the user holds, counted in tokens. AR holds its growing prefix. DiffusionGemma holds its committed canvases, plus
the canvas being refined where the engine shows drafts; a draft's accepted tokens grow about linearly over the
denoise passes (vLLM counts ~16 tokens committed per step at 16 steps), so a canvas is that fraction final after
that fraction of its passes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from dgprofile.model.ceilings import matmul_rate, vector_rate
from dgprofile.model.engines import Engine
from dgprofile.records.passes import PassKind, PassMeasurement, PassTimes
from dgprofile.records.predictions import (
    BasisKind,
    Ceilings,
    EngineParameters,
    ModeEstimate,
    PassBound,
    PassEstimate,
)
from dgprofile.specs.model_config import CANVAS_TOKENS, Backbone, ModelConfig
from dgprofile.specs.pass_cost import PassCost, pass_cost, precision_by_name

DIFFUSION_PASSES: tuple[PassKind, ...] = ("dg-denoise", "dg-commit")
QUANTISED_COMPONENTS = ("attention", "dense-mlp", "experts")
# Tensor parallelism: two all-reduces of the hidden states per layer (after attention and after the MLPs); a
# small-message NCCL all-reduce costs some microseconds of latency on any link (assumed order of magnitude).
ALL_REDUCES_PER_LAYER = 2
ALL_REDUCE_LATENCY_SECONDS = 15e-6
HIDDEN_STATE_BYTES = 2
USEFUL_DRAFT_EDIT_DISTANCE = 0.1
USEFUL_DRAFT_DEFINITION = (
    "the first moment the user holds text within normalised edit distance "
    f"{USEFUL_DRAFT_EDIT_DISTANCE:g} of the final output: for DiffusionGemma an intermediate draft (where the engine "
    "shows drafts) or its committed canvases, for autoregressive Gemma 4 the growing prefix")


@dataclass(frozen=True)
class PassModel:
    """Everything that fixes pass times on one device with one engine; ``measured`` passes (from `check`) make
    the ``ideal`` engine: they are used as timed, scaled by the physics to other shapes."""

    config: ModelConfig
    ceilings: Ceilings
    engine: Engine
    parameters: EngineParameters
    measured: PassTimes | None = None

    def estimate(self, kind: PassKind, precision: str, *, concurrency: int, context_tokens: int,
                 tokens_per_request: int | None = None) -> PassEstimate:
        """One pass of ``kind``, timed by the physics (or by a measurement of it, for the ideal engine)."""
        backbone = self.config.backbone
        cost = _cost(self.config, kind, precision, concurrency, context_tokens, tokens_per_request)
        physical = physics_pass(cost, self.ceilings, self.parameters, backbone)
        measurement = self._nearest_measurement(kind, precision, concurrency, context_tokens)
        if measurement is None:
            return physical
        reference = physics_pass(_cost(self.config, kind, precision, measurement.concurrency,
                                       measurement.context_tokens, measurement.tokens_per_request),
                                 self.ceilings, self.parameters, backbone)
        return _measured(physical, measurement.seconds * physical.seconds / reference.seconds)

    def _nearest_measurement(self, kind: PassKind, precision: str, concurrency: int,
                             context_tokens: int) -> PassMeasurement | None:
        if self.measured is None:
            return None
        candidates = [m for m in self.measured.passes
                      if m.pass_kind == kind and m.precision == precision and m.measured and m.seconds > 0]
        if not candidates:
            return None
        return min(candidates, key=lambda m: (abs(math.log(m.concurrency / concurrency)),
                                              abs(m.context_tokens - context_tokens)))


_COST_CACHE: dict[tuple[str, str, str, int, int, int | None], PassCost] = {}


def _cost(config: ModelConfig, kind: PassKind, precision: str, concurrency: int, context_tokens: int,
          tokens_per_request: int | None) -> PassCost:
    key = (config.id, kind, precision, concurrency, context_tokens, tokens_per_request)
    if key not in _COST_CACHE:
        _COST_CACHE[key] = pass_cost(config, kind=kind, precision=precision, concurrency=concurrency,
                                     context_tokens=context_tokens, tokens_per_request=tokens_per_request)
    return _COST_CACHE[key]


def _interconnect_seconds(cost: PassCost, ceilings: Ceilings, backbone: Backbone) -> float:
    gpus = ceilings.gpus
    link = ceilings.interconnect_bytes_per_s
    if gpus == 1 or not isinstance(link, float):
        return 0.0
    message = cost.tokens * backbone.hidden_size * HIDDEN_STATE_BYTES
    ring = 2 * (gpus - 1) / gpus * message / link  # ring all-reduce: each GPU sends and receives this much
    return backbone.num_layers * ALL_REDUCES_PER_LAYER * (ALL_REDUCE_LATENCY_SECONDS + ring)


def physics_pass(cost: PassCost, ceilings: Ceilings, parameters: EngineParameters, backbone: Backbone
                 ) -> PassEstimate:
    """Time one pass from its bytes and FLOPs (see the module docstring for the formula)."""
    gpus = ceilings.gpus
    bandwidth = ceilings.bandwidth_bytes_per_s * parameters.bandwidth_efficiency
    weights = cost.weight_bytes / (bandwidth * gpus)
    kv_cache = (cost.kv_read_bytes + cost.kv_write_bytes) / (bandwidth * gpus)
    activations = cost.activation_bytes / (bandwidth * gpus)
    memory = weights + kv_cache + activations

    precision = precision_by_name(cost.precision)
    quantised_rate, native = matmul_rate(ceilings, precision)
    wide_rate, _ = matmul_rate(ceilings, precision_by_name("bf16"))
    quantised_flops = sum(cost.breakdown[c].matmul_flops for c in QUANTISED_COMPONENTS)
    wide_flops = cost.matmul_flops - quantised_flops + cost.attention_flops
    efficiency = parameters.compute_efficiency * gpus
    compute = (quantised_flops / quantised_rate + wide_flops / wide_rate) / efficiency
    dequantisation = 0.0 if native else cost.dequant_ops / (vector_rate(ceilings) * efficiency)

    floor = parameters.pass_floor_seconds
    body = max(floor, memory, compute + dequantisation)
    sampler = max(cost.sampler_bytes / bandwidth, cost.sampler_flops / (vector_rate(ceilings)
                                                                        * parameters.compute_efficiency))
    step_overhead = parameters.diffusion_step_overhead_seconds if cost.kind in DIFFUSION_PASSES else 0.0
    interconnect = _interconnect_seconds(cost, ceilings, backbone)

    bound: PassBound
    if body == floor and floor > 0:
        bound, critical = "overhead", {"overhead": floor}
    elif body == memory:
        bound = "weights" if weights >= memory / 2 else "memory-traffic"
        critical = {"weights": weights, "kv-cache": kv_cache, "activations": activations}
    else:
        bound, critical = "compute", {"compute": compute, "dequantisation": dequantisation}
    additive = {"sampler": sampler, "step-overhead": step_overhead, "interconnect": interconnect}
    critical.update({name: value for name, value in additive.items() if value > 0})
    terms = {"weights": weights, "kv-cache": kv_cache, "activations": activations, "compute": compute,
             "dequantisation": dequantisation, "overhead": floor, **additive}
    basis: BasisKind = "calibrated" if parameters.engine != "ideal" else ceilings.source
    return PassEstimate(pass_kind=cost.kind, count_per_request=1.0, seconds=body + sum(additive.values()),
                        bound_by=bound, terms_seconds=terms,
                        critical_seconds={k: v for k, v in critical.items() if v > 0},
                        bytes_moved=cost.total_bytes, flops=cost.total_flops, basis=basis)


def _measured(estimate: PassEstimate, seconds: float) -> PassEstimate:
    """A physics estimate replaced by a measured time: every term scaled alike, basis measured."""
    factor = seconds / estimate.seconds
    return dataclasses.replace(
        estimate, seconds=seconds, basis="measured",
        terms_seconds={k: v * factor for k, v in estimate.terms_seconds.items()},
        critical_seconds={k: v * factor for k, v in estimate.critical_seconds.items()})


@dataclass(frozen=True)
class Request:
    """One request shape: precision, concurrent requests, prompt and output tokens."""

    precision: str
    concurrency: int
    prompt_tokens: int
    output_tokens: int


def canvases(output_tokens: int) -> int:
    """256-token canvases an output needs (a partial canvas is paid in full)."""
    return max(1, math.ceil(output_tokens / CANVAS_TOKENS))


@dataclass(frozen=True)
class DiffusionPasses:
    """The passes of one DiffusionGemma request, before the steps per canvas are chosen."""

    prefill: PassEstimate
    denoise: PassEstimate
    commit: PassEstimate
    canvases: int
    commits: int
    shows_drafts: bool


def useful_draft_tokens(output_tokens: int) -> int:
    """Tokens that must be final before the user holds a useful draft: all but a tenth of the output."""
    return output_tokens - math.floor(USEFUL_DRAFT_EDIT_DISTANCE * output_tokens)


def diffusion_passes(model: PassModel, request: Request) -> DiffusionPasses:
    """Prefill, a denoise pass and a commit pass at the request's mean context."""
    count = canvases(request.output_tokens)
    mean_context = request.prompt_tokens + CANVAS_TOKENS * (count - 1) // 2
    shape = {"concurrency": request.concurrency}
    return DiffusionPasses(
        prefill=model.estimate("prefill", request.precision, context_tokens=0,
                               tokens_per_request=request.prompt_tokens, **shape),
        denoise=model.estimate("dg-denoise", request.precision, context_tokens=mean_context, **shape),
        commit=model.estimate("dg-commit", request.precision, context_tokens=mean_context, **shape),
        canvases=count, commits=count if model.engine.commits_last_canvas else count - 1,
        shows_drafts=model.engine.shows_drafts)


def _diffusion_first_draft(passes: DiffusionPasses, output_tokens: int, steps: float) -> float:
    """When the user first holds DiffusionGemma text within the useful-draft distance of the final output."""
    needed = useful_draft_tokens(output_tokens)
    canvas = (needed - 1) // CANVAS_TOKENS  # the canvas that holds the last token needed
    # Every canvas before it was refined and committed (a commit encodes a canvas before the next one starts).
    start = passes.prefill.seconds + canvas * (steps * passes.denoise.seconds + passes.commit.seconds)
    if passes.shows_drafts:
        real_tokens = min(CANVAS_TOKENS, output_tokens - canvas * CANVAS_TOKENS)
        fraction = (needed - canvas * CANVAS_TOKENS) / real_tokens
        return start + min(steps, math.ceil(steps * fraction)) * passes.denoise.seconds
    committed = passes.commit.seconds if canvas < passes.commits else 0.0
    return start + steps * passes.denoise.seconds + committed


def diffusion_estimate(passes: DiffusionPasses, request: Request, steps: float, memory_bytes: int
                       ) -> ModeEstimate:
    """Request-level DiffusionGemma figures for ``steps`` denoise passes per canvas."""
    canvas_seconds = steps * passes.denoise.seconds
    first_commit = passes.commit.seconds if passes.commits == passes.canvases else 0.0
    ttft = passes.prefill.seconds + canvas_seconds + first_commit
    total = passes.prefill.seconds + passes.canvases * canvas_seconds + passes.commits * passes.commit.seconds
    rate = request.output_tokens / (total - passes.prefill.seconds)
    listed = (dataclasses.replace(passes.prefill, count_per_request=1.0),
              dataclasses.replace(passes.denoise, count_per_request=steps * passes.canvases),
              dataclasses.replace(passes.commit, count_per_request=float(passes.commits)))
    return ModeEstimate(
        tokens_per_s=rate, aggregate_tokens_per_s=rate * request.concurrency, ttft_s=ttft,
        first_draft_s=_diffusion_first_draft(passes, request.output_tokens, steps),
        total_latency_s=total, memory_bytes=memory_bytes, pass_seconds=passes.denoise.seconds,
        breakdown_seconds=passes.denoise.critical_seconds, passes=listed)


def autoregressive_estimate(model: PassModel, request: Request, memory_bytes: int) -> ModeEstimate:
    """Request-level AR Gemma 4 figures: prefill yields the first token, then one step per token.
    ``tokens_per_s`` is the steady generation rate (one over the step time), as vLLM reports it."""
    shape = {"concurrency": request.concurrency}
    prefill = model.estimate("prefill", request.precision, context_tokens=0,
                             tokens_per_request=request.prompt_tokens, **shape)
    step = model.estimate("ar-step", request.precision,
                          context_tokens=request.prompt_tokens + request.output_tokens // 2, **shape)
    steps = request.output_tokens - 1
    total = prefill.seconds + steps * step.seconds
    return ModeEstimate(
        tokens_per_s=1.0 / step.seconds, aggregate_tokens_per_s=request.concurrency / step.seconds,
        ttft_s=prefill.seconds,
        first_draft_s=prefill.seconds + (useful_draft_tokens(request.output_tokens) - 1) * step.seconds,
        total_latency_s=total, memory_bytes=memory_bytes, pass_seconds=step.seconds,
        breakdown_seconds=step.critical_seconds,
        passes=(prefill, dataclasses.replace(step, count_per_request=float(steps))))
