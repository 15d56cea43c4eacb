"""DiffusionGemma's decoder layers and head in torch, at full width, the way an efficient engine runs them.

* Linear layers in bf16/fp16 (``F.linear``) or FP8 (``torch._scaled_mm``, per-token activation and per-channel
  weight scales). q/k/v are one fused projection; the GeGLU gate and up projections are fused too.
* Experts: tokens sorted by expert, then one grouped GEMM per projection (``torch._grouped_mm`` or
  ``torch._scaled_grouped_mm``); where torch has none, a padded batched matmul over the touched experts.
  Never a Python loop over experts.
* Attention: ``F.scaled_dot_product_attention`` with the query heads of each KV group folded into the query
  length (GQA without copying K/V), softmax scale 1 (Gemma 4's q/k norms), and a boolean mask only where the
  pass is causal. RoPE is left out: a fused elementwise op in engines, it moves no weights.
* Routing: the router runs (linear, softmax, top-k) for its cost, but expert ids come from a uniform random
  assignment fixed per pass: random weights would route unevenly, a trained router balances load, and the uniform
  draw reproduces the expected coverage E(1-(1-k/E)^T).

torch is imported lazily by the callers (this module is imported only inside probes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from dgprofile.model_config import LayerType, ModelConfig
from dgprofile.passes import PassKind

RMS_EPS = 1e-6
WEIGHT_STD = 0.02
FP8_MAX = 448.0  # largest finite float8_e4m3fn
# On a CPU, normal draws for billions of weights take longer than the benchmark: a random block is tiled instead
# (values do not change a matmul's time; zeros would, and are never used).
CPU_RANDOM_BLOCK = 1 << 22
AR_TOP_K = 50


def random_tensor(shape: tuple[int, ...], dtype: Any, device: str, std: float = WEIGHT_STD) -> torch.Tensor:
    """Normal(0, std) values in ``dtype`` (fp8 via bf16), drawn on the device; on a CPU a tiled random block."""
    make = torch.bfloat16 if dtype == torch.float8_e4m3fn else dtype
    numel = math.prod(shape)
    if device == "cpu" and numel > CPU_RANDOM_BLOCK:
        block = torch.randn(CPU_RANDOM_BLOCK, dtype=make) * std
        flat = torch.empty(numel, dtype=make)
        for start in range(0, numel, CPU_RANDOM_BLOCK):
            end = min(numel, start + CPU_RANDOM_BLOCK)
            flat[start:end] = block[: end - start]
        out = flat.view(shape)
    else:
        out = torch.randn(shape, dtype=make, device=device) * std
    return out.to(dtype) if dtype == torch.float8_e4m3fn else out


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic per-row FP8 quantisation: (x / scale) in e4m3 and the fp32 scale per row."""
    scale = x.abs().amax(dim=-1, keepdim=True).float().clamp_(min=1e-12) / FP8_MAX
    return (x.float() / scale).to(torch.float8_e4m3fn), scale


class Linear:
    """``y = x @ W^T`` for a weight ``[out, in]`` in the compute dtype, or in FP8 with per-channel scales."""

    def __init__(self, out_features: int, in_features: int, *, dtype: Any, fp8: bool, device: str) -> None:
        self.fp8 = fp8
        self.weight = random_tensor((out_features, in_features), torch.float8_e4m3fn if fp8 else dtype, device)
        self.scale = torch.full((1, out_features), WEIGHT_STD * 4 / FP8_MAX, device=device) if fp8 else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fp8:
            return F.linear(x, self.weight)
        xq, xs = quantize_rows(x)
        return torch._scaled_mm(xq, self.weight.t(), scale_a=xs, scale_b=self.scale, out_dtype=torch.bfloat16)


def geglu(h: torch.Tensor) -> torch.Tensor:
    """GeGLU on a fused [gate | up] activation."""
    gate, up = h.chunk(2, dim=-1)
    return F.gelu(gate, approximate="tanh") * up


def grouped_mm_available(device: str, fp8: bool) -> bool:
    """Whether torch has the grouped GEMM this device and format need."""
    if fp8:
        return hasattr(torch, "_scaled_grouped_mm") and device.startswith("cuda")
    return hasattr(torch, "_grouped_mm")


class Experts:
    """All routed experts of one layer: fused gate_up ``[E, 2I, H]`` and down ``[E, H, I]`` (``[out, in]``)."""

    def __init__(self, num_experts: int, hidden: int, width: int, *, dtype: Any, fp8: bool, device: str,
                 grouped: bool) -> None:
        self.fp8, self.use_grouped_mm = fp8, grouped
        wdtype = torch.float8_e4m3fn if fp8 else dtype
        self.gate_up = random_tensor((num_experts, 2 * width, hidden), wdtype, device)
        self.down = random_tensor((num_experts, hidden, width), wdtype, device)
        scale = WEIGHT_STD * 4 / FP8_MAX
        self.gate_up_scale = torch.full((num_experts, 2 * width), scale, device=device) if fp8 else None
        self.down_scale = torch.full((num_experts, hidden), scale, device=device) if fp8 else None

    def _project(self, x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None,
                 offsets: torch.Tensor) -> torch.Tensor:
        if not self.fp8:
            return torch._grouped_mm(x, weight.transpose(-2, -1), offs=offsets)
        xq, xs = quantize_rows(x)
        return torch._scaled_grouped_mm(xq, weight.transpose(-2, -1), xs.squeeze(-1), scale, offs=offsets,
                                        out_dtype=torch.bfloat16)

    def grouped(self, x_sorted: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Rows of ``x_sorted`` grouped by expert (``offsets``: cumulative row ends) through their experts."""
        h = geglu(self._project(x_sorted, self.gate_up, self.gate_up_scale, offsets))
        return self._project(h, self.down, self.down_scale, offsets)

    def padded(self, x_padded: torch.Tensor, touched: torch.Tensor) -> torch.Tensor:
        """``[touched, capacity, H]`` rows through the touched experts with one batched matmul per projection."""
        gate_up = self.gate_up.index_select(0, touched)
        down = self.down.index_select(0, touched)
        return torch.bmm(geglu(torch.bmm(x_padded, gate_up.transpose(1, 2))), down.transpose(1, 2))


@dataclass
class LayerWeights:
    """One decoder layer at full width."""

    layer_type: LayerType
    input_norm: torch.Tensor
    post_attention_norm: torch.Tensor
    pre_ff_norm: torch.Tensor
    post_ff_norm_1: torch.Tensor
    pre_ff_norm_2: torch.Tensor
    post_ff_norm_2: torch.Tensor
    post_ff_norm: torch.Tensor
    q_norm: torch.Tensor
    k_norm: torch.Tensor
    qkv: Linear
    o: Linear
    dense_gate_up: Linear
    dense_down: Linear
    router_norm: torch.Tensor
    router: torch.Tensor
    per_expert_scale: torch.Tensor
    experts: Experts
    layer_scalar: torch.Tensor


def build_layer(config: ModelConfig, layer_type: LayerType, *, dtype: Any, fp8: bool, device: str,
                grouped: bool) -> LayerWeights:
    """Random weights of one layer (norm scales near 1, never zeros)."""
    b = config.backbone
    attn = b.attention(layer_type)
    hidden, q_width, kv_width = b.hidden_size, b.num_attention_heads * attn.head_dim, attn.num_kv_heads * attn.head_dim
    qkv_out = q_width + kv_width * (1 if attn.k_eq_v else 2)

    def norm(size: int) -> torch.Tensor:
        return 1.0 + random_tensor((size,), dtype, device, std=0.1)

    return LayerWeights(
        layer_type=layer_type,
        input_norm=norm(hidden), post_attention_norm=norm(hidden), pre_ff_norm=norm(hidden),
        post_ff_norm_1=norm(hidden), pre_ff_norm_2=norm(hidden), post_ff_norm_2=norm(hidden),
        post_ff_norm=norm(hidden), q_norm=norm(attn.head_dim), k_norm=norm(attn.head_dim),
        qkv=Linear(qkv_out, hidden, dtype=dtype, fp8=fp8, device=device),
        o=Linear(hidden, q_width, dtype=dtype, fp8=fp8, device=device),
        dense_gate_up=Linear(2 * b.intermediate_size, hidden, dtype=dtype, fp8=fp8, device=device),
        dense_down=Linear(hidden, b.intermediate_size, dtype=dtype, fp8=fp8, device=device),
        router_norm=norm(hidden) * hidden ** -0.5,
        router=random_tensor((b.num_experts, hidden), dtype, device),
        per_expert_scale=norm(b.num_experts),
        experts=Experts(b.num_experts, hidden, b.moe_intermediate_size, dtype=dtype, fp8=fp8, device=device,
                        grouped=grouped),
        layer_scalar=norm(1),
    )


@dataclass
class Routing:
    """A fixed uniform expert assignment for one layer and pass, and what the padded fallback needs of it."""

    expert_ids: torch.Tensor  # [tokens, top_k]
    distinct_experts: int
    touched: torch.Tensor  # ids of the experts with at least one token
    slot_of_assignment: torch.Tensor  # flat position in [touched x capacity] of each (token, k), padded path
    capacity: int


def uniform_routing(tokens: int, num_experts: int, top_k: int, device: str, generator: torch.Generator) -> Routing:
    """Each token picks ``top_k`` distinct experts uniformly at random."""
    ids = torch.rand(tokens, num_experts, generator=generator).argsort(dim=1)[:, :top_k].contiguous()
    flat = ids.view(-1)
    counts = torch.bincount(flat, minlength=num_experts)
    touched = torch.nonzero(counts).view(-1)
    compact = torch.full((num_experts,), -1, dtype=torch.long)
    compact[touched] = torch.arange(touched.numel())
    capacity = int(counts.max())
    order = flat.argsort(stable=True)
    rank = torch.empty_like(flat)
    starts = torch.cumsum(counts, 0) - counts
    rank[order] = torch.arange(flat.numel()) - starts[flat[order]]
    slots = compact[flat] * capacity + rank
    return Routing(expert_ids=ids.to(device), distinct_experts=int(touched.numel()), touched=touched.to(device),
                   slot_of_assignment=slots.to(device), capacity=capacity)


@dataclass
class LayerState:
    """Everything one layer needs for one pass: its KV buffers, mask and routing."""

    k_cache: torch.Tensor  # [c, kv_heads, cached + new, head_dim]
    v_cache: torch.Tensor
    cached: int  # positions already in the buffer (the window on sliding layers)
    mask: torch.Tensor | None  # [group x new, cached + new] bool, True = attend; None = everything visible
    routing: Routing


def causal_mask(config: ModelConfig, layer_type: LayerType, *, cached: int, context: int, new: int,
                group: int, device: str) -> torch.Tensor:
    """Causal (and, on sliding layers, windowed) visibility of ``new`` queries over [cached ; new] keys, repeated
    for the ``group`` query heads folded into the query length."""
    query_pos = torch.arange(context, context + new).view(-1, 1)
    key_pos = torch.cat([torch.arange(context - cached, context), torch.arange(context, context + new)]).view(1, -1)
    allowed = key_pos <= query_pos
    if layer_type == "sliding":
        allowed &= key_pos > query_pos - config.backbone.sliding_window
    return allowed.repeat(group, 1).to(device)


def layer_state(config: ModelConfig, layer_type: LayerType, *, kind: PassKind, concurrency: int, new: int,
                context: int, dtype: Any, device: str, generator: torch.Generator) -> LayerState:
    """KV buffers filled with random history, the mask the pass kind needs, and a uniform routing."""
    b = config.backbone
    attn = b.attention(layer_type)
    cached = min(context, b.sliding_window) if layer_type == "sliding" else context
    shape = (concurrency, attn.num_kv_heads, cached + new, attn.head_dim)
    causal = kind in ("prefill", "dg-commit") and new > 1
    group = b.num_attention_heads // attn.num_kv_heads
    mask = causal_mask(config, layer_type, cached=cached, context=context, new=new, group=group,
                       device=device) if causal else None
    return LayerState(k_cache=random_tensor(shape, dtype, device, std=1.0),
                      v_cache=random_tensor(shape, dtype, device, std=1.0), cached=cached, mask=mask,
                      routing=uniform_routing(concurrency * new, b.num_experts, b.top_k_experts, device, generator))


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """RMSNorm over the last dimension (scale-free when ``weight`` is None)."""
    return F.rms_norm(x, (x.shape[-1],), weight, RMS_EPS)


def attention(config: ModelConfig, h: torch.Tensor, layer: LayerWeights, state: LayerState,
              concurrency: int) -> torch.Tensor:
    """Self-attention of the pass's new tokens over [cache ; new], writing the new K/V into the buffers."""
    b = config.backbone
    attn = b.attention(layer.layer_type)
    heads, kv_heads, dim = b.num_attention_heads, attn.num_kv_heads, attn.head_dim
    group = heads // kv_heads
    tokens = h.shape[0]
    new = tokens // concurrency
    qkv = layer.qkv(h)
    q = qkv[:, : heads * dim].view(tokens, heads, dim)
    k_raw = qkv[:, heads * dim: (heads + kv_heads) * dim].view(tokens, kv_heads, dim)
    v_raw = k_raw if attn.k_eq_v else qkv[:, (heads + kv_heads) * dim:].view(tokens, kv_heads, dim)
    q = rms_norm(q, layer.q_norm)
    k = rms_norm(k_raw, layer.k_norm)
    v = rms_norm(v_raw, None)
    end = state.cached + new
    state.k_cache[:, :, state.cached:end] = k.view(concurrency, new, kv_heads, dim).transpose(1, 2)
    state.v_cache[:, :, state.cached:end] = v.view(concurrency, new, kv_heads, dim).transpose(1, 2)
    # Fold the query heads of each KV group into the query length: [c, kv, group x new, dim].
    q = q.view(concurrency, new, kv_heads, group, dim).permute(0, 2, 3, 1, 4).reshape(
        concurrency, kv_heads, group * new, dim)
    out = F.scaled_dot_product_attention(q, state.k_cache, state.v_cache, attn_mask=state.mask, scale=1.0)
    out = out.view(concurrency, kv_heads, group, new, dim).permute(0, 3, 1, 2, 4).reshape(tokens, heads * dim)
    return layer.o(out)


def mixture_of_experts(config: ModelConfig, r: torch.Tensor, layer: LayerWeights, routing: Routing) -> torch.Tensor:
    """Router on the residual, experts on its pre-norm, outputs weighted and summed back per token."""
    b = config.backbone
    top_k = b.top_k_experts
    router_probs = F.linear(rms_norm(r, layer.router_norm), layer.router).float().softmax(dim=-1)
    top_weights = router_probs.topk(top_k, dim=-1).values
    ids = routing.expert_ids
    weights = (top_weights / top_weights.sum(dim=-1, keepdim=True) * layer.per_expert_scale[ids]).to(r.dtype)
    x = rms_norm(r, layer.pre_ff_norm_2)
    flat_ids = ids.view(-1)
    if layer.experts.use_grouped_mm:
        order = flat_ids.argsort(stable=True)
        counts = torch.zeros(b.num_experts, dtype=torch.int32, device=r.device).scatter_add_(
            0, flat_ids, torch.ones_like(flat_ids, dtype=torch.int32))
        offsets = counts.cumsum(0, dtype=torch.int32)
        token_of = order // top_k
        y = layer.experts.grouped(x.index_select(0, token_of), offsets) * weights.view(-1, 1)[order]
    else:
        slots = routing.slot_of_assignment
        padded = x.new_zeros(routing.touched.numel() * routing.capacity, x.shape[1])
        token_of = torch.arange(flat_ids.numel(), device=r.device) // top_k
        padded[slots] = x.index_select(0, token_of)
        out = layer.experts.padded(padded.view(routing.touched.numel(), routing.capacity, -1), routing.touched)
        y = out.view(-1, x.shape[1])[slots] * weights.view(-1, 1)
    return torch.zeros_like(r).index_add_(0, token_of, y)


def decoder_layer(config: ModelConfig, x: torch.Tensor, layer: LayerWeights, state: LayerState,
                  concurrency: int) -> torch.Tensor:
    """One Gemma 4 MoE block: attention, then the dense GeGLU MLP and the experts side by side."""
    a = attention(config, rms_norm(x, layer.input_norm), layer, state, concurrency)
    r = x + rms_norm(a, layer.post_attention_norm)
    dense = layer.dense_down(geglu(layer.dense_gate_up(rms_norm(r, layer.pre_ff_norm))))
    h1 = rms_norm(dense, layer.post_ff_norm_1)
    h2 = rms_norm(mixture_of_experts(config, r, layer, state.routing), layer.post_ff_norm_2)
    return (r + rms_norm(h1 + h2, layer.post_ff_norm)) * layer.layer_scalar


def layer_stack(config: ModelConfig, layers: list[LayerWeights], states: list[LayerState], x: torch.Tensor,
                concurrency: int) -> Callable[[], torch.Tensor]:
    """A callable running ``x`` through the layers (fixed buffers, so it can be captured in a CUDA graph)."""

    def run() -> torch.Tensor:
        h = x
        for layer, state in zip(layers, states, strict=True):
            h = decoder_layer(config, h, layer, state, concurrency)
        return h

    return run
