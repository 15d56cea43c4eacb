"""Check, on small shapes, that the fast paths this torch offers compute the right thing on this device.

Each check returns "" when the path works, else a one-line reason; the benchmark then leaves that expert method
(or attention method, or the fused elementwise kernels) out, or models the precision instead of measuring it (FP8),
and says why.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from dgprofile.probes.decode.model import (
    UNMASKED_ATTENTION_METHODS,
    AttentionMethod,
    ExpertMethod,
    Experts,
    LayerWeights,
    Linear,
    Routing,
    attention,
    build_layer,
    decoder_layer,
    layer_state,
    run_experts,
    uniform_routing,
)
from dgprofile.records.passes import PassKind
from dgprofile.specs.model_config import LayerType, ModelConfig, load_model_config

# Relative error allowed against a float32 reference computed from the same (dequantised) weights.
BF16_TOLERANCE = 2e-2
FP8_TOLERANCE = 8e-2  # includes the per-token activation quantisation


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value.float() - reference).norm() / reference.norm())


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


def check_layers(config: ModelConfig, dtype: torch.dtype, device: str) -> dict[LayerType, LayerWeights]:
    """One layer of each type, built once and shared by the layer-path checks."""
    torch.manual_seed(0)
    return {t: build_layer(config, t, dtype=dtype, fp8=False, device=device) for t in ("sliding", "global")}


def check_fused_layer(device: str, dtype: torch.dtype, methods: tuple[ExpertMethod, ...],
                      config: ModelConfig | None = None,
                      layers: dict[LayerType, LayerWeights] | None = None,
                      attention_methods: tuple[AttentionMethod, ...] = ("sdpa",)) -> str:
    """The fused decoder layer against the torch one (same weights, state and input) on both layer types, causal
    and not, with each attention method; every expert method it will be combined with is checked in one of those
    cases (the combine only sees the method's row layout; the methods themselves are checked by
    ``check_experts``)."""
    try:
        small = config or check_config(load_model_config())
        layers = layers or check_layers(small, dtype, device)
        layer_types: tuple[LayerType, ...] = ("sliding", "global")
        kinds: tuple[PassKind, ...] = ("dg-denoise", "dg-commit")
        cases = [(t, k, a) for t in layer_types for k in kinds
                 for a in attention_methods if not (a in UNMASKED_ATTENTION_METHODS and k == "dg-commit")]
        worst = 0.0
        for index in range(max(len(cases), len(methods))):
            layer_type, kind, attention_method = cases[index % len(cases)]
            state = layer_state(small, layer_type, kind=kind, concurrency=2, new=24, context=40, dtype=dtype,
                                device=device, generator=torch.Generator().manual_seed(1),
                                expert_method=methods[index % len(methods)], attention_method=attention_method)
            x = torch.randn(48, small.backbone.hidden_size, device=device, dtype=dtype)
            reference = decoder_layer(small, x, layers[layer_type], state, 2).float()
            fused = decoder_layer(small, x, layers[layer_type], replace(state, fused=True), 2)
            worst = max(worst, _relative_error(fused, reference))
    except Exception as exc:  # see check_experts
        return _describe(exc)
    return "" if worst <= BF16_TOLERANCE else f"fused layer off by {worst:.1%} (limit {BF16_TOLERANCE:.0%})"


def check_attention(device: str, dtype: torch.dtype, method: AttentionMethod,
                    config: ModelConfig | None = None,
                    layers: dict[LayerType, LayerWeights] | None = None) -> str:
    """One attention method against SDPA's math on float64 inputs, on the pass shapes it is offered for: causal
    (prefill-like) and over a cache; the split-KV method over a cache only, with one and with several queries; the
    flash method over a cache only, with key counts that are and are not a multiple of its key step."""
    cases: tuple[tuple[PassKind, int, int], ...]
    if method == "split-kv":
        cases = (("ar-step", 40, 1), ("dg-denoise", 40, 24))
    elif method == "flash":
        cases = (("dg-denoise", 40, 24), ("dg-denoise", 45, 24))
    else:
        cases = (("dg-denoise", 40, 24), ("dg-commit", 40, 24), ("prefill", 0, 24))
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
