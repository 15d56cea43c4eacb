"""Check, on small shapes, that the fast paths this torch offers compute the right thing on this device.

Each check returns "" when the path works, else a one-line reason; the benchmark then leaves that expert method
(or attention method, or the fused elementwise kernels) out, or models the precision instead of measuring it (FP8),
and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

import torch

from dgprofile.probes.decode.model import (
    GEMV_MAX_ROWS,
    RMS_EPS,
    AttentionMethod,
    ExpertMethod,
    Experts,
    LayerWeights,
    Linear,
    QuantizedRows,
    Routing,
    attention,
    build_layer,
    decoder_layer,
    geglu,
    layer_state,
    quantize_rows,
    rms_norm,
    run_experts,
    uniform_routing,
)
from dgprofile.records.passes import PassKind
from dgprofile.specs.model_config import LayerType, ModelConfig, load_model_config

# Relative error allowed against a float32 reference computed from the same (dequantised) weights.
BF16_TOLERANCE = 2e-2
FP8_TOLERANCE = 8e-2  # includes the per-token activation quantisation
# The fused FP8 layer against the torch FP8 layer: both quantise the same activations per token, the torch path
# after rounding them to bf16 first, which moves a few values across an fp8 rounding step (0.7% apart on the
# small shapes under Triton's interpreter); a wrong scale or row moves whole rows.
FUSED_FP8_TOLERANCE = 3e-2
# A quantising kernel against torch's quantisation of the same rows computed in fp32: they differ only where the
# last bits of an fp32 result move a value across an fp8 rounding step (under 0.1% on the interpreter). The
# layer check alone would miss a wrong scale: Gemma's norms after each GEMM cancel any per-row gain.
QUANTIZATION_TOLERANCE = 1e-2
ROWS = 37  # unaligned
# The GEMV layer check's AR steps: one row (the GEMV's element-wise path) and several (its tensor-core path).
GEMV_CHECK_CONCURRENCIES = (1, min(8, GEMV_MAX_ROWS))


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value.float() - reference).norm() / reference.norm())


def _worst_error(cases: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """The largest relative error of each case's output against its reference, given as (reference, output)."""
    return max((_relative_error(output, reference.float()) for reference, output in cases), default=0.0)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0][:200]


def check_experts(device: str, dtype: torch.dtype, *, fp8: bool, method: ExpertMethod) -> str:
    """One expert method against per-assignment matmuls in float32, with idle experts and with busy ones."""
    try:
        torch.manual_seed(0)
        # Width 192: the Triton GEMMs get the inner step and column slices they get at the real shapes (hidden
        # 2816, width 704), so the check compiles the variants the benchmark runs rather than extra ones.
        experts = Experts(8, 256, 192, dtype=dtype, fp8=fp8, device=device)
        worst = 0.0
        for tokens in (3, 40):
            routing = uniform_routing(tokens, 8, 2, device, torch.Generator().manual_seed(tokens))
            x = torch.randn(tokens, 256, device=device, dtype=dtype)
            out = run_experts(method, experts, x, routing)
            worst = max(worst, _relative_error(out, _reference(experts, x, routing)))
    except Exception as exc:  # any failure of an optional fast path is a reason to fall back, not to crash
        return _describe(exc)
    limit = FP8_TOLERANCE if fp8 else BF16_TOLERANCE
    return "" if worst <= limit else f"{method} experts off by {worst:.1%} (limit {limit:.0%})"


def _reference(experts: Experts, x: torch.Tensor, routing: Routing) -> torch.Tensor:
    rows = []
    for token, expert_ids in enumerate(routing.expert_ids.tolist()):
        for expert in expert_ids:
            gate_up = experts.gate_up[expert].float()
            down = experts.down[expert].float()
            if experts.gate_up_scale is not None and experts.down_scale is not None:  # FP8 experts
                gate_up = gate_up * experts.gate_up_scale[expert].view(-1, 1)
                down = down * experts.down_scale[expert].view(-1, 1)
            gate, up = (gate_up @ x[token].float()).chunk(2)
            rows.append(down @ (torch.nn.functional.gelu(gate, approximate="tanh") * up))
    return torch.stack(rows)


def check_fp8_linear(device: str) -> str:
    """``torch._scaled_mm`` with per-token and per-channel scales, at M = 1 and M = 37 (unaligned)."""
    try:
        torch.manual_seed(0)
        linear = Linear(512, 256, dtype=torch.bfloat16, fp8=True, device=device)
        assert linear.scale is not None, "an FP8 Linear carries its per-channel scales"
        weight = linear.weight.float() * linear.scale.view(-1, 1)
        worst = 0.0
        for rows in (1, 37):
            x = torch.randn(rows, 256, device=device, dtype=torch.bfloat16)
            worst = max(worst, _relative_error(linear(x), x.float() @ weight.t()))
    except Exception as exc:  # see check_grouped
        return _describe(exc)
    return "" if worst <= FP8_TOLERANCE else f"scaled matmul off by {worst:.1%}"


def check_config(config: ModelConfig) -> ModelConfig:
    """The real widths with 16 experts: the fused kernels see the real row lengths at a fraction of the memory."""
    return replace(config, backbone=replace(config.backbone, num_experts=16))


def check_layers(config: ModelConfig, dtype: torch.dtype, device: str,
                 fp8: bool = False) -> dict[LayerType, LayerWeights]:
    """One layer of each type, built once and shared by the layer-path checks."""
    torch.manual_seed(0)
    return {t: build_layer(config, t, dtype=dtype, fp8=fp8, device=device) for t in ("sliding", "global")}


def check_fused_layer(device: str, dtype: torch.dtype, methods: tuple[ExpertMethod, ...],
                      config: ModelConfig | None = None,
                      layers: dict[LayerType, LayerWeights] | None = None,
                      attention_methods: tuple[AttentionMethod, ...] = ("sdpa",), fp8: bool = False) -> str:
    """The fused decoder layer against the torch one (same weights, state and input) on both layer types, causal
    and not, with each attention method; every expert method it will be combined with is checked in one of those
    cases (the combine only sees the method's row layout; the methods themselves are checked by
    ``check_experts``). ``fp8``: FP8 layers (``layers`` must be), whose fused kernels write their GEMM inputs
    quantised, against the torch FP8 layer."""
    try:
        small = config or check_config(load_model_config())
        if fp8 and (problem := check_fp8_quantization(device, small)):
            return problem
        layers = layers or check_layers(small, dtype, device, fp8=fp8)
        worst = _worst_error(fused_layer_outputs(small, layers, device, dtype, methods, attention_methods))
    except Exception as exc:  # see check_experts
        return _describe(exc)
    limit = FUSED_FP8_TOLERANCE if fp8 else BF16_TOLERANCE
    return "" if worst <= limit else f"fused {'fp8 ' if fp8 else ''}layer off by {worst:.1%} (limit {limit:.0%})"


def fused_layer_outputs(config: ModelConfig, layers: dict[LayerType, LayerWeights], device: str,
                        dtype: torch.dtype, methods: tuple[ExpertMethod, ...],
                        attention_methods: tuple[AttentionMethod, ...]
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``check_fused_layer``'s cases, one at a time: the torch layer's output and the fused layer's (a
    compile-only worker runs them all without comparing, ``precompile.py``); last, the denoise head's closing norm
    (of the scaled embeddings plus the self-conditioning signal, no weight), which the fused head runs in the
    layers' norm kernel with the addition and scale switched on."""
    layer_types: tuple[LayerType, ...] = ("sliding", "global")
    kinds: tuple[PassKind, ...] = ("dg-denoise", "dg-commit")
    cases = [(t, k, a) for t in layer_types for k in kinds
             for a in attention_methods if not (a == "split-kv" and k == "dg-commit")]  # it takes no mask
    for index in range(max(len(cases), len(methods))):
        layer_type, kind, attention_method = cases[index % len(cases)]
        state = layer_state(config, layer_type, kind=kind, concurrency=2, new=24, context=40, dtype=dtype,
                            device=device, generator=torch.Generator().manual_seed(1),
                            expert_method=methods[index % len(methods)], attention_method=attention_method)
        x = torch.randn(48, config.backbone.hidden_size, device=device, dtype=dtype)
        reference = decoder_layer(config, x, layers[layer_type], state, 2)
        yield reference, decoder_layer(config, x, layers[layer_type], replace(state, fused=True), 2)
    from dgprofile.probes.decode import triton_fused

    hidden = config.backbone.hidden_size
    gathered, signal = (torch.randn(48, hidden, device=device, dtype=dtype) for _ in range(2))
    scale = hidden ** 0.5
    yield (rms_norm(gathered * scale + signal, None),
           triton_fused.rms_norm(gathered, None, RMS_EPS, scale=scale, add=signal))


def check_gemv_layer(device: str, dtype: torch.dtype, methods: tuple[ExpertMethod, ...],
                     config: ModelConfig | None = None, layers: dict[LayerType, LayerWeights] | None = None,
                     attention_methods: tuple[AttentionMethod, ...] = ("sdpa",), fp8: bool = False) -> str:
    """The fused layer with the GEMV projections against the torch layer (``gemv_layer_outputs``). ``fp8``: FP8
    layers (``layers`` must be) against the torch FP8 layer, which also quantises the activations the GEMV reads
    in bf16: the tolerance of an fp8 path against an unquantised reference."""
    try:
        small = config or check_config(load_model_config())
        layers = layers or check_layers(small, dtype, device, fp8=fp8)
        worst = _worst_error(gemv_layer_outputs(small, layers, device, dtype, methods[0], attention_methods))
    except Exception as exc:  # see check_experts
        return _describe(exc)
    limit = FP8_TOLERANCE if fp8 else BF16_TOLERANCE
    return "" if worst <= limit else f"GEMV {'fp8 ' if fp8 else ''}layer off by {worst:.1%} (limit {limit:.0%})"


def gemv_layer_outputs(config: ModelConfig, layers: dict[LayerType, LayerWeights], device: str,
                       dtype: torch.dtype, expert_method: ExpertMethod,
                       attention_methods: tuple[AttentionMethod, ...]
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``check_gemv_layer``'s cases, one at a time: AR steps of each layer type at each of
    ``GEMV_CHECK_CONCURRENCIES``, the attention methods taken in turn; the torch layer's output and the fused
    layer's with the GEMV projections (a compile-only worker runs them all without comparing)."""
    layer_types: tuple[LayerType, ...] = ("sliding", "global")
    cases = [(t, c) for t in layer_types for c in GEMV_CHECK_CONCURRENCIES]
    for index, (layer_type, concurrency) in enumerate(cases):
        state = layer_state(config, layer_type, kind="ar-step", concurrency=concurrency, new=1, context=40,
                            dtype=dtype, device=device, generator=torch.Generator().manual_seed(1),
                            expert_method=expert_method,
                            attention_method=attention_methods[index % len(attention_methods)])
        x = torch.randn(concurrency, config.backbone.hidden_size, device=device, dtype=dtype)
        reference = decoder_layer(config, x, layers[layer_type], state, concurrency)
        yield reference, decoder_layer(config, x, layers[layer_type],
                                       replace(state, fused=True, projection_method="gemv"), concurrency)


def quantization_outputs(device: str, config: ModelConfig) -> Iterator[tuple[str, QuantizedRows, QuantizedRows]]:
    """Each quantising Triton kernel at the widths of the model's fp8 GEMM inputs, with torch's quantisation of
    the same rows computed in fp32: (what, the kernel's, torch's)."""
    from dgprofile.probes.decode import triton_fused

    torch.manual_seed(0)
    b = config.backbone
    hidden = b.hidden_size

    def rows(width: int) -> torch.Tensor:
        return torch.randn(ROWS, width, device=device, dtype=torch.bfloat16)

    def norm_weight() -> torch.Tensor:
        return (torch.rand(hidden, device=device) + 0.5).to(torch.bfloat16)

    # Attention outputs (one width per layer type) and the expert GEMM's GeGLU epilogue rows.
    for width in sorted({b.num_attention_heads * b.attention(t).head_dim for t in ("sliding", "global")}
                        | {b.moe_intermediate_size}):
        x = rows(width)
        yield f"quantize_rows at width {width}", triton_fused.quantize_rows(x), quantize_rows(x)
    x, a, weights = rows(hidden), rows(hidden), (norm_weight(), norm_weight(), norm_weight())
    yield ("input norm", triton_fused.rms_norm_quantized(x, weights[0], RMS_EPS),
           quantize_rows(rms_norm(x.float(), weights[0].float())))
    r, normed = triton_fused.residual_norms(x, a, weights[0], weights, RMS_EPS, quantized=(True, False, True))
    for index in (0, 2):
        got = normed[index]
        assert isinstance(got, QuantizedRows), "a quantised output of the residual norms"
        yield (f"residual norm {index}", got, quantize_rows(rms_norm(r.float(), weights[index].float())))
    for width in (b.intermediate_size, b.moe_intermediate_size):  # the dense MLP's GeGLU and the experts'
        h = rows(2 * width)
        yield f"GeGLU at width {width}", triton_fused.geglu_quantized(h), quantize_rows(geglu(h.float()))


def check_fp8_quantization(device: str, config: ModelConfig) -> str:
    """The quantising Triton kernels against torch's quantisation (``quantization_outputs``)."""
    for what, got, expected in quantization_outputs(device, config):
        if got.values.dtype != torch.float8_e4m3fn:
            return f"{what}: values in {got.values.dtype}, not e4m3"
        error = _relative_error(got.values.float() * got.scales, expected.values.float() * expected.scales)
        if not error <= QUANTIZATION_TOLERANCE:
            return f"{what} off by {error:.1%} (limit {QUANTIZATION_TOLERANCE:.0%})"
    return ""


def check_attention(device: str, dtype: torch.dtype, method: AttentionMethod,
                    config: ModelConfig | None = None,
                    layers: dict[LayerType, LayerWeights] | None = None) -> str:
    """One attention method against SDPA's math on float64 inputs, on the pass shapes it is offered for: causal
    (prefill-like) and over a cache; the split-KV method over a cache only, with one and with several queries."""
    cases: tuple[tuple[PassKind, int, int], ...] = (
        (("ar-step", 40, 1), ("dg-denoise", 40, 24)) if method == "split-kv"
        else (("dg-denoise", 40, 24), ("dg-commit", 40, 24), ("prefill", 0, 24)))
    try:
        small = config or check_config(load_model_config())
        layers = layers or check_layers(small, dtype, device)
        worst = 0.0
        for layer_type, layer in layers.items():
            for kind, context, new in cases:
                state = layer_state(small, layer_type, kind=kind, concurrency=2, new=new, context=context,
                                    dtype=dtype, device=device, generator=torch.Generator().manual_seed(1),
                                    attention_method=method)
                h = torch.randn(2 * new, small.backbone.hidden_size, device=device, dtype=dtype)
                got = attention(small, h, layer, state, 2)
                upcast = _upcast_layer(layer)
                reference = attention(small, h.double(), upcast,
                                      replace(state, k_cache=state.k_cache.double(), v_cache=state.v_cache.double(),
                                              attention_method="sdpa"), 2)
                worst = max(worst, _relative_error(got, reference.float()))
    except Exception as exc:  # see check_experts
        return _describe(exc)
    return "" if worst <= BF16_TOLERANCE else f"{method} attention off by {worst:.1%} (limit {BF16_TOLERANCE:.0%})"


def _upcast_layer(layer: LayerWeights) -> LayerWeights:
    """The attention weights of ``layer`` in float64 (only what ``attention`` reads)."""
    qkv = Linear.__new__(Linear)
    qkv.fp8, qkv.weight, qkv.scale = False, layer.qkv.weight.double(), None
    o = Linear.__new__(Linear)
    o.fp8, o.weight, o.scale = False, layer.o.weight.double(), None
    return replace(layer, qkv=qkv, o=o, q_norm=layer.q_norm.double(), k_norm=layer.k_norm.double())
