"""The speedup model: time of every pass from named terms, then request-level figures for both decoding modes.

A pass of ``dgprofile.specs.pass_cost`` (bytes and FLOPs by component) takes, on ``gpus`` GPUs::

    seconds = max(engine floor, device factor x body) + diffusion step overhead + interconnect

* body: the pass's components (attention, dense MLP, router, experts, LM head, self-conditioning, sampler, ...)
  one after another, each at the larger of its memory time (its bytes at the achievable bandwidth times the
  engine's bandwidth efficiency) and its compute time (matmul and attention FLOPs at the rate of the format they
  run in times the engine's compute efficiency, plus unpacking on the fp32 units for a format the hardware does
  not multiply in). Quantised layers (attention projections, dense MLP, experts) run in the weights' format; the
  LM head, self-conditioning product, router and attention scores at the wide rate; the sampler on the fp32 units;
* device factor: what the measured passes of this device say about its kernels (``with_measured_passes``): the
  measured pass against its roofline at the measured limits, relative to the same kernels on the reference GPUs;
  1 where nothing was measured, and for AR steps, whose measured time is latency (the launch floor covers it);
* engine floor: the engine's per-pass floor times the device's launch latency against the reference GPU's; in
  eager mode (for an engine calibrated with CUDA graphs) at least its kernels' host launches;
* interconnect: two all-reduces of the hidden states per layer under tensor parallelism.

The hardware side of a pass (``PassEstimate.hardware_seconds``) is the body with no engine inefficiency times the
device factor; what the engine adds (its kernels, floor, step overhead, interconnect) is listed beside it.

Requests: DiffusionGemma pays a prefill, then per 256-token canvas ``S`` denoise passes and a commit (engines that
commit the last canvas commit every one); an output shorter than a canvas pays the whole canvas. AR pays a
prefill (which yields the first token) and one step per further token; with the MTP drafter, one verification
pass of ``k + 1`` tokens and ``k`` drafter steps per expected accepted run (``dgprofile.model.setup``).
Concurrency ``c`` batches the requests into each pass (a denoise pass of ``c x 256`` tokens). Context-dependent
terms are taken at the mean context of the request's passes (they are linear in it).

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

from dgprofile.model.ceilings import REFERENCE_EAGER_LAUNCH_SECONDS, compute_dtype, matmul_rate, vector_rate
from dgprofile.model.engines import Engine
from dgprofile.model.setup import tokens_per_verification
from dgprofile.records.passes import PassKind, PassMeasurement, PassTimes
from dgprofile.records.predictions import (
    ONE_GPU,
    PLAIN_BASELINE,
    ArBaseline,
    BasisKind,
    Ceilings,
    EngineParameters,
    ExecutionMode,
    Interconnect,
    ModeEstimate,
    PassBound,
    PassEstimate,
    PassFactor,
)
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import CANVAS_TOKENS, Backbone, ModelConfig, load_model_config
from dgprofile.specs.pass_cost import QUANTISED_COMPONENTS, PassCost, pass_cost, precision_by_name

DIFFUSION_PASSES: tuple[PassKind, ...] = ("dg-denoise", "dg-commit")
# Under tensor parallelism a layer all-reduces twice: the attention output, then the dense MLP's and the experts'
# partial outputs together. Gemma 4 normalises those two outputs each on its own before adding them, so both sums
# are needed whole: the second message is twice the hidden width.
ALL_REDUCES_PER_LAYER = 2
ALL_REDUCED_HIDDEN_WIDTHS_PER_LAYER = 3
HIDDEN_STATE_BYTES = 2
USEFUL_DRAFT_EDIT_DISTANCE = 0.1
USEFUL_DRAFT_DEFINITION = (
    "the first moment the user holds text within normalised edit distance "
    f"{USEFUL_DRAFT_EDIT_DISTANCE:g} of the final output: for DiffusionGemma an intermediate draft (where the engine "
    "shows drafts) or its committed canvases, for autoregressive Gemma 4 the growing prefix")
# Kernels an engine launches per pass, for the host-launch floor of eager mode. Assumed from the structure of a
# Gemma 4 MoE decoder layer: norms, QKV projection, q/k norms and rotary, attention, output projection, dense
# MLP (two GEMMs and the activation), router and top-k, two grouped expert GEMMs with routing and reduction,
# residual adds; plus the head (embedding, final norm, LM head, softcap, sampler; self-conditioning for denoise).
KERNELS_PER_LAYER = 25
HEAD_KERNELS: dict[PassKind, int] = {"prefill": 6, "ar-step": 6, "dg-denoise": 18, "dg-commit": 3}
# dgprofile's own CUDA-graph passes against their roofline at the measured limits (measured / roofline, bf16,
# concurrency 1), mean of the H100 SXM and H200 of samples/: the reference a device's measured passes are set
# against (tests/model/test_speedup.py recomputes them from those files).
REFERENCE_ROOFLINE_RATIO: dict[PassKind, float] = {"dg-denoise": 1.274, "dg-commit": 1.289, "prefill": 2.749}
MEASURED_PASS_PRECISIONS = ("bf16", "fp16")  # fp8 passes quantise activations with unfused torch ops


@dataclass(frozen=True)
class Body:
    """The body of a pass: total seconds and its parts (memory-bound components' bytes, compute-bound ones'
    arithmetic), the memory-side and compute-side totals of every component whether or not it bounds, and the
    same body with no engine inefficiency (``hardware_seconds``)."""

    seconds: float
    parts: dict[str, float]
    memory_seconds: float
    compute_seconds: float
    dequantisation_seconds: float
    sampler_seconds: float
    hardware_seconds: float


@dataclass(frozen=True)
class _Component:
    """One component of a pass reduced to the numbers the body needs (computed once per pass shape)."""

    count: float
    total_bytes: float
    weight_bytes: float
    kv_bytes: float
    other_bytes: float
    matmul_flops: float
    attention_flops: float
    sampler_flops: float
    dequant_ops: float
    quantised: bool
    sampler: bool


_COMPONENTS: dict[int, tuple[PassCost, tuple[_Component, ...]]] = {}


def _components(cost: PassCost) -> tuple[_Component, ...]:
    cached = _COMPONENTS.get(id(cost))
    if cached is not None and cached[0] is cost:
        return cached[1]
    components = tuple(
        _Component(count=float(count), total_bytes=terms.total_bytes, weight_bytes=terms.weight_bytes,
                   kv_bytes=terms.kv_read_bytes + terms.kv_write_bytes,
                   other_bytes=terms.activation_bytes + terms.sampler_bytes, matmul_flops=terms.matmul_flops,
                   attention_flops=terms.attention_flops, sampler_flops=terms.sampler_flops,
                   dequant_ops=terms.dequant_ops if name in (*QUANTISED_COMPONENTS, "self-conditioning") else 0.0,
                   quantised=name in QUANTISED_COMPONENTS, sampler=name == "sampler")
        for name, terms, count in cost.components)
    _COMPONENTS[id(cost)] = (cost, components)
    return components


_BODIES: dict[tuple[int, int, float, float], tuple[PassCost, Ceilings, Body]] = {}
_BODY_CACHE_LIMIT = 100_000


def pass_body(cost: PassCost, ceilings: Ceilings, bandwidth_efficiency: float, compute_efficiency: float
              ) -> Body:
    """The components of ``cost`` one after another, each at the larger of its memory and compute time
    (memoised: a fit re-times the same passes while it moves parameters the body does not depend on)."""
    key = (id(cost), id(ceilings), bandwidth_efficiency, compute_efficiency)
    cached = _BODIES.get(key)
    if cached is not None and cached[0] is cost and cached[1] is ceilings:
        return cached[2]
    if len(_BODIES) > _BODY_CACHE_LIMIT:
        _BODIES.clear()
    body = _pass_body(cost, ceilings, bandwidth_efficiency, compute_efficiency)
    _BODIES[key] = (cost, ceilings, body)
    return body


def _pass_body(cost: PassCost, ceilings: Ceilings, bandwidth_efficiency: float, compute_efficiency: float
               ) -> Body:
    gpus = ceilings.gpus
    bandwidth = ceilings.bandwidth_bytes_per_s * gpus
    precision = precision_by_name(cost.precision)
    quantised_rate, native = matmul_rate(ceilings, precision)
    wide_rate = ceilings.peak_flops_per_s[compute_dtype(ceilings)] * gpus
    quantised_rate *= gpus
    vector = vector_rate(ceilings) * gpus
    weights = kv = other = sampler_part = compute = dequantisation = 0.0
    total_memory = total_compute = total_dequant = total_sampler = hardware = 0.0
    for c in _components(cost):
        memory_1 = c.total_bytes / bandwidth
        arithmetic_1 = (c.matmul_flops / (quantised_rate if c.quantised else wide_rate)
                        + c.attention_flops / wide_rate + c.sampler_flops / vector)
        dequant_1 = 0.0 if native else c.dequant_ops / vector
        hardware += c.count * max(memory_1, arithmetic_1 + dequant_1)
        memory = memory_1 / bandwidth_efficiency
        arithmetic = arithmetic_1 / compute_efficiency
        dequant = dequant_1 / compute_efficiency
        total_memory += c.count * memory
        total_compute += c.count * arithmetic
        total_dequant += c.count * dequant
        if c.sampler:
            time = c.count * max(memory, arithmetic)
            total_sampler += time
            sampler_part += time
        elif memory >= arithmetic + dequant:
            scale = c.count / (bandwidth * bandwidth_efficiency)
            weights += c.weight_bytes * scale
            kv += c.kv_bytes * scale
            other += c.other_bytes * scale
        else:
            compute += c.count * arithmetic
            dequantisation += c.count * dequant
    parts = {"weights": weights, "kv-cache": kv, "activations": other, "sampler": sampler_part,
             "compute": compute, "dequantisation": dequantisation}
    return Body(weights + kv + other + sampler_part + compute + dequantisation, parts, total_memory, total_compute,
                total_dequant, total_sampler, hardware)


_COST_CACHE: dict[tuple[str, PassKind, str, int, int, int | None], PassCost] = {}


def cached_cost(config: ModelConfig, kind: PassKind, precision: str, concurrency: int, context_tokens: int,
                tokens_per_request: int | None) -> PassCost:
    """``pass_cost`` memoised: the same shapes come back for every engine and curve point."""
    key = (config.id, kind, precision, concurrency, context_tokens, tokens_per_request)
    if key not in _COST_CACHE:
        _COST_CACHE[key] = pass_cost(config, kind=kind, precision=precision, concurrency=concurrency,
                                     context_tokens=context_tokens, tokens_per_request=tokens_per_request)
    return _COST_CACHE[key]


def interconnect_seconds(cost: PassCost, gpus: int, link: Interconnect | Unavailable, backbone: Backbone) -> float:
    """The pass's ring all-reduces over the link: per layer ``ALL_REDUCES_PER_LAYER`` latencies and
    ``ALL_REDUCED_HIDDEN_WIDTHS_PER_LAYER`` hidden states of every token."""
    return backbone.num_layers * layer_interconnect_seconds(cost.tokens, gpus, link, backbone.hidden_size)


def layer_interconnect_seconds(tokens: int, gpus: int, link: Interconnect | Unavailable, hidden_size: int) -> float:
    """One layer's all-reduces of ``tokens`` hidden states over ``gpus`` GPUs."""
    if gpus == 1 or isinstance(link, Unavailable):
        return 0.0
    message = ALL_REDUCED_HIDDEN_WIDTHS_PER_LAYER * tokens * hidden_size * HIDDEN_STATE_BYTES
    ring = 2 * (gpus - 1) / gpus * message / link.bytes_per_s  # each GPU sends and receives this much
    return ALL_REDUCES_PER_LAYER * link.all_reduce_latency_seconds + ring


def eager_launch_floor(kind: PassKind, backbone: Backbone, ceilings: Ceilings, host_factor: float) -> float:
    """The host time to launch a pass's kernels one by one."""
    launch = (ceilings.eager_launch_seconds if isinstance(ceilings.eager_launch_seconds, float)
              else REFERENCE_EAGER_LAUNCH_SECONDS)
    return (backbone.num_layers * KERNELS_PER_LAYER + HEAD_KERNELS[kind]) * launch * host_factor


def pass_factor(ceilings: Ceilings, kind: PassKind, concurrency: int) -> PassFactor | None:
    """The measured factor of this pass kind at the nearest measured concurrency (None: nothing measured)."""
    factors = [f for f in ceilings.pass_factors if f.pass_kind == kind]
    if not factors:
        return None
    return min(factors, key=lambda f: abs(math.log(f.concurrency / concurrency)))


@dataclass(frozen=True)
class PassModel:
    """Everything that fixes pass times on one device with one engine. ``measured`` passes (from `check`) make
    the ``ideal`` engine: they are used as timed, scaled by the physics to other shapes; every other engine sees
    them through the ceilings' pass factors."""

    config: ModelConfig
    ceilings: Ceilings
    engine: Engine
    parameters: EngineParameters
    measured: PassTimes | None = None
    mode: ExecutionMode = "cuda-graphs"
    interconnect: Interconnect | Unavailable = ONE_GPU

    def estimate(self, kind: PassKind, precision: str, *, concurrency: int, context_tokens: int,
                 tokens_per_request: int | None = None) -> PassEstimate:
        """One pass of ``kind``, timed by the physics (or by a measurement of it, for the ideal engine)."""
        cost = cached_cost(self.config, kind, precision, concurrency, context_tokens, tokens_per_request)
        physical = self.physics(cost)
        measurement = self._nearest_measurement(kind, precision, concurrency, context_tokens)
        if measurement is None:
            return physical
        # The measurement ran on one GPU: it is scaled by the physics of this pass (over the GPUs and their link)
        # against the physics of the measured one on one GPU.
        reference = self.on_one_gpu().physics(cached_cost(self.config, kind, precision, measurement.concurrency,
                                                          measurement.context_tokens, measurement.tokens_per_request))
        return _measured(physical, measurement.seconds * physical.seconds / reference.seconds, measurement)

    def on_one_gpu(self) -> PassModel:
        """This model on one of its GPUs (no tensor parallelism, no link)."""
        if self.ceilings.gpus == 1:
            return self
        return dataclasses.replace(self, ceilings=one_gpu_ceilings(self.ceilings), interconnect=ONE_GPU)

    def floor_seconds(self, kind: PassKind) -> tuple[float, str]:
        """The engine's per-pass floor on this device in this mode, and what set it. The floor was fitted on the
        released model's layers; a model with fewer (the miniature `verify --quick` builds on a CPU) launches a
        proportional share of the kernels, so it pays that share."""
        layer_share = self.config.backbone.num_layers / load_model_config().backbone.num_layers
        graphs = self.parameters.pass_floor_seconds * self.ceilings.floor_scale * layer_share
        if self.mode == self.engine.default_mode or self.mode == "cuda-graphs":
            return graphs, "overhead"
        eager = eager_launch_floor(kind, self.config.backbone, self.ceilings, self.parameters.eager_host_factor)
        return (eager, "eager-launches") if eager > graphs else (graphs, "overhead")

    def physics(self, cost: PassCost) -> PassEstimate:
        """Time one pass from its bytes and FLOPs (see the module docstring for the formula)."""
        backbone = self.config.backbone
        parameters = self.parameters
        body = pass_body(cost, self.ceilings, parameters.bandwidth_efficiency, parameters.compute_efficiency)
        factor = pass_factor(self.ceilings, cost.kind, cost.concurrency) if cost.kind != "ar-step" else None
        rho = factor.factor if factor else 1.0
        floor, floor_name = self.floor_seconds(cost.kind)
        step_overhead = parameters.diffusion_step_overhead_seconds if cost.kind in DIFFUSION_PASSES else 0.0
        link = interconnect_seconds(cost, self.ceilings.gpus, self.interconnect, backbone)
        loaded = rho * body.seconds
        core = max(floor, loaded)
        seconds = core + step_overhead + link

        bound: PassBound
        if core == floor and floor > loaded:
            bound, critical = "overhead", {floor_name: floor}
        else:
            memory_part = body.parts["weights"] + body.parts["kv-cache"] + body.parts["activations"]
            compute_part = body.parts["compute"] + body.parts["dequantisation"]
            if compute_part > memory_part:
                bound = "compute"
            else:
                bound = "weights" if body.parts["weights"] >= memory_part / 2 else "memory-traffic"
            critical = {name: rho * value for name, value in body.parts.items()}
        additive = {"step-overhead": step_overhead, "interconnect": link}
        critical.update(additive)
        terms = {"weights": cost.weight_bytes / (self.ceilings.bandwidth_bytes_per_s * parameters.bandwidth_efficiency
                                                 * self.ceilings.gpus),
                 "kv-cache": (cost.kv_read_bytes + cost.kv_write_bytes) / (
                     self.ceilings.bandwidth_bytes_per_s * parameters.bandwidth_efficiency * self.ceilings.gpus),
                 "activations": cost.activation_bytes / (
                     self.ceilings.bandwidth_bytes_per_s * parameters.bandwidth_efficiency * self.ceilings.gpus),
                 "compute": body.compute_seconds, "dequantisation": body.dequantisation_seconds,
                 "sampler": body.sampler_seconds, "overhead": floor, **additive}
        hardware_seconds = rho * body.hardware_seconds
        added = {"kernels": loaded - hardware_seconds, "floor": core - loaded, **additive}
        basis: BasisKind = "calibrated" if parameters.engine != "ideal" else self.ceilings.source
        return PassEstimate(
            pass_kind=cost.kind, count_per_request=1.0, seconds=seconds, bound_by=bound, terms_seconds=terms,
            critical_seconds={k: v for k, v in critical.items() if v > 0}, bytes_moved=cost.total_bytes,
            flops=cost.total_flops, basis=basis, hardware_seconds=hardware_seconds,
            hardware_basis=factor.basis if factor else _unmeasured_basis(self.ceilings, cost.kind),
            engine_added_seconds={k: v for k, v in added.items() if v != 0})

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


def _unmeasured_basis(ceilings: Ceilings, kind: PassKind) -> str:
    if kind == "ar-step":
        return "the roofline at the device's achievable rates (AR steps are latency-bound: the engine floor " \
               "covers their measured latency)"
    return f"the roofline at the device's achievable rates ({ceilings.source}); no {kind} pass measured here"


def _measured(estimate: PassEstimate, seconds: float, measurement: PassMeasurement) -> PassEstimate:
    """A physics estimate replaced by a measured time: every term scaled alike, basis measured."""
    factor = seconds / estimate.seconds
    return dataclasses.replace(
        estimate, seconds=seconds, basis="measured", hardware_seconds=seconds,
        hardware_basis=(f"measured here: {measurement.pass_kind} {measurement.precision} at concurrency "
                        f"{measurement.concurrency}, context {measurement.context_tokens} "
                        f"({measurement.seconds * 1e3:.3g} ms), scaled to this shape"),
        engine_added_seconds={},
        terms_seconds={k: v * factor for k, v in estimate.terms_seconds.items()},
        critical_seconds={k: v * factor for k, v in estimate.critical_seconds.items()})


_ONE_GPU_CEILINGS: dict[int, tuple[Ceilings, Ceilings]] = {}


def one_gpu_ceilings(ceilings: Ceilings) -> Ceilings:
    """The ceilings of one of the GPUs (its memory a share of the whole), the same object for the same ceilings so
    that the bodies timed on it stay memoised."""
    if ceilings.gpus == 1:
        return ceilings
    cached = _ONE_GPU_CEILINGS.get(id(ceilings))
    if cached is not None and cached[0] is ceilings:
        return cached[1]
    if len(_ONE_GPU_CEILINGS) > _BODY_CACHE_LIMIT:
        _ONE_GPU_CEILINGS.clear()
    one = dataclasses.replace(ceilings, gpus=1, usable_memory_bytes=ceilings.usable_memory_bytes // ceilings.gpus)
    _ONE_GPU_CEILINGS[id(ceilings)] = (ceilings, one)
    return one


def with_measured_passes(config: ModelConfig, ceilings: Ceilings, measured: PassTimes | None) -> Ceilings:
    """The ceilings with what the measured passes say about this accelerator's kernels (``PassFactor`` per pass
    kind and concurrency): each measured bf16 (else fp16) denoise, commit and prefill pass against its roofline at
    the measured limits, relative to the same ratio on the reference GPUs (``REFERENCE_ROOFLINE_RATIO``). Only
    passes whose layers ran the kernels the reference was measured with (the fused Triton layers) count: passes in
    torch ops are slower on every GPU for reasons of their own, and would make the device look slower than it is."""
    if measured is None or ceilings.source != "measured":
        return ceilings
    if ceilings.vendor == "cpu":
        # On a CPU the passes are torch's own CPU kernels, far from what an engine's are (bf16 matmuls there
        # often run at a fifth of the fp32 rate): they say nothing about the device that transfers to an engine.
        return dataclasses.replace(ceilings, pass_factors_basis=(
            "the passes measured on this CPU ran torch's CPU kernels, not an engine's: factor 1"))
    factors = []
    one_gpu = one_gpu_ceilings(ceilings)  # the passes were measured on one GPU
    for kind, reference in REFERENCE_ROOFLINE_RATIO.items():
        for precision in MEASURED_PASS_PRECISIONS:
            passes = [m for m in measured.passes if m.pass_kind == kind and m.precision == precision
                      and m.measured and m.seconds > 0 and precision in measured.fused_layers]
            for m in passes:
                cost = cached_cost(config, kind, m.precision, m.concurrency, m.context_tokens, m.tokens_per_request)
                roofline = pass_body(cost, one_gpu, 1.0, 1.0).seconds
                ratio = m.seconds / roofline
                factors.append(PassFactor(
                    pass_kind=kind, concurrency=m.concurrency, factor=ratio / reference, measured_seconds=m.seconds,
                    roofline_seconds=roofline,
                    basis=(f"measured here: {kind} {m.precision} at concurrency {m.concurrency}, context "
                           f"{m.context_tokens}, {m.seconds * 1e3:.3g} ms = {ratio:.2f}x its roofline against "
                           f"{reference:.2f}x on the reference GPUs")))
            if passes:
                break
    if factors:
        basis = "; ".join(f.basis for f in factors)
    elif any(m.measured and m.precision in MEASURED_PASS_PRECISIONS for m in measured.passes):
        basis = ("the measured bf16/fp16 layers ran torch elementwise ops (a quick run, or the fused Triton kernels "
                 "failed their check here), not the fused kernels the reference GPUs' ratios were measured with: "
                 "factor 1")
    else:
        basis = ceilings.pass_factors_basis
    return dataclasses.replace(ceilings, pass_factors=tuple(factors), pass_factors_basis=basis)


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


def ar_step(model: PassModel, request: Request, baseline: ArBaseline = PLAIN_BASELINE) -> tuple[PassEstimate, float]:
    """One AR decoding step at the request's mean context and the tokens it yields: a plain step yields one; with
    the MTP drafter, a verification pass over the drafts plus the drafter's steps yields the expected accepted
    run (``dgprofile.model.setup.tokens_per_verification``)."""
    context = request.prompt_tokens + request.output_tokens // 2
    plain = model.estimate("ar-step", request.precision, context_tokens=context, concurrency=request.concurrency)
    if baseline.kind == "plain" or isinstance(baseline.draft_tokens, Unavailable):
        return plain, 1.0
    drafts = baseline.draft_tokens
    verify = model.estimate("ar-step", request.precision, context_tokens=context, concurrency=request.concurrency,
                            tokens_per_request=drafts + 1)
    drafter = drafts * model.parameters.mtp_draft_step_fraction * plain.seconds
    added = dict(verify.engine_added_seconds)
    added["mtp-drafter"] = drafter
    critical = dict(verify.critical_seconds)
    critical["mtp-drafter"] = drafter
    step = dataclasses.replace(verify, seconds=verify.seconds + drafter, engine_added_seconds=added,
                               critical_seconds=critical)
    return step, tokens_per_verification(baseline)


def autoregressive_estimate(model: PassModel, request: Request, memory_bytes: int,
                            baseline: ArBaseline = PLAIN_BASELINE) -> ModeEstimate:
    """Request-level AR Gemma 4 figures: prefill yields the first token, then steps of one token (or, with the
    MTP drafter, of the expected accepted run). ``tokens_per_s`` is the steady generation rate (tokens per step
    over the step time), as vLLM reports it."""
    shape = {"concurrency": request.concurrency}
    prefill = model.estimate("prefill", request.precision, context_tokens=0,
                             tokens_per_request=request.prompt_tokens, **shape)
    step, tokens = ar_step(model, request, baseline)
    steps = (request.output_tokens - 1) / tokens
    total = prefill.seconds + steps * step.seconds
    return ModeEstimate(
        tokens_per_s=tokens / step.seconds, aggregate_tokens_per_s=request.concurrency * tokens / step.seconds,
        ttft_s=prefill.seconds,
        first_draft_s=prefill.seconds + (useful_draft_tokens(request.output_tokens) - 1) / tokens * step.seconds,
        total_latency_s=total, memory_bytes=memory_bytes, pass_seconds=step.seconds,
        breakdown_seconds=step.critical_seconds,
        passes=(prefill, dataclasses.replace(step, count_per_request=steps)))
