"""Plan a decode benchmark to fit the machine before anything is allocated (pure arithmetic, no torch).

The plan says which precisions, concurrencies, contexts and pass kinds are measured, how many layers of each type
are sampled (at full width, scaled to the whole depth), and whether the LM head, self-conditioning product and
sampler run on a slice of the vocabulary (scaled up). Every departure from the full request is a sentence in
``reductions``; the memory estimate comes from ``dgprofile.specs.pass_cost``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from dgprofile.records.passes import PassKind
from dgprofile.specs.model_config import LayerType, ModelConfig
from dgprofile.specs.pass_cost import (
    ACTIVATION_BYTES,
    BF16_BYTES,
    FP32_BYTES,
    PASS_KINDS,
    PRECISIONS,
    head_cost,
    kv_bytes_per_token,
    layer_cost,
    layer_weight_bytes,
    pass_shape,
    visible_cached_tokens,
)
from dgprofile.text.units import bytes_text

DeviceKind = Literal["cuda", "xpu", "mps", "cpu"]

DEFAULT_PRECISIONS = ("bf16", "fp16", "fp8", "int8", "int4", "nvfp4")
DEFAULT_CONCURRENCIES = (1, 2, 4, 8)
DEFAULT_CONTEXTS = (4096,)
# Fraction of the free device memory (or available RAM) the benchmark lets itself plan for.
MEMORY_HEADROOM = {"cuda": 0.85, "xpu": 0.85, "mps": 0.6, "cpu": 0.6}
# Transient activations are counted twice: a GEMM's input and output are alive together with the residual.
ACTIVATION_PEAK_FACTOR = 2
# The torch sampler (the path without a fused kernel) keeps up to this many fp32 [tokens x vocab] tensors.
TORCH_SAMPLER_FP32_COPIES = 4
DEFAULT_SAMPLE = (2, 1)  # sliding, global layers measured at full width
MIN_SAMPLE = (1, 1)
MAX_VOCAB_DIVISOR = 64
MIN_CONTEXT = 256
# The CPU path (a 256-token canvas layer costs ~1.4 s on two cores in bf16): one concurrency, a 256-token
# context (so the prompt pass is canvas-sized too), the vocabulary-sized products on 1/32 of the rows.
CPU_CONTEXT_CAP = 256
CPU_VOCAB_DIVISOR = 32


@dataclass(frozen=True)
class BenchPlan:
    """What one decode benchmark run measures and how it fits the machine."""

    device_kind: DeviceKind
    measured_precisions: tuple[str, ...]
    modelled_precisions: tuple[str, ...]
    concurrencies: tuple[int, ...]
    contexts: tuple[int, ...]
    kinds: tuple[PassKind, ...]
    sliding_layers: int
    global_layers: int
    full_depth: bool  # also time every pass kind through all layers (first precision and concurrency)
    vocab_divisor: int
    single_concurrency_precisions: tuple[str, ...]
    memory_budget_bytes: float
    memory_needed_bytes: float
    reductions: tuple[str, ...]

    def concurrencies_for(self, kind: PassKind, precision: str) -> tuple[int, ...]:
        """Concurrencies measured for a pass kind and precision (prefill and some precisions: the first only)."""
        if kind == "prefill" or precision in self.single_concurrency_precisions:
            return self.concurrencies[:1]
        return self.concurrencies


def _tokens_per_request(config: ModelConfig, kind: PassKind, context: int) -> int:
    if kind == "prefill":
        return context
    return 1 if kind == "ar-step" else config.diffusion.canvas_length


def _pass_context(kind: PassKind, context: int) -> int:
    """Prefill builds the context (from empty); the other passes run against it."""
    return 0 if kind == "prefill" else context


def transient_bytes(config: ModelConfig, plan: BenchPlan, kind: PassKind, concurrency: int, context: int) -> float:
    """Memory one pass configuration allocates beyond the weights: KV buffers of the sampled layers (all layers
    at full depth), activations, the head's logits, probabilities and sampler buffers, and causal masks."""
    backbone = config.backbone
    tokens = _tokens_per_request(config, kind, context)
    cached = _pass_context(kind, context)
    shape = pass_shape(config, kind=kind, concurrency=concurrency, context_tokens=cached,
                       tokens_per_request=tokens)
    counts: dict[LayerType, int] = {"sliding": plan.sliding_layers, "global": plan.global_layers}
    if plan.full_depth:
        counts = {t: backbone.count_layers(t) for t in counts}
    kv = sum(n * concurrency * (visible_cached_tokens(backbone, t, cached) + tokens)
             * kv_bytes_per_token(backbone, t, PRECISIONS["bf16"]) for t, n in counts.items())
    activations = max(sum(c.activation_bytes for c in layer_cost(config, t, shape, PRECISIONS["bf16"]).values())
                      for t in ("sliding", "global")) * ACTIVATION_PEAK_FACTOR
    head = head_cost(config, shape, PRECISIONS["bf16"])
    rows = head["lm-head"].matmul_flops / (2.0 * backbone.vocab_size * backbone.hidden_size)
    vocab = backbone.vocab_size / plan.vocab_divisor
    logits = rows * vocab * (2 * BF16_BYTES + TORCH_SAMPLER_FP32_COPIES * FP32_BYTES)
    mask = 0.0
    if kind in ("prefill", "dg-commit"):
        group = max(backbone.num_attention_heads // backbone.attention(t).num_kv_heads for t in counts)
        mask = group * tokens * (cached + tokens) * (1 + BF16_BYTES)
    hidden = shape.tokens * backbone.hidden_size * ACTIVATION_BYTES
    return kv + activations + logits + mask + hidden


def weight_memory_bytes(config: ModelConfig, plan: BenchPlan, precision: str) -> float:
    """Weights the benchmark allocates for one precision: the sampled layers (or all), the embedding slice and
    the self-conditioning MLP."""
    backbone = config.backbone
    if plan.full_depth:
        layers = sum(layer_weight_bytes(config, t, precision) for t in backbone.layer_types)
    else:
        layers = (plan.sliding_layers * layer_weight_bytes(config, "sliding", precision)
                  + plan.global_layers * layer_weight_bytes(config, "global", precision))
    embedding = backbone.vocab_size / plan.vocab_divisor * backbone.hidden_size * BF16_BYTES
    self_conditioning = 3 * backbone.hidden_size * config.diffusion.self_conditioning_size * BF16_BYTES
    return layers + embedding + self_conditioning


def memory_needed_bytes(config: ModelConfig, plan: BenchPlan) -> float:
    """Peak memory of the plan: the sampled sweep (largest precision's weights plus the largest pass
    configuration) or, when asked, the full-depth check (every layer, first precision and concurrency), run after
    the sweep has freed its memory."""
    if not plan.measured_precisions:
        return 0.0
    sampled = replace(plan, full_depth=False)
    needed = max(weight_memory_bytes(config, sampled, p) for p in plan.measured_precisions) + max(
        transient_bytes(config, sampled, kind, c, ctx)
        for kind in plan.kinds for c in plan.concurrencies for ctx in plan.contexts)
    if plan.full_depth:
        full = replace(plan, concurrencies=plan.concurrencies[:1])
        needed = max(needed, weight_memory_bytes(config, full, plan.measured_precisions[0]) + max(
            transient_bytes(config, full, kind, full.concurrencies[0], ctx)
            for kind in plan.kinds for ctx in plan.contexts))
    return needed


def plan_bench(config: ModelConfig, *, device_kind: DeviceKind, free_memory_bytes: float, native_fp8: bool,
               quick: bool = False, precisions: tuple[str, ...] = DEFAULT_PRECISIONS,
               concurrencies: tuple[int, ...] = DEFAULT_CONCURRENCIES,
               contexts: tuple[int, ...] = DEFAULT_CONTEXTS, full_depth: bool = False,
               fp8_reason: str = "this device has no native fp8 matmul (needs sm_89+)") -> BenchPlan:
    """The largest benchmark of the request that fits ``free_memory_bytes`` (and, on a CPU, the time budget);
    ``fp8_reason`` says why fp8 is modelled when ``native_fp8`` is false."""
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        raise ValueError(f"unknown precision {unknown[0]!r}: known are {', '.join(PRECISIONS)}")
    reductions: list[str] = []
    measurable = [p for p in precisions if PRECISIONS[p].measurable and (p != "fp8" or native_fp8)]
    if "fp8" in precisions and not native_fp8:
        reductions.append(f"fp8 modelled, not measured: {fp8_reason}")
    modelled = [p for p in precisions if p not in measurable]
    single = ("fp16",)  # same tensor-core rate and bytes as bf16 on every GPU: one concurrency confirms it
    concurrencies = tuple(sorted(set(concurrencies)))
    contexts = tuple(sorted(set(contexts)))
    sample = DEFAULT_SAMPLE
    vocab_divisor = 1
    if quick:
        measurable = [p for p in measurable if p != "fp16"]
        if "fp8" in measurable:  # its kernels are compilations of their own, seconds on a fresh machine
            measurable.remove("fp8")
            modelled.insert(0, "fp8")
            reductions.append("quick: fp8 modelled from the bf16 passes, not measured")
        sample = MIN_SAMPLE
        if len(concurrencies) > 1:
            concurrencies = concurrencies[:1]
            reductions.append(f"quick: concurrency {concurrencies[0]} only")
        if "fp16" in precisions:
            reductions.append("quick: fp16 not measured")
    if device_kind == "cuda" and not quick and "fp16" in measurable:
        # fp16 passes took 5 s of a 46 s check on an H200 (15 s on an empty Triton cache: every fused kernel
        # compiles again for the dtype) to confirm what the bf16 passes and the measured fp16 matmul rate give.
        measurable.remove("fp16")
        reductions.append("fp16 not measured on CUDA: the same bytes and tensor-core work as bf16 (the limits "
                          "measure both matmul rates)")
    if device_kind == "cpu":
        sample, vocab_divisor = MIN_SAMPLE, CPU_VOCAB_DIVISOR
        if "fp16" in measurable:
            measurable.remove("fp16")
            reductions.append("cpu: fp16 not measured (time budget; same bytes as bf16)")
        if len(concurrencies) > 1:
            concurrencies = concurrencies[:1]
            reductions.append(f"cpu: concurrency {concurrencies[0]} only (time budget)")
        if max(contexts) > CPU_CONTEXT_CAP:
            contexts = tuple(sorted({min(c, CPU_CONTEXT_CAP) for c in contexts}))
            reductions.append(f"cpu: contexts capped at {CPU_CONTEXT_CAP} tokens (time budget)")
        reductions.append(f"cpu: LM head, self-conditioning product and sampler measured on 1/{vocab_divisor} of "
                          "the vocabulary and scaled")
    plan = BenchPlan(device_kind=device_kind, measured_precisions=tuple(measurable),
                     modelled_precisions=tuple(modelled), concurrencies=concurrencies, contexts=contexts,
                     kinds=PASS_KINDS, sliding_layers=sample[0], global_layers=sample[1], full_depth=full_depth,
                     vocab_divisor=vocab_divisor, single_concurrency_precisions=single,
                     memory_budget_bytes=free_memory_bytes * MEMORY_HEADROOM[device_kind], memory_needed_bytes=0.0,
                     reductions=())
    plan = _shrink_to_fit(config, plan, reductions)
    return replace(plan, memory_needed_bytes=memory_needed_bytes(config, plan), reductions=tuple(reductions))


def _shrink_to_fit(config: ModelConfig, plan: BenchPlan, reductions: list[str]) -> BenchPlan:
    """Shrink in order of least information lost: full-depth check, layer sample, concurrency, vocabulary slice,
    context; then drop the precisions whose weights alone do not fit."""
    budget = plan.memory_budget_bytes

    def fits(candidate: BenchPlan) -> bool:
        return memory_needed_bytes(config, candidate) <= budget

    def note(what: str, candidate: BenchPlan) -> None:
        reductions.append(f"memory: {what} (needed {bytes_text(memory_needed_bytes(config, candidate))}, "
                          f"{bytes_text(budget)} usable)")

    if plan.full_depth and not fits(plan):
        note("full-depth measurement skipped", plan)
        plan = replace(plan, full_depth=False)
    if not fits(plan) and (plan.sliding_layers, plan.global_layers) != MIN_SAMPLE:
        note(f"layer sample shrunk to {MIN_SAMPLE[0]} sliding + {MIN_SAMPLE[1]} global", plan)
        plan = replace(plan, sliding_layers=MIN_SAMPLE[0], global_layers=MIN_SAMPLE[1])
    while not fits(plan) and len(plan.concurrencies) > 1:
        note(f"concurrency {plan.concurrencies[-1]} dropped", plan)
        plan = replace(plan, concurrencies=plan.concurrencies[:-1])
    while not fits(plan) and plan.vocab_divisor < MAX_VOCAB_DIVISOR:
        note(f"vocabulary-sized products measured on 1/{plan.vocab_divisor * 2} of the rows", plan)
        plan = replace(plan, vocab_divisor=plan.vocab_divisor * 2)
    while not fits(plan) and max(plan.contexts) > MIN_CONTEXT:
        note(f"context {max(plan.contexts)} halved", plan)
        plan = replace(plan, contexts=tuple(sorted({min(c, max(plan.contexts) // 2) for c in plan.contexts})))
    while not fits(plan) and plan.measured_precisions:
        dropped = max(plan.measured_precisions, key=lambda p: PRECISIONS[p].weight_bytes)
        note(f"{dropped} not measured: its sampled layers do not fit", plan)
        plan = replace(plan, measured_precisions=tuple(p for p in plan.measured_precisions if p != dropped))
    return plan
