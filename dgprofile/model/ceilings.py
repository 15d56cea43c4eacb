"""The hardware side of the model: bandwidth, matmul rate per number format, kernel latency, usable memory.

Everything is on the *achievable* footing: what the best streaming read and square GEMM reach on the device.
`check` measures those, and they are used as measured; for `predict`, a datasheet figure is multiplied by the
fraction of it that the best benchmarks reach on a healthy card (``REFERENCE_*_FRACTION``). Engine efficiencies
(``dgprofile.model.engines``) are fitted relative to this footing, so a healthy measured card predicts like its
datasheet, and a throttled, shared or unknown one predicts from what it really did.

What the measured decode passes add (a factor per pass kind and concurrency) is worked out by
``dgprofile.model.speedup.with_measured_passes``, since it needs the pass physics.
"""

from __future__ import annotations

from dgprofile.errors import UsageError
from dgprofile.records.limits import Limits
from dgprofile.records.machine import (
    AmdGpu,
    AppleGpu,
    DescribedAccelerator,
    FailedDevice,
    IntelGpu,
    Machine,
    MemoryClassKind,
    NvidiaGpu,
)
from dgprofile.records.predictions import Ceilings
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec, spec_by_id
from dgprofile.specs.pass_cost import Precision

GIB = 1 << 30
# H100 SXM: a streaming read (torch, 4 GiB buffers) measured 3.07 of 3.35 TB/s on one card; bf16 dense GEMM
# reaches ~790 of 989 TFLOP/s (mamf-finder's table in
# https://github.com/stas00/ml-engineering/tree/master/compute/accelerator).
REFERENCE_STREAM_FRACTION = 3.07 / 3.35
REFERENCE_MATMUL_FRACTION = 790 / 989.4
# The kernel latencies of the GPU the engines were calibrated on (the vLLM runs are on an H100 SXM), as `check`
# measured them on the H100 SXM of README.md, "Measured on real hardware": a minimal op replayed in a CUDA graph,
# and the same op launched eagerly from torch.
REFERENCE_LAUNCH_FLOOR_SECONDS = 1.18e-6
REFERENCE_EAGER_LAUNCH_SECONDS = 6.73e-6
# Formats engines run in their own kernels, whose torch matmul rate says little about those kernels (torch's
# fp8 and int8 GEMMs take slower paths than serving engines' CUTLASS kernels): on a measured card they take the
# datasheet rate scaled by how the measured bf16 rate compares with its datasheet footing.
ENGINE_KERNEL_FORMATS = ("fp8", "int8", "int4", "fp4")
# Metal's recommendedMaxWorkingSetSize is commonly about 75% of unified memory; `check` reads the real figure
# on a Mac.
APPLE_WORKING_SET_FRACTION = 0.75
# Other one-pool parts (DGX Spark, Strix Halo, Jetson): the OS and desktop keep part of the pool (assumed 10%).
SHARED_POOL_OS_FRACTION = 0.10
# A discrete GPU loses the CUDA/ROCm context and driver reservations (assumed 1 GiB).
DISCRETE_RESERVED_BYTES = 1 * GIB
MEMORY_FROM_COMMAND_LINE = "memory given on the command line"
_REFERENCE_FLOOR = "no launch latency measured: the reference GPU's (H100 SXM) assumed"


def usable_memory(memory_bytes: int, memory_class: MemoryClassKind, vendor: str) -> tuple[int, str]:
    """Memory one accelerator of a datasheet entry can give the model, and the rule used: the datasheet side of
    the usable-memory rule (``dgprofile.model.memory_fit``; a measured machine uses what its probe read)."""
    if memory_class == "shared-physical" and vendor == "apple":
        return (int(memory_bytes * APPLE_WORKING_SET_FRACTION),
                f"{APPLE_WORKING_SET_FRACTION:.0%} of unified memory, Metal's recommended working set")
    if memory_class == "shared-physical":
        return (int(memory_bytes * (1 - SHARED_POOL_OS_FRACTION)),
                f"one pool shared with the OS: {1 - SHARED_POOL_OS_FRACTION:.0%} of it assumed free")
    return (memory_bytes - DISCRETE_RESERVED_BYTES, "device memory less ~1 GiB of driver and context reservation")


def achievable_bandwidth(datasheet_bytes_per_s: float) -> float:
    """What the best streaming read reaches of a datasheet bandwidth on a healthy card."""
    return datasheet_bytes_per_s * REFERENCE_STREAM_FRACTION


def achievable_rates(datasheet_flops_per_s: dict[str, float]) -> dict[str, float]:
    """What a square GEMM reaches of each datasheet matmul rate on a healthy card."""
    return {dtype: rate * REFERENCE_MATMUL_FRACTION for dtype, rate in datasheet_flops_per_s.items()}


def ceilings_from_spec(spec: HardwareSpec, *, gpus: int = 1, memory_bytes: int | None = None) -> Ceilings:
    """Datasheet ceilings of ``gpus`` identical accelerators on the achievable footing; ``memory_bytes``
    overrides the per-GPU memory (e.g. an Apple chip bought with less than the table's largest configuration)."""
    if gpus < 1:
        raise UsageError("--gpus must be at least 1")
    if gpus > 1 and isinstance(spec.interconnect_bytes_per_s, Unavailable):
        raise UsageError(f"{spec.name} has no GPU-to-GPU link ({spec.interconnect_bytes_per_s.reason}): "
                         "tensor parallelism over several is not modelled")
    memory = memory_bytes if memory_bytes is not None else spec.memory_bytes
    usable, basis = usable_memory(memory, spec.memory_class, spec.vendor)
    return Ceilings(
        source="datasheet", device_name=spec.name, hardware_id=spec.id, vendor=spec.vendor,
        device_type=spec.device_type, gpus=gpus, memory_class=spec.memory_class,
        bandwidth_bytes_per_s=achievable_bandwidth(spec.memory_bandwidth_bytes_per_s),
        peak_flops_per_s=achievable_rates(spec.peak_flops_per_s),
        native_precisions=spec.native_precisions, usable_memory_bytes=usable * gpus,
        usable_memory_basis=basis + ("" if memory_bytes is None else f"; {MEMORY_FROM_COMMAND_LINE}"),
        interconnect_bytes_per_s=spec.interconnect_bytes_per_s,
        launch_floor_seconds=Unavailable("not measured: predicted from the datasheet"), sources=spec.sources,
        architecture=spec.architecture, floor_scale=1.0, floor_scale_basis=_REFERENCE_FLOOR,
        peer_to_peer=spec.peer_to_peer, approximate=dict(spec.approximate))


def _first_accelerator(machine: Machine) -> DescribedAccelerator | Unavailable:
    devices: list[DescribedAccelerator] = [d for d in machine.accelerators if not isinstance(d, FailedDevice)]
    return devices[0] if devices else Unavailable("no GPU was found on this machine")


def vendor_of(device: DescribedAccelerator) -> str:
    """The vendor name engines and datasheet entries use."""
    if isinstance(device, NvidiaGpu):
        return "nvidia"
    if isinstance(device, AmdGpu):
        return "amd"
    if isinstance(device, IntelGpu):
        return "intel"
    return "apple"


def machine_vendor(machine: Machine) -> str:
    """Whose accelerator a measured machine is predicted for: its first GPU's vendor, else "cpu"."""
    device = _first_accelerator(machine)
    return "cpu" if isinstance(device, Unavailable) else vendor_of(device)


def _torch_device_kind(device: DescribedAccelerator) -> str:
    """The torch device a measurement of this accelerator runs on (ROCm builds drive AMD GPUs as "cuda")."""
    if isinstance(device, (NvidiaGpu, AmdGpu)):
        return "cuda"
    return "xpu" if isinstance(device, IntelGpu) else "mps"


def measured_on(limits: Limits | Unavailable, device: DescribedAccelerator) -> Limits | None:
    """The limits if they were measured on this accelerator's kind of torch device; None otherwise (a torch
    build without the GPU's backend measures the CPU, whose figures say nothing about the GPU)."""
    if isinstance(limits, Unavailable) or limits.device.partition(":")[0] != _torch_device_kind(device):
        return None
    return limits


def _device_type(device: DescribedAccelerator) -> str:
    """What a device outside the datasheet table is, from its kind and memory class."""
    if isinstance(device, AppleGpu):
        return "soc-gpu"
    shared = device.memory_class.kind == "shared-physical"
    return "apu-gpu" if shared and isinstance(device, (AmdGpu, IntelGpu)) else "discrete-gpu"


def measured_rates(measured: dict[str, float], datasheet: dict[str, float] | None) -> dict[str, float]:
    """Matmul rates on the achievable footing from a measurement: measured rates as measured, except formats
    engines run in their own kernels (``ENGINE_KERNEL_FORMATS``); those, and formats not measured, take the
    datasheet rate scaled by the measured bf16 rate's share of its achievable footing (the card's health)."""
    achievable = achievable_rates(datasheet) if datasheet else {}
    health = (measured["bf16"] / achievable["bf16"]) if "bf16" in measured and "bf16" in achievable else 1.0
    rates = {dtype: rate * health for dtype, rate in achievable.items()}
    rates.update({dtype: rate for dtype, rate in measured.items()
                  if dtype not in ENGINE_KERNEL_FORMATS or dtype not in achievable})
    return rates


def engine_matmul_rates(machine: Machine, limits: Limits) -> dict[str, float]:
    """The matmul rates the predictions take for this machine's first GPU (``measured_rates``): what the
    modelled passes of formats the benchmark does not run are priced at, so they agree with the predictions."""
    device = _first_accelerator(machine)
    if isinstance(device, Unavailable) or not isinstance(device.spec_id, str) or not measured_on(limits, device):
        return dict(limits.peak_flops_per_s)  # a CPU, a GPU without a datasheet entry, or limits of another device
    return measured_rates(limits.peak_flops_per_s, dict(spec_by_id(device.spec_id).peak_flops_per_s))


def launch_floor_scale(limits: Limits | None) -> tuple[float, str]:
    """How the device's kernel latency compares with the reference GPU's (engine floors scale with it)."""
    if limits is None or isinstance(limits.launch_floor_seconds, Unavailable):
        return 1.0, _REFERENCE_FLOOR
    scale = limits.launch_floor_seconds / REFERENCE_LAUNCH_FLOOR_SECONDS
    return scale, (f"measured launch floor {limits.launch_floor_seconds * 1e6:.2f} us against the reference "
                   f"H100 SXM's {REFERENCE_LAUNCH_FLOOR_SECONDS * 1e6:.2f} us")


def ceilings_from_machine(machine: Machine, limits: Limits | Unavailable, *, gpus: int = 1) -> Ceilings:
    """Ceilings of the machine's first GPU: measured limits as measured (see the module docstring), the
    datasheet where nothing was measured, and the memory the probe found usable."""
    device = _first_accelerator(machine)
    if isinstance(device, Unavailable):
        return _cpu_ceilings(machine, limits)
    spec = spec_by_id(device.spec_id) if isinstance(device.spec_id, str) else None
    measured = measured_on(limits, device)
    if measured and not isinstance(measured.stream_read_bytes_per_s, Unavailable):
        bandwidth = measured.stream_read_bytes_per_s
    elif spec is not None:
        bandwidth = achievable_bandwidth(spec.memory_bandwidth_bytes_per_s)
    else:
        raise UsageError(f"cannot predict for {device.name}: no measured bandwidth and no datasheet entry")
    datasheet_rates = dict(spec.peak_flops_per_s) if spec else None
    peaks = measured_rates(measured.peak_flops_per_s if measured else {}, datasheet_rates)
    vendor = vendor_of(device)
    memory_class = device.memory_class
    usable = memory_class.usable_bytes
    if isinstance(usable, Unavailable):
        if spec is None:
            raise UsageError(f"cannot predict for {device.name}: usable memory unknown ({usable.reason})")
        usable_bytes, usable_basis = usable_memory(spec.memory_bytes, spec.memory_class, spec.vendor)
    else:
        usable_bytes, usable_basis = usable, memory_class.usable_basis
    floor_scale, floor_basis = launch_floor_scale(measured)
    return Ceilings(
        source="measured" if measured else "datasheet", device_name=device.name,
        hardware_id=spec.id if spec else Unavailable("not in the datasheet table"), vendor=vendor,
        device_type=spec.device_type if spec else _device_type(device),
        gpus=gpus, memory_class=memory_class.kind, bandwidth_bytes_per_s=bandwidth, peak_flops_per_s=peaks,
        native_precisions=spec.native_precisions if spec else tuple(peaks),
        usable_memory_bytes=usable_bytes * gpus, usable_memory_basis=usable_basis,
        interconnect_bytes_per_s=spec.interconnect_bytes_per_s if spec else Unavailable("not in the datasheet"),
        launch_floor_seconds=measured.launch_floor_seconds if measured else Unavailable("not measured"),
        sources=(("measured by dgprofile check",) if measured else ()) + (spec.sources if spec else ()),
        architecture=spec.architecture if spec else Unavailable("not in the datasheet table"),
        floor_scale=floor_scale, floor_scale_basis=floor_basis,
        eager_launch_seconds=measured.eager_launch_seconds if measured else Unavailable("not measured"),
        peer_to_peer=spec.peer_to_peer if spec else True,
        # Measured figures replace derived ones: the datasheet's spread applies only when nothing was measured.
        approximate=dict(spec.approximate) if spec and not measured else {})


def _cpu_ceilings(machine: Machine, limits: Limits | Unavailable) -> Ceilings:
    """Ceilings of a machine without a GPU: the CPU runs the model from host RAM, so only measured limits can
    say how fast (there is no datasheet table for CPUs)."""
    cpu = machine.cpu
    if not isinstance(limits, Limits) or limits.device != "cpu":
        reason = limits.reason if isinstance(limits, Unavailable) else f"limits were measured on {limits.device}"
        raise UsageError(f"cannot predict for this CPU-only machine without measured limits ({reason})")
    if isinstance(limits.stream_read_bytes_per_s, Unavailable):
        raise UsageError(f"cannot predict for this CPU: {limits.stream_read_bytes_per_s.reason}")
    if isinstance(cpu.ram_available_bytes, Unavailable):
        raise UsageError(f"cannot predict for this CPU: available RAM unknown ({cpu.ram_available_bytes.reason})")
    peaks = dict(limits.peak_flops_per_s)
    name = cpu.model if isinstance(cpu.model, str) else f"{cpu.architecture} CPU"
    floor_scale, floor_basis = launch_floor_scale(limits)
    return Ceilings(
        source="measured", device_name=name, hardware_id=Unavailable("CPUs are not in the datasheet table"),
        vendor="cpu", device_type="cpu", gpus=1, memory_class="shared-physical",
        bandwidth_bytes_per_s=limits.stream_read_bytes_per_s, peak_flops_per_s=peaks,
        native_precisions=tuple(dtype for dtype in ("bf16", "fp16") if dtype in peaks),
        usable_memory_bytes=cpu.ram_available_bytes,
        usable_memory_basis="host RAM available now (MemAvailable)",
        interconnect_bytes_per_s=Unavailable("one CPU: no tensor parallelism"),
        launch_floor_seconds=limits.launch_floor_seconds, sources=("measured by dgprofile check",),
        architecture=Unavailable("a CPU"), floor_scale=floor_scale, floor_scale_basis=floor_basis,
        eager_launch_seconds=limits.eager_launch_seconds)


def compute_dtype(ceilings: Ceilings) -> str:
    """The wide format the device multiplies in when the weights' own format is not native: the fastest of
    bf16, fp16 and fp32 (on GPUs a half format; on CPUs without bf16 units often fp32, as llama.cpp does)."""
    wide = [dtype for dtype in ("bf16", "fp16", "fp32") if dtype in ceilings.peak_flops_per_s]
    if not wide:
        raise UsageError(f"{ceilings.device_name}: no matmul rate is known")
    return max(wide, key=lambda dtype: ceilings.peak_flops_per_s[dtype])


def runs_natively(ceilings: Ceilings, precision: Precision) -> bool:
    """Whether the device multiplies in the format itself: a weight-and-activation format (FP8, int8 W8A8,
    NVFP4) the hardware has. Weight-only formats (AWQ int4, GGUF, MLX) are always unpacked to 16 bits first."""
    if precision.name in ("bf16", "fp16"):
        return True
    return (not precision.weight_only and precision.name in ceilings.native_precisions
            and precision.native_compute_format in ceilings.peak_flops_per_s)


def matmul_rate(ceilings: Ceilings, precision: Precision) -> tuple[float, bool]:
    """FLOP/s of one GPU for matmuls with weights in ``precision``, and whether that format is computed natively
    (False: the weights are unpacked to bf16/fp16 first, at that rate)."""
    wide = compute_dtype(ceilings)
    if precision.name in ("bf16", "fp16"):
        return ceilings.peak_flops_per_s[wide], True
    if runs_natively(ceilings, precision):
        return ceilings.peak_flops_per_s[precision.native_compute_format], True
    return ceilings.peak_flops_per_s[wide], False


def vector_rate(ceilings: Ceilings) -> float:
    """FLOP/s of one GPU's fp32 units (sampler arithmetic, dequantisation)."""
    return ceilings.peak_flops_per_s.get("fp32", ceilings.peak_flops_per_s[compute_dtype(ceilings)])
