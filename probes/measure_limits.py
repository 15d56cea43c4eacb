"""The whole limits step: bandwidth, host transfers, matmul rates and ridge, latency floor -> ``Limits``.

A failing part never sinks the step: it is recorded as unavailable with its reason, and the rest still runs. An
interrupt (Ctrl-C, SIGTERM) ends the step but keeps every figure that finished: ``Interrupted`` carries the
``Limits`` assembled from them.
Budgets keep the step under 15 s on a GPU and 30 s on a small CPU machine; ``quick`` measures less.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dgprofile.interrupts import Interrupted, interruption_of
from dgprofile.probes import bench_bandwidth, bench_latency, bench_matmul, gpu_backends
from dgprofile.probes.harness import Budget, make_current, timer_for
from dgprofile.records.limits import BandwidthFigure, LatencyFigure, Limits, MatmulFigure, TokenRidge
from dgprofile.records.machine import (
    AmdGpu,
    AppleGpu,
    DescribedAccelerator,
    FailedDevice,
    IntelGpu,
    Machine,
    NvidiaGpu,
)
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import load_model_config

# Apple does not publish the system-level cache size; 1 GiB buffers exceed its largest (96 MB) ten times over.
MPS_BUFFER_BYTES = 1 << 30


@dataclass(frozen=True)
class LimitsPlan:
    """Budgets and sizes for one kind of device, full or quick."""

    bandwidth: Budget
    host_transfer: Budget
    host_transfer_bytes: int
    latency: Budget
    matmul: bench_matmul.MatmulPlan
    matmul_dtypes: tuple[str, ...] | None


def plan_for(device: str, *, quick: bool) -> LimitsPlan:
    """What to measure on this kind of device; ``quick`` keeps the compute-relevant figures and fewer samples.

    Large square products get 50 ms samples on GPUs: their clocks swing with power management (on an H100 SXM
    single 25 ms samples of bf16 8192^3 ranged 671-745 TFLOP/s), and longer samples average the swings out.
    """
    shapes = bench_matmul.decode_shapes(load_model_config().backbone)
    if device == "cpu":
        shapes = tuple(s for s in shapes if s.name not in bench_matmul.CPU_SKIPPED_SHAPES)
        return LimitsPlan(
            bandwidth=Budget(0.05, 3 if quick else 7, 1.5), host_transfer=Budget(), host_transfer_bytes=0,
            latency=Budget(0.01, 5, 0.3),
            matmul=bench_matmul.MatmulPlan(
                square=bench_matmul.CPU_SQUARE, tokens=bench_matmul.CPU_DECODE_TOKENS,
                shapes=shapes[:1] if quick else shapes,
                square_budget=Budget(0.05, 3 if quick else 5, 2.0), decode_budget=Budget(0.01, 3 if quick else 5, 0.5)),
            matmul_dtypes=("fp32", "bf16") if quick else None)
    return LimitsPlan(
        bandwidth=Budget(0.01, 5 if quick else 10, 0.6),
        host_transfer=Budget(0.01, 5, 0.6),
        host_transfer_bytes=bench_bandwidth.QUICK_HOST_TRANSFER_BYTES if quick else bench_bandwidth.HOST_TRANSFER_BYTES,
        latency=Budget(0.005, 10, 0.3),
        matmul=bench_matmul.MatmulPlan(
            square=bench_matmul.GPU_SQUARE, tokens=bench_matmul.DECODE_TOKENS, shapes=shapes,
            square_budget=Budget(0.05, 3 if quick else 5, 1.0), decode_budget=Budget(0.002, 3 if quick else 5, 0.2)),
        matmul_dtypes=("bf16", "fp16", "fp8") if quick else None)


@dataclass(frozen=True)
class DeviceFacts:
    """What the limits step needs to know about the device before measuring."""

    name: str
    theoretical_bandwidth_bytes_per_s: float | Unavailable
    last_level_cache_bytes: int | Unavailable
    free_bytes: int | Unavailable
    sm_count: int | Unavailable
    discrete: bool


def _accelerator(machine: Machine | None, kinds: tuple[str, ...], index: int) -> DescribedAccelerator | None:
    if machine is None:
        return None
    for accelerator in machine.accelerators:
        if not isinstance(accelerator, FailedDevice) and accelerator.kind in kinds and accelerator.index == index:
            return accelerator
    return None


def _same_device(gpu: DescribedAccelerator | None, props: Any) -> bool:
    """Whether the probed GPU is the one torch calls this index (visible-devices settings renumber them): NVML and
    CUDA agree on names; amdsmi's market name may differ from HIP's, so AMD GPUs are matched by LLVM target too."""
    if isinstance(gpu, NvidiaGpu):
        return bool(gpu.name == props.name)
    if isinstance(gpu, AmdGpu):
        arch = str(getattr(props, "gcnArchName", ""))
        return gpu.name == props.name or (isinstance(gpu.gfx_target, str) and arch.startswith(gpu.gfx_target))
    return False


def device_facts(torch: Any, device: str, machine: Machine | None) -> DeviceFacts:
    """Name, theoretical bandwidth, cache, free memory and multiprocessors, from the machine record or torch."""
    kind, _, index_text = device.partition(":")
    if kind == "cuda":
        index = int(index_text) if index_text else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        free, _ = torch.cuda.mem_get_info(index)
        gpu = _accelerator(machine, ("amd-gpu",) if gpu_backends.is_rocm(torch) else ("nvidia-gpu",), index)
        if isinstance(gpu, (NvidiaGpu, AmdGpu)) and _same_device(gpu, props):
            theoretical = gpu.theoretical_bandwidth_bytes_per_s
            discrete = gpu.memory_class.kind == "discrete"
        else:
            theoretical = _torch_theoretical_bandwidth(torch, props)
            discrete = not getattr(props, "is_integrated", False)
        return DeviceFacts(props.name, theoretical, int(props.L2_cache_size), int(free),
                           int(props.multi_processor_count), discrete)
    if kind == "xpu":
        index = int(index_text) if index_text else torch.xpu.current_device()
        props = torch.xpu.get_device_properties(index)
        intel = _accelerator(machine, ("intel-gpu",), index)
        theoretical = (intel.theoretical_bandwidth_bytes_per_s if isinstance(intel, IntelGpu)
                       else Unavailable("no machine record with the card's datasheet bandwidth"))
        cores = getattr(props, "gpu_subslice_count", 0)  # Xe cores: the units a streaming grid is sized to
        return DeviceFacts(props.name, theoretical, Unavailable("torch does not expose the XPU's cache size"),
                           _xpu_free_bytes(torch, index, props),
                           int(cores) if cores else Unavailable("torch does not expose the Xe-core count"),
                           not isinstance(intel, IntelGpu) or intel.memory_class.kind == "discrete")
    if kind == "mps":
        apple = _accelerator(machine, ("apple-gpu",), 0)
        name = apple.name if isinstance(apple, AppleGpu) else "Apple GPU (MPS)"
        theoretical = (apple.theoretical_bandwidth_bytes_per_s if isinstance(apple, AppleGpu)
                       else Unavailable("no machine record with the chip's bandwidth"))
        return DeviceFacts(name, theoretical, Unavailable("Apple does not expose the system-level cache size"),
                           int(torch.mps.recommended_max_memory()), Unavailable("not applicable on MPS"), False)
    if kind != "cpu":
        raise ValueError(f"unknown device {device!r}: expected cuda, cuda:N, xpu, xpu:N, mps or cpu")
    import platform

    import psutil

    cpu = machine.cpu if machine is not None else None
    cache = cpu.l3_cache_bytes if cpu is not None else Unavailable("no machine record")
    if isinstance(cache, Unavailable):
        cache = bench_bandwidth.sysfs_last_level_cache_bytes()
    model = cpu.model if cpu is not None else platform.processor() or platform.machine()
    theoretical = (cpu.theoretical_bandwidth_bytes_per_s if cpu is not None
                   else Unavailable("no machine record with the DRAM configuration"))
    return DeviceFacts(model if isinstance(model, str) else "CPU", theoretical, cache,
                       int(psutil.virtual_memory().available), Unavailable("not applicable on a CPU"), False)


def _xpu_free_bytes(torch: Any, index: int, props: Any) -> int:
    """Free device memory: torch.xpu.mem_get_info where this torch has it, else total less what torch holds."""
    if hasattr(torch.xpu, "mem_get_info"):
        return int(torch.xpu.mem_get_info(index)[0])
    return int(props.total_memory - torch.xpu.memory_reserved(index))


def _torch_theoretical_bandwidth(torch: Any, props: Any) -> float | Unavailable:
    """2 x memory clock x bus width, from CUDA's attributes as torch exposes them (mixbench's formula); not on
    ROCm, where HIP reports the memory controller's clock and the formula undercounts HBM3 and GDDR6
    (https://github.com/ROCm/xla/pull/970)."""
    if gpu_backends.is_rocm(torch):
        return Unavailable("HIP reports the memory controller's clock, not the data rate: no theoretical "
                           "bandwidth without the probe's amdsmi figure or a datasheet entry")
    clock_khz = getattr(props, "memory_clock_rate", 0)
    bus_bits = getattr(props, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return Unavailable("this torch does not expose the memory clock and bus width")
    return 2 * clock_khz * 1e3 * bus_bits / 8


def measure_limits(device: str, *, machine: Machine | None = None, quick: bool = False,
                   progress: Callable[[str], None] | None = None) -> Limits:
    """Measure the device's ceilings. ``machine`` (from the probes) supplies theoretical bandwidth and cache size."""
    import torch

    started = time.perf_counter()
    say = progress or (lambda _: None)
    if device == "cuda":
        device = f"cuda:{torch.cuda.current_device()}"
    elif device == "xpu":
        device = f"xpu:{torch.xpu.current_device()}"
    make_current(device)
    facts = device_facts(torch, device, machine)
    plan = plan_for(device, quick=quick)
    timer = timer_for(device)
    notes: list[str] = []
    if device == "cpu" and machine is not None and not machine.cpu.computes_bf16_natively:
        # One emulated bf16 2048^3 product takes ~40 s there, and no CPU engine multiplies in emulated bf16: the
        # model computes at the fp32 rate instead (ceilings.compute_dtype).
        measured = plan.matmul_dtypes or bench_matmul.supported_dtypes(torch, device)[0]
        plan = dataclasses.replace(plan, matmul_dtypes=tuple(d for d in measured if d != "bf16"))
        notes.append("bf16 matmul not measured: this CPU has no bf16 arithmetic (AVX512-BF16, AMX or Arm BF16), so "
                     "torch emulates it at a small fraction of the fp32 rate; the fp32 rate stands for it")

    bandwidth: tuple[BandwidthFigure, ...] = ()
    host: tuple[BandwidthFigure, ...] = ()
    matmul: tuple[MatmulFigure, ...] = ()
    ridges: tuple[TokenRidge, ...] = ()
    latency: tuple[LatencyFigure, ...] = ()
    launch_floor: float | Unavailable = Unavailable("latency not measured")
    eager: float | Unavailable = Unavailable("latency not measured")
    round_trip: float | Unavailable = Unavailable("no device synchronisation on this device")
    interrupted: KeyboardInterrupt | None = None
    step = "bandwidth"
    try:
        minimum = (bench_bandwidth.MIN_CPU_BUFFER_BYTES if device == "cpu" else
                   MPS_BUFFER_BYTES if device == "mps" else bench_bandwidth.MIN_DEVICE_BUFFER_BYTES)
        buffer_bytes, buffer_note = bench_bandwidth.buffer_bytes_for(
            facts.last_level_cache_bytes, minimum_bytes=minimum, free_bytes=facts.free_bytes)
        notes += [buffer_note] if buffer_note else []
        try:
            result = bench_bandwidth.device_bandwidth(
                device, buffer_bytes=buffer_bytes, timer=timer, budget=plan.bandwidth,
                theoretical_bytes_per_s=facts.theoretical_bandwidth_bytes_per_s, sm_count=facts.sm_count,
                progress=say)
            bandwidth, notes = result.figures, notes + list(result.notes)
        except RuntimeError as exc:
            notes.append(f"bandwidth not measured: {exc}".splitlines()[0])

        step = "host transfers"
        if device.startswith("cuda") and facts.discrete:
            try:
                host = bench_bandwidth.host_transfer(device, buffer_bytes=plan.host_transfer_bytes, timer=timer,
                                                     budget=plan.host_transfer, progress=say)
            except RuntimeError as exc:
                notes.append(f"host transfers not measured: {exc}".splitlines()[0])

        step = "matmul"
        try:
            mm = bench_matmul.measure_matmuls(device, plan=plan.matmul, timer=timer,
                                              last_level_cache_bytes=facts.last_level_cache_bytes,
                                              dtypes=plan.matmul_dtypes, progress=say)
            matmul, ridges, notes = mm.figures, mm.ridges, notes + list(mm.notes)
        except RuntimeError as exc:
            notes.append(f"matmul not measured: {exc}".splitlines()[0])
        if device == "cpu":
            notes.append(f"CPU: decode shapes {', '.join(bench_matmul.CPU_SKIPPED_SHAPES)} skipped (too slow on a CPU)")

        step = "latency"
        try:
            lat = bench_latency.measure_latency(device, timer=timer, budget=plan.latency, progress=say)
            latency, notes = lat.figures, notes + list(lat.notes)
            launch_floor, eager = lat.launch_floor.seconds, lat.eager.seconds
            if lat.round_trip is not None:
                round_trip = lat.round_trip.seconds
        except RuntimeError as exc:
            notes.append(f"latency not measured: {exc}".splitlines()[0])
    except KeyboardInterrupt as exc:  # keep every figure that finished, and say where the run stopped
        interrupted = exc
        kept = exc.kept if isinstance(exc, Interrupted) else None
        if isinstance(kept, bench_bandwidth.BandwidthResult):
            bandwidth, notes = kept.figures, notes + list(kept.notes)
        elif isinstance(kept, bench_matmul.MatmulResult):
            matmul, ridges, notes = kept.figures, kept.ridges, notes + list(kept.notes)
        notes.append(f"interrupted ({interruption_of(exc).value}) during {step}: what had not finished is not "
                     "measured")

    limits = assemble_limits(
        device=device, facts=facts, bandwidth=bandwidth, host=host, matmul=matmul, ridges=ridges,
        latency=latency, launch_floor=launch_floor, eager=eager, round_trip=round_trip, quick=quick,
        torch_version=str(torch.__version__), notes=tuple(notes), seconds_taken=time.perf_counter() - started)
    if interrupted is not None:
        raise Interrupted(limits, interrupted) from interrupted
    return limits


def assemble_limits(*, device: str, facts: DeviceFacts, bandwidth: tuple[BandwidthFigure, ...],
                    host: tuple[BandwidthFigure, ...], matmul: tuple[MatmulFigure, ...],
                    ridges: tuple[TokenRidge, ...], latency: tuple[LatencyFigure, ...],
                    launch_floor: float | Unavailable, eager: float | Unavailable, round_trip: float | Unavailable,
                    quick: bool, torch_version: str, notes: tuple[str, ...], seconds_taken: float) -> Limits:
    """The ``Limits`` record: best figures picked, peak rates per dtype, ridges in FLOP/byte and in tokens."""
    best_read = bench_bandwidth.best_figure(bandwidth, "stream-read")
    best_copy = bench_bandwidth.best_figure(bandwidth, "copy")
    best_triad = bench_bandwidth.best_figure(bandwidth, "triad")
    missing = Unavailable("bandwidth not measured")
    stream_read = best_read.bytes_per_s if best_read else missing
    peak = {f.dtype: f.flops_per_s for f in matmul if f.shape == "square"}
    ridge_flop_per_byte = ({dtype: rate / stream_read for dtype, rate in peak.items()}
                           if not isinstance(stream_read, Unavailable) else {})
    ridge_shape = next((shape for shape in bench_matmul.RIDGE_SHAPE_PREFERENCE if any(r.shape == shape for r in ridges)),
                       ridges[0].shape if ridges else "")
    ridge_tokens = {r.dtype: r.tokens for r in ridges
                    if r.shape == ridge_shape and not isinstance(r.tokens, Unavailable)}
    return Limits(
        device=device, device_name=facts.name, stream_read_bytes_per_s=stream_read,
        copy_bytes_per_s=best_copy.bytes_per_s if best_copy else missing, bandwidth=bandwidth, host_transfer=host,
        matmul=matmul, peak_flops_per_s=peak, ridge_flop_per_byte=ridge_flop_per_byte, ridge_tokens=ridge_tokens,
        latency=latency, launch_floor_seconds=launch_floor, seconds_taken=seconds_taken, notes=notes,
        stream_read_method=best_read.method if best_read else "",
        triad_bytes_per_s=best_triad.bytes_per_s if best_triad else missing,
        theoretical_bandwidth_bytes_per_s=facts.theoretical_bandwidth_bytes_per_s,
        last_level_cache_bytes=facts.last_level_cache_bytes, token_ridges=ridges, ridge_tokens_shape=ridge_shape,
        eager_launch_seconds=eager, sync_round_trip_seconds=round_trip, quick=quick, torch_version=torch_version)
