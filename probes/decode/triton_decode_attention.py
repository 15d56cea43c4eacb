"""Attention of a few queries over a long KV cache, split along the keys (flash-decoding), in two Triton kernels.

An AR step has one query per request (times the query heads of a KV group, folded into the query rows), so a
kernel that gives each (request, KV head) one program runs a handful of programs on a GPU of a hundred SMs and
reads the cache at a fraction of its bandwidth. Serving engines split the keys instead: each program takes one
span of the cache, keeps an online softmax (running maximum, sum of exponentials, weighted sum of values) in
fp32, and leaves it as a partial; a second kernel merges the partials of each query row. Scale 1 and no mask:
the method is offered only where every cached key is visible (the AR step; sliding layers' buffers already hold
only the window).

Imported only on CUDA with Triton (or under Triton's interpreter); ``checks.check_attention`` validates it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from dgprofile.probes.decode.compile_target import compile_target
from dgprofile.probes.decode.triton_fused import NEGATIVE_LARGE

BLOCK_ROWS = 16  # query rows per program: the smallest tile the tensor-core dot takes
# Keys per step, by head dimension: a K and a V tile per pipeline stage must fit shared memory twice over.
BLOCK_KEYS = {256: 64, 512: 32}
DEFAULT_BLOCK_KEYS = 32
NUM_STAGES = 2
PROGRAMS_PER_SM = 4
# The merge's tile of partials per program (splits x columns of the head dimension), and its narrowest slice.
MERGE_TILE_ELEMENTS = 8192
MIN_MERGE_COLUMNS = 16


@triton.jit
def _split_attention(q_ptr, k_ptr, v_ptr, part_max, part_sum, part_acc, rows, keys, span, kv_heads,
                     k_stride_r, k_stride_h, k_stride_s, v_stride_r, v_stride_h, v_stride_s, splits,
                     DIM: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_KEYS: tl.constexpr, NEG: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)  # request x KV head
    row_block = tl.program_id(1)
    split = tl.program_id(2)
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
    acc = tl.zeros([BLOCK_ROWS, DIM], tl.float32)
    first = split * span
    for start in range(first, first + span, BLOCK_KEYS):
        offs_k = start + tl.arange(0, BLOCK_KEYS)
        key_ok = offs_k < keys
        k = tl.load(k_base + offs_k[:, None] * k_stride_s + offs_d[None, :], mask=key_ok[:, None], other=0.0)
        scores = tl.dot(q, tl.trans(k))
        scores = tl.where(key_ok[None, :], scores, NEG)
        new_m = tl.maximum(m, tl.max(scores, axis=1))
        rescale = tl.exp(m - new_m)
        p = tl.exp(scores - new_m[:, None])
        p = tl.where(key_ok[None, :], p, 0.0)
        s = s * rescale + tl.sum(p, axis=1)
        v = tl.load(v_base + offs_k[:, None] * v_stride_s + offs_d[None, :], mask=key_ok[:, None], other=0.0)
        acc = acc * rescale[:, None] + tl.dot(p.to(v.dtype), v)
        m = new_m
    out = (batch * rows + offs_r) * splits + split
    tl.store(part_max + out, m, mask=row_ok)
    tl.store(part_sum + out, s, mask=row_ok)
    tl.store(part_acc + out[:, None] * DIM + offs_d[None, :], acc, mask=row_ok[:, None])


@triton.jit
def _merge_splits(part_max, part_sum, part_acc, out_ptr, splits, DIM: tl.constexpr, BLOCK_SPLITS: tl.constexpr,
                  BLOCK_D: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)  # (request x KV head) x rows + row
    offs_s = tl.arange(0, BLOCK_SPLITS)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    ok = offs_s < splits
    m = tl.load(part_max + row * splits + offs_s, mask=ok, other=-float("inf"))
    row_max = tl.max(m, axis=0)
    weight = tl.where(ok, tl.exp(m - row_max), 0.0)
    total = tl.sum(tl.load(part_sum + row * splits + offs_s, mask=ok, other=0.0) * weight, axis=0)
    acc = tl.load(part_acc + (row * splits + offs_s[:, None]) * DIM + offs_d[None, :], mask=ok[:, None], other=0.0)
    out = tl.sum(acc * weight[:, None], axis=0) / total
    tl.store(out_ptr + row * DIM + offs_d, out.to(out_ptr.dtype.element_ty))


def _multiprocessors(device: torch.device) -> int:
    if device.type == "meta":  # compiling for a GPU without touching it (precompile.py)
        return compile_target().multiprocessors
    if device.type != "cuda":  # Triton's interpreter
        return 4
    return torch.cuda.get_device_properties(device).multi_processor_count


def split_kv_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v over every key, scale 1: ``q [requests, kv_heads, rows, dim]`` against ``k``, ``v``
    ``[requests, kv_heads, keys, dim]`` (last dimension contiguous), scores and softmax in fp32."""
    requests, kv_heads, rows, dim = q.shape
    keys = k.shape[2]
    q = q.contiguous()
    batches = requests * kv_heads
    row_blocks = triton.cdiv(rows, BLOCK_ROWS)
    block_keys = BLOCK_KEYS.get(dim, DEFAULT_BLOCK_KEYS)
    chunks = triton.cdiv(keys, block_keys)
    wanted = triton.cdiv(PROGRAMS_PER_SM * _multiprocessors(q.device), batches * row_blocks)
    splits = max(1, min(chunks, wanted))
    span = triton.cdiv(chunks, splits) * block_keys
    splits = triton.cdiv(keys, span)
    part_max, part_sum = (torch.empty(batches * rows * splits, device=q.device, dtype=torch.float32)
                          for _ in range(2))
    part_acc = torch.empty(batches * rows * splits, dim, device=q.device, dtype=torch.float32)
    _split_attention[(batches, row_blocks, splits)](
        q, k, v, part_max, part_sum, part_acc, rows, keys, span, kv_heads, *k.stride()[:3], *v.stride()[:3],
        splits, DIM=dim, BLOCK_ROWS=BLOCK_ROWS, BLOCK_KEYS=block_keys, NEG=NEGATIVE_LARGE,
        num_warps=8 if dim >= 512 else 4, num_stages=NUM_STAGES)
    out = torch.empty_like(q)
    block_splits = triton.next_power_of_2(splits)
    # A program merges one row over a slice of the head dimension: a whole row's partials (129 splits x 512 fp32
    # at an AR step's global layer on an H200) spilled out of registers, and its 16 programs took 73 us.
    block_d = max(MIN_MERGE_COLUMNS, min(dim, MERGE_TILE_ELEMENTS // block_splits))
    _merge_splits[(batches * rows, dim // block_d)](part_max, part_sum, part_acc, out, splits, DIM=dim,
                                                    BLOCK_SPLITS=block_splits, BLOCK_D=block_d, num_warps=4)
    return out
