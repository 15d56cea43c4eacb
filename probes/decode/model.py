"""DiffusionGemma's decoder layers and head in torch, at full width, the way an efficient engine runs them.

* Linear layers in bf16/fp16 (``F.linear``) or FP8 (``torch._scaled_mm``, per-token activation and per-channel
  weight scales). q/k/v are one fused projection; the GeGLU gate and up projections are fused too. An FP8 GEMM
  takes its activation quantised per token (``QuantizedRows``): in the torch layer by ``quantize_rows`` (torch
  ops, the reference); in the fused layer by the Triton kernel that produced the activation, as vLLM's fp8 path
  does, or in one Triton kernel where no producer holds whole rows.
* Experts: tokens sorted by expert, then per projection one grouped GEMM (``torch._grouped_mm`` /
  ``torch._scaled_grouped_mm``), one padded batched matmul, or one Triton fused-MoE GEMM that gathers token rows
  itself (``triton_moe.py``); the benchmark picks the fastest that works for each token count. Outputs are
  combined per token with a batched matmul (no atomics). Never a Python loop over experts.
* Attention: ``F.scaled_dot_product_attention`` with the query heads of each KV group folded into the query
  length (GQA without copying K/V), softmax scale 1 (Gemma 4's q/k norms), and a boolean mask only where the
  pass is causal; or, where SDPA has no flash kernel (head dim 512), two batched GEMMs around a softmax, scores
  and softmax in fp32; or, for an AR step's few queries, a Triton flash-decoding kernel split along the keys. The
  benchmark times those that apply per shape. RoPE is left out: a fused elementwise op in engines, it moves no
  weights.
* Projections of an AR step's few rows (at most ``GEMV_MAX_ROWS``): torch's GEMMs, or a Triton GEMV that streams
  the weight (``triton_gemv.py``) with the input norm fused into q/k/v and the dense GeGLU into gate_up, an fp8
  weight read by the bf16 activation (weight-only fp8: no activation quantisation); the benchmark times both.
* On CUDA the q/k/v norms and KV-cache writes, the matmul attention's softmax, the residual norms, GeGLU, router
  top-k and expert combine run as Triton kernels (``triton_fused.py``; ``fused_decoder_layer``), checked against
  the torch layer before use.
* Routing: the router runs (linear, softmax, top-k) for its cost, but expert ids come from a uniform random
  assignment fixed per pass: random weights would route unevenly, a trained router balances load, and the uniform
  draw reproduces the expected coverage E(1-(1-k/E)^T).

torch is imported lazily by the callers (this module is imported only inside probes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from dgprofile.records.passes import PassKind
from dgprofile.specs.model_config import LayerType, ModelConfig

RMS_EPS = 1e-6
WEIGHT_STD = 0.02
FP8_MAX = 448.0  # largest finite float8_e4m3fn
FP8_MIN_AMAX = 1e-12  # an all-zero row (padding rows of the expert layout) still gets a finite scale
# On a CPU, normal draws for billions of weights take longer than the benchmark: a random block is tiled instead
# (values do not change a matmul's time; zeros would, and are never used).
CPU_RANDOM_BLOCK = 1 << 22
AR_TOP_K = 50
# Profiler ranges named with this prefix attribute the kernels inside them to a model component
# (``kernel_profile.py``); outside a profiler they cost a few microseconds of host time and nothing on the device.
COMPONENT_PREFIX = "dg:"


def component(name: str) -> Any:
    """A profiler range for one component (``"attention"``) or one step of it (``"attention.qkv"``), named as
    ``pass_cost`` names components."""
    return torch.profiler.record_function(COMPONENT_PREFIX + name)


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


@dataclass(frozen=True)
class QuantizedRows:
    """Activations quantised per row (one scale per token, chosen from the row's largest magnitude), as fp8
    GEMMs take them: ``values [rows, width]`` in e4m3 and ``scales [rows, 1]`` in fp32, ``values * scales``
    approximating the activation."""

    values: torch.Tensor
    scales: torch.Tensor


# An fp8 GEMM's input: a bf16/fp16 activation (quantised on the way in) or one its producer quantised already.
Activation = torch.Tensor | QuantizedRows


def select_rows(x: Activation, rows: torch.Tensor) -> Activation:
    """The given rows of ``x`` (each with its scale, if quantised)."""
    if isinstance(x, QuantizedRows):  # gathered as bytes: not every torch build indexes fp8 tensors on every device
        values = x.values.view(torch.uint8).index_select(0, rows).view(x.values.dtype)
        return QuantizedRows(values, x.scales.index_select(0, rows))
    return x.index_select(0, rows)


def quantize_rows(x: torch.Tensor) -> QuantizedRows:
    """Dynamic per-row FP8 quantisation in torch ops (several kernels, several passes over ``x``): (x / scale) in
    e4m3 and the fp32 scale per row. The reference for the one-kernel Triton version (``triton_fused.py``)."""
    scale = x.abs().amax(dim=-1, keepdim=True).float().clamp_(min=FP8_MIN_AMAX) / FP8_MAX
    return QuantizedRows((x.float() / scale).to(torch.float8_e4m3fn), scale)


def quantize(x: Activation, fused: bool) -> QuantizedRows:
    """``x`` quantised per row (as it is, if its producer quantised it): in one Triton kernel when ``fused``,
    else in torch ops."""
    if isinstance(x, QuantizedRows):
        return x
    if fused:
        from dgprofile.probes.decode.triton_fused import quantize_rows as quantize_rows_in_one_kernel

        return quantize_rows_in_one_kernel(x)
    return quantize_rows(x)


def unquantized(x: Activation) -> torch.Tensor:
    """``x`` where only an unquantised activation can go (a bf16/fp16 GEMM)."""
    if isinstance(x, QuantizedRows):
        raise TypeError("a bf16/fp16 GEMM was given fp8-quantised activations")
    return x


class Linear:
    """``y = x @ W^T`` for a weight ``[out, in]`` in the compute dtype, or in FP8 with per-channel scales."""

    def __init__(self, out_features: int, in_features: int, *, dtype: Any, fp8: bool, device: str) -> None:
        self.fp8 = fp8
        self.weight = random_tensor((out_features, in_features), torch.float8_e4m3fn if fp8 else dtype, device)
        self.scale = torch.full((1, out_features), WEIGHT_STD * 4 / FP8_MAX, device=device) if fp8 else None

    def __call__(self, x: Activation) -> torch.Tensor:
        """``x`` through the layer; an FP8 layer quantises an unquantised ``x`` in torch ops first."""
        if self.scale is None:  # not FP8
            return F.linear(unquantized(x), self.weight)
        q = quantize(x, fused=False)
        return torch._scaled_mm(q.values, self.weight.t(), scale_a=q.scales, scale_b=self.scale,
                                out_dtype=torch.bfloat16)

    def gemv(self, x: torch.Tensor, *, norm_weight: torch.Tensor | None = None,
             geglu: bool = False) -> torch.Tensor:
        """``x`` (at most ``GEMV_MAX_ROWS`` rows, bf16/fp16: an fp8 layer's weight is widened in the kernel) through
        the layer in the Triton GEMV; ``norm_weight``: ``x`` RMS-normalised with it first; ``geglu``: this is a
        fused [gate | up] layer and the output is ``gelu_tanh(gate) * up``."""
        from dgprofile.probes.decode.triton_gemv import gemv

        return gemv(unquantized(x), self.weight, self.scale, norm_weight=norm_weight, eps=RMS_EPS, geglu=geglu)


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

    def __init__(self, num_experts: int, hidden: int, width: int, *, dtype: Any, fp8: bool, device: str) -> None:
        self.fp8 = fp8
        wdtype = torch.float8_e4m3fn if fp8 else dtype
        self.gate_up = random_tensor((num_experts, 2 * width, hidden), wdtype, device)
        self.down = random_tensor((num_experts, hidden, width), wdtype, device)
        scale = WEIGHT_STD * 4 / FP8_MAX
        self.gate_up_scale = torch.full((num_experts, 2 * width), scale, device=device) if fp8 else None
        self.down_scale = torch.full((num_experts, hidden), scale, device=device) if fp8 else None

    def _grouped(self, x: Activation, weight: torch.Tensor, scale: torch.Tensor | None,
                 offsets: torch.Tensor, fused: bool) -> torch.Tensor:
        if scale is None:  # not FP8
            return torch._grouped_mm(unquantized(x), weight.transpose(-2, -1), offs=offsets)
        q = quantize(x, fused)
        return torch._scaled_grouped_mm(q.values, weight.transpose(-2, -1), q.scales.squeeze(-1), scale,
                                        offs=offsets, out_dtype=torch.bfloat16)

    def grouped(self, x_sorted: Activation, offsets: torch.Tensor, fused: bool = False) -> torch.Tensor:
        """Rows of ``x_sorted`` grouped by expert (``offsets``: cumulative row ends) through their experts. FP8
        experts with ``fused``: activations quantised in Triton kernels, the GeGLU between the projections and
        its quantisation in one."""
        with component("experts.gate_up"):
            h = self._grouped(x_sorted, self.gate_up, self.gate_up_scale, offsets, fused)
            activation: Activation
            if fused and self.fp8:
                from dgprofile.probes.decode.triton_fused import geglu_quantized

                activation = geglu_quantized(h)
            else:
                activation = geglu(h)
        with component("experts.down"):
            return self._grouped(activation, self.down, self.down_scale, offsets, fused)

    def padded(self, x_padded: torch.Tensor, touched: torch.Tensor | None) -> torch.Tensor:
        """``[experts, capacity, H]`` rows through the experts (all, or the ``touched`` ones) with one batched
        matmul per projection."""
        gate_up = self.gate_up if touched is None else self.gate_up.index_select(0, touched)
        down = self.down if touched is None else self.down.index_select(0, touched)
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


def build_layer(config: ModelConfig, layer_type: LayerType, *, dtype: Any, fp8: bool, device: str) -> LayerWeights:
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
        experts=Experts(b.num_experts, hidden, b.moe_intermediate_size, dtype=dtype, fp8=fp8, device=device),
        layer_scalar=norm(1),
    )


ExpertMethod = Literal["grouped", "padded", "triton", "triton-geglu"]
# How attention runs: fused SDPA; or (where SDPA has no flash kernel, e.g. head dim 512) two batched GEMMs around
# a softmax over the [queries x keys] scores, which cuBLAS runs near its peak; or, for a few queries over a cache
# with nothing masked (the AR step), a Triton kernel split along the keys (``triton_decode_attention.py``). The
# benchmark times those that apply.
AttentionMethod = Literal["sdpa", "matmul", "split-kv"]
# The split-KV method is offered up to this many query rows per KV head (query heads of a group x new tokens).
SPLIT_KV_MAX_ROWS = 64
# How a fused layer's dense projections (q/k/v, output, dense MLP, router) run: torch's GEMMs (cuBLAS, and
# ``torch._scaled_mm`` on an fp8 activation quantised per token), or the Triton GEMV (``triton_gemv.py``), offered
# for passes of at most GEMV_MAX_ROWS rows (the tensor cores' smallest row tile: beyond it a GEMM does as well).
ProjectionMethod = Literal["torch", "gemv"]
GEMV_MAX_ROWS = 16
# Rows per block of the Triton expert GEMM: the smallest of these that holds the busiest expert's tokens, so that
# each expert's weights are read by as few blocks as possible.
# Two sizes only: each is a separate Triton compilation per dtype, paid once per machine.
TRITON_BLOCK_ROWS = (32, 64)


@dataclass
class Routing:
    """A fixed uniform expert assignment for one layer and pass, with its dispatch precomputed for every expert
    method (engines sort tokens by expert in one small kernel per layer; here that happens once, before timing).
    Assignments are the flattened ``[tokens, top_k]`` pairs."""

    expert_ids: torch.Tensor  # [tokens, top_k]
    distinct_experts: int
    token_of_assignment: torch.Tensor  # token of each assignment
    token_of_sorted: torch.Tensor  # token of each assignment, assignments sorted by expert
    offsets: torch.Tensor  # int32 cumulative assignment counts per expert (grouped GEMM)
    sorted_position: torch.Tensor  # where each assignment sits in the sorted order
    touched: torch.Tensor | None  # experts with tokens, None when all have some (padded path)
    capacity: int  # rows per expert in the padded layout
    padded_slot: torch.Tensor  # position of each assignment in the [experts x capacity] layout
    block_rows: int  # rows per block of the Triton layout
    block_expert: torch.Tensor  # expert of each Triton block
    block_token: torch.Tensor  # token of each row of the Triton layout, -1 on padding rows
    block_position: torch.Tensor  # row of each assignment in the Triton layout


def uniform_routing(tokens: int, num_experts: int, top_k: int, device: str, generator: torch.Generator) -> Routing:
    """Each token picks ``top_k`` distinct experts uniformly at random."""
    ids = torch.rand(tokens, num_experts, generator=generator).argsort(dim=1)[:, :top_k].contiguous()
    flat = ids.view(-1)
    assignments = flat.numel()
    counts = torch.bincount(flat, minlength=num_experts)
    order = flat.argsort(stable=True)
    sorted_position = torch.empty_like(order)
    sorted_position[order] = torch.arange(assignments)
    starts = torch.cumsum(counts, 0) - counts
    rank = sorted_position - starts[flat]  # index of each assignment among its expert's
    touched = torch.nonzero(counts).view(-1)
    compact = torch.full((num_experts,), -1, dtype=torch.long)
    compact[touched] = torch.arange(touched.numel())
    capacity = int(counts.max())
    all_touched = touched.numel() == num_experts
    block_rows = next((b for b in TRITON_BLOCK_ROWS if capacity <= b), TRITON_BLOCK_ROWS[-1])
    blocks = (counts + block_rows - 1) // block_rows
    block_start = torch.cumsum(blocks, 0) - blocks
    block_position = block_start[flat] * block_rows + rank
    block_token = torch.full((int(blocks.sum()) * block_rows,), -1, dtype=torch.long)
    block_token[block_position] = torch.arange(assignments) // top_k
    return Routing(
        expert_ids=ids.to(device), distinct_experts=int(touched.numel()),
        token_of_assignment=(torch.arange(assignments) // top_k).to(device), token_of_sorted=(order // top_k).to(device), offsets=torch.cumsum(counts, 0).to(torch.int32).to(device),
        sorted_position=sorted_position.to(device), touched=None if all_touched else touched.to(device),
        capacity=capacity, padded_slot=(compact[flat] * capacity + rank).to(device), block_rows=block_rows,
        block_expert=torch.repeat_interleave(torch.arange(num_experts), blocks).to(torch.int32).to(device),
        block_token=block_token.to(device), block_position=block_position.to(device))


def run_expert_rows(method: ExpertMethod, experts: Experts, x: Activation, routing: Routing,
                    fused: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Expert output rows where the method leaves them, and the row of each assignment (flattened
    ``[tokens, top_k]``): combining kernels gather from there, saving a reordering copy. FP8 experts take ``x``
    quantised per token or quantise it (the Triton methods always in Triton kernels, the grouped GEMM when
    ``fused``)."""
    if method in ("triton", "triton-geglu"):
        from dgprofile.probes.decode.triton_moe import triton_expert_rows

        return triton_expert_rows(experts, x, routing, fuse_geglu=method == "triton-geglu")
    if method == "grouped":
        return (experts.grouped(select_rows(x, routing.token_of_sorted), routing.offsets, fused),
                routing.sorted_position)
    x = unquantized(x)  # the padded method runs bf16/fp16 experts only
    experts_run = experts.gate_up.shape[0] if routing.touched is None else routing.touched.numel()
    padded = x.new_zeros(experts_run * routing.capacity, x.shape[1])
    padded[routing.padded_slot] = x.index_select(0, routing.token_of_assignment)
    out = experts.padded(padded.view(experts_run, routing.capacity, -1), routing.touched)
    return out.view(-1, x.shape[1]), routing.padded_slot


def run_experts(method: ExpertMethod, experts: Experts, x: Activation, routing: Routing,
                fused: bool = False) -> torch.Tensor:
    """Every assignment's expert output ``[tokens x top_k, H]``, in assignment order."""
    rows, positions = run_expert_rows(method, experts, x, routing, fused)
    return rows.index_select(0, positions)


@dataclass
class LayerState:
    """Everything one layer needs for one pass: its KV buffers, mask and routing."""

    k_cache: torch.Tensor  # [c, kv_heads, cached + new, head_dim]
    v_cache: torch.Tensor
    cached: int  # positions already in the buffer (the window on sliding layers)
    mask: torch.Tensor | None  # [group x new, cached + new] bool, True = attend; None = everything visible
    routing: Routing
    expert_method: ExpertMethod
    attention_method: AttentionMethod = "sdpa"
    fused: bool = False  # elementwise work and the attention softmax in Triton kernels (triton_fused.py)
    projection_method: ProjectionMethod = "torch"  # the fused layer's dense projections (the torch layer: torch)


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
                context: int, dtype: Any, device: str, generator: torch.Generator,
                expert_method: ExpertMethod = "grouped", attention_method: AttentionMethod = "sdpa",
                fused: bool = False, projection_method: ProjectionMethod = "torch") -> LayerState:
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
                      routing=uniform_routing(concurrency * new, b.num_experts, b.top_k_experts, device, generator),
                      expert_method=expert_method, attention_method=attention_method, fused=fused,
                      projection_method=projection_method)


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """RMSNorm over the last dimension (scale-free when ``weight`` is None)."""
    return F.rms_norm(x, (x.shape[-1],), weight, RMS_EPS)


def attention(config: ModelConfig, h: Activation, layer: LayerWeights, state: LayerState,
              concurrency: int, input_norm: torch.Tensor | None = None) -> torch.Tensor:
    """Self-attention of the pass's new tokens over [cache ; new], writing the new K/V into the buffers. In a
    fused FP8 layer the output projection's input is quantised in one Triton kernel (its rows span every head,
    written by separate attention programs: no producer holds a whole row), unless the GEMV projects it (it takes
    bf16 rows). ``input_norm`` (the GEMV projections only): ``h`` is the layer's input, which the q/k/v GEMV
    RMS-normalises with this weight itself."""
    b = config.backbone
    attn = b.attention(layer.layer_type)
    heads, kv_heads, dim = b.num_attention_heads, attn.num_kv_heads, attn.head_dim
    group = heads // kv_heads
    gemv = state.projection_method == "gemv"
    if input_norm is not None and not gemv:
        raise ValueError("only the GEMV projections normalise the layer's input inside q/k/v")
    with component("attention.qkv"):
        qkv = layer.qkv.gemv(unquantized(h), norm_weight=input_norm) if gemv else layer.qkv(h)
    tokens = qkv.shape[0]
    new = tokens // concurrency
    if state.fused:
        from dgprofile.probes.decode.triton_fused import qkv_prologue

        with component("attention.norms-cache"):
            q = qkv_prologue(qkv, layer.q_norm, layer.k_norm, state.k_cache, state.v_cache, cached=state.cached,
                             heads=heads, k_eq_v=attn.k_eq_v, eps=RMS_EPS)
    else:
        q = qkv[:, : heads * dim].view(tokens, heads, dim)
        k_raw = qkv[:, heads * dim: (heads + kv_heads) * dim].view(tokens, kv_heads, dim)
        v_raw = k_raw if attn.k_eq_v else qkv[:, (heads + kv_heads) * dim:].view(tokens, kv_heads, dim)
        with component("attention.norms-cache"):
            q = rms_norm(q, layer.q_norm)
            k = rms_norm(k_raw, layer.k_norm)
            v = rms_norm(v_raw, None)
            end = state.cached + new
            state.k_cache[:, :, state.cached:end] = k.view(concurrency, new, kv_heads, dim).transpose(1, 2)
            state.v_cache[:, :, state.cached:end] = v.view(concurrency, new, kv_heads, dim).transpose(1, 2)
            # Fold the query heads of each KV group into the query length: [c, kv, group x new, dim].
            q = q.view(concurrency, new, kv_heads, group, dim).permute(0, 2, 3, 1, 4).reshape(
                concurrency, kv_heads, group * new, dim)
    with component(f"attention.{state.attention_method}"):
        if state.attention_method == "matmul":
            out = matmul_attention(q, state.k_cache, state.v_cache, state.mask, fused=state.fused)
        elif state.attention_method == "split-kv":
            if state.mask is not None:
                raise ValueError("the split-KV attention method takes no mask")
            from dgprofile.probes.decode.triton_decode_attention import split_kv_attention

            out = split_kv_attention(q, state.k_cache, state.v_cache)
        else:
            out = F.scaled_dot_product_attention(q, state.k_cache, state.v_cache, attn_mask=state.mask, scale=1.0)
        out = out.view(concurrency, kv_heads, group, new, dim).permute(0, 3, 1, 2, 4).reshape(tokens, heads * dim)
    with component("attention.out"):
        if gemv:
            return layer.o.gemv(out)
        return layer.o(quantize(out, fused=True) if state.fused and layer.o.fp8 else out)


def attention_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``q @ k^T`` over the last two dimensions, in float32 whatever the inputs' dtype: with unit-RMS q and k the
    scores reach tens (~sqrt(head_dim)), where bf16 steps by 0.25-0.5, and exp() turns that into 25-60% errors in
    the probabilities. On CUDA the GEMM accumulates in fp32 and writes fp32 (``out_dtype``), at the bf16 rate."""
    batch = q.shape[:-2]
    if q.dtype == torch.float32 or q.dtype == torch.float64:
        return q @ k.transpose(-2, -1)
    if q.is_cuda:
        scores = torch.bmm(q.reshape(-1, *q.shape[-2:]), k.reshape(-1, *k.shape[-2:]).transpose(-2, -1),
                           out_dtype=torch.float32)
        return scores.view(*batch, q.shape[-2], k.shape[-2])
    return q.float() @ k.float().transpose(-2, -1)  # CPUs have no mixed-precision bmm; upcasting is exact here


def matmul_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                     fused: bool = False) -> torch.Tensor:
    """Softmax attention as two batched GEMMs, scale 1: scores and softmax in float32, probabilities rounded once
    to the compute dtype for the second GEMM (as flash kernels do). ``fused``: mask, softmax and rounding in one
    Triton kernel."""
    scores = attention_scores(q, k)
    if fused:
        from dgprofile.probes.decode.triton_fused import attention_probabilities

        return attention_probabilities(scores, mask, v.dtype) @ v
    if mask is not None:
        scores.masked_fill_(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1, out=scores).to(v.dtype) @ v


def mixture_of_experts(config: ModelConfig, r: torch.Tensor, layer: LayerWeights, routing: Routing,
                       method: ExpertMethod, fused: bool = False) -> torch.Tensor:
    """Router on the residual, experts on its pre-norm, outputs weighted and summed per token (no atomics);
    ``fused``: FP8 experts quantise in Triton kernels (``run_expert_rows``)."""
    top_k = config.backbone.top_k_experts
    with component("router"):
        logits = F.linear(rms_norm(r, layer.router_norm), layer.router)
        # Renormalised top-k of the softmax = softmax over the top-k logits.
        gates = (logits.topk(top_k, dim=-1).values.float().softmax(dim=-1)
                 * layer.per_expert_scale[routing.expert_ids])
    with component("experts"):
        y = run_experts(method, layer.experts, rms_norm(r, layer.pre_ff_norm_2), routing, fused)
    with component("experts.combine"):
        return torch.bmm(gates.to(r.dtype).unsqueeze(1), y.view(r.shape[0], top_k, -1)).squeeze(1)


def attention_scores_bytes(config: ModelConfig, layer_type: LayerType, *, concurrency: int, new: int,
                           context: int) -> int:
    """Bytes of the [queries x keys] scores the matmul attention method materialises: fp32 scores (the softmax
    runs in place) and the probabilities in bf16/fp16."""
    b = config.backbone
    cached = min(context, b.sliding_window) if layer_type == "sliding" else context
    return concurrency * b.num_attention_heads * new * (cached + new) * (4 + 2)


@dataclass(frozen=True)
class FusedLayerParts:
    """What the fused layer has computed when only its expert combine and output norms are left."""

    residual: torch.Tensor
    dense: torch.Tensor
    router_logits: torch.Tensor
    expert_rows: torch.Tensor
    expert_positions: torch.Tensor


def fused_layer_parts(config: ModelConfig, x: torch.Tensor, layer: LayerWeights, state: LayerState,
                      concurrency: int, attention_sum: Callable[[torch.Tensor], torch.Tensor] = lambda a: a
                      ) -> FusedLayerParts:
    """The fused layer up to its expert combine. ``attention_sum`` sums a tensor-parallel shard's attention
    output over the GPUs (``tensor_parallel.py``); on one GPU it is the output itself. With the GEMV projections
    the input norm runs inside the q/k/v GEMV and the dense GeGLU inside the gate_up GEMV, and in an fp8 layer
    nothing feeding them is quantised (the experts still take their input quantised by its pre-norm)."""
    from dgprofile.probes.decode.triton_fused import geglu as fused_geglu
    from dgprofile.probes.decode.triton_fused import geglu_quantized, residual_norms, rms_norm_quantized
    from dgprofile.probes.decode.triton_fused import rms_norm as fused_rms_norm

    fp8 = layer.qkv.fp8
    gemv = state.projection_method == "gemv"
    if gemv:
        a = attention_sum(attention(config, x, layer, state, concurrency, input_norm=layer.input_norm))
    else:
        with component("norms"):
            normed: Activation = (rms_norm_quantized(x, layer.input_norm, RMS_EPS) if fp8
                                  else fused_rms_norm(x, layer.input_norm, RMS_EPS))
        a = attention_sum(attention(config, normed, layer, state, concurrency))
    with component("norms"):
        r, (dense_in, router_in, experts_in) = residual_norms(
            x, a, layer.post_attention_norm, (layer.pre_ff_norm, layer.router_norm, layer.pre_ff_norm_2), RMS_EPS,
            quantized=(fp8 and not gemv, False, fp8))
    activation: Activation
    if gemv:
        with component("dense-mlp.gate_up"):  # the GeGLU in its epilogue
            activation = layer.dense_gate_up.gemv(unquantized(dense_in), geglu=True)
    else:
        with component("dense-mlp.gate_up"):
            gate_up = layer.dense_gate_up(dense_in)
        with component("dense-mlp.geglu"):
            activation = geglu_quantized(gate_up) if fp8 else fused_geglu(gate_up)
    with component("dense-mlp.down"):
        dense = layer.dense_down.gemv(unquantized(activation)) if gemv else layer.dense_down(activation)
    with component("router"):
        if gemv:
            from dgprofile.probes.decode.triton_gemv import gemv as gemv_projection

            router_logits = gemv_projection(unquantized(router_in), layer.router)
        else:
            router_logits = F.linear(unquantized(router_in), layer.router)
    with component("experts"):
        rows, positions = run_expert_rows(state.expert_method, layer.experts, experts_in, state.routing,
                                          fused=True)
    return FusedLayerParts(r, dense, router_logits, rows, positions)


def fused_decoder_layer(config: ModelConfig, x: torch.Tensor, layer: LayerWeights, state: LayerState,
                        concurrency: int) -> torch.Tensor:
    """``decoder_layer`` with its elementwise work in Triton kernels (CUDA): same function, fewer launches. In
    an FP8 layer the kernels producing GEMM inputs (the input norm, the dense MLP's and experts' pre-norms, the
    GeGLUs) write them quantised per token, as serving engines do, instead of a separate quantisation each."""
    from dgprofile.probes.decode.triton_fused import moe_combine_output

    parts = fused_layer_parts(config, x, layer, state, concurrency)
    with component("experts.combine"):
        return moe_combine_output(parts.router_logits, state.routing.expert_ids, layer.per_expert_scale,
                                  parts.expert_rows, parts.expert_positions, parts.dense, parts.residual,
                                  (layer.post_ff_norm_1, layer.post_ff_norm_2, layer.post_ff_norm),
                                  layer.layer_scalar, RMS_EPS)


def decoder_layer(config: ModelConfig, x: torch.Tensor, layer: LayerWeights, state: LayerState,
                  concurrency: int) -> torch.Tensor:
    """One Gemma 4 MoE block: attention, then the dense GeGLU MLP and the experts side by side."""
    if state.fused:
        return fused_decoder_layer(config, x, layer, state, concurrency)
    if state.projection_method != "torch":
        raise ValueError("the GEMV projections run in the fused layer only")
    with component("norms"):
        normed = rms_norm(x, layer.input_norm)
    a = attention(config, normed, layer, state, concurrency)
    with component("norms"):
        r = x + rms_norm(a, layer.post_attention_norm)
    with component("dense-mlp"):
        dense = layer.dense_down(geglu(layer.dense_gate_up(rms_norm(r, layer.pre_ff_norm))))
    moe = mixture_of_experts(config, r, layer, state.routing, state.expert_method)
    with component("norms"):
        h1 = rms_norm(dense, layer.post_ff_norm_1)
        h2 = rms_norm(moe, layer.post_ff_norm_2)
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
