"""The device ceilings the model runs on: bandwidth, matmul rate per number format, usable memory.

From a datasheet entry (`predict`) or from what `check` measured. Engine efficiencies are fitted against
datasheet figures, so measured figures are put on the same footing: a measured streaming read is divided by the
fraction of the datasheet that the best streaming benchmarks reach on a healthy card (``REFERENCE_*``), and capped
at the datasheet where one is known. A healthy card thus predicts like its datasheet, and a throttled, shared or
unknown one predicts from what it really did.
"""

from __future__ import annotations

from dgprofile.errors import UsageError
from dgprofile.records.limits import Limits
from dgprofile.records.machine import AppleGpu, Machine, MemoryClassKind, NvidiaGpu
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
# Metal's recommendedMaxWorkingSetSize is commonly about 75% of unified memory; `check` reads the real figure
# on a Mac.
APPLE_WORKING_SET_FRACTION = 0.75
# Other one-pool parts (DGX Spark, Strix Halo, Jetson): the OS and desktop keep part of the pool (assumed 10%).
SHARED_POOL_OS_FRACTION = 0.10
# A discrete GPU loses the CUDA/ROCm context and driver reservations (assumed 1 GiB).
DISCRETE_RESERVED_BYTES = 1 * GIB


def usable_memory(memory_bytes: int, memory_class: MemoryClassKind, vendor: str) -> tuple[int, str]:
    """Memory one accelerator can give the model, and the rule used."""
    if memory_class == "shared-physical" and vendor == "apple":
        return (int(memory_bytes * APPLE_WORKING_SET_FRACTION),
                f"{APPLE_WORKING_SET_FRACTION:.0%} of unified memory (Metal's recommended working set)")
    if memory_class == "shared-physical":
        return (int(memory_bytes * (1 - SHARED_POOL_OS_FRACTION)),
                f"one pool shared with the OS: {1 - SHARED_POOL_OS_FRACTION:.0%} of it assumed free")
    return (memory_bytes - DISCRETE_RESERVED_BYTES, "device memory less ~1 GiB of driver/context reservation")


def ceilings_from_spec(spec: HardwareSpec, *, gpus: int = 1, memory_bytes: int | None = None) -> Ceilings:
    """Datasheet ceilings of ``gpus`` identical accelerators; ``memory_bytes`` overrides the per-GPU memory
    (e.g. an Apple chip bought with less than the table's largest configuration)."""
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
        bandwidth_bytes_per_s=spec.memory_bandwidth_bytes_per_s, peak_flops_per_s=dict(spec.peak_flops_per_s),
        native_precisions=spec.native_precisions, usable_memory_bytes=usable * gpus,
        usable_memory_basis=basis + ("" if memory_bytes is None else " (memory given on the command line)"),
        interconnect_bytes_per_s=spec.interconnect_bytes_per_s,
        launch_floor_seconds=Unavailable("not measured: predicted from the datasheet"), sources=spec.sources)


def _first_accelerator(machine: Machine) -> NvidiaGpu | AppleGpu | Unavailable:
    devices: list[NvidiaGpu | AppleGpu] = [d for d in machine.accelerators if isinstance(d, (NvidiaGpu, AppleGpu))]
    return devices[0] if devices else Unavailable("no GPU was found on this machine")


def machine_vendor(machine: Machine) -> str:
    """Whose accelerator a measured machine is predicted for: its first GPU's vendor, else "cpu"."""
    device = _first_accelerator(machine)
    if isinstance(device, Unavailable):
        return "cpu"
    return "apple" if isinstance(device, AppleGpu) else "nvidia"


def datasheet_footing(measured: float, reference_fraction: float, datasheet: float | None) -> float:
    """A measured rate divided by the fraction of the datasheet a healthy card reaches, capped at the datasheet."""
    equivalent = measured / reference_fraction
    return min(equivalent, datasheet) if datasheet is not None else equivalent


def ceilings_from_machine(machine: Machine, limits: Limits | Unavailable, *, gpus: int = 1) -> Ceilings:
    """Ceilings of the machine's first GPU: measured limits (on the datasheet footing, see the module docstring),
    the datasheet where nothing was measured, and the memory the probe found usable."""
    device = _first_accelerator(machine)
    if isinstance(device, Unavailable):
        return _cpu_ceilings(machine, limits)
    spec = spec_by_id(device.spec_id) if isinstance(device.spec_id, str) else None
    measured = limits if isinstance(limits, Limits) else None
    datasheet_bandwidth = spec.memory_bandwidth_bytes_per_s if spec else None
    if measured and not isinstance(measured.stream_read_bytes_per_s, Unavailable):
        bandwidth = datasheet_footing(measured.stream_read_bytes_per_s, REFERENCE_STREAM_FRACTION,
                                      datasheet_bandwidth)
    elif datasheet_bandwidth is not None:
        bandwidth = datasheet_bandwidth
    else:
        raise UsageError(f"cannot predict for {device.name}: no measured bandwidth and no datasheet entry")
    peaks = dict(spec.peak_flops_per_s) if spec else {}
    for dtype, rate in (measured.peak_flops_per_s.items() if measured else ()):
        peaks[dtype] = datasheet_footing(rate, REFERENCE_MATMUL_FRACTION, peaks.get(dtype))
    vendor = machine_vendor(machine)
    memory_class = device.memory_class
    usable = memory_class.usable_bytes
    if isinstance(usable, Unavailable):
        if spec is None:
            raise UsageError(f"cannot predict for {device.name}: usable memory unknown ({usable.reason})")
        usable_bytes, usable_basis = usable_memory(spec.memory_bytes, spec.memory_class, spec.vendor)
    else:
        usable_bytes, usable_basis = usable, memory_class.usable_basis
    return Ceilings(
        source="measured" if measured else "datasheet", device_name=device.name,
        hardware_id=spec.id if spec else Unavailable("not in the datasheet table"), vendor=vendor,
        device_type=spec.device_type if spec else ("soc-gpu" if vendor == "apple" else "discrete-gpu"),
        gpus=gpus, memory_class=memory_class.kind, bandwidth_bytes_per_s=bandwidth, peak_flops_per_s=peaks,
        native_precisions=spec.native_precisions if spec else tuple(peaks),
        usable_memory_bytes=usable_bytes * gpus, usable_memory_basis=usable_basis,
        interconnect_bytes_per_s=spec.interconnect_bytes_per_s if spec else Unavailable("not in the datasheet"),
        launch_floor_seconds=measured.launch_floor_seconds if measured else Unavailable("not measured"),
        sources=(("measured by dgprofile check",) if measured else ()) + (spec.sources if spec else ()))


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
    theoretical = cpu.theoretical_bandwidth_bytes_per_s
    bandwidth = datasheet_footing(limits.stream_read_bytes_per_s, REFERENCE_STREAM_FRACTION,
                                  None if isinstance(theoretical, Unavailable) else theoretical)
    peaks = {dtype: rate / REFERENCE_MATMUL_FRACTION for dtype, rate in limits.peak_flops_per_s.items()}
    name = cpu.model if isinstance(cpu.model, str) else f"{cpu.architecture} CPU"
    return Ceilings(
        source="measured", device_name=name, hardware_id=Unavailable("CPUs are not in the datasheet table"),
        vendor="cpu", device_type="cpu", gpus=1, memory_class="shared-physical",
        bandwidth_bytes_per_s=bandwidth, peak_flops_per_s=peaks,
        native_precisions=tuple(dtype for dtype in ("bf16", "fp16") if dtype in peaks),
        usable_memory_bytes=cpu.ram_available_bytes,
        usable_memory_basis="host RAM available now (MemAvailable)",
        interconnect_bytes_per_s=Unavailable("one CPU: no tensor parallelism"),
        launch_floor_seconds=limits.launch_floor_seconds, sources=("measured by dgprofile check",))


def compute_dtype(ceilings: Ceilings) -> str:
    """The wide format the device multiplies in when the weights' own format is not native: the fastest of
    bf16, fp16 and fp32 (on GPUs a half format; on CPUs without bf16 units often fp32, as llama.cpp does)."""
    wide = [dtype for dtype in ("bf16", "fp16", "fp32") if dtype in ceilings.peak_flops_per_s]
    if not wide:
        raise UsageError(f"{ceilings.device_name}: no matmul rate is known")
    return max(wide, key=lambda dtype: ceilings.peak_flops_per_s[dtype])


def matmul_rate(ceilings: Ceilings, precision: Precision) -> tuple[float, bool]:
    """FLOP/s of one GPU for matmuls with weights in ``precision``, and whether that format is computed natively
    (False: the weights are dequantised to bf16/fp16 first, at that rate)."""
    wide = compute_dtype(ceilings)
    if precision.name in ("bf16", "fp16"):
        return ceilings.peak_flops_per_s[wide], True
    native_format = precision.native_compute_format
    if precision.name in ceilings.native_precisions and native_format in ceilings.peak_flops_per_s:
        return ceilings.peak_flops_per_s[native_format], True
    return ceilings.peak_flops_per_s[wide], False


def vector_rate(ceilings: Ceilings) -> float:
    """FLOP/s of one GPU's fp32 units (sampler arithmetic, dequantisation)."""
    return ceilings.peak_flops_per_s.get("fp32", ceilings.peak_flops_per_s[compute_dtype(ceilings)])
