"""Run the decode micro-benchmarks: AR step, DG denoise, DG commit and prefill at the real model shapes.

A pass is timed in parts through the shared harness (``dgprofile.probes.harness``), each part a CUDA graph on
NVIDIA: a sample of sliding layers, a sample of global layers (full width, scaled to the model's depth), and the
head once. The plan (``plan.py``) is made from memory figures before anything is allocated; an out-of-memory
error that slips through skips the configuration that caused it and says so. Precisions the hardware cannot
run natively are left to the model (``DecodeMeasurements.modelled_precisions``): the probe measures, and
``dgprofile.model.floors`` sets the passes against the machine's limits and models those precisions.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import torch

from dgprofile.interrupts import Interrupted, interruption_of
from dgprofile.probes import gpu_backends
from dgprofile.probes.decode.autotune import Autotuner
from dgprofile.probes.decode.checks import (
    check_attention,
    check_config,
    check_experts,
    check_fp8_linear,
    check_fused_layer,
    check_gemv_layer,
    check_layers,
)
from dgprofile.probes.decode.head import Sampler, build_head, head_parts, torch_sampler
from dgprofile.probes.decode.measurements import DecodeMeasurements, KernelsReady, Progress
from dgprofile.probes.decode.model import (
    GEMV_MAX_ROWS,
    SPLIT_KV_MAX_ROWS,
    AttentionMethod,
    ExpertMethod,
    LayerState,
    LayerWeights,
    ProjectionMethod,
    Routing,
    attention,
    attention_scores_bytes,
    build_layer,
    decoder_layer,
    grouped_mm_available,
    layer_stack,
    layer_state,
    mixture_of_experts,
    random_tensor,
    uniform_routing,
)
from dgprofile.probes.decode.plan import (
    DEFAULT_CONCURRENCIES,
    DEFAULT_CONTEXTS,
    DEFAULT_PRECISIONS,
    BenchPlan,
    DeviceKind,
    plan_bench,
)
from dgprofile.probes.decode.precompile import job_name, jobs_before_checks, triton_expert_methods
from dgprofile.probes.harness import Budget, graph_or_eager, make_current, timer_for
from dgprofile.records.passes import PassKind, PassMeasurement, PassPart, PassPartName, PassTimes
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import DEFAULT_MODEL, LayerType, ModelConfig, load_model_config
from dgprofile.specs.pass_cost import pass_cost

# Harness budgets per device: GPU parts last 0.1-20 ms; CPU parts last seconds, and two samples after the
# calibration call (which doubles as the warm-up) are what the CPU time budget allows.
GPU_BUDGET = Budget(min_sample_seconds=0.005, samples=7, max_seconds=0.25, warmup=2)
GPU_QUICK_BUDGET = Budget(min_sample_seconds=0.003, samples=5, max_seconds=0.1, warmup=1)
CPU_BUDGET = Budget(min_sample_seconds=0.0, samples=2, max_seconds=0.0, warmup=0)
NOT_A_WHOLE_PASS = Unavailable("timed in parts (sampled layers and head): see parts")
NOT_YET_COMPARED = Unavailable("not yet set against the machine's limits")
# The matmul attention method materialises the scores: only offered where they stay this small.
MATMUL_ATTENTION_MAX_BYTES = 512 * 2**20
PREFILL_SUSTAIN_SECONDS = 1.0
FUSED_TEXT = ("fused Triton kernels (input norm, q/k/v norms + KV-cache writes + query layout, matmul attention's "
              "softmax, residual + norms, GeGLU, router top-k + expert combine + output norms; the head's norms and "
              "self-conditioning GeGLU)")
FUSED_FP8_TEXT = (FUSED_TEXT + ", the fp8 GEMMs' activations quantised per token by the kernels that produce them "
                  "(input norm, dense and expert pre-norms, GeGLUs) or, where no kernel holds whole rows (attention "
                  "output, the expert GEMM's GeGLU epilogue), in one kernel")
GEMV_TEXT = ("projections (q/k/v, output, dense MLP, router): torch's GEMMs (cuBLAS; fp8: torch._scaled_mm on "
             "activations quantised per token), and in fp8 layers of passes of at most {rows} rows the faster per layer "
             "type and pass shape of those and gemv (a Triton GEMV streaming the fp8 weight into bf16 activations, "
             "none quantised, the input norm fused into q/k/v and the GeGLU into gate_up), whole fused layers timed "
             "each way; gemv passed its check here for: {working}")
# The key of ``DeviceCapabilities.fused`` for fp8 layers (the others are compute dtypes: fp8 layers compute in bf16
# around their GEMMs, but their fused kernels also quantise, and are checked apart).
FP8_LAYERS = "fp8"


@dataclass(frozen=True)
class DeviceCapabilities:
    """What the device offers: read before planning, then completed by the layer-path checks."""

    device: str
    kind: DeviceKind
    free_memory_bytes: float
    native_fp8: bool
    expert_methods: Mapping[bool, tuple[ExpertMethod, ...]]  # fp8 -> expert methods that work here
    attention_methods: Mapping[str, tuple[AttentionMethod, ...]]  # dtype name -> attention methods that work here
    fused: Mapping[str, bool]  # dtype name or FP8_LAYERS -> whether the fused elementwise kernels passed their check
    gemv: Mapping[str, bool]  # dtype name or FP8_LAYERS -> whether the fused layer with the GEMV passed its check
    sampler: Sampler
    sampler_method: str
    budget: Budget
    prefill_sustain_seconds: float  # load before timing prefill layers (clocks as a long run holds them)
    notes: tuple[str, ...]  # fast paths that failed their check, and what was done instead
    fp8_reason: str  # why fp8 is not measured, when it is not


@dataclass(frozen=True)
class Autotuners:
    """The fastest working expert and attention methods per pass shape, shared by every precision of a run."""

    experts: Autotuner
    attention: Autotuner
    projections: Autotuner


def device_capabilities(device: str, quick: bool) -> DeviceCapabilities:
    kind: DeviceKind = ("cuda" if device.startswith("cuda") else "xpu" if device.startswith("xpu")
                        else "mps" if device == "mps" else "cpu")
    notes: list[str] = []
    native_fp8, fp8_reason = gpu_backends.native_fp8(torch, device)
    fp8_reason = f"this device has no native fp8 matmul ({fp8_reason})"
    free: float
    if kind == "cuda":
        free = float(torch.cuda.mem_get_info(torch.device(device))[0])
    elif kind == "xpu":
        free = float(torch.xpu.mem_get_info(torch.device(device))[0])
    elif kind == "mps":
        free, native_fp8 = float(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()), False
    else:
        import psutil

        free, native_fp8 = float(psutil.virtual_memory().available), False
    # A quick run models fp8 (plan_bench), so its kernels are neither compiled nor checked.
    methods = {fp8: _working_expert_methods(device, kind, fp8, quick, notes) if not (fp8 and quick) else ()
               for fp8 in (False, True)}
    if native_fp8 and not quick:
        problem = check_fp8_linear(device)
        if not problem and not methods[True]:
            problem = "no expert method for FP8 works here"
        if problem:
            native_fp8, fp8_reason = False, f"its fast path failed here ({problem})"
    sampler, method = _pick_sampler(device, kind)
    budget = CPU_BUDGET if kind == "cpu" else (GPU_QUICK_BUDGET if quick else GPU_BUDGET)
    dtypes = (str(torch.bfloat16), str(torch.float16))
    return DeviceCapabilities(
        device=device, kind=kind, free_memory_bytes=float(free), native_fp8=native_fp8, expert_methods=methods,
        attention_methods=dict.fromkeys(dtypes, ("sdpa",)), fused=dict.fromkeys((*dtypes, FP8_LAYERS), False),
        gemv=dict.fromkeys((*dtypes, FP8_LAYERS), False),
        sampler=sampler,
        sampler_method=method, budget=budget,
        prefill_sustain_seconds=PREFILL_SUSTAIN_SECONDS if kind == "cuda" and not quick else 0.0,
        notes=tuple(notes), fp8_reason=fp8_reason)


def check_layer_paths(config: ModelConfig, caps: DeviceCapabilities, plan: BenchPlan,
                       quick: bool) -> DeviceCapabilities:
    """The capabilities with, for the compute dtypes the plan measures (fp8 layers compute in bf16), the matmul
    and split-KV attention methods and the fused Triton elementwise kernels switched on where they agree with their
    references (CUDA only; elsewhere SDPA and the torch ops); when fp8 is measured and the bf16 kernels passed, the
    fp8 layers' fused kernels (which also quantise) too. Dtypes not measured are not checked, and a quick run
    checks none: each check costs Triton compilations, seconds on a fresh machine."""
    if caps.kind != "cuda":
        return caps
    if quick:
        return replace(caps, notes=caps.notes + (
            "quick: layers run SDPA and torch elementwise ops (the fused Triton kernels, matmul and split-KV "
            "attention are not compiled and checked)",))
    notes = list(caps.notes)
    attention_methods, fused, gemv = dict(caps.attention_methods), dict(caps.fused), dict(caps.gemv)
    dtypes = dict.fromkeys(torch.float16 if p == "fp16" else torch.bfloat16 for p in plan.measured_precisions)
    small = check_config(config)
    for dtype in dtypes:
        name = str(dtype)
        layers = check_layers(small, dtype, caps.device)
        for method in ("matmul", "split-kv"):
            problem = check_attention(caps.device, dtype, method, small, layers)
            if problem:
                notes.append(f"{name} attention: {method} method unusable here ({problem})")
            else:
                attention_methods[name] += (method,)
        problem = check_fused_layer(caps.device, dtype, caps.expert_methods[False], small, layers,
                                    attention_methods=attention_methods[name])
        if problem:
            notes.append(f"{name} layers: fused Triton elementwise kernels unusable here ({problem})")
        else:
            fused[name] = True
        del layers
        _free(caps.device)
    bf16 = str(torch.bfloat16)
    if "fp8" in plan.measured_precisions and fused[bf16]:
        layers = check_layers(small, torch.bfloat16, caps.device, fp8=True)
        problem = check_fused_layer(caps.device, torch.bfloat16, caps.expert_methods[True], small, layers,
                                    attention_methods=attention_methods[bf16], fp8=True)
        if problem:
            notes.append(f"fp8 layers: fused Triton kernels with per-token quantisation unusable here ({problem}); "
                         "fp8 layers run torch elementwise ops and quantisation")
        else:
            fused[FP8_LAYERS] = True
            # Only fp8 layers try the GEMV: there torch quantises each activation and runs ``_scaled_mm``, whose
            # M = 1 GEMMs are no faster than bf16's; on the H200 the GEMV won the fp8 AR step's layers at c = 1
            # (sliding 0.104 against 0.114 ms) and lost the bf16 ones at every concurrency (c = 1: 0.112 against
            # cuBLAS's 0.106 ms), so checking, compiling and timing it for bf16 would only lengthen every check.
            gemv[FP8_LAYERS] = _gemv_works(notes, "fp8", check_gemv_layer(
                caps.device, torch.bfloat16, caps.expert_methods[True], small, layers,
                attention_methods=attention_methods[bf16], fp8=True))
        del layers
        _free(caps.device)
    return replace(caps, attention_methods=attention_methods, fused=fused, gemv=gemv, notes=tuple(notes))


def _gemv_works(notes: list[str], name: str, problem: str) -> bool:
    """Whether the GEMV layer check passed; a note saying why not where it failed."""
    if problem:
        notes.append(f"{name} layers: GEMV projections unusable here ({problem}); torch's GEMMs project")
    return not problem


def _working_expert_methods(device: str, kind: DeviceKind, fp8: bool, quick: bool, notes: list[str]
                            ) -> tuple[ExpertMethod, ...]:
    """Expert methods that compute the right thing here (checked on small shapes); on a CPU only the first that
    works (its time budget has no room to compare them). On CUDA the Triton variants ``triton_expert_methods``
    names (a quick run's: the one with the GeGLU epilogue, the same GEMM with one kernel fewer)."""
    if kind != "cuda" and fp8:
        return ()
    candidates: list[ExpertMethod] = []
    if grouped_mm_available(device, fp8):
        candidates.append("grouped")
    if not fp8:
        candidates.append("padded")
    if kind == "cuda":
        candidates += triton_expert_methods(fp8=fp8, quick=quick)
    working: list[ExpertMethod] = []
    for method in candidates:
        problem = check_experts(device, torch.bfloat16, fp8=fp8, method=method)
        if problem:
            notes.append(f"{'fp8 ' if fp8 else ''}experts: {method} method unusable here ({problem})")
            continue
        working.append(method)
        if kind != "cuda":
            break
    return tuple(working)


def _pick_sampler(device: str, kind: DeviceKind) -> tuple[Sampler, str]:
    if kind != "cuda":
        return torch_sampler, "sampler: torch ops"
    try:
        from dgprofile.probes.decode.triton_sampler import TritonSampler, check_against_torch

        fused = TritonSampler()
        problem = check_against_torch(fused, torch_sampler, device)
    except Exception as error:  # no Triton, or it failed to compile here: the torch sampler still runs
        problem = f"{type(error).__name__}: {error}".splitlines()[0]
    if problem:
        return torch_sampler, f"sampler: torch ops (fused Triton sampler unusable: {problem})"
    return fused, "sampler: two fused Triton kernels (validated against the torch sampler)"


def _out_of_memory(error: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    return isinstance(error, (oom, MemoryError)) or "out of memory" in str(error).lower()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0][:200]


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    elif device.startswith("xpu"):
        torch.xpu.empty_cache()


def sustain_load(call: Callable[[], object], seconds: float, device: str) -> None:
    """Call ``call`` back to back for ``seconds`` (waiting for the GPU after each), as a long run loads it."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        call()
        if device.startswith("cuda"):
            torch.cuda.synchronize(torch.device(device))


def _attention_applies(config: ModelConfig, method: AttentionMethod, layer_type: LayerType, kind: PassKind,
                       concurrency: int, tokens: int, context: int) -> bool:
    """Whether an attention method is offered for this pass shape: matmul where its scores stay small, split-KV
    where nothing is masked and the query rows are few."""
    if method == "matmul":
        return attention_scores_bytes(config, layer_type, concurrency=concurrency, new=tokens,
                                      context=context) <= MATMUL_ATTENTION_MAX_BYTES
    if method == "split-kv":
        group = config.backbone.num_attention_heads // config.backbone.attention(layer_type).num_kv_heads
        causal = kind in ("prefill", "dg-commit") and tokens > 1
        return not causal and group * tokens <= SPLIT_KV_MAX_ROWS
    return True


class LayerMethods:
    """The fastest working expert and attention methods for one architecture's layers in one precision (each
    timed once per shape, then reused), and layer states that use them."""

    def __init__(self, config: ModelConfig, caps: DeviceCapabilities, tuners: Autotuners, precision: str) -> None:
        self.config, self.caps, self.tuners, self.precision = config, caps, tuners, precision
        self.dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        self.fp8 = precision == "fp8"
        self.fused = caps.fused[_fused_key(precision)]
        self.gemv = caps.gemv[_fused_key(precision)]
        self.generator = torch.Generator().manual_seed(2024)

    def hidden_rows(self, rows: int) -> torch.Tensor:
        """Random hidden states of unit scale for ``rows`` tokens: what a layer or its experts take in."""
        return random_tensor((rows, self.config.backbone.hidden_size), self.dtype, self.caps.device, std=1.0)

    def expert_method(self, layer: LayerWeights, tokens: int) -> ExpertMethod:
        """The fastest working expert method for ``tokens`` tokens in this precision."""
        backbone = self.config.backbone

        def inputs() -> tuple[Routing, torch.Tensor]:
            routing = uniform_routing(tokens, backbone.num_experts, backbone.top_k_experts, self.caps.device,
                                      self.generator)
            return routing, self.hidden_rows(tokens)

        def build(method: ExpertMethod, shared: tuple[Routing, torch.Tensor]) -> Callable[[], object]:
            routing, r = shared
            return lambda: mixture_of_experts(self.config, r, layer, routing, method, fused=self.fused)

        return self.tuners.experts.fastest((self.precision, tokens), self.caps.expert_methods[self.fp8],
                                           inputs, build)

    def attention_method(self, layer: LayerWeights, kind: PassKind, concurrency: int, tokens: int,
                         context: int) -> AttentionMethod:
        """The fastest working attention method for this layer type and pass shape (fp8 passes share the bf16
        choice: their attention runs in bf16)."""
        methods = [m for m in self.caps.attention_methods[str(self.dtype)]
                   if _attention_applies(self.config, m, layer.layer_type, kind, concurrency, tokens, context)]

        def build(method: AttentionMethod, h: torch.Tensor) -> Callable[[], object]:
            state = layer_state(self.config, layer.layer_type, kind=kind, concurrency=concurrency, new=tokens,
                                context=context, dtype=self.dtype, device=self.caps.device,
                                generator=self.generator, attention_method=method, fused=self.fused)
            return lambda: attention(self.config, h, layer, state, concurrency)

        key = (str(self.dtype), layer.layer_type, kind, concurrency, tokens, context)
        return self.tuners.attention.fastest(key, methods, partial(self.hidden_rows, concurrency * tokens), build)

    def projection_method(self, layer: LayerWeights, kind: PassKind, concurrency: int, tokens: int, context: int,
                          expert_method: ExpertMethod, attention_method: AttentionMethod) -> ProjectionMethod:
        """The faster of torch's GEMMs and the GEMV for this layer type's projections at this pass shape, timed
        as whole fused layers (the GEMV also takes over the input norm and the GeGLU): offered only where the GEMV
        layer check passed in this precision and the pass has at most ``GEMV_MAX_ROWS`` rows."""
        if not (self.gemv and concurrency * tokens <= GEMV_MAX_ROWS):
            return "torch"

        def build(method: ProjectionMethod, x: torch.Tensor) -> Callable[[], object]:
            state = layer_state(self.config, layer.layer_type, kind=kind, concurrency=concurrency, new=tokens,
                                context=context, dtype=self.dtype, device=self.caps.device,
                                generator=self.generator, expert_method=expert_method,
                                attention_method=attention_method, fused=True, projection_method=method)
            return lambda: decoder_layer(self.config, x, layer, state, concurrency)

        key = (self.precision, layer.layer_type, kind, concurrency, tokens, context)
        methods: tuple[ProjectionMethod, ...] = ("torch", "gemv")
        return self.tuners.projections.fastest(key, methods, partial(self.hidden_rows, concurrency * tokens),
                                               build)

    def layer_states(self, layers: list[LayerWeights], kind: PassKind, concurrency: int, tokens: int,
                     context: int) -> list[LayerState]:
        """Per layer: KV buffers, routing and the fastest working methods for this pass shape."""
        method = self.expert_method(layers[0], concurrency * tokens)
        states = []
        for w in layers:
            attention_method = self.attention_method(w, kind, concurrency, tokens, context)
            projection_method = self.projection_method(w, kind, concurrency, tokens, context, method,
                                                       attention_method)
            states.append(layer_state(self.config, w.layer_type, kind=kind, concurrency=concurrency, new=tokens,
                                      context=context, dtype=self.dtype, device=self.caps.device,
                                      generator=self.generator, expert_method=method, fused=self.fused,
                                      attention_method=attention_method, projection_method=projection_method))
        return states


class PassRunner:
    """Times the parts of passes for one precision on one set of weights."""

    def __init__(self, config: ModelConfig, plan: BenchPlan, caps: DeviceCapabilities, tuners: Autotuners,
                 precision: str, layers: dict[LayerType, list[LayerWeights]]) -> None:
        self.config, self.plan, self.caps, self.precision = config, plan, caps, precision
        self.layers = layers
        self.methods = LayerMethods(config, caps, tuners, precision)
        self.dtype = self.methods.dtype
        self.head = build_head(config, vocab_rows=config.backbone.vocab_size // plan.vocab_divisor,
                               dtype=self.dtype, fp8=self.methods.fp8, device=caps.device)
        self.timer = timer_for(caps.device)
        self.graph_fallbacks: set[str] = set()

    def time(self, fn: Callable[[], object], sustain_seconds: float = 0.0) -> Timing:
        """One harness measurement, replayed as a CUDA graph where capture works; ``sustain_seconds`` of
        back-to-back calls first bring the clocks to where a long run holds them."""
        prepared = graph_or_eager(fn, use_graph=self.caps.kind == "cuda")
        if prepared.fallback_reason:
            self.graph_fallbacks.add(prepared.fallback_reason)
        try:
            if sustain_seconds > 0:
                sustain_load(prepared.call, sustain_seconds, self.caps.device)
            return self.caps.budget.measure(prepared.call, timer=self.timer, ops_per_call=prepared.ops_per_call)
        finally:
            del prepared

    def layer_part(self, layer_type: LayerType, kind: PassKind, concurrency: int, tokens: int,
                   context: int, sustain_seconds: float = 0.0) -> tuple[Timing, float]:
        """Median-bearing timing of the sampled layers of one type, and the experts their routing touched."""
        states = self.methods.layer_states(self.layers[layer_type], kind, concurrency, tokens, context)
        x = self.methods.hidden_rows(concurrency * tokens)
        timing = self.time(layer_stack(self.config, self.layers[layer_type], states, x, concurrency),
                           sustain_seconds)
        touched = sum(s.routing.distinct_experts for s in states) / len(states)
        return timing, touched

    def measure_pass(self, kind: PassKind, concurrency: int, context: int) -> tuple[list[PassPart], float, int]:
        """Parts of one pass, the mean experts touched per sampled layer, and the tokens per request."""
        tokens = _pass_tokens(self.config, kind, context)
        pass_context = 0 if kind == "prefill" else context
        parts: list[PassPart] = []
        touched: list[float] = []
        # A whole prefill is a long compute-bound run, during which the GPU lowers its clocks (an H200 went from
        # 1980 to 1710 MHz within 1.5 s, the sampled layers 4.5% slower): each type's sampled layers are timed
        # after that much load (not in a quick run). Building the next type's state lets the clocks recover:
        # an H200's global prefill layer measured 8% faster without its own load than with it.
        sustain = self.caps.prefill_sustain_seconds if kind == "prefill" else 0.0
        layer_parts: tuple[tuple[LayerType, PassPartName], ...] = (("sliding", "sliding-layers"),
                                                                    ("global", "global-layers"))
        for layer_type, name in layer_parts:
            count = len(self.layers[layer_type])
            timing, experts = self.layer_part(layer_type, kind, concurrency, tokens, pass_context, sustain)
            touched.append(experts)
            parts.append(PassPart(name=name, layers=count,
                                  scale=self.config.backbone.count_layers(layer_type) / count, timing=timing))
        for head_name, fn in head_parts(self.config, self.head, kind=kind, concurrency=concurrency, tokens=tokens,
                                        split=self.plan.vocab_divisor > 1, sampler=self.caps.sampler,
                                        device=self.caps.device, fused=self.methods.fused).items():
            scale = float(self.plan.vocab_divisor) if head_name == "head-vocab" else 1.0
            parts.append(PassPart(name=head_name, layers=0, scale=scale, timing=self.time(fn)))
        return parts, sum(touched) / len(touched), tokens


class PassProgress:
    """Says which pass is being timed, its place among the run's passes and about how long the rest will take:
    each pass left at the mean time of the finished passes of its kind, a kind not timed yet at the mean of the
    finished passes of the other kinds but prefill, whose passes hold a sustained load per layer type (2.6 s each
    on an H200 against 0.4-0.7 s for the others: its time per pass made the first estimate of a cold full check 92
    s for the 15 s left). No estimate until such a pass has finished; passes differ, so an estimate, said as one."""

    def __init__(self, kinds: Sequence[str], say: Progress, clock: Callable[[], float] = time.perf_counter) -> None:
        self.planned = Counter(kinds)
        self.say, self.clock = say, clock
        self.started: Counter[str] = Counter()
        self.finished: dict[str, list[float]] = {}
        self.current: tuple[str, float] | None = None

    def start(self, kind: str, label: str) -> None:
        """Announce the next pass, of ``kind``."""
        now = self.clock()
        if self.current is not None:
            self.finished.setdefault(self.current[0], []).append(now - self.current[1])
        self.current = (kind, now)
        self.started[kind] += 1
        text = f"decode: {label} ({sum(self.started.values())} of {self.planned.total()}"
        left = self._seconds_left(kind)
        if left is not None:
            text += f", about {left:.0f} s left"
        self.say(text + ")")

    def _seconds_left(self, kind: str) -> float | None:
        """This pass and those after it, or None before a pass of a kind other than prefill has finished."""
        others = [seconds for finished_kind, times in self.finished.items() if finished_kind != "prefill"
                  for seconds in times]
        if not others:
            return None
        left = 0.0
        for planned_kind, count in self.planned.items():
            passes = max(0, count - self.started[planned_kind]) + (1 if planned_kind == kind else 0)
            times = self.finished.get(planned_kind) or others
            left += passes * statistics.fmean(times)
        return left


def _pass_tokens(config: ModelConfig, kind: PassKind, context: int) -> int:
    if kind == "prefill":
        return context
    return 1 if kind == "ar-step" else config.diffusion.canvas_length



def _measurement(config: ModelConfig, *, kind: PassKind, precision: str, concurrency: int, context: int,
                 tokens: int, parts: tuple[PassPart, ...], basis: str, layers_measured: int,
                 touched: float) -> PassMeasurement:
    """A pass timed in parts, with the bytes and FLOPs it moved; its floors wait for the machine's limits."""
    seconds = sum(p.timing.median_seconds * p.scale for p in parts)
    spread = sum(p.timing.relative_spread * p.timing.median_seconds * p.scale for p in parts) / seconds
    pass_context = 0 if kind == "prefill" else context
    cost = pass_cost(config, kind=kind, precision=precision, concurrency=concurrency, context_tokens=pass_context,
                     tokens_per_request=tokens)
    return PassMeasurement(
        pass_kind=kind, precision=precision, concurrency=concurrency, tokens_per_request=tokens,
        context_tokens=pass_context, seconds=seconds, timing=NOT_A_WHOLE_PASS, measured=True, basis=basis,
        layers_measured=layers_measured, layers_total=config.backbone.num_layers, experts_touched_per_layer=touched,
        bytes_moved=cost.total_bytes, flops=cost.total_flops, achieved_bytes_per_s=cost.total_bytes / seconds,
        achieved_flops_per_s=cost.total_flops / seconds, bandwidth_floor_seconds=NOT_YET_COMPARED,
        compute_floor_seconds=NOT_YET_COMPARED, fraction_of_bandwidth_floor=NOT_YET_COMPARED,
        fraction_of_compute_floor=NOT_YET_COMPARED,
        breakdown_seconds={p.name: p.timing.median_seconds * p.scale for p in parts},
        relative_spread=spread, experts_touched_expected=cost.experts_touched_per_layer,
        compute_format=precision, parts=parts, roofline_floor_seconds=NOT_YET_COMPARED,
        fraction_of_roofline_floor=NOT_YET_COMPARED)


def _basis(plan: BenchPlan, layers: dict[LayerType, list[LayerWeights]], config: ModelConfig) -> str:
    text = (f"{len(layers['sliding'])} sliding + {len(layers['global'])} global of "
            f"{config.backbone.num_layers} layers timed at full width and scaled; head timed once")
    if plan.vocab_divisor > 1:
        text += f"; vocabulary-sized products on 1/{plan.vocab_divisor} of the rows, scaled"
    return text


def _repeated(layer_type: LayerType, count: int) -> tuple[LayerType, ...]:
    return (layer_type,) * count


def _build_layers(config: ModelConfig, plan: BenchPlan, caps: DeviceCapabilities, precision: str, *,
                  full_depth: bool = False) -> dict[LayerType, list[LayerWeights]]:
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    fp8 = precision == "fp8"
    sampled = _repeated("sliding", plan.sliding_layers) + _repeated("global", plan.global_layers)
    types = config.backbone.layer_types if full_depth else sampled
    built = [build_layer(config, t, dtype=dtype, fp8=fp8, device=caps.device) for t in types]
    if full_depth:
        return {"all": built}  # type: ignore[dict-item]
    return {"sliding": [w for w in built if w.layer_type == "sliding"],
            "global": [w for w in built if w.layer_type == "global"]}


def _sweep_precision(config: ModelConfig, plan: BenchPlan, caps: DeviceCapabilities, tuners: Autotuners,
                     precision: str, reductions: list[str], results: list[PassMeasurement], progress: PassProgress,
                     kernels_ready: KernelsReady) -> set[str]:
    """Time every pass of one precision, appending each to ``results`` as it finishes (an interrupt keeps them);
    returns the CUDA-graph captures that fell back to eager calls."""
    layers = _build_layers(config, plan, caps, precision)
    runner = PassRunner(config, plan, caps, tuners, precision, layers)
    basis = _basis(plan, layers, config)
    for kind in plan.kinds:
        kernels_ready(job_name(precision, kind))
        for context in plan.contexts:
            for concurrency in plan.concurrencies_for(kind, precision):
                progress.start(kind, f"{kind} {precision} c={concurrency} context={context}")
                try:
                    parts, touched, tokens = runner.measure_pass(kind, concurrency, context)
                except Exception as error:  # a failing pass never sinks the run: it is recorded with its reason
                    _free(caps.device)
                    if _out_of_memory(error):
                        reductions.append(f"out of memory: {kind} {precision} at concurrency {concurrency} and "
                                          f"context {context} skipped, larger ones too")
                        break
                    reductions.append(f"failed: {kind} {precision} at concurrency {concurrency} and context "
                                      f"{context}: {_describe(error)}")
                    continue
                results.append(_measurement(
                    config, kind=kind, precision=precision, concurrency=concurrency, context=context,
                    tokens=tokens, parts=tuple(parts), basis=basis,
                    layers_measured=len(layers["sliding"]) + len(layers["global"]), touched=touched))
                _free(caps.device)
    fallbacks = runner.graph_fallbacks
    del runner, layers
    _free(caps.device)
    return fallbacks


def _full_depth(config: ModelConfig, plan: BenchPlan, caps: DeviceCapabilities, tuners: Autotuners,
                measured: list[PassMeasurement], progress: Progress) -> list[PassMeasurement]:
    """Time every pass kind through all layers (first precision and concurrency) and attach it to the estimate."""
    precision, concurrency = plan.measured_precisions[0], plan.concurrencies[0]
    layers = _build_layers(config, plan, caps, precision, full_depth=True)["all"]  # type: ignore[index]
    runner = PassRunner(config, replace(plan, vocab_divisor=1), caps, tuners, precision,
                        {"sliding": [], "global": []})
    updated = list(measured)
    for index, m in enumerate(measured):
        if m.precision != precision or m.concurrency != concurrency:
            continue
        progress(f"decode: full depth {m.pass_kind} {precision} c={concurrency}")
        states = runner.methods.layer_states(layers, m.pass_kind, concurrency, m.tokens_per_request, m.context_tokens)
        x = runner.methods.hidden_rows(concurrency * m.tokens_per_request)
        stack = layer_stack(config, layers, states, x, concurrency)
        head = head_parts(config, runner.head, kind=m.pass_kind, concurrency=concurrency,
                          tokens=m.tokens_per_request, split=False, sampler=caps.sampler,
                          device=caps.device, fused=runner.methods.fused)["head"]
        def full_pass(stack: Callable[[], object] = stack, head: Callable[[], object] = head) -> None:
            stack()
            head()

        timing = runner.time(full_pass)
        updated[index] = replace(m, full_depth_seconds=timing.median_seconds)
        del states, stack, head
        _free(caps.device)
    del runner, layers
    _free(caps.device)
    return updated


def _timed_choices(choices: list[tuple[tuple[Any, ...], tuple[str, dict[str, float]]]]
                   ) -> list[tuple[tuple[Any, ...], str, str]]:
    """Each autotuned key, its pick, and every candidate's time, fastest first."""
    return [(key, best, ", ".join(f"{name} {seconds * 1e3:.3f} ms"
                                  for name, seconds in sorted(timed.items(), key=lambda i: i[1])))
            for key, (best, timed) in choices]


def describe_methods(caps: DeviceCapabilities, tuners: Autotuners, graph_fallbacks: set[str]) -> tuple[str, ...]:
    """How the passes were computed and timed: the methods that worked here, and what autotuning picked."""
    return (
        "experts: tokens sorted by expert (dispatch precomputed from the fixed routing), then per token count the "
        "fastest working method of: " + ", ".join(dict.fromkeys(caps.expert_methods[False] + caps.expert_methods[True])),
        *(f"experts {precision} at {tokens} tokens: {best}" + (f" ({timed})" if timed else "")
          for (precision, tokens), best, timed in _timed_choices(sorted(tuners.experts.choices.items()))),
        "attention: query heads folded per KV group, masks only on causal passes; per layer type and pass shape the "
        "fastest working method of: " + ", ".join(dict.fromkeys(
            m for methods in caps.attention_methods.values() for m in methods)) + " (sdpa: "
        "F.scaled_dot_product_attention; matmul: two batched GEMMs around an fp32 softmax; split-kv: a Triton "
        "flash-decoding kernel split along the keys, for unmasked passes of few queries)",
        *(f"attention {dtype.removeprefix('torch.')} {layer_type} {kind} c={c} x {tokens} at {context}: {best} "
          f"({timed})" for (dtype, layer_type, kind, c, tokens, context), best, timed
          in _timed_choices(sorted(tuners.attention.choices.items(), key=str))),
        "layer elementwise work: " + "; ".join(
            f"{key.removeprefix('torch.')}: " + ((FUSED_FP8_TEXT if key == FP8_LAYERS else FUSED_TEXT) if on
                                                 else "torch ops") for key, on in caps.fused.items()),
        GEMV_TEXT.format(rows=GEMV_MAX_ROWS, working=", ".join(
            key.removeprefix("torch.") for key, on in caps.gemv.items() if on) or "none"),
        *(f"projections {precision} {layer_type} {kind} c={c} x {tokens} at {context}: {best} ({timed})"
          for (precision, layer_type, kind, c, tokens, context), best, timed
          in _timed_choices(sorted(tuners.projections.choices.items(), key=str))),
        caps.sampler_method,
        "routing: router computed, expert ids drawn uniformly; expected coverage E(1-(1-k/E)^T)",
        (f"timing: {gpu_backends.backend_name(torch, caps.device)} graph replays" if caps.kind == "cuda"
         else f"timing: {caps.kind} eager calls"),
        *(f"CUDA graph capture failed, eager calls timed instead: {reason}" for reason in sorted(graph_fallbacks)),
    )


def _fused_key(precision: str) -> str:
    """The key of ``DeviceCapabilities.fused`` for a precision's layers."""
    return FP8_LAYERS if precision == "fp8" else str(torch.float16 if precision == "fp16" else torch.bfloat16)


def run_decode_bench(*, device: str, quick: bool = False, precisions: tuple[str, ...] = DEFAULT_PRECISIONS,
                     concurrencies: tuple[int, ...] = DEFAULT_CONCURRENCIES,
                     context_tokens: tuple[int, ...] = DEFAULT_CONTEXTS, full_depth: bool = False,
                     progress: Progress | None = None, model: str = DEFAULT_MODEL,
                     kernels_ready: KernelsReady = lambda job: None) -> DecodeMeasurements:
    """Measure the four pass kinds at the real model shapes on ``device`` ("cuda", "cuda:N", "mps", "cpu").

    Sampled layers at full width, scaled to the whole depth; the LM head and sampler once. Memory is planned before
    anything is allocated; what was reduced to fit (memory or, on a CPU, time) is listed in ``reductions``.
    ``full_depth`` also times each pass kind through all layers (first precision and concurrency) to check the
    sampled estimate. Precisions this device cannot run are named for the model to derive, not measured.
    ``kernels_ready(job)`` returns once the compile worker of a job (``precompile.py``) has compiled its kernels:
    called before the checks and before each pass kind, so each waits only for its own kernels.
    """
    started = time.perf_counter()
    say: Progress = progress or (lambda _message: None)
    config = load_model_config(model)
    make_current(device)
    for job in jobs_before_checks():
        kernels_ready(job)
    say("decode: checking the benchmark's fast paths against torch on small shapes")
    caps = device_capabilities(device, quick)
    plan = plan_bench(config, device_kind=caps.kind, free_memory_bytes=caps.free_memory_bytes,
                      native_fp8=caps.native_fp8, quick=quick, precisions=precisions, concurrencies=concurrencies,
                      contexts=context_tokens, full_depth=full_depth, fp8_reason=caps.fp8_reason)
    caps = check_layer_paths(config, caps, plan, quick)
    tuners = Autotuners(experts=Autotuner(timer=timer_for(device), use_graph=caps.kind == "cuda"),
                        attention=Autotuner(timer=timer_for(device), use_graph=caps.kind == "cuda"),
                        projections=Autotuner(timer=timer_for(device), use_graph=caps.kind == "cuda"))
    reductions = list(caps.notes) + list(plan.reductions)
    measured: list[PassMeasurement] = []
    fallbacks: set[str] = set()

    def measurements() -> DecodeMeasurements:
        passes = PassTimes(model_id=config.id, device=device, passes=tuple(measured), reductions=tuple(reductions),
                           seconds_taken=time.perf_counter() - started,
                           methods=describe_methods(caps, tuners, fallbacks),
                           fused_layers=tuple(p for p in plan.measured_precisions if caps.fused[_fused_key(p)]))
        return DecodeMeasurements(passes=passes, modelled_precisions=plan.modelled_precisions)

    passes = PassProgress([kind for precision in plan.measured_precisions for kind in plan.kinds
                           for _ in plan.contexts for _ in plan.concurrencies_for(kind, precision)], say)
    try:
        for precision in plan.measured_precisions:
            try:
                fallbacks |= _sweep_precision(config, plan, caps, tuners, precision, reductions, measured, passes,
                                              kernels_ready)
            except Exception as error:  # see _sweep_precision
                _free(caps.device)
                reductions.append(f"out of memory: {precision} weights did not fit; not measured"
                                  if _out_of_memory(error) else f"failed: {precision}: {_describe(error)}")
        if plan.full_depth and measured:
            try:
                measured = _full_depth(config, plan, caps, tuners, measured, say)
            except Exception as error:  # see _sweep_precision
                _free(caps.device)
                reductions.append("out of memory: full-depth check skipped" if _out_of_memory(error)
                                  else f"failed: full-depth check: {_describe(error)}")
    except KeyboardInterrupt as exc:  # keep every pass that finished
        reductions.append(f"interrupted ({interruption_of(exc).value}): the passes not listed were not timed")
        raise Interrupted(measurements(), exc) from exc
    return measurements()
