"""A projection of a few rows (an AR step's tokens) as one Triton kernel that streams the weight once.

At an AR step a layer's dense projections multiply 1 to 8 rows by weights of 1-46 MB: the time is the weight read.
cuBLAS picks, at M = 1 on an H200, GEMV kernels reaching 51-71% of the streaming read, several of them split
along K with a second reduce kernel; torch's fp8 ``_scaled_mm`` is no faster than bf16 there and needs the
activation quantised first. This kernel gives each program a slice of ``BLOCK_N`` output columns over the whole of
K (no split, no reduce kernel), and launches enough slices to keep every multiprocessor streaming:

* ``y = x @ W^T`` for ``x [M, K]`` in bf16/fp16 and ``W [N, K]`` in bf16/fp16, or in fp8 e4m3 with one fp32 scale
  per output channel: weight-only fp8 (the activation stays bf16; the weight is widened in registers and the
  channel's scale applied to the fp32 accumulator), so the bytes streamed are the fp8 weight's.
* RMS-norm prologue (``norm_weight``): the sum of squares of each row is accumulated in the same loop over K as
  the product of ``x * norm_weight``, and the accumulator is scaled by the row's ``rsqrt(mean(x^2) + eps)`` at the
  end (the norm is linear in that factor), so the layer's input norm runs inside the q/k/v projection.
* GeGLU epilogue (``geglu``, for a fused [gate | up] weight of ``2 x I`` rows): each program keeps a gate and an up
  accumulator for the same columns of both halves and writes ``gelu_tanh(gate) * up``, removing the GeGLU kernel
  and the ``[M, 2I]`` round trip.

One row (the AR step at c = 1) multiplies element-wise into a ``[BLOCK_N, BLOCK_K]`` fp32 tile reduced once after
the loop (CUDA cores: a tensor-core tile would be 15/16 padding); more rows (up to ``GEMV_MAX_ROWS``) use
``tl.dot`` with the rows padded to ``GEMV_MAX_ROWS``, the tensor cores' smallest row tile, which costs no weight
bytes. fp32 accumulation; output in the activation's dtype. Imported only on CUDA with Triton (or under Triton's
interpreter); ``checks.check_gemv_layer`` validates it before use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from dgprofile.probes.decode.compile_target import compile_target
from dgprofile.probes.decode.model import GEMV_MAX_ROWS
from dgprofile.probes.decode.triton_fused import gelu_tanh

# Output columns per program, widest first: the widest that still gives every multiprocessor a program. Two widths
# only (each is a separate compilation): at the model's shapes q/k/v (8192 and 9216 columns) take 32 on an
# H200's 132 or an H100's 114 multiprocessors, the rest (2816, 2112 GeGLU columns, 128 router rows) 16.
BLOCK_N_CHOICES = (32, 16)
# Weight columns per step: a one-row program's 128 threads each load 16 bytes per weight row per step
# (8 bf16 or, with fp8's 256-byte rows here, half a vector: a wider step would double the fp32 tile the
# element-wise path keeps); a dot program's tile matches the tensor cores' K steps.
BLOCK_K_ONE_ROW = 256
BLOCK_K_DOT = 128
NUM_WARPS = 4
DOT_STAGES = 4  # weight tiles in flight per dot program (16 KB each at 32 x 128 bf16 with the GeGLU's two)


@dataclass(frozen=True)
class GemvLaunch:
    """How one projection is tiled (one program per ``block_n`` output columns)."""

    block_n: int
    block_k: int
    use_dot: bool


def multiprocessors(device: torch.device) -> int:
    """The device's multiprocessor count (the compile target's in a compile-only worker; 4 under the
    interpreter, where programs run one after another)."""
    if device.type == "meta":
        return compile_target().multiprocessors
    if device.type != "cuda":
        return 4
    return torch.cuda.get_device_properties(device).multi_processor_count


def gemv_launch(rows: int, out_cols: int, sms: int) -> GemvLaunch:
    """The tile for ``rows`` rows giving ``out_cols`` outputs on a GPU of ``sms`` multiprocessors (every program
    takes the whole of K: no split, so no reduce kernel)."""
    if not 1 <= rows <= GEMV_MAX_ROWS:
        raise ValueError(f"the GEMV takes 1 to {GEMV_MAX_ROWS} rows, not {rows}")
    block_n = next((b for b in BLOCK_N_CHOICES if triton.cdiv(out_cols, b) >= sms), BLOCK_N_CHOICES[-1])
    use_dot = rows > 1
    return GemvLaunch(block_n=block_n, block_k=BLOCK_K_DOT if use_dot else BLOCK_K_ONE_ROW, use_dot=use_dot)


@triton.jit
def _gemv(x_ptr, w_ptr, scale_ptr, norm_ptr, out_ptr, rows, out_cols, width, up_offset, eps,
          HAS_SCALE: tl.constexpr, NORM: tl.constexpr, GEGLU: tl.constexpr, USE_DOT: tl.constexpr,
          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = offs_n < out_cols
    offs_m = tl.arange(0, BLOCK_M)
    m_ok = offs_m < rows
    offs_k0 = tl.arange(0, BLOCK_K)
    # Masked columns read row 0 (clamped), so the weight loads need no mask along N.
    w_rows = w_ptr + tl.where(n_ok, offs_n, 0).to(tl.int64)[:, None] * width
    up_rows = w_rows + up_offset.to(tl.int64) * width
    x_rows = x_ptr + offs_m.to(tl.int64)[:, None] * width
    if USE_DOT:
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
        acc_up = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    else:
        acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
        acc_up = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
    squares = tl.zeros([BLOCK_M, BLOCK_K], tl.float32)
    for start in range(0, width, BLOCK_K):
        offs_k = start + offs_k0
        k_ok = offs_k < width
        x = tl.load(x_rows + offs_k[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0.0).to(tl.float32)
        if NORM:
            squares += x * x
            x = x * tl.load(norm_ptr + offs_k, mask=k_ok, other=0.0).to(tl.float32)[None, :]
        w = tl.load(w_rows + offs_k[None, :], mask=k_ok[None, :], other=0.0)
        if GEGLU:
            w_up = tl.load(up_rows + offs_k[None, :], mask=k_ok[None, :], other=0.0)
        if USE_DOT:
            x_in = x.to(x_ptr.dtype.element_ty)
            acc = tl.dot(x_in, tl.trans(w.to(x_ptr.dtype.element_ty)), acc)
            if GEGLU:
                acc_up = tl.dot(x_in, tl.trans(w_up.to(x_ptr.dtype.element_ty)), acc_up)
        else:
            acc += w.to(tl.float32) * x
            if GEGLU:
                acc_up += w_up.to(tl.float32) * x
    if USE_DOT:
        y = acc
        y_up = acc_up
    else:
        y = tl.sum(acc, axis=1)[None, :]
        y_up = tl.sum(acc_up, axis=1)[None, :]
    if NORM:
        y = y * tl.rsqrt(tl.sum(squares, axis=1) / width + eps)[:, None]
    if HAS_SCALE:
        y = y * tl.load(scale_ptr + offs_n, mask=n_ok, other=0.0)[None, :]
        if GEGLU:
            y_up = y_up * tl.load(scale_ptr + up_offset + offs_n, mask=n_ok, other=0.0)[None, :]
    if GEGLU:
        y = gelu_tanh(y) * y_up
    out = out_ptr + offs_m.to(tl.int64)[:, None] * out_cols + offs_n[None, :]
    tl.store(out, y.to(out_ptr.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


def gemv(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None = None, *,
         norm_weight: torch.Tensor | None = None, eps: float = 0.0, geglu: bool = False,
         launch: GemvLaunch | None = None) -> torch.Tensor:
    """``x [M, K] @ weight[N, K]^T`` for M <= ``GEMV_MAX_ROWS``: ``weight`` in ``x``'s dtype, or fp8 e4m3 with ``scale``
    ``[1, N]`` (fp32, per output channel). ``norm_weight``: ``x`` RMS-normalised (``eps``) with it first.
    ``geglu``: ``weight`` is a fused [gate | up]; the output is ``gelu_tanh(gate) * up``, ``[M, N / 2]``.
    ``launch``: another tile than ``gemv_launch``'s rule picks (``scripts/bench_gemv.py --sweep`` times some)."""
    rows, width = x.shape
    if weight.shape[1] != width:
        raise ValueError(f"x has {width} columns, the weight {weight.shape[1]}")
    if geglu and weight.shape[0] % 2:
        raise ValueError("a GeGLU weight has an even number of rows ([gate | up])")
    if (weight.dtype == torch.float8_e4m3fn) != (scale is not None):
        raise ValueError("an fp8 weight comes with its per-channel scales, and only an fp8 weight")
    out_cols = weight.shape[0] // 2 if geglu else weight.shape[0]
    x, weight = x.contiguous(), weight.contiguous()
    launch = launch or gemv_launch(rows, out_cols, multiprocessors(x.device))
    out = torch.empty(rows, out_cols, device=x.device, dtype=x.dtype)
    _gemv[(triton.cdiv(out_cols, launch.block_n),)](
        x, weight, scale.contiguous() if scale is not None else x,
        norm_weight if norm_weight is not None else x, out, rows, out_cols, width, out_cols if geglu else 0, eps,
        HAS_SCALE=scale is not None, NORM=norm_weight is not None, GEGLU=geglu, USE_DOT=launch.use_dot,
        BLOCK_M=GEMV_MAX_ROWS if launch.use_dot else 1, BLOCK_N=launch.block_n, BLOCK_K=launch.block_k,
        num_warps=NUM_WARPS, **({"num_stages": DOT_STAGES} if launch.use_dot else {}))
    return out
