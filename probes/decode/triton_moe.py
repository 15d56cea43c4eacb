"""The routed experts as one Triton GEMM per projection, the way fused-MoE kernels in serving engines work.

Assignments are laid out in blocks of ``block_rows`` rows, each block holding one expert's tokens (padding rows
marked -1). A program multiplies one block by one ``block_n``-column slice of its expert's weight, gathering the
token rows itself, so each expert's weights are read once when its tokens fit one block. FP8 weights multiply
per-token FP8 activations on the tensor cores, with the per-token and per-channel scales applied to the
accumulator: the activations come quantised from the kernel that produced them (the fused layer's pre-norm), or
are quantised in one Triton kernel (``triton_fused.quantize_rows``); the gate/up projection's per-token scales are
gathered with its token rows. With ``fuse_geglu`` the gate/up projection keeps a gate and an up accumulator per
program (the same columns of both halves of the fused weight) and writes ``gelu(gate) * up`` directly, so the
activation between the projections is written once at half width and no separate GeGLU kernel runs (in FP8 it is
then quantised in one kernel: a program holds a slice of a row's columns, not its largest magnitude); without it,
FP8 experts run the GeGLU and its quantisation in one kernel (``triton_fused.geglu_quantized``). Imported only on
CUDA with Triton; ``checks.check_experts`` validates it before use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from dgprofile.probes.decode.compile_target import compile_target
from dgprofile.probes.decode.model import (
    Activation,
    Experts,
    Routing,
    component,
    geglu,
    quantize,
    unquantized,
)
from dgprofile.probes.decode.triton_fused import geglu_quantized, gelu_tanh

BLOCK_N = 128
# Columns per half with the GeGLU epilogue: two accumulators of this width stream as many weight bytes per program
# as one of BLOCK_N, and the expert width (704) is a multiple of it.
GEGLU_BLOCK_N = 64
# Pipelining depth: as deep as shared memory allows, up to this (5 was fastest on an H200; 3 to 5 within 3%).
MAX_STAGES = 5
MIN_STAGES = 2
EPILOGUE_RESERVE_BYTES = 8192


@triton.jit
def _expert_gemm(a_ptr, a_stride, rows_ptr, w_ptr, w_stride_e, w_stride_n, out_ptr, out_stride, block_expert_ptr,
                 a_scale_ptr, w_scale_ptr, n_cols, k_dim, GATHER: tl.constexpr, FP8: tl.constexpr,
                 GEGLU: tl.constexpr, EVEN_N: tl.constexpr, EVEN_K: tl.constexpr, BM: tl.constexpr,
                 BN: tl.constexpr, BK: tl.constexpr):
    # Column slices vary fastest, so programs running at once stream neighbouring rows of one expert's weight
    # (8% faster for the down projection on an H200 than expert-major order).
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    expert = tl.load(block_expert_ptr + pid_m).to(tl.int64)
    offs_m = pid_m * BM + tl.arange(0, BM)
    offs_n = pid_n * BN + tl.arange(0, BN)
    offs_k = tl.arange(0, BK)
    # A width that is no multiple of BN (an expert split for tensor parallelism: 704 / 2 = 352) masks the last
    # slice's columns; clamped offsets keep its loads inside the weight.
    n_ok = offs_n < n_cols
    if not EVEN_N:
        offs_n = tl.where(n_ok, offs_n, 0)
    if GATHER:
        rows = tl.load(rows_ptr + offs_m)
    else:
        rows = offs_m.to(tl.int64)
    valid = rows >= 0
    rows = tl.where(valid, rows, 0)
    a_ptrs = a_ptr + rows[:, None] * a_stride + offs_k[None, :]
    w_ptrs = w_ptr + expert * w_stride_e + offs_n[None, :].to(tl.int64) * w_stride_n + offs_k[:, None]
    acc = tl.zeros([BM, BN], dtype=tl.float32)
    if GEGLU:  # n_cols is the output width; the up half of the weight starts n_cols rows further
        up_ptrs = w_ptrs + n_cols * w_stride_n
        up = tl.zeros([BM, BN], dtype=tl.float32)
    for k in range(0, k_dim, BK):
        if EVEN_K:
            a = tl.load(a_ptrs, mask=valid[:, None], other=0.0)
            w = tl.load(w_ptrs)
        else:  # the last step of an inner dimension that is no multiple of BK (a split expert's 352)
            k_ok = offs_k + k < k_dim
            a = tl.load(a_ptrs, mask=valid[:, None] & k_ok[None, :], other=0.0)
            w = tl.load(w_ptrs, mask=k_ok[:, None], other=0.0)
        acc += tl.dot(a, w)
        a_ptrs += BK
        w_ptrs += BK
        if GEGLU:
            if EVEN_K:
                up += tl.dot(a, tl.load(up_ptrs))
            else:
                up += tl.dot(a, tl.load(up_ptrs, mask=k_ok[:, None], other=0.0))
            up_ptrs += BK
    if FP8:
        a_scale = tl.load(a_scale_ptr + rows)
        w_scale = tl.load(w_scale_ptr + expert * (2 * n_cols if GEGLU else n_cols) + offs_n)
        acc = acc * a_scale[:, None] * w_scale[None, :]
        if GEGLU:
            up_scale = tl.load(w_scale_ptr + expert * 2 * n_cols + n_cols + offs_n)
            up = up * a_scale[:, None] * up_scale[None, :]
    if GEGLU:
        acc = gelu_tanh(acc) * up
    out_ptrs = out_ptr + offs_m[:, None].to(tl.int64) * out_stride + offs_n[None, :]
    if EVEN_N:
        tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty))
    else:
        tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=n_ok[None, :])


@dataclass(frozen=True)
class ExpertTiles:
    """How one expert projection is launched: output columns (per half, with the GeGLU epilogue) and inner step
    per program, warps, and pipeline depth (0: as deep as shared memory allows; a depth that does not fit is cut
    to the deepest that does)."""

    block_n: int
    block_k: int
    num_warps: int
    num_stages: int = 0


def expert_tiles(*, block_m: int, k_dim: int, fuse_geglu: bool, fp8: bool) -> ExpertTiles:
    """The launch the benchmark uses, from sweeps of column widths, inner steps, warps and pipeline depths at the
    real expert shapes on an H200 (``scripts/bench_expert_gemm.py --sweep``, 2026-11-29).

    Blocks of up to 32 rows (the AR step, the denoise pass at concurrency 1): 4 warps, an inner step of 128 where
    it divides the inner dimension, else 64 with the last step masked (a narrower step streams the weight in
    shorter bursts); fp8's down projection (inner 704) steps 128 with the last step masked, a row of 128 bytes as
    bf16's 64 elements are (81 against 88 us at 256 tokens), and fp8 pipelines 4 steps deep, not 5 (down 74
    against 80 us, gate/up 128.5 against 131). Blocks of 64 rows (the denoise pass at concurrency 8): 4 warps; the
    GeGLU epilogue 3 steps deep, bf16 stepping 64 and fp8 128 (at 2048 tokens bf16 400 against 510 us with 8 warps,
    a step of 128 and the deepest pipeline; fp8 222 against 329); down steps 64, bf16 in slices of 256 columns
    (229 against 280 us; fp8 164 against 171). fp8's gate/up without the epilogue was not swept: it keeps 8 warps
    there."""
    block_n = GEGLU_BLOCK_N if fuse_geglu else BLOCK_N
    block_k = 128 if k_dim % 128 == 0 else 64
    if block_m <= 32:
        return ExpertTiles(block_n=block_n, block_k=128 if fp8 and not fuse_geglu else block_k, num_warps=4,
                           num_stages=4 if fp8 else 0)
    if fuse_geglu:
        return ExpertTiles(block_n=block_n, block_k=128 if fp8 else 64, num_warps=4, num_stages=3)
    if k_dim % 128 == 0:  # gate/up without the epilogue
        return ExpertTiles(block_n=block_n, block_k=block_k, num_warps=8)
    return ExpertTiles(block_n=block_n if fp8 else 2 * BLOCK_N, block_k=64, num_warps=4)


def expert_projection(x: Activation, rows: torch.Tensor | None, weight: torch.Tensor, scale: torch.Tensor | None,
                      routing: Routing, out_rows: int, fuse_geglu: bool = False,
                      tiles: ExpertTiles | None = None) -> torch.Tensor:
    """One projection of the routed experts (gate/up, with the GeGLU epilogue if ``fuse_geglu``, or down) over the
    block layout, launched with ``tiles`` or the benchmark's ``expert_tiles``."""
    experts, n_cols, k_dim = weight.shape
    if fuse_geglu:
        n_cols //= 2
    a_scale = None
    if scale is not None:  # FP8 weights: FP8 activations, one scale per row
        quantized = quantize(x, fused=True)
        a, a_scale = quantized.values, quantized.scales.view(-1)
    else:
        a = unquantized(x)
    out = torch.empty(out_rows, n_cols, device=a.device, dtype=torch.bfloat16 if scale is not None else a.dtype)
    block_m = routing.block_rows
    tiles = tiles or expert_tiles(block_m=block_m, k_dim=k_dim, fuse_geglu=fuse_geglu, fp8=scale is not None)
    block_n, block_k = tiles.block_n, tiles.block_k
    grid = (triton.cdiv(n_cols, block_n), routing.block_expert.numel())
    depth = _stages(a.device, block_m, block_n * (2 if fuse_geglu else 1), block_k, weight.element_size(),
                    tiles.num_stages)
    _expert_gemm[grid](a, a.stride(0), rows if rows is not None else routing.block_expert, weight,
                       weight.stride(0), weight.stride(1), out, out.stride(0), routing.block_expert,
                       a_scale if a_scale is not None else out, scale if scale is not None else out, n_cols, k_dim,
                       GATHER=rows is not None, FP8=scale is not None, GEGLU=fuse_geglu,
                       EVEN_N=n_cols % block_n == 0, EVEN_K=k_dim % block_k == 0, BM=block_m, BN=block_n,
                       BK=block_k, num_warps=tiles.num_warps, num_stages=depth)
    return out


_SHARED_MEMORY: dict[int, int] = {}


def _stages(device: torch.device, block_m: int, weight_columns: int, block_k: int, element_bytes: int,
            named: int) -> int:
    """The pipeline depth for this GPU's shared memory per block (``pipeline_depth``)."""
    if device.type == "meta":  # compiling for a GPU without touching it (precompile.py)
        shared_memory = compile_target().shared_memory_per_block_bytes
    elif device.type != "cuda":  # Triton's interpreter: no shared memory to fit
        return named or MAX_STAGES
    else:
        shared_memory = shared_memory_per_block(device)
    return pipeline_depth(shared_memory, block_m=block_m, weight_columns=weight_columns, block_k=block_k,
                          element_bytes=element_bytes, named=named)


def pipeline_depth(shared_memory_bytes: int, *, block_m: int, weight_columns: int, block_k: int,
                   element_bytes: int, named: int = 0) -> int:
    """The deepest pipeline (at most ``MAX_STAGES``) whose buffers fit ``shared_memory_bytes`` less a reserve for
    the epilogue, activations counted at 2 bytes (FP8 ones take 1); a ``named`` depth is kept where it fits and cut
    to that where it does not (a launch tuned on an H200 still compiles on a GPU with less shared memory)."""
    per_stage = block_m * block_k * 2 + weight_columns * block_k * element_bytes
    deepest = max(MIN_STAGES, min(MAX_STAGES, (shared_memory_bytes - EPILOGUE_RESERVE_BYTES) // per_stage))
    return min(deepest, named) if named else deepest


def shared_memory_per_block(device: torch.device) -> int:
    """The most shared memory a Triton program may use on this CUDA device (read once per device)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _SHARED_MEMORY:
        _SHARED_MEMORY[index] = triton.runtime.driver.active.utils.get_device_properties(index)["max_shared_mem"]
    return _SHARED_MEMORY[index]


def triton_expert_rows(experts: Experts, x: Activation, routing: Routing,
                       fuse_geglu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Expert output rows in the block layout, and the row of each assignment (``routing.block_position``)."""
    layout_rows = routing.block_token.numel()
    with component("experts.gate_up"):
        h = expert_projection(x, routing.block_token, experts.gate_up, experts.gate_up_scale, routing, layout_rows,
                              fuse_geglu=fuse_geglu)
        activation: Activation = h
        if not fuse_geglu:
            activation = geglu_quantized(h) if experts.fp8 else geglu(h)
    with component("experts.down"):  # an FP8 GeGLU epilogue's rows are quantised here, in one kernel
        y = expert_projection(activation, None, experts.down, experts.down_scale, routing, layout_rows)
    return y, routing.block_position
