"""All-reduce sweeps as records: the NCCL figures recorded on the lent 2x H200 (eager from Python, CUDA events
over 50 calls, bf16 [tokens x 2816]): 1 token 67 us, 2 to 8 tokens 43-47 us, 256 tokens 46 us, 1024 49 us, 2048
59 us. The range 43-47 us for 2-8 tokens is kept as its two ends (2 and 8 tokens). The same pair's sweep replayed
from CUDA graphs (ten all-reduces per graph, `check --gpus all` on 2026-11-29), and that run's split layers."""

from __future__ import annotations

from result_factory import timing

from dgprofile.records.multi_gpu import AllReducePoint, AllReduceSweep, TensorParallelLayer

HIDDEN = 2816
H200_PAIR_MICROSECONDS = {1: 67.0, 2: 43.0, 8: 47.0, 256: 46.0, 1024: 49.0, 2048: 59.0}
H200_PAIR_GRAPH_MICROSECONDS = {1: 9.8, 2: 10.7, 4: 10.8, 8: 10.7, 256: 19.3, 512: 30.4, 768: 34.2, 1024: 38.0,
                                1280: 43.7, 1536: 47.5, 1792: 52.5, 2048: 58.0}
# (layer type, pass, concurrency): (whole layer on one GPU, split over the pair), microseconds, CUDA graphs.
H200_PAIR_SPLIT_LAYERS_MICROSECONDS = {("sliding", "ar-step", 1): (112.4, 122.2),
                                       ("global", "ar-step", 1): (127.5, 127.8),
                                       ("sliding", "dg-denoise", 1): (504.2, 380.9),
                                       ("global", "dg-denoise", 1): (590.3, 418.6),
                                       ("sliding", "dg-denoise", 4): (756.4, 650.2),
                                       ("global", "dg-denoise", 4): (1230.9, 842.8)}


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


def h200_pair_graph_sweep() -> AllReduceSweep:
    return AllReduceSweep(backend="nccl", launch_mode="cuda-graph", world_size=2, dtype="bf16", hidden_size=HIDDEN,
                          points=tuple(point(tokens, us * 1e-6)
                                       for tokens, us in H200_PAIR_GRAPH_MICROSECONDS.items()))


def h200_pair_split_layers() -> tuple[TensorParallelLayer, ...]:
    return tuple(split_layer(layer_type, kind=kind, concurrency=concurrency, whole_seconds=whole * 1e-6,
                             split_seconds=split * 1e-6, launch_mode="cuda-graph")
                 for (layer_type, kind, concurrency), (whole, split) in H200_PAIR_SPLIT_LAYERS_MICROSECONDS.items())


def split_layer(layer_type: str, *, kind: str = "dg-denoise", concurrency: int = 1, tokens: int | None = None,
                whole_seconds: float, split_seconds: float, launch_mode: str = "eager") -> TensorParallelLayer:
    tokens = tokens if tokens is not None else concurrency * (1 if kind == "ar-step" else 256)
    return TensorParallelLayer(tensor_parallel=2, layer_type=layer_type, pass_kind=kind,  # type: ignore[arg-type]
                               concurrency=concurrency, tokens=tokens, context_tokens=4096,
                               launch_mode=launch_mode,  # type: ignore[arg-type]
                               timing=timing(split_seconds), single_gpu_timing=timing(whole_seconds),
                               all_reduces=2, all_reduce_bytes=3 * tokens * HIDDEN * 2)
