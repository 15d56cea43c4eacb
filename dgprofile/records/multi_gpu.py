"""What `check --gpus N|all` measured across several GPUs: each GPU's limits (measured on all of them at once), the
all-reduce sweep at the message sizes tensor parallelism sends, and tensor-parallel decoder layers timed for real.

Produced by ``dgprofile.probes.multi_gpu``; the topology between the GPUs is part of the machine record (each
``NvidiaGpu``'s ``peer_links``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dgprofile.records.limits import Limits
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable

CollectiveBackend = Literal["nccl", "gloo"]
# How the collectives were launched: one call at a time from Python (eager, as `torch.distributed` and engines
# without CUDA graphs issue them), or replayed from a captured CUDA graph.
LaunchMode = Literal["eager", "cuda-graph"]
# Which tensor-parallel message a size stands for: an AR step sends one token per request, a DiffusionGemma
# denoise or commit pass a 256-token canvas per request.
MessageKind = Literal["ar-step", "canvas"]


@dataclass(frozen=True)
class GpuLimits:
    """One GPU's limits, measured in its own process while every other GPU measured its own."""

    gpu_index: int
    device: str
    limits: Limits | Unavailable


@dataclass(frozen=True)
class AllReducePoint:
    """One all-reduce size: ``tokens`` rows of the hidden state summed over every GPU.

    ``algorithm_bytes_per_s`` is the message over the time; ``bus_bytes_per_s`` scales it by 2 (n - 1) / n, the
    share of the message each GPU sends and receives in a ring all-reduce, so that it compares with the link's
    bandwidth whatever n is (nccl-tests' "busbw").
    """

    message_kind: MessageKind
    concurrency: int
    tokens: int
    message_bytes: int
    timing: Timing
    algorithm_bytes_per_s: float
    bus_bytes_per_s: float


@dataclass(frozen=True)
class AllReduceSweep:
    """All-reduces of ``dtype`` ``[tokens x hidden_size]`` over ``world_size`` GPUs, every rank timing its own
    calls through the harness; the figures are rank 0's (the ranks agree on every sample's length)."""

    backend: CollectiveBackend
    launch_mode: LaunchMode
    world_size: int
    dtype: str
    hidden_size: int
    points: tuple[AllReducePoint, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TensorParallelLayer:
    """One decoder layer run tensor-parallel over ``tensor_parallel`` GPUs (attention heads, the dense MLP and
    every expert split between them, ``all_reduces`` all-reduces of ``all_reduce_bytes`` together per layer), and
    the same layer's shapes timed whole on one GPU with the same code, so the two differ only in the split and
    the link."""

    tensor_parallel: int
    layer_type: Literal["sliding", "global"]
    pass_kind: Literal["ar-step", "dg-denoise"]
    concurrency: int
    tokens: int
    context_tokens: int
    launch_mode: LaunchMode
    timing: Timing
    single_gpu_timing: Timing
    all_reduces: int
    all_reduce_bytes: int


@dataclass(frozen=True)
class MultiGpuRun:
    """Everything measured across the GPUs ``gpu_indices`` (a failing part is unavailable with its reason)."""

    gpu_indices: tuple[int, ...]
    backend: CollectiveBackend
    per_gpu_limits: tuple[GpuLimits, ...] | Unavailable
    all_reduce: AllReduceSweep | Unavailable  # launched eagerly, one call at a time
    all_reduce_in_graphs: AllReduceSweep | Unavailable  # replayed from CUDA graphs
    tensor_parallel_layers: tuple[TensorParallelLayer, ...] | Unavailable
    model_id: str
    seconds_taken: float
    notes: tuple[str, ...] = ()


ONE_GPU_MEASURED = Unavailable("not measured: check measured one GPU (`check --gpus N` or `--gpus all` measures "
                               "every GPU and the links between them)")
