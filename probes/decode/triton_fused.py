"""The elementwise and norm work around a decoder layer's GEMMs, fused into three Triton kernels as engines fuse it.

* ``residual_norms``: ``r = x + rms(a) * w_attn`` and, from the same read of ``r``, its RMS norms with several
  weights (the dense MLP's, the router's and the experts' pre-norms): one kernel for seven.
* ``geglu``: ``gelu_tanh(gate) * up`` on a fused [gate | up] activation: one kernel for two.
* ``moe_combine_output``: per token, the router's top-k softmax times the per-expert scales, the gated sum of its
  expert rows (gathered where the expert GEMM left them), then ``(r + rms(rms(dense) w1 + rms(moe) w2) wff) * s``:
  one kernel for the router's top-k, softmax and gathers, the combine, three norms and three elementwise ops.

Rows are processed in fp32 and rounded once at the end (the torch path rounds after every op, so the two agree to
bf16 rounding). Imported only on CUDA with Triton; ``checks.check_fused_layer`` validates them before use.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

NEGATIVE_LARGE = -1.0e30  # finite "minus infinity": masked router logits never win the top-k
GELU_BLOCK = 1024


@triton.jit
def _residual_norms(x_ptr, a_ptr, w_attn_ptr, r_ptr, w0_ptr, w1_ptr, w2_ptr, out0_ptr, out1_ptr, out2_ptr, hidden,
                    eps, OUTPUTS: tl.constexpr, BLOCK: tl.constexpr):
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
    w0 = tl.load(w0_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    tl.store(out0_ptr + base + offs, (r_normed * w0).to(out0_ptr.dtype.element_ty), mask=inside)
    if OUTPUTS > 1:
        w1 = tl.load(w1_ptr + offs, mask=inside, other=0.0).to(tl.float32)
        tl.store(out1_ptr + base + offs, (r_normed * w1).to(out1_ptr.dtype.element_ty), mask=inside)
    if OUTPUTS > 2:
        w2 = tl.load(w2_ptr + offs, mask=inside, other=0.0).to(tl.float32)
        tl.store(out2_ptr + base + offs, (r_normed * w2).to(out2_ptr.dtype.element_ty), mask=inside)


@triton.jit
def gelu_tanh(g):
    """GELU, tanh approximation, in fp32 (tanh written through exp, which every Triton version has)."""
    u = 0.7978845608028654 * (g + 0.044715 * g * g * g)
    return 0.5 * g * (2.0 - 2.0 / (tl.exp(2.0 * u) + 1.0))


@triton.jit
def _geglu(h_ptr, out_ptr, width, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < width
    gate = tl.load(h_ptr + row * 2 * width + offs, mask=inside, other=0.0).to(tl.float32)
    up = tl.load(h_ptr + row * 2 * width + width + offs, mask=inside, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * width + offs, (gelu_tanh(gate) * up).to(out_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _moe_combine_output(router_ptr, ids_ptr, expert_scale_ptr, y_ptr, pos_ptr, dense_ptr, r_ptr, w1_ptr, w2_ptr,
                        wff_ptr, scalar_ptr, out_ptr, hidden, num_experts, eps, TOP_K: tl.constexpr,
                        BLOCK: tl.constexpr, BLOCK_E: tl.constexpr, NEG: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    experts = tl.arange(0, BLOCK_E)
    logits = tl.load(router_ptr + row * num_experts + experts, mask=experts < num_experts,
                     other=NEG).to(tl.float32)
    top = tl.max(logits, axis=0)
    offs = tl.arange(0, BLOCK)
    inside = offs < hidden
    moe = tl.zeros([BLOCK], dtype=tl.float32)
    total = 0.0
    # The i-th largest router logit gates the i-th assigned expert, as in the torch path (topk values are sorted).
    for i in tl.static_range(TOP_K):
        value = tl.max(logits, axis=0)
        logits = tl.where(experts == tl.argmax(logits, axis=0), NEG, logits)
        weight = tl.exp(value - top)
        total += weight
        expert = tl.load(ids_ptr + row * TOP_K + i)
        gate = weight * tl.load(expert_scale_ptr + expert).to(tl.float32)
        position = tl.load(pos_ptr + row * TOP_K + i)
        y = tl.load(y_ptr + position * hidden + offs, mask=inside, other=0.0).to(tl.float32)
        moe += gate * y
    moe = moe / total
    base = row * hidden
    dense = tl.load(dense_ptr + base + offs, mask=inside, other=0.0).to(tl.float32)
    w1 = tl.load(w1_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    w2 = tl.load(w2_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    h = (dense * tl.rsqrt(tl.sum(dense * dense, axis=0) / hidden + eps) * w1
         + moe * tl.rsqrt(tl.sum(moe * moe, axis=0) / hidden + eps) * w2)
    h = tl.where(inside, h, 0.0)
    wff = tl.load(wff_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    r = tl.load(r_ptr + base + offs, mask=inside, other=0.0).to(tl.float32)
    scalar = tl.load(scalar_ptr).to(tl.float32)
    out = (r + h * tl.rsqrt(tl.sum(h * h, axis=0) / hidden + eps) * wff) * scalar
    tl.store(out_ptr + base + offs, out.to(out_ptr.dtype.element_ty), mask=inside)


def _warps(block: int) -> int:
    return 8 if block >= 4096 else 4


def residual_norms(x: torch.Tensor, a: torch.Tensor, w_attn: torch.Tensor, weights: tuple[torch.Tensor, ...],
                   eps: float) -> tuple[torch.Tensor, ...]:
    """``r = x + rms_norm(a, w_attn)`` and ``rms_norm(r, w)`` for each of one to three ``weights``: (r, *normed)."""
    if not 1 <= len(weights) <= 3:
        raise ValueError("one to three norm weights")
    rows, hidden = x.shape
    x, a = x.contiguous(), a.contiguous()
    r = torch.empty_like(x)
    outs = [torch.empty_like(x) for _ in weights]
    padded_w = list(weights) + [weights[0]] * (3 - len(weights))
    padded_out = outs + [outs[0]] * (3 - len(outs))
    block = triton.next_power_of_2(hidden)
    _residual_norms[(rows,)](x, a, w_attn, r, *padded_w, *padded_out, hidden, eps, OUTPUTS=len(weights),
                             BLOCK=block, num_warps=_warps(block))
    return (r, *outs)


def geglu(h: torch.Tensor) -> torch.Tensor:
    """GeGLU on a fused [gate | up] activation ``[rows, 2 x width]``, in one kernel."""
    h = h.contiguous()
    rows, width = h.shape[0], h.shape[1] // 2
    out = torch.empty(rows, width, device=h.device, dtype=h.dtype)
    _geglu[(rows, triton.cdiv(width, GELU_BLOCK))](h, out, width, BLOCK=GELU_BLOCK, num_warps=4)
    return out


def moe_combine_output(router_logits: torch.Tensor, expert_ids: torch.Tensor, expert_scale: torch.Tensor,
                       rows: torch.Tensor, positions: torch.Tensor, dense: torch.Tensor, r: torch.Tensor,
                       norms: tuple[torch.Tensor, torch.Tensor, torch.Tensor], layer_scalar: torch.Tensor,
                       eps: float) -> torch.Tensor:
    """The layer's output from its residual ``r``, dense MLP output and expert ``rows`` (assignment ``i`` of token
    ``t`` at ``rows[positions[t * top_k + i]]``), gated by the softmax of the top-k ``router_logits``."""
    tokens, hidden = r.shape
    top_k = expert_ids.shape[1]
    num_experts = router_logits.shape[1]
    out = torch.empty_like(r)
    block = triton.next_power_of_2(hidden)
    _moe_combine_output[(tokens,)](
        router_logits.contiguous(), expert_ids.contiguous(), expert_scale, rows.contiguous(),
        positions.contiguous(), dense.contiguous(), r.contiguous(), *norms, layer_scalar, out, hidden, num_experts,
        eps, TOP_K=top_k, BLOCK=block, BLOCK_E=triton.next_power_of_2(num_experts), NEG=NEGATIVE_LARGE,
        num_warps=_warps(block))
    return out
