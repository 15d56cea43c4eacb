"""Measurements across several GPUs, one process per GPU: limits on every GPU at once, the all-reduce sweep at the
message sizes tensor parallelism sends, and tensor-parallel decoder layers timed for real.

* Limits: every GPU measures its own (``measure_limits``) in its own process, all starting together, so a
  throttled or slower card shows beside the others rather than alone on an idle machine.
* Collectives: ``torch.distributed`` over NCCL on NVIDIA and AMD GPUs, gloo on the CPU (where the tests run the
  same code with real processes and real collectives at small shapes). All-reduces of ``dtype`` ``[tokens x
  hidden]`` with tokens = c (an AR step) and 256 c (a canvas), c = 1..8, twice on GPUs: launched one call at a
  time from Python (as eager engines issue them) and replayed from CUDA graphs (as vLLM and SGLang capture their
  decode passes); then one sliding and one global layer split over 2 (and 4, where there are as many GPUs) ranks
  (``decode/tensor_parallel.py``), beside the same layer whole on one GPU. On a GPU the layers run the decode
  benchmark's kernels and are replayed from CUDA graphs, all-reduces included, as `check`'s passes are timed.

Every figure comes from the harness (``harness.measure``: warm-up, calibrated loops, median and spread; CUDA
events on GPUs). A collective must be called as often on every rank, so each rank's harness reads rank 0's
clock and timer readings (``AgreedTimer``): all ranks take the same calibration and sampling decisions.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from dgprofile.probes.harness import (
    Budget,
    Prepared,
    Timer,
    cuda_graph,
    graph_or_eager,
    make_current,
    measure,
    timer_for,
)
from dgprofile.records.limits import Limits
from dgprofile.records.machine import Machine
from dgprofile.records.multi_gpu import (
    AllReducePoint,
    AllReduceSweep,
    CollectiveBackend,
    GpuLimits,
    LaunchMode,
    MessageKind,
    MultiGpuRun,
    TensorParallelLayer,
)
from dgprofile.records.timing import TimerName, Timing
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import DEFAULT_MODEL, LayerType, ModelConfig, load_model_config

ALL_REDUCE_CONCURRENCIES = (1, 2, 3, 4, 5, 6, 7, 8)
LAYER_CONTEXT_TOKENS = 4096
# (pass, concurrency) of the layers timed split and whole: an AR step (latency-bound, where the all-reduces'
# latency weighs most) and denoise passes of one and four canvases (where DiffusionGemma spends its time).
LayerPassKind = Literal["ar-step", "dg-denoise"]
LAYER_PASSES: tuple[tuple[LayerPassKind, int], ...] = (("ar-step", 1), ("dg-denoise", 1), ("dg-denoise", 4))
LAYER_TYPES: tuple[LayerType, ...] = ("sliding", "global")
TENSOR_PARALLEL_SIZES = (2, 4)
SEED = 20261129
# A run that has not finished in this long is stuck (a rank died inside a collective): the others are stopped.
PROCESS_TIMEOUT_SECONDS = 600.0
# Untimed all-reduces of every size before the sweep: without them an H200 pair's first size (one token) took
# 151 us against 38 us for the next.
ALL_REDUCE_WARMUP_CALLS = 20
# All-reduces captured back to back in one graph, so a replay's own launch is not counted in each.
ALL_REDUCES_PER_GRAPH = 10
GPU_BUDGET = Budget(min_sample_seconds=0.005, samples=10, max_seconds=0.5)
CPU_BUDGET = Budget(min_sample_seconds=0.01, samples=5, max_seconds=0.5)


@dataclass(frozen=True)
class AgreedTimer:
    """A ``Timer`` whose every reading is rank 0's, shared with the other ranks (``agree``), so the harness on
    every rank calls a collective as often as on rank 0."""

    base: Timer
    agree: Callable[[float], float]

    @property
    def name(self) -> TimerName:
        """The base timer's clock."""
        return self.base.name

    @property
    def resolution_seconds(self) -> float:
        """The base timer's resolution."""
        return self.base.resolution_seconds

    def elapsed_seconds(self, fn: Callable[[], object], loops: int) -> float:
        """Rank 0's seconds for ``loops`` calls, every rank having made them."""
        return self.agree(self.base.elapsed_seconds(fn, loops))


@dataclass(frozen=True)
class CollectivePlan:
    """What the collective run measures: the model's shapes, the all-reduce sizes, the layers and budgets."""

    model: str = DEFAULT_MODEL
    concurrencies: tuple[int, ...] = ALL_REDUCE_CONCURRENCIES
    layer_passes: tuple[tuple[LayerPassKind, int], ...] = LAYER_PASSES
    layer_types: tuple[LayerType, ...] = LAYER_TYPES
    tensor_parallel_sizes: tuple[int, ...] = TENSOR_PARALLEL_SIZES
    context_tokens: int = LAYER_CONTEXT_TOKENS
    budget: Budget | None = None  # the device's default (GPU_BUDGET or CPU_BUDGET)
    quick: bool = False  # layers as `check --quick` runs them on a GPU (no fused Triton kernels)
    config: ModelConfig | None = None  # another architecture than ``model``'s (tests run a miniature)

    def model_config(self) -> ModelConfig:
        """The architecture whose shapes are measured."""
        return self.config if self.config is not None else load_model_config(self.model)


@dataclass(frozen=True)
class CollectiveResult:
    """What rank 0 brings back from the collective run."""

    all_reduce: AllReduceSweep | Unavailable
    all_reduce_in_graphs: AllReduceSweep | Unavailable
    layers: tuple[TensorParallelLayer, ...] | Unavailable
    notes: tuple[str, ...] = field(default=())


def backend_for(device: str) -> CollectiveBackend:
    """NCCL (RCCL on ROCm builds) between GPUs, gloo between CPU processes."""
    return "gloo" if device == "cpu" else "nccl"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- processes -------------------------------------------------------------------------------------------------


def _run_processes(target: Callable[..., None], args_per_rank: list[tuple[Any, ...]],
                   timeout_seconds: float) -> list[Any]:
    """Start one spawned process per rank running ``target(rank, results, *args)``; each puts (rank, value,
    error text) on ``results``. The values by rank; RuntimeError naming the first rank that failed."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=target, args=(rank, results, *args), daemon=True)
                 for rank, args in enumerate(args_per_rank)]
    for process in processes:
        process.start()
    values: dict[int, Any] = {}
    errors: dict[int, str] = {}
    deadline = time.monotonic() + timeout_seconds
    try:
        while len(values) + len(errors) < len(processes):
            try:
                rank, value, error = results.get(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                dead = [p for p in processes if p.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    reason = (f"a process exited with code {dead[0].exitcode}" if dead
                              else f"no answer within {timeout_seconds:.0f} s")
                    raise RuntimeError(reason) from None
                continue
            if error is None:
                values[rank] = value
            else:
                errors[rank] = error
    finally:
        for process in processes:
            process.join(timeout=5 if not errors else 1)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        results.close()
    if errors:
        rank = min(errors)
        raise RuntimeError(f"rank {rank}: {errors[rank].strip().splitlines()[-1]}")
    return [values[rank] for rank in range(len(processes))]


# --- limits on every GPU at once -------------------------------------------------------------------------------

LimitsMeasure = Callable[[str, Machine | None, bool], Limits]


def measure_device_limits(device: str, machine: Machine | None, quick: bool) -> Limits:
    """The limits step on one device (what every process runs)."""
    from dgprofile.probes.measure_limits import measure_limits

    return measure_limits(device, machine=machine, quick=quick)


def _limits_process(rank: int, results: Any, device: str, machine: Machine | None, quick: bool,
                    start: Any, measure_limits: LimitsMeasure) -> None:
    try:
        start.wait()
        results.put((rank, measure_limits(device, machine, quick), None))
    except BaseException:  # noqa: BLE001 - every failure goes back to the parent as text
        results.put((rank, None, traceback.format_exc()))


def limits_on_every_gpu(devices: tuple[str, ...], *, machine: Machine | None, quick: bool,
                        measure_limits: LimitsMeasure = measure_device_limits,
                        timeout_seconds: float = PROCESS_TIMEOUT_SECONDS) -> tuple[GpuLimits, ...]:
    """Every device's limits, each measured in its own process, all starting at once (a barrier)."""
    start = multiprocessing.get_context("spawn").Barrier(len(devices))
    try:
        measured = _run_processes(_limits_process, [(device, machine, quick, start, measure_limits)
                                                    for device in devices], timeout_seconds)
    except RuntimeError as exc:
        failed = Unavailable(f"not measured: {exc}")
        return tuple(GpuLimits(_index(device, rank), device, failed) for rank, device in enumerate(devices))
    return tuple(GpuLimits(_index(device, rank), device, limits)
                 for rank, (device, limits) in enumerate(zip(devices, measured, strict=True)))


def _index(device: str, rank: int) -> int:
    _, _, index = device.partition(":")
    return int(index) if index.isdigit() else rank


# --- collectives ----------------------------------------------------------------------------------------------


def _collective_process(rank: int, results: Any, world: int, devices: tuple[str, ...], port: int,
                        plan: CollectivePlan) -> None:
    import torch
    import torch.distributed as dist

    try:
        device = devices[rank]
        backend = backend_for(device)
        make_current(device)
        if device == "cpu":  # the ranks share the cores: more threads than that only fight over them
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
        try:
            result = _collective_run(rank, world, device, backend, plan)
        finally:
            dist.destroy_process_group()
        results.put((rank, result, None))
    except BaseException:  # noqa: BLE001 - every failure goes back to the parent as text
        results.put((rank, None, traceback.format_exc()))


def run_collectives(devices: tuple[str, ...], plan: CollectivePlan = CollectivePlan(), *,
                    timeout_seconds: float = PROCESS_TIMEOUT_SECONDS) -> CollectiveResult:
    """The all-reduce sweep over every device and the tensor-parallel layers, one process per device."""
    port = _free_port()
    try:
        by_rank = _run_processes(_collective_process, [(len(devices), devices, port, plan)] * len(devices),
                                 timeout_seconds)
    except RuntimeError as exc:
        failed = Unavailable(f"not measured: {exc}")
        return CollectiveResult(failed, failed, failed)
    result: CollectiveResult = by_rank[0]
    return result


def _agreement(group: Any, source: int) -> Callable[[float], float]:
    """A function every rank of ``group`` calls together, returning rank ``source``'s value on all of them."""
    import torch
    import torch.distributed as dist

    def agree(value: float) -> float:
        shared = torch.tensor([value], dtype=torch.float64)
        dist.broadcast(shared, src=source, group=group)
        return float(shared.item())

    return agree


def _collective_run(rank: int, world: int, device: str, backend: CollectiveBackend,
                    plan: CollectivePlan) -> CollectiveResult:
    import torch
    import torch.distributed as dist

    config = plan.model_config()
    budget = plan.budget or (CPU_BUDGET if device == "cpu" else GPU_BUDGET)
    control = dist.new_group(backend="gloo") if backend != "gloo" else None  # agreement on the host
    agree = _agreement(control, 0)
    timer = AgreedTimer(timer_for(device), agree)

    def clock() -> float:
        return agree(time.perf_counter())

    kinds: tuple[tuple[MessageKind, int], ...] = (("ar-step", 1), ("canvas", config.diffusion.canvas_length))
    sizes = [(kind, concurrency, concurrency * per_request)
             for kind, per_request in kinds for concurrency in plan.concurrencies]
    messages = {tokens: torch.randn(tokens, config.backbone.hidden_size, dtype=torch.bfloat16, device=device)
                for _, _, tokens in sizes}
    for message in messages.values():  # NCCL connects its channels and protocols on first use
        for _ in range(ALL_REDUCE_WARMUP_CALLS):
            dist.all_reduce(message)

    def sweep(launch_mode: LaunchMode) -> AllReduceSweep | Unavailable:
        points = []
        for kind, concurrency, tokens in sizes:
            message = messages[tokens]
            if launch_mode == "eager":
                call: Callable[[], object] = partial(dist.all_reduce, message)
                ops_per_call = 1
            else:
                replay = cuda_graph(partial(dist.all_reduce, message),
                                    ops_per_call=ALL_REDUCES_PER_GRAPH, all_ranks_captured=_all_ranks(control))
                if isinstance(replay, Unavailable):
                    return replay
                call, ops_per_call = replay, ALL_REDUCES_PER_GRAPH
            points.append(_all_reduce_point(kind, concurrency, message, world, call, ops_per_call, timer, clock,
                                            budget))
        return AllReduceSweep(backend=backend, launch_mode=launch_mode, world_size=world, dtype="bf16",
                              hidden_size=config.backbone.hidden_size, points=tuple(points))

    eager = sweep("eager")
    in_graphs = sweep("cuda-graph") if device.startswith("cuda") else Unavailable(
        "not measured: CUDA graphs capture GPU collectives only (these ranks run on the CPU)")
    messages.clear()
    # Layers compute in fp32 on a CPU: most have no bf16 arithmetic, and torch would emulate it.
    layers: tuple[TensorParallelLayer, ...] | Unavailable
    try:
        layers, notes = _layers(rank, world, device, config, plan, budget,
                                torch.float32 if device == "cpu" else torch.bfloat16)
    except Exception as error:  # noqa: BLE001 - every rank fails alike (same shapes), so the sweeps are kept
        layers, notes = Unavailable(f"not measured: {type(error).__name__}: {error}".splitlines()[0]), ()
    dist.barrier(group=control)
    return CollectiveResult(eager, in_graphs, layers, notes)


def _all_ranks(control: Any) -> Callable[[bool], bool]:
    """A function every rank calls together: whether ``ok`` held on every rank."""
    import torch
    import torch.distributed as dist

    def every(ok: bool) -> bool:
        flag = torch.tensor([1 if ok else 0], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=control)
        return bool(flag.item())

    return every


def _all_reduce_point(kind: MessageKind, concurrency: int, message: Any, world: int, call: Callable[[], object],
                      ops_per_call: int, timer: Timer, clock: Callable[[], float], budget: Budget) -> AllReducePoint:
    """All-reduces of ``message`` (bf16 ``[tokens x hidden]``) over every rank, timed by the harness."""
    timing = measure(call, timer=timer, clock=clock, ops_per_call=ops_per_call,
                     min_sample_seconds=budget.min_sample_seconds, samples=budget.samples, warmup=budget.warmup,
                     max_seconds=budget.max_seconds)
    message_bytes = message.numel() * message.element_size()
    algorithm = message_bytes / timing.median_seconds
    return AllReducePoint(message_kind=kind, concurrency=concurrency, tokens=message.shape[0],
                          message_bytes=message_bytes, timing=timing, algorithm_bytes_per_s=algorithm,
                          bus_bytes_per_s=algorithm * 2 * (world - 1) / world)


def _layers(rank: int, world: int, device: str, config: ModelConfig, plan: CollectivePlan, budget: Budget,
            dtype: Any) -> tuple[tuple[TensorParallelLayer, ...], tuple[str, ...]]:
    """Each layer type and pass whole on rank 0's GPU, then split over every tensor-parallel size there are GPUs
    for (ranks outside a group wait); and why any of them was not replayed from a CUDA graph."""
    import torch
    import torch.distributed as dist

    from dgprofile.probes.decode.model import build_layer

    sizes = [size for size in plan.tensor_parallel_sizes if size <= world]
    # Every rank creates every group, in the same order (torch.distributed requires it).
    groups = {size: (dist.new_group(ranks=list(range(size))),
                     dist.new_group(ranks=list(range(size)), backend="gloo")) for size in sizes}
    methods = _gpu_layer_methods(config, device, plan.quick) if device.startswith("cuda") else None
    measured: list[TensorParallelLayer] = []
    notes: dict[str, None] = {}
    for layer_type in plan.layer_types:
        torch.manual_seed(SEED)  # the same whole layer on every rank, so the shards are cut from one layer
        whole = build_layer(config, layer_type, dtype=dtype, fp8=False, device=device)
        for kind, concurrency in plan.layer_passes:
            layer_pass = _LayerPass(config, whole, layer_type, kind, concurrency, plan.context_tokens,
                                    device, dtype, methods)
            single = layer_pass.time_whole(budget) if rank == 0 else None
            for size in sizes:
                if rank < size:
                    split = layer_pass.time_split(rank, size, groups[size], budget)
                    if single is not None:
                        measured.append(layer_pass.record(size, split, single))
                        notes.update(dict.fromkeys(r for r in (single.fallback_reason, split.fallback_reason) if r))
            dist.barrier()
        del whole
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return tuple(measured), tuple(f"a tensor-parallel layer was timed eagerly: {reason}" for reason in notes)


def _gpu_layer_methods(config: ModelConfig, device: str, quick: bool) -> Callable[[ModelConfig], Any]:
    """The decode benchmark's layer methods on this GPU for an architecture (its fused Triton kernels where their
    checks pass, the fastest attention and expert methods per shape), so that layers run split and whole as
    `check`'s passes do; a shard's shapes get their own choice (a Triton expert kernel may not take its width)."""
    from dgprofile.probes.decode.autotune import Autotuner
    from dgprofile.probes.decode.bench import Autotuners, LayerMethods, check_layer_paths, device_capabilities
    from dgprofile.probes.decode.plan import plan_bench

    caps = device_capabilities(device, quick)
    plan = plan_bench(config, device_kind=caps.kind, free_memory_bytes=caps.free_memory_bytes, native_fp8=False,
                      quick=quick, precisions=("bf16",))
    caps = check_layer_paths(config, caps, plan, quick)

    def methods_for(architecture: ModelConfig) -> LayerMethods:
        tuners = Autotuners(experts=Autotuner(timer=timer_for(device), use_graph=True),
                            attention=Autotuner(timer=timer_for(device), use_graph=True),
                            projections=Autotuner(timer=timer_for(device), use_graph=True))
        return LayerMethods(architecture, caps, tuners, "bf16")

    return methods_for


@dataclass(frozen=True)
class _Timed:
    """A layer's timing, how it was launched, and why not from a CUDA graph where capture failed."""

    timing: Timing
    launch_mode: LaunchMode
    fallback_reason: str | None


class _LayerPass:
    """One layer's shapes for one pass (its state and input built alike on every rank), timed whole or split: on
    a GPU with the benchmark's methods (``methods``) and replayed from CUDA graphs, as engines run decode passes."""

    def __init__(self, config: ModelConfig, whole: Any, layer_type: LayerType,
                 kind: LayerPassKind, concurrency: int, context_tokens: int, device: str,
                 dtype: Any, methods: Callable[[ModelConfig], Any] | None) -> None:
        import torch

        from dgprofile.probes.decode.model import layer_state

        self.config, self.whole, self.layer_type, self.kind = config, whole, layer_type, kind
        self.concurrency, self.context_tokens, self.device = concurrency, context_tokens, device
        new = 1 if kind == "ar-step" else config.diffusion.canvas_length
        self.methods, self.new = methods, new
        if methods is not None:
            self.state = methods(config).layer_states([whole], kind, concurrency, new, context_tokens)[0]
        else:
            self.state = layer_state(config, layer_type, kind=kind, concurrency=concurrency, new=new,
                                     context=context_tokens, dtype=dtype, device=device,
                                     generator=torch.Generator().manual_seed(SEED), expert_method="padded",
                                     attention_method="sdpa" if layer_type == "sliding" else "matmul")
        torch.manual_seed(SEED + 1)
        self.x = torch.randn(concurrency * new, config.backbone.hidden_size, dtype=dtype, device=device)

    def time_whole(self, budget: Budget) -> _Timed:
        """The whole layer on this rank's GPU alone, as the decode benchmark runs it."""
        from dgprofile.probes.decode.model import decoder_layer

        prepared = graph_or_eager(lambda: decoder_layer(self.config, self.x, self.whole, self.state,
                                                        self.concurrency),
                                  use_graph=self.device.startswith("cuda"))
        timing = budget.measure(prepared.call, timer=timer_for(self.device), ops_per_call=prepared.ops_per_call)
        return _Timed(timing, _launch_mode(prepared, self.device), prepared.fallback_reason)

    def time_split(self, rank: int, size: int, groups: tuple[Any, Any], budget: Budget) -> _Timed:
        """This rank's shard of the layer with its all-reduces over the first ``size`` ranks."""
        import torch.distributed as dist

        from dgprofile.probes.decode.tensor_parallel import (
            shard_config,
            shard_layer,
            shard_state,
            tensor_parallel_layer,
        )

        group, control = groups
        shard = shard_config(self.config, size)
        part = shard_layer(self.config, self.whole, rank, size)
        part_state = shard_state(self.config, self.state, self.layer_type, rank, size)
        if self.methods is not None:
            chosen = self.methods(shard)
            part_state = dataclasses.replace(
                part_state, expert_method=chosen.expert_method(part, self.x.shape[0]),
                attention_method=chosen.attention_method(part, self.kind, self.concurrency, self.new,
                                                         self.context_tokens))
        agree = _agreement(control, 0)

        def reduce(tensor: Any) -> Any:
            dist.all_reduce(tensor, group=group)
            return tensor

        prepared = graph_or_eager(lambda: tensor_parallel_layer(shard, self.x, part, part_state, self.concurrency,
                                                                reduce),
                                  use_graph=self.device.startswith("cuda"), all_ranks_captured=_all_ranks(control))
        timing = measure(prepared.call, timer=AgreedTimer(timer_for(self.device), agree),
                         clock=lambda: agree(time.perf_counter()), ops_per_call=prepared.ops_per_call,
                         min_sample_seconds=budget.min_sample_seconds, samples=budget.samples,
                         warmup=budget.warmup, max_seconds=budget.max_seconds)
        return _Timed(timing, _launch_mode(prepared, self.device), prepared.fallback_reason)

    def record(self, size: int, split: _Timed, single: _Timed) -> TensorParallelLayer:
        """The record of this pass split over ``size`` GPUs beside the whole layer (launched eagerly where either
        was: the two are compared as they ran)."""
        from dgprofile.probes.decode.tensor_parallel import ALL_REDUCED_HIDDEN_WIDTHS, ALL_REDUCES_PER_LAYER

        mode: LaunchMode = "cuda-graph" if split.launch_mode == single.launch_mode == "cuda-graph" else "eager"
        return TensorParallelLayer(
            tensor_parallel=size, layer_type=self.layer_type, pass_kind=self.kind, concurrency=self.concurrency,
            tokens=self.x.shape[0], context_tokens=self.context_tokens, launch_mode=mode, timing=split.timing,
            single_gpu_timing=single.timing, all_reduces=ALL_REDUCES_PER_LAYER,
            all_reduce_bytes=ALL_REDUCED_HIDDEN_WIDTHS * self.x.numel() * self.x.element_size())


def _launch_mode(prepared: Prepared, device: str) -> LaunchMode:
    return "cuda-graph" if device.startswith("cuda") and prepared.fallback_reason is None else "eager"


# --- the whole multi-GPU step ----------------------------------------------------------------------------------


def measure_multi_gpu(devices: tuple[str, ...], *, machine: Machine | None, quick: bool,
                      plan: CollectivePlan, progress: Callable[[str], None] = lambda m: None,
                      measure_limits: LimitsMeasure | None = None) -> MultiGpuRun:
    """Limits on every device at once, then the all-reduce sweep and the tensor-parallel layers."""
    measure_limits = measure_limits or measure_device_limits
    started = time.monotonic()
    progress(f"measuring limits on {len(devices)} devices at once ({', '.join(devices)})")
    limits = limits_on_every_gpu(devices, machine=machine, quick=quick, measure_limits=measure_limits)
    progress(f"all-reduce sweep and tensor-parallel layers over {len(devices)} devices")
    collectives = run_collectives(devices, plan)
    return MultiGpuRun(gpu_indices=tuple(_index(device, rank) for rank, device in enumerate(devices)),
                       backend=backend_for(devices[0]), per_gpu_limits=limits, all_reduce=collectives.all_reduce,
                       all_reduce_in_graphs=collectives.all_reduce_in_graphs,
                       tensor_parallel_layers=collectives.layers, model_id=plan.model_config().id,
                       seconds_taken=round(time.monotonic() - started, 3), notes=collectives.notes)


QUICK_LAYER_PASSES: tuple[tuple[LayerPassKind, int], ...] = (("ar-step", 1), ("dg-denoise", 1))
QUICK_CONCURRENCIES = (1, 2, 4, 8)


def collective_plan(quick: bool) -> CollectivePlan:
    """What `check --gpus` measures across the GPUs: fewer sizes and passes with ``quick``."""
    if quick:
        return CollectivePlan(concurrencies=QUICK_CONCURRENCIES, layer_passes=QUICK_LAYER_PASSES, quick=True)
    return CollectivePlan()


def gpu_devices(machine: Machine, gpus: int | Literal["all"]) -> tuple[str, ...]:
    """The torch devices of the first ``gpus`` NVIDIA or AMD GPUs the probe described (``all``: as many as
    tensor parallelism can use, the largest group size that divides the model's attention heads); UsageError
    when there are fewer."""
    from dgprofile.errors import UsageError
    from dgprofile.records.machine import AmdGpu, NvidiaGpu

    indices = [d.index for d in machine.accelerators if isinstance(d, (NvidiaGpu, AmdGpu))]
    heads = load_model_config().backbone.num_attention_heads
    if gpus == "all":
        usable = [n for n in range(2, len(indices) + 1) if heads % n == 0]
        if not usable:
            raise UsageError(f"--gpus all: this machine has {len(indices)} GPU(s) torch can drive through CUDA or "
                             "ROCm; tensor parallelism needs at least 2")
        count = usable[-1]
    else:
        count = gpus
    if len(indices) < count:
        raise UsageError(f"--gpus {gpus}: this machine has {len(indices)} NVIDIA or AMD GPU(s)")
    return tuple(f"cuda:{index}" for index in indices[:count])
