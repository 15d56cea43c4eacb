"""The elementwise and norm work around a decoder layer's GEMMs, fused into Triton kernels as engines fuse it.

* ``qkv_prologue``: from the fused q/k/v projection, the per-head RMS norms of q, k and v, with q written in the
  folded [request, KV head, group x new, dim] layout attention reads and k/v written into the KV cache: one kernel
  for four norms, two cache writes and a layout copy.

* ``rms_norm``: a row's RMS norm, optionally of ``x * scale + add``: the bf16/fp16 layer's input norm and the
  head's norms in one kernel each (torch's layer-norm kernel took 5.4-9.2 us a call on an H200 at 1-2048 rows,
  whose bytes take at most 5 us), and the head's scaling and addition with them.
* ``residual_norms``: ``r = x + rms(a) * w_attn`` and, from the same read of ``r``, its RMS norms with several
  weights (the dense MLP's, the router's and the experts' pre-norms): one kernel for seven.
* ``geglu``: ``gelu_tanh(gate) * up`` on a fused [gate | up] activation: one kernel for two.
* ``moe_combine_output``: per token, the router's top-k softmax times the per-expert scales, the gated sum of its
  expert rows (gathered where the expert GEMM left them), then ``(r + rms(rms(dense) w1 + rms(moe) w2) wff) * s``:
  one kernel for the router's top-k, softmax and gathers, the combine, three norms and three elementwise ops. The
  top k come from ranking every logit in one comparison, and the expert rows, whose places do not depend on the
  ranking, are loaded beside the router logits in multi-row tiles: at one token the kernel is a couple of memory
  round trips, not k dependent reductions each followed by a row load.
* ``attention_probabilities``: the fp32 attention scores' row softmax (with the causal mask, if any) written as
  bf16/fp16 probabilities: one pass instead of a masked fill, torch's softmax and a cast.

For FP8 layers the kernels whose outputs feed an fp8 GEMM write them quantised per token (dynamic per-row scales,
as vLLM's fp8 path does): ``rms_norm_quantized`` (the input norm feeding q/k/v), ``residual_norms`` with
``quantized`` outputs (the dense MLP's and the experts' pre-norms), ``geglu_quantized`` (the GeGLUs feeding the
down projections). Each holds its whole row in one program, so the row's largest magnitude, its scale, the e4m3
values and the scale are computed and written in the same pass that produces the row. ``quantize_rows`` does the
same alone, in one kernel, where no producer holds whole rows (the attention output, the expert GEMM's GeGLU
epilogue). The torch path (``model.quantize_rows``) takes five kernels and several passes for each.

Rows are processed in fp32 and rounded once at the end (the torch path rounds after every op, so the two agree to
bf16 rounding, and their fp8 values to within a rounding step where the bf16 rounding moved a value across one).
Imported only on CUDA with Triton; ``checks.check_fused_layer`` validates them before use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from dgprofile.probes.decode.model import FP8_MAX, FP8_MIN_AMAX, QuantizedRows

NEGATIVE_LARGE = -1.0e30  # finite "minus infinity": masked logits never win a top-k, and online softmaxes
# rescale by exp(NEGATIVE_LARGE - m) = 0 instead of computing inf - inf
GELU_BLOCK = 1024
SOFTMAX_BLOCK = 2048  # score columns per step; rows longer than this are read twice (the second read hits L2)


@triton.jit
def _store_quantized(values, inside, q_ptr, scale_ptr, row, base, offs, QMAX: tl.constexpr,
                     MIN_AMAX: tl.constexpr):
    """Write one fp32 row (``inside``: its columns) quantised: ``values / scale`` at ``q_ptr + base`` and
    ``scale = max(|values|) / QMAX`` at ``scale_ptr + row``."""
    amax = tl.max(tl.where(inside, tl.abs(values), 0.0), axis=0)
    scale = tl.maximum(amax, MIN_AMAX) / QMAX
    quantized = tl.minimum(tl.maximum(values / scale, -QMAX), QMAX)
    tl.store(q_ptr + base + offs, quantized.to(q_ptr.dtype.element_ty), mask=inside)
    tl.store(scale_ptr + row, scale)


@triton.jit
def _quantize_rows(x_ptr, q_ptr, scale_ptr, width, BLOCK: tl.constexpr, QMAX: tl.constexpr,
                   MIN_AMAX: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    inside = offs < width
    base = row * width
    x = tl.load(x_ptr + base + offs, mask=inside, other=0.0).to(tl.float32)
    _store_quantized(x, inside, q_ptr, scale_ptr, row, base, offs, QMAX, MIN_AMAX)


@triton.jit
def _rms_norm_rows(x_ptr, x_stride, add_ptr, weight_ptr, out_ptr, scale_ptr, width, x_scale, eps,
                   ADD: tl.constexpr, WEIGHT: tl.constexpr, QUANTIZE: tl.constexpr, BLOCK: tl.constexpr,
                   QMAX: tl.constexpr, MIN_AMAX: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    inside = offs < width
    base = row * width
    x = tl.load(x_ptr + row * x_stride + offs, mask=inside, other=0.0).to(tl.float32) * x_scale
    if ADD:
        x += tl.load(add_ptr + base + offs, mask=inside, other=0.0).to(tl.float32)
    x = x * tl.rsqrt(tl.sum(x * x, axis=0) / width + eps)
    if WEIGHT:
        x = x * tl.load(weight_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    if QUANTIZE:
        _store_quantized(x, inside, out_ptr, scale_ptr, row, base, offs, QMAX, MIN_AMAX)
    else:
        tl.store(out_ptr + base + offs, x.to(out_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _qkv_prologue(qkv_ptr, q_norm_ptr, k_norm_ptr, q_out_ptr, k_cache_ptr, v_cache_ptr, k_stride_r, k_stride_h,
                  k_stride_s, v_stride_r, v_stride_h, v_stride_s, qkv_width, new, cached, heads, kv_heads, eps, K_EQ_V: tl.constexpr, DIM: tl.constexpr):
    token = tl.program_id(0).to(tl.int64)
    head = tl.program_id(1)
    request = token // new
    position = token % new
    offs = tl.arange(0, DIM)
    group = heads // kv_heads
    if head < heads:
        q = tl.load(qkv_ptr + token * qkv_width + head * DIM + offs).to(tl.float32)
        w = tl.load(q_norm_ptr + offs).to(tl.float32)
        q = q * tl.rsqrt(tl.sum(q * q, axis=0) / DIM + eps) * w
        kv_head = head // group
        row = (request * kv_heads + kv_head) * group * new + (head % group) * new + position
        tl.store(q_out_ptr + row * DIM + offs, q.to(q_out_ptr.dtype.element_ty))
    else:
        kv_head = head - heads
        k = tl.load(qkv_ptr + token * qkv_width + head * DIM + offs).to(tl.float32)
        if K_EQ_V:
            v = k
        else:
            v = tl.load(qkv_ptr + token * qkv_width + (head + kv_heads) * DIM + offs).to(tl.float32)
        w = tl.load(k_norm_ptr + offs).to(tl.float32)
        k_normed = k * tl.rsqrt(tl.sum(k * k, axis=0) / DIM + eps) * w
        v_normed = v * tl.rsqrt(tl.sum(v * v, axis=0) / DIM + eps)
        slot = cached + position
        k_at = k_cache_ptr + request * k_stride_r + kv_head * k_stride_h + slot * k_stride_s
        v_at = v_cache_ptr + request * v_stride_r + kv_head * v_stride_h + slot * v_stride_s
        tl.store(k_at + offs, k_normed.to(k_cache_ptr.dtype.element_ty))
        tl.store(v_at + offs, v_normed.to(v_cache_ptr.dtype.element_ty))


@triton.jit
def _visible_scores(scores_ptr, mask_ptr, base, mask_base, start, keys, HAS_MASK: tl.constexpr,
                    BLOCK: tl.constexpr, NEG: tl.constexpr):
    """One step of a score row: column offsets, which of them are visible, and the scores (``NEG`` elsewhere)."""
    offs = start + tl.arange(0, BLOCK)
    visible = offs < keys
    if HAS_MASK:
        visible &= tl.load(mask_ptr + mask_base + offs, mask=offs < keys, other=0) != 0
    return offs, visible, tl.load(scores_ptr + base + offs, mask=visible, other=NEG)


@triton.jit
def _attention_probabilities(scores_ptr, mask_ptr, out_ptr, queries, keys, HAS_MASK: tl.constexpr,
                             BLOCK: tl.constexpr, NEG: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = row * keys
    mask_base = (row % queries) * keys
    m = tl.full([BLOCK], NEG, tl.float32)
    s = tl.zeros([BLOCK], tl.float32)
    for start in range(0, keys, BLOCK):
        _, visible, x = _visible_scores(scores_ptr, mask_ptr, base, mask_base, start, keys, HAS_MASK, BLOCK, NEG)
        new_m = tl.maximum(m, x)
        s = s * tl.exp(m - new_m) + tl.where(visible, tl.exp(x - new_m), 0.0)
        m = new_m
    row_max = tl.max(m, axis=0)
    inv_total = 1.0 / tl.sum(s * tl.exp(m - row_max), axis=0)
    for start in range(0, keys, BLOCK):
        offs, visible, x = _visible_scores(scores_ptr, mask_ptr, base, mask_base, start, keys, HAS_MASK, BLOCK,
                                           NEG)
        p = tl.where(visible, tl.exp(x - row_max) * inv_total, 0.0)
        tl.store(out_ptr + base + offs, p.to(out_ptr.dtype.element_ty), mask=offs < keys)


@triton.jit
def _store_normed(r_normed, w_ptr, out_ptr, scale_ptr, row, base, offs, inside, QUANTIZE: tl.constexpr,
                  QMAX: tl.constexpr, MIN_AMAX: tl.constexpr):
    w = tl.load(w_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    if QUANTIZE:
        _store_quantized(r_normed * w, inside, out_ptr, scale_ptr, row, base, offs, QMAX, MIN_AMAX)
    else:
        tl.store(out_ptr + base + offs, (r_normed * w).to(out_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _residual_norms(x_ptr, a_ptr, w_attn_ptr, r_ptr, w0_ptr, w1_ptr, w2_ptr, out0_ptr, out1_ptr, out2_ptr,
                    scale0_ptr, scale1_ptr, scale2_ptr, hidden, eps, OUTPUTS: tl.constexpr, BLOCK: tl.constexpr,
                    QUANTIZE0: tl.constexpr, QUANTIZE1: tl.constexpr, QUANTIZE2: tl.constexpr,
                    QMAX: tl.constexpr, MIN_AMAX: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    inside = offs < hidden
    base = row * hidden
    x = tl.load(x_ptr + base + offs, mask=inside, other=0.0).to(tl.float32)
    a = tl.load(a_ptr + base + offs, mask=inside, other=0.0).to(tl.float32)
    w_attn = tl.load(w_attn_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    a_scale = tl.rsqrt(tl.sum(a * a, axis=0) / hidden + eps)
    r = (x + a * a_scale * w_attn).to(r_ptr.dtype.element_ty)
    tl.store(r_ptr + base + offs, r, mask=inside)
    r = r.to(tl.float32)
    r_normed = r * tl.rsqrt(tl.sum(r * r, axis=0) / hidden + eps)
    _store_normed(r_normed, w0_ptr, out0_ptr, scale0_ptr, row, base, offs, inside, QUANTIZE0, QMAX, MIN_AMAX)
    if OUTPUTS > 1:
        _store_normed(r_normed, w1_ptr, out1_ptr, scale1_ptr, row, base, offs, inside, QUANTIZE1, QMAX, MIN_AMAX)
    if OUTPUTS > 2:
        _store_normed(r_normed, w2_ptr, out2_ptr, scale2_ptr, row, base, offs, inside, QUANTIZE2, QMAX, MIN_AMAX)


@triton.jit
def gelu_tanh(g):
    """GELU, tanh approximation, in fp32 (tanh written through exp, which every Triton version has)."""
    u = 0.7978845608028654 * (g + 0.044715 * g * g * g)
    return 0.5 * g * (2.0 - 2.0 / (tl.exp(2.0 * u) + 1.0))


@triton.jit
def _geglu_of(h_ptr, row, width, offs, inside):
    """``gelu_tanh(gate) * up`` in fp32 at columns ``offs`` of row ``row`` of a fused [gate | up] activation."""
    gate = tl.load(h_ptr + row * 2 * width + offs, mask=inside, other=0.0).to(tl.float32)
    up = tl.load(h_ptr + row * 2 * width + width + offs, mask=inside, other=0.0).to(tl.float32)
    return gelu_tanh(gate) * up


@triton.jit
def _geglu(h_ptr, out_ptr, width, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < width
    tl.store(out_ptr + row * width + offs, _geglu_of(h_ptr, row, width, offs, inside).to(out_ptr.dtype.element_ty),
             mask=inside)


# What a combine program computes: the whole output from the experts' rows (one GPU); under tensor parallelism,
# before the all-reduce the gated sum of this GPU's expert rows beside its dense MLP output (both partial sums),
# after it the output norms of the summed pair.
COMBINE_WHOLE, COMBINE_PARTIAL, COMBINE_NORMS = 0, 1, 2


@triton.jit
def _geglu_quantized(h_ptr, q_ptr, scale_ptr, width, BLOCK: tl.constexpr, QMAX: tl.constexpr,
                     MIN_AMAX: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    inside = offs < width
    _store_quantized(_geglu_of(h_ptr, row, width, offs, inside), inside, q_ptr, scale_ptr, row, row * width, offs,
                     QMAX, MIN_AMAX)


@triton.jit
def _router_ranks(router_ptr, row, num_experts, BLOCK_E: tl.constexpr, NEG: tl.constexpr):
    """A token's router logits ranked: each one's rank (how many logits beat it, ties going to the lower index)
    and its softmax numerator against the largest. All ranks come from one [experts x experts] comparison, not a
    chain of k dependent max/argmax reductions."""
    experts = tl.arange(0, BLOCK_E)
    logits = tl.load(router_ptr + row * num_experts + experts, mask=experts < num_experts, other=NEG).to(tl.float32)
    # The same logits along the other axis, loaded again (an L1 hit) rather than moved between layouts.
    other = tl.load(router_ptr + row * num_experts + experts[:, None], mask=experts[:, None] < num_experts,
                    other=NEG).to(tl.float32)
    beats = (other > logits[None, :]) | ((other == logits[None, :]) & (experts[:, None] < experts[None, :]))
    return tl.sum(beats.to(tl.int32), axis=0), tl.exp(logits - tl.max(logits, axis=0))


@triton.jit
def _moe_combine_output(router_ptr, ids_ptr, expert_scale_ptr, y_ptr, pos_ptr, dense_ptr, r_ptr, w1_ptr, w2_ptr,
                        wff_ptr, scalar_ptr, out_ptr, hidden, num_experts, eps, dense_stride, out_stride,
                        TOP_K: tl.constexpr, SLOTS: tl.constexpr, ROWS_AT_ONCE: tl.constexpr,
                        BLOCK: tl.constexpr, BLOCK_E: tl.constexpr, NEG: tl.constexpr, STAGE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    inside = offs < hidden
    dense = tl.load(dense_ptr + row * dense_stride + offs, mask=inside, other=0.0).to(tl.float32)
    if STAGE == 2:  # the summed experts sit beside the summed dense output
        moe = tl.load(dense_ptr + row * dense_stride + hidden + offs, mask=inside, other=0.0).to(tl.float32)
    else:
        rank, weight = _router_ranks(router_ptr, row, num_experts, BLOCK_E, NEG)
        total = tl.sum(tl.where(rank < TOP_K, weight, 0.0), axis=0)
        moe = tl.zeros([BLOCK], dtype=tl.float32)
        # Where a token's expert rows are does not depend on its gates: their loads go out beside the router's,
        # ROWS_AT_ONCE rows a tile (all k where registers allow), instead of one after each top-k step.
        for first in tl.static_range(0, SLOTS, ROWS_AT_ONCE):
            slot = first + tl.arange(0, ROWS_AT_ONCE)
            used = slot < TOP_K
            at = tl.load(pos_ptr + row * TOP_K + slot, mask=used, other=0)
            expert = tl.load(ids_ptr + row * TOP_K + slot, mask=used, other=0)
            y = tl.load(y_ptr + at[:, None] * hidden + offs[None, :], mask=used[:, None] & inside[None, :],
                        other=0.0)
            # The slot-th largest logit gates the slot-th assigned expert, as in the torch path (topk values are
            # sorted).
            by_rank = tl.sum(tl.where(rank[None, :] == slot[:, None], weight[None, :], 0.0), axis=1)
            gate = tl.where(used, by_rank * tl.load(expert_scale_ptr + expert, mask=used, other=0.0).to(tl.float32),
                            0.0)
            moe += tl.sum(gate[:, None] * y.to(tl.float32), axis=0)
        moe = moe / total
    if STAGE == 1:
        tl.store(out_ptr + row * out_stride + offs, dense.to(out_ptr.dtype.element_ty), mask=inside)
        tl.store(out_ptr + row * out_stride + hidden + offs, moe.to(out_ptr.dtype.element_ty), mask=inside)
    else:
        out = moe_output_row(dense, moe, r_ptr, w1_ptr, w2_ptr, wff_ptr, scalar_ptr, row, hidden, offs, inside, eps)
        tl.store(out_ptr + row * out_stride + offs, out.to(out_ptr.dtype.element_ty), mask=inside)


@triton.jit
def moe_output_row(dense, moe, r_ptr, w1_ptr, w2_ptr, wff_ptr, scalar_ptr, row, hidden, offs, inside, eps):
    """A layer's output row from its dense MLP and expert outputs (fp32): each RMS-normalised with its weight,
    summed, normalised again, added to the residual row and scaled by the layer scalar."""
    w1 = tl.load(w1_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    w2 = tl.load(w2_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    h = (dense * tl.rsqrt(tl.sum(dense * dense, axis=0) / hidden + eps) * w1
         + moe * tl.rsqrt(tl.sum(moe * moe, axis=0) / hidden + eps) * w2)
    h = tl.where(inside, h, 0.0)
    wff = tl.load(wff_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    r = tl.load(r_ptr + row * hidden + offs, mask=inside, other=0.0).to(tl.float32)
    scalar = tl.load(scalar_ptr).to(tl.float32)
    return (r + h * tl.rsqrt(tl.sum(h * h, axis=0) / hidden + eps) * wff) * scalar


def _warps(block: int) -> int:
    return 8 if block >= 4096 else 4


@dataclass(frozen=True)
class CombineLayout:
    """How a combine program reads its token's expert rows: ``rows_at_once`` rows a tile, ``num_warps`` warps."""

    rows_at_once: int
    num_warps: int


# The combine's layout per token count, as measured on an H200 (``scripts/bench_layer_kernels.py --sweep``, kernel
# times): one token 5.0 us with 8 rows a tile and 16 warps (the earlier one-row-at-a-time kernel 5.7 us); 256 tokens
# 7.5 us with 4 rows and 8 warps (earlier 7.6); 2048 tokens 53.8 us with 2 rows and 8 warps, against 60.1 with 4
# rows (the earlier kernel's 48.2 us stays ahead there: ranking 128 logits by an all-pairs comparison costs more
# than eight max/argmax rounds once every SM has tokens to spare).
COMBINE_LAYOUTS = ((128, CombineLayout(rows_at_once=8, num_warps=16)), (256, CombineLayout(rows_at_once=4, num_warps=8)))
COMBINE_MANY_TOKENS_LAYOUT = CombineLayout(rows_at_once=2, num_warps=8)


def combine_layout(tokens: int, top_k: int) -> CombineLayout:
    """The combine's layout for ``tokens`` rows (``COMBINE_LAYOUTS``), never more expert rows a tile than
    ``top_k`` rounds up to."""
    layout = next((chosen for limit, chosen in COMBINE_LAYOUTS if tokens <= limit), COMBINE_MANY_TOKENS_LAYOUT)
    return CombineLayout(rows_at_once=min(layout.rows_at_once, triton.next_power_of_2(top_k)),
                         num_warps=layout.num_warps)


def _quantized_like(rows: int, width: int, device: torch.device) -> QuantizedRows:
    return QuantizedRows(torch.empty(rows, width, device=device, dtype=torch.float8_e4m3fn),
                         torch.empty(rows, 1, device=device, dtype=torch.float32))


def quantize_rows(x: torch.Tensor) -> QuantizedRows:
    """``x [rows, width]`` quantised per row in one kernel (one read of ``x``), as ``model.quantize_rows`` does
    it in torch ops."""
    x = x.contiguous()
    rows, width = x.shape
    out = _quantized_like(rows, width, x.device)
    block = triton.next_power_of_2(width)
    _quantize_rows[(rows,)](x, out.values, out.scales, width, BLOCK=block, QMAX=FP8_MAX, MIN_AMAX=FP8_MIN_AMAX,
                            num_warps=_warps(block))
    return out


def _norm_rows(x: torch.Tensor, weight: torch.Tensor | None, eps: float, *, scale: float, add: torch.Tensor | None,
               out: torch.Tensor | QuantizedRows) -> None:
    rows, width = x.shape
    if x.stride(1) != 1:
        x = x.contiguous()
    if add is not None:
        add = add.contiguous()
    values, scales = (out.values, out.scales) if isinstance(out, QuantizedRows) else (out, out)
    block = triton.next_power_of_2(width)
    _rms_norm_rows[(rows,)](x, x.stride(0), add if add is not None else x, weight if weight is not None else x,
                            values, scales, width, scale, eps, ADD=add is not None, WEIGHT=weight is not None,
                            QUANTIZE=isinstance(out, QuantizedRows), BLOCK=block, QMAX=FP8_MAX,
                            MIN_AMAX=FP8_MIN_AMAX, num_warps=_warps(block))


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float, *, scale: float = 1.0,
             add: torch.Tensor | None = None) -> torch.Tensor:
    """``rms_norm(x * scale + add, weight)`` over the rows of ``x [rows, width]`` (rows may be strided: the last
    token of each request, say), in one kernel; scale-free without ``weight``, no addition without ``add``."""
    out = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    _norm_rows(x, weight, eps, scale=scale, add=add, out=out)
    return out


def rms_norm_quantized(x: torch.Tensor, weight: torch.Tensor, eps: float, *, scale: float = 1.0) -> QuantizedRows:
    """``rms_norm(x * scale, weight)`` quantised per row, in one kernel."""
    out = _quantized_like(x.shape[0], x.shape[1], x.device)
    _norm_rows(x, weight, eps, scale=scale, add=None, out=out)
    return out


def residual_norms(x: torch.Tensor, a: torch.Tensor, w_attn: torch.Tensor, weights: tuple[torch.Tensor, ...],
                   eps: float, quantized: tuple[bool, ...] | None = None
                   ) -> tuple[torch.Tensor, tuple[torch.Tensor | QuantizedRows, ...]]:
    """``r = x + rms_norm(a, w_attn)`` and ``rms_norm(r, w)`` for each of one to three ``weights``: (r, normed),
    each normed output quantised per row where ``quantized`` says so."""
    if not 1 <= len(weights) <= 3:
        raise ValueError("one to three norm weights")
    flags = quantized or (False,) * len(weights)
    if len(flags) != len(weights):
        raise ValueError("one quantisation flag per norm weight")
    rows, hidden = x.shape
    x, a = x.contiguous(), a.contiguous()
    r = torch.empty_like(x)
    outs: list[torch.Tensor | QuantizedRows] = [
        _quantized_like(rows, hidden, x.device) if flag else torch.empty_like(x) for flag in flags]
    values = [o.values if isinstance(o, QuantizedRows) else o for o in outs]
    scales = [o.scales if isinstance(o, QuantizedRows) else r for o in outs]  # r: never written through
    padding = 3 - len(weights)
    block = triton.next_power_of_2(hidden)
    _residual_norms[(rows,)](x, a, w_attn, r, *weights, *[weights[0]] * padding, *values, *[values[0]] * padding,
                             *scales, *[scales[0]] * padding, hidden, eps, OUTPUTS=len(weights), BLOCK=block,
                             QUANTIZE0=flags[0], QUANTIZE1=len(flags) > 1 and flags[1],
                             QUANTIZE2=len(flags) > 2 and flags[2], QMAX=FP8_MAX, MIN_AMAX=FP8_MIN_AMAX,
                             num_warps=_warps(block))
    return r, tuple(outs)


def geglu(h: torch.Tensor) -> torch.Tensor:
    """GeGLU on a fused [gate | up] activation ``[rows, 2 x width]``, in one kernel."""
    h = h.contiguous()
    rows, width = h.shape[0], h.shape[1] // 2
    out = torch.empty(rows, width, device=h.device, dtype=h.dtype)
    _geglu[(rows, triton.cdiv(width, GELU_BLOCK))](h, out, width, BLOCK=GELU_BLOCK, num_warps=4)
    return out


def geglu_quantized(h: torch.Tensor) -> QuantizedRows:
    """GeGLU on a fused [gate | up] activation ``[rows, 2 x width]`` quantised per row, in one kernel (one
    program per row, which holds the whole row)."""
    h = h.contiguous()
    rows, width = h.shape[0], h.shape[1] // 2
    out = _quantized_like(rows, width, h.device)
    block = triton.next_power_of_2(width)
    _geglu_quantized[(rows,)](h, out.values, out.scales, width, BLOCK=block, QMAX=FP8_MAX, MIN_AMAX=FP8_MIN_AMAX,
                              num_warps=_warps(block))
    return out


def moe_combine_output(router_logits: torch.Tensor, expert_ids: torch.Tensor, expert_scale: torch.Tensor,
                       rows: torch.Tensor, positions: torch.Tensor, dense: torch.Tensor, r: torch.Tensor,
                       norms: tuple[torch.Tensor, torch.Tensor, torch.Tensor], layer_scalar: torch.Tensor,
                       eps: float, layout: CombineLayout | None = None) -> torch.Tensor:
    """The layer's output from its residual ``r``, dense MLP output and expert ``rows`` (assignment ``i`` of token
    ``t`` at ``rows[positions[t * top_k + i]]``), gated by the softmax of the top-k ``router_logits``; ``layout``:
    the one ``combine_layout`` picks for the token count, unless given."""
    out = torch.empty_like(r)
    _combine(COMBINE_WHOLE, out, dense.contiguous(), r=r.contiguous(), norms=norms, layer_scalar=layer_scalar,
             eps=eps, gating=(router_logits, expert_ids, expert_scale, rows, positions), layout=layout)
    return out


def moe_partial_sums(router_logits: torch.Tensor, expert_ids: torch.Tensor, expert_scale: torch.Tensor,
                     rows: torch.Tensor, positions: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """One GPU's share of a tensor-parallel layer's MLP output, ``[dense | gated sum of its expert rows]`` per
    token: the one buffer the all-reduce sums (``moe_output_norms`` finishes the layer from the sum)."""
    tokens, hidden = dense.shape
    out = torch.empty(tokens, 2 * hidden, device=dense.device, dtype=dense.dtype)
    _combine(COMBINE_PARTIAL, out, dense.contiguous(), gating=(router_logits, expert_ids, expert_scale, rows,
                                                               positions))
    return out


def moe_output_norms(summed: torch.Tensor, r: torch.Tensor, norms: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                     layer_scalar: torch.Tensor, eps: float) -> torch.Tensor:
    """The layer's output from the all-reduced ``[dense | experts]`` pair and the residual ``r``."""
    out = torch.empty_like(r)
    _combine(COMBINE_NORMS, out, summed.contiguous(), r=r.contiguous(), norms=norms, layer_scalar=layer_scalar,
             eps=eps)
    return out


def _combine(stage: int, out: torch.Tensor, dense: torch.Tensor, *, r: torch.Tensor | None = None,
             norms: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
             layer_scalar: torch.Tensor | None = None, eps: float = 0.0,
             gating: tuple[torch.Tensor, ...] | None = None, layout: CombineLayout | None = None) -> None:
    tokens = out.shape[0]
    hidden = dense.shape[1] // 2 if stage == COMBINE_NORMS else dense.shape[1]
    if gating is not None:
        router_logits, expert_ids, expert_scale, rows, positions = gating
        router_logits, expert_ids, rows = router_logits.contiguous(), expert_ids.contiguous(), rows.contiguous()
        positions = positions.contiguous()
    else:  # the norms stage reads no gating: any tensor stands in for its pointers
        router_logits = expert_ids = expert_scale = rows = positions = dense
    top_k = expert_ids.shape[1] if gating is not None else 1
    num_experts = router_logits.shape[1] if gating is not None else 1
    w1, w2, wff = norms if norms is not None else (dense, dense, dense)
    chosen = layout or combine_layout(tokens, top_k)
    _moe_combine_output[(tokens,)](
        router_logits, expert_ids, expert_scale, rows, positions, dense, r if r is not None else dense, w1, w2, wff,
        layer_scalar if layer_scalar is not None else dense, out, hidden, num_experts, eps, dense.stride(0),
        out.stride(0), TOP_K=top_k, SLOTS=triton.next_power_of_2(top_k), ROWS_AT_ONCE=chosen.rows_at_once,
        BLOCK=triton.next_power_of_2(hidden), BLOCK_E=triton.next_power_of_2(num_experts), NEG=NEGATIVE_LARGE,
        STAGE=stage, num_warps=chosen.num_warps)


def qkv_prologue(qkv: torch.Tensor, q_norm: torch.Tensor, k_norm: torch.Tensor, k_cache: torch.Tensor,
                 v_cache: torch.Tensor, *, cached: int, heads: int, k_eq_v: bool, eps: float) -> torch.Tensor:
    """Normalised q in the folded ``[requests, kv_heads, group x new, dim]`` layout; normalised k and v (scale-free
    norm, read from k's slot when ``k_eq_v``) written into the caches at ``cached``."""
    requests, kv_heads, _, dim = k_cache.shape
    tokens = qkv.shape[0]
    new = tokens // requests
    qkv = qkv.contiguous()
    q = torch.empty(requests, kv_heads, heads // kv_heads * new, dim, device=qkv.device, dtype=qkv.dtype)
    _qkv_prologue[(tokens, heads + kv_heads)](qkv, q_norm, k_norm, q, k_cache, v_cache, *k_cache.stride()[:3],
                                              *v_cache.stride()[:3], qkv.shape[1], new,
                                              cached, heads, kv_heads, eps, K_EQ_V=k_eq_v, DIM=dim,
                                              num_warps=4 if dim >= 512 else 2)
    return q


def attention_probabilities(scores: torch.Tensor, mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """Row softmax of fp32 ``scores [..., queries, keys]`` (``mask [queries, keys]``: True = attend) in ``dtype``."""
    queries, keys = scores.shape[-2:]
    scores = scores.contiguous()
    out = torch.empty(scores.shape, device=scores.device, dtype=dtype)
    block = min(SOFTMAX_BLOCK, triton.next_power_of_2(keys))
    _attention_probabilities[(scores.numel() // keys,)](
        scores, mask.contiguous() if mask is not None else scores, out, queries, keys, HAS_MASK=mask is not None,
        BLOCK=block, NEG=NEGATIVE_LARGE, num_warps=8 if block >= 2048 else 4)
    return out
