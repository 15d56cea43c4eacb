"""All-reduce sweeps as records: the NCCL figures recorded on the lent 2x H200 (eager from Python, CUDA events
over 50 calls, bf16 [tokens x 2816]): 1 token 67 us, 2 to 8 tokens 43-47 us, 256 tokens 46 us, 1024 49 us, 2048
59 us. The range 43-47 us for 2-8 tokens is kept as its two ends (2 and 8 tokens)."""

from __future__ import annotations

from result_factory import timing

from dgprofile.records.multi_gpu import AllReducePoint, AllReduceSweep, TensorParallelLayer

HIDDEN = 2816
H200_PAIR_MICROSECONDS = {1: 67.0, 2: 43.0, 8: 47.0, 256: 46.0, 1024: 49.0, 2048: 59.0}


def point(tokens: int, seconds: float, world: int = 2, hidden: int = HIDDEN) -> AllReducePoint:
    message = tokens * hidden * 2
    canvas = tokens >= 256
    return AllReducePoint(message_kind="canvas" if canvas else "ar-step",
                          concurrency=tokens // 256 if canvas else tokens, tokens=tokens, message_bytes=message,
                          timing=timing(seconds, cv=0.02), algorithm_bytes_per_s=message / seconds,
                          bus_bytes_per_s=message / seconds * 2 * (world - 1) / world)


def h200_pair_sweep() -> AllReduceSweep:
    return AllReduceSweep(backend="nccl", launch_mode="eager", world_size=2, dtype="bf16", hidden_size=HIDDEN,
                          points=tuple(point(tokens, us * 1e-6) for tokens, us in H200_PAIR_MICROSECONDS.items()))


def split_layer(layer_type: str, *, kind: str = "dg-denoise", tokens: int = 256, whole_seconds: float,
                split_seconds: float) -> TensorParallelLayer:
    return TensorParallelLayer(tensor_parallel=2, layer_type=layer_type, pass_kind=kind,  # type: ignore[arg-type]
                               concurrency=1, tokens=tokens, context_tokens=4096, launch_mode="eager",
                               timing=timing(split_seconds), single_gpu_timing=timing(whole_seconds),
                               all_reduces=2, all_reduce_bytes=3 * tokens * HIDDEN * 2)
