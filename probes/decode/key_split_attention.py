"""SDPA's fused attention kernels split along the keys, for passes whose query tiles leave most SMs idle.

A denoise pass at concurrency 1 attends 256 queries x 16 heads over a sliding layer's 1280 keys (head dim 256).
With the query heads of each KV group folded into the query length, that is 8 KV heads x 512 rows: at the 128 query
rows per program of the flash kernels (cuDNN's and FlashAttention-2's at head dim 256), 32 programs on the 132 SMs
of an H200, each over all 1280 keys (32 us of SDPA's kernel measured against an 8 us compute floor). Splitting the
keys into S spans gives 32 x S programs over 1280 / S keys each, run by the same kernel through torch's private
ops that also return each row's log-sum-exp; a second step merges the S partial outputs of each row, weighted by
exp(lse_s - max lse) (the flash-decoding merge). The spans are a batch dimension of one launch: K and V are a view
(``[c, kv_heads x S, keys / S, dim]``), only the queries are repeated S times.

No mask: offered for the denoise pass, where every cached and new key is visible. The ops' signatures differ
across torch releases (cuDNN's gained ``attn_bias`` and ``compute_log_sumexp`` in 2.5); arguments are passed by
name where the installed op has them, and an op that is missing or refuses the shape fails the method's check
(``checks.check_attention``), which leaves the method out.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

KeySplitBackend = Literal["cudnn", "flash"]
# Query rows per program of the flash kernels at head dim <= 256: FlashAttention-2 (torch's flash backend) takes
# 128 on sm80/sm90, and cuDNN's 32 programs at c = 1 took 32 us on an H200, what 128-row tiles at its per-SM rate
# predict (64-row tiles would have given 64 programs and half the time).
QUERY_TILE_ROWS = 128
KEY_TILE = 64  # keys per inner step of those kernels: a span is paid in whole steps
# What a program costs besides its key steps, in key steps: it loads its query tile and writes its output tile
# (128 rows x 256 x 2 bytes each, the bytes of one step's K and V tiles each). Without it, a pass already past one
# wave would be cut into one-step spans to shave its last wave.
PROGRAM_OVERHEAD_STEPS = 2
# Neither flash kernel here runs a larger head dimension (the global layers' 512).
MAX_HEAD_DIM = 256


def processors(device: torch.device) -> int:
    """Programs that run at once, one per SM: a GPU's SM count, a compile-only process's target GPU's, or a CPU's
    threads (the CPU flash kernel shares its (batch, head, query block) work items among them)."""
    if device.type == "meta":
        from dgprofile.probes.decode.compile_target import compile_target

        return compile_target().multiprocessors
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return torch.get_num_threads()


def key_splits(*, batches: int, rows: int, keys: int, processors: int) -> int:
    """How many spans to split ``keys`` into for ``batches`` (request x KV head) of ``rows`` query rows each.

    A program's time grows with its span's key steps (plus ``PROGRAM_OVERHEAD_STEPS``), and programs run in waves
    of ``processors``: the pass takes about waves x that. The split minimising it among the divisors of ``keys``
    (so that K and V stay a view), the fewest spans on a tie (each adds query copies and partial outputs to
    merge). At c = 1 on an H200 (32 programs, 1280 keys): 4 spans, 128 programs in one wave of 5 + 2 steps,
    against 20 + 2 unsplit; 5 spans would need a second wave. At c = 2, 2 spans; from c = 4 (128 programs) none:
    1 means no split pays."""
    programs = batches * math.ceil(rows / QUERY_TILE_ROWS)

    def cost(splits: int) -> int:
        return math.ceil(programs * splits / processors) * (math.ceil(keys // splits / KEY_TILE)
                                                             + PROGRAM_OVERHEAD_STEPS)

    divisors = [s for s in range(1, keys + 1) if keys % s == 0 and s <= processors]
    return min(divisors, key=lambda s: (cost(s), s))


def attention_with_lse(backend: KeySplitBackend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Unmasked attention, scale 1, through one fused kernel of SDPA: ``[batch, heads, rows, dim]`` outputs and
    the fp32 natural-log log-sum-exp of each row's scores, ``[batch, heads, rows]``."""
    aten = torch.ops.aten
    if backend == "cudnn":
        if q.device.type == "cpu":
            raise RuntimeError("cuDNN attention runs on CUDA devices only")
        out, lse = _call(aten._scaled_dot_product_cudnn_attention, q, k, v, attn_bias=None,
                         compute_log_sumexp=True, dropout_p=0.0, is_causal=False, return_debug_mask=False,
                         scale=1.0)[:2]
    elif q.device.type == "cpu":
        out, lse = _call(aten._scaled_dot_product_flash_attention_for_cpu, q, k, v, dropout_p=0.0,
                         is_causal=False, scale=1.0)[:2]
    else:
        out, lse = _call(aten._scaled_dot_product_flash_attention, q, k, v, dropout_p=0.0, is_causal=False,
                         return_debug_mask=False, scale=1.0)[:2]
    batch, heads, rows = q.shape[:3]
    return out, lse.reshape(batch, heads, -1)[..., :rows]  # cuDNN's is [batch, heads, rows, 1]


def _call(op: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **options: object) -> Any:
    """``op(q, k, v, ...)`` with the options this torch's schema names (a required one it lacks fails the call)."""
    names = {argument.name for argument in op.default._schema.arguments}
    return op(q, k, v, **{name: value for name, value in options.items() if name in names})


def key_split_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, group: int,
                        backend: KeySplitBackend, splits: int | None = None,
                        triton_merge: bool = False) -> torch.Tensor:
    """softmax(q k^T) v over every key, scale 1, for ``q [requests, kv_heads, group x new, dim]`` (query heads
    folded per KV group) against ``k``, ``v`` ``[requests, kv_heads, keys, dim]``, returned in the layout the
    output projection takes: ``[requests x new, heads x dim]``. ``splits``: spans of keys (a divisor of the key
    count; by default ``key_splits``'s). ``triton_merge``: the partials merged in one Triton kernel writing that
    layout (CUDA), else in torch ops followed by the layout copy."""
    requests, kv_heads, rows, dim = q.shape
    keys = k.shape[2]
    if splits is None:
        splits = key_splits(batches=requests * kv_heads, rows=rows, keys=keys, processors=processors(q.device))
    if keys % splits:
        raise ValueError(f"{splits} spans do not divide {keys} keys")
    span = keys // splits
    # Span s of KV head h is head h x S + s: a view of contiguous buffers. The queries are copied per span.
    repeated = q.unsqueeze(2).expand(requests, kv_heads, splits, rows, dim).reshape(
        requests, kv_heads * splits, rows, dim)
    partial, lse = attention_with_lse(backend, repeated, k.reshape(requests, kv_heads * splits, span, dim),
                                      v.reshape(requests, kv_heads * splits, span, dim))
    new = rows // group
    if triton_merge:
        from dgprofile.probes.decode.triton_decode_attention import merge_key_splits

        return merge_key_splits(partial, lse, splits=splits, group=group)
    weights = torch.softmax(lse.reshape(requests, kv_heads, splits, rows, 1), dim=2)
    out = (partial.reshape(requests, kv_heads, splits, rows, dim).float() * weights).sum(dim=2).to(q.dtype)
    return out.view(requests, kv_heads, group, new, dim).permute(0, 3, 1, 2, 4).reshape(
        requests * new, kv_heads * group * dim)
