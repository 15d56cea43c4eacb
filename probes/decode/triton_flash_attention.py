"""Attention of many queries over every key, without a mask, in one Triton kernel (flash attention's forward).

A denoise pass has 256 new tokens per request, each attending to the cached context and the whole canvas. With
the query heads of a KV group folded into the query rows (``[requests, kv_heads, group x new, dim]``, as the q/k/v
prologue writes them), one program takes a block of a KV head's query rows and walks over all its keys, keeping
an online softmax (running maximum and sum of exponentials, in fp32) and the weighted sum of the values in
registers, so the [queries x keys] scores never reach memory (Dao et al., "FlashAttention", 2022,
https://arxiv.org/abs/2205.14135). Programs of one KV head run next to each other, so its K/V tiles come from L2
after the first read.

At head dim 512 a program's accumulator (rows x 512 fp32) and its K/V tiles do not all fit one SM's registers and
shared memory, so the value columns are split across programs: each computes the full q k^T of its rows (the
scores need every column of q and k) and the output for its slice of the value columns. Scale 1 (Gemma 4
normalises q and k instead), no mask: the method is offered only where every key is visible (the denoise pass;
sliding layers' buffers already hold only the window).

Imported only on CUDA with Triton (or under Triton's interpreter); ``checks.check_attention`` validates it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from dgprofile.probes.decode.triton_decode_attention import multiprocessors
from dgprofile.probes.decode.triton_fused import NEGATIVE_LARGE

LOG2_E: tl.constexpr = tl.constexpr(1.4426950408889634)  # exp(x) = exp2(x log2 e): exp2 is a native instruction


@dataclass(frozen=True)
class FlashTiles:
    """How one launch divides the work: query rows and keys per step of a program, the value columns (of the
    head dimension) each program writes, and the kernel's warps and pipeline stages."""

    block_rows: int
    block_keys: int
    value_columns: int
    num_warps: int
    num_stages: int


# Per head dimension, tiles whose Q tile plus ``num_stages`` K and V tiles fit an H100/H200's 227 KB of shared
# memory per block (at 256, Q 32 KB + 2 x (K 32 KB + V 32 KB); at 512, Q 64 KB + 2 x (K 32 KB + V 16 KB)) and
# whose fp32 accumulator leaves 8 warps room for the rest in registers (64 x 256 fp32 = 64 registers a thread):
# compiled for sm_90 they take 230 and 197 registers a thread and spill none, where 4 warps at head dim 256, or
# all 512 value columns in one program, spill.
DEFAULT_TILES = {
    256: FlashTiles(block_rows=64, block_keys=64, value_columns=256, num_warps=8, num_stages=2),
    512: FlashTiles(block_rows=64, block_keys=32, value_columns=256, num_warps=8, num_stages=2),
}
# Other head dimensions (the interpreted tests' small ones): tiles of this many rows and keys, the whole head per
# program.
SMALL_BLOCK = 16
# The narrowest value slice a program may be given to fill the GPU, per head dimension: at 256 one more split
# (a sliding layer at concurrency 1); at 512 none beyond the default, since each split computes the scores over all
# 512 columns again (and the global layer's smallest launch, at concurrency 1, already fills an H200). The
# benchmark's small-shape check then compiles the same variants as the real shapes.
MIN_VALUE_COLUMNS = {256: 128, 512: 256}


@triton.jit
def _attend_keys(q, k_base, v_base, start, keys, m, s, acc, k_stride_s, v_stride_s, value_start,
                 DIM: tl.constexpr, VALUE_COLUMNS: tl.constexpr, BLOCK_KEYS: tl.constexpr, MASKED: tl.constexpr,
                 NEG: tl.constexpr):
    """One step of keys: scores in fp32 (log2 domain), the online softmax update, and the values' weighted sum.
    ``MASKED`` only on the last, partial step."""
    offs_k = start + tl.arange(0, BLOCK_KEYS)
    offs_d = tl.arange(0, DIM)
    offs_v = value_start + tl.arange(0, VALUE_COLUMNS)
    key_ok = offs_k < keys
    if MASKED:
        k = tl.load(k_base + offs_k[:, None] * k_stride_s + offs_d[None, :], mask=key_ok[:, None], other=0.0)
        v = tl.load(v_base + offs_k[:, None] * v_stride_s + offs_v[None, :], mask=key_ok[:, None], other=0.0)
    else:
        k = tl.load(k_base + offs_k[:, None] * k_stride_s + offs_d[None, :])
        v = tl.load(v_base + offs_k[:, None] * v_stride_s + offs_v[None, :])
    scores = tl.dot(q, tl.trans(k)) * LOG2_E
    if MASKED:
        scores = tl.where(key_ok[None, :], scores, NEG)
    new_m = tl.maximum(m, tl.max(scores, axis=1))
    rescale = tl.exp2(m - new_m)
    p = tl.exp2(scores - new_m[:, None])
    s = s * rescale + tl.sum(p, axis=1)
    acc = acc * rescale[:, None] + tl.dot(p.to(v.dtype), v)
    return new_m, s, acc


@triton.jit(do_not_specialize=["rows", "keys"])  # one compilation for every canvas and context length
def _flash_attention(q_ptr, k_ptr, v_ptr, out_ptr, rows, keys, kv_heads, k_stride_r, k_stride_h, k_stride_s,
                     v_stride_r, v_stride_h, v_stride_s, DIM: tl.constexpr, VALUE_COLUMNS: tl.constexpr,
                     BLOCK_ROWS: tl.constexpr, BLOCK_KEYS: tl.constexpr, NEG: tl.constexpr):
    row_block = tl.program_id(0)
    value_start = tl.program_id(1) * VALUE_COLUMNS
    batch = tl.program_id(2).to(tl.int64)  # request x KV head
    request = batch // kv_heads
    kv_head = batch % kv_heads
    offs_r = row_block * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    offs_d = tl.arange(0, DIM)
    row_ok = offs_r < rows
    q = tl.load(q_ptr + (batch * rows + offs_r[:, None]) * DIM + offs_d[None, :], mask=row_ok[:, None], other=0.0)
    k_base = k_ptr + request * k_stride_r + kv_head * k_stride_h
    v_base = v_ptr + request * v_stride_r + kv_head * v_stride_h
    m = tl.full([BLOCK_ROWS], NEG, tl.float32)
    s = tl.zeros([BLOCK_ROWS], tl.float32)
    acc = tl.zeros([BLOCK_ROWS, VALUE_COLUMNS], tl.float32)
    whole = keys - keys % BLOCK_KEYS
    for start in range(0, whole, BLOCK_KEYS):
        m, s, acc = _attend_keys(q, k_base, v_base, start, keys, m, s, acc, k_stride_s, v_stride_s, value_start,
                                 DIM, VALUE_COLUMNS, BLOCK_KEYS, False, NEG)
    if whole < keys:
        m, s, acc = _attend_keys(q, k_base, v_base, whole, keys, m, s, acc, k_stride_s, v_stride_s, value_start,
                                 DIM, VALUE_COLUMNS, BLOCK_KEYS, True, NEG)
    offs_v = value_start + tl.arange(0, VALUE_COLUMNS)
    out = acc / s[:, None]
    tl.store(out_ptr + (batch * rows + offs_r[:, None]) * DIM + offs_v[None, :], out.to(out_ptr.dtype.element_ty),
             mask=row_ok[:, None])


def flash_tiles(dim: int, rows: int, batches: int, sms: int) -> FlashTiles:
    """The tiles for a launch: the head dimension's defaults, with the value columns split further (down to
    ``MIN_VALUE_COLUMNS``) while twice the programs still fit one wave on the GPU's SMs. Each split computes its
    rows' scores again, so it pays only where it fills idle SMs: a denoise pass's sliding layer at concurrency 1
    (8 KV heads x 8 row blocks = 64 programs) splits into 128 on an H200's 132 SMs."""
    tiles = DEFAULT_TILES.get(dim, FlashTiles(SMALL_BLOCK, SMALL_BLOCK, dim, num_warps=4, num_stages=1))
    row_blocks = triton.cdiv(rows, tiles.block_rows)
    columns = tiles.value_columns
    narrowest = MIN_VALUE_COLUMNS.get(dim, dim)
    while 2 * batches * row_blocks * (dim // columns) <= sms and columns // 2 >= narrowest:
        columns //= 2
    return FlashTiles(tiles.block_rows, tiles.block_keys, columns, tiles.num_warps, tiles.num_stages)


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tiles: FlashTiles | None = None
                    ) -> torch.Tensor:
    """softmax(q k^T) v over every key, scale 1: ``q [requests, kv_heads, rows, dim]`` (the query heads of a KV
    group folded into the rows) against ``k``, ``v`` ``[requests, kv_heads, keys, dim]`` (last dimension
    contiguous), scores and softmax in fp32, the probabilities rounded once to the values' dtype. ``tiles``
    overrides ``flash_tiles``' choice (to compare tilings)."""
    requests, kv_heads, rows, dim = q.shape
    keys = k.shape[2]
    q = q.contiguous()
    batches = requests * kv_heads
    tiles = tiles or flash_tiles(dim, rows, batches, multiprocessors(q.device))
    if dim % tiles.value_columns:
        raise ValueError(f"value slices of {tiles.value_columns} columns do not divide head dim {dim}")
    out = torch.empty_like(q)
    grid = (triton.cdiv(rows, tiles.block_rows), dim // tiles.value_columns, batches)
    _flash_attention[grid](q, k, v, out, rows, keys, kv_heads, *k.stride()[:3], *v.stride()[:3], DIM=dim,
                           VALUE_COLUMNS=tiles.value_columns, BLOCK_ROWS=tiles.block_rows,
                           BLOCK_KEYS=tiles.block_keys, NEG=NEGATIVE_LARGE, num_warps=tiles.num_warps,
                           num_stages=tiles.num_stages)
    return out
