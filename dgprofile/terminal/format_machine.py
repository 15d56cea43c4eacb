"""A ``Machine`` as plain terminal text: one aligned "key  value" block per section.

Unavailable values read "unavailable (reason)". Every line passes through ``_printable``: strings from the
machine (GPU names, process names, hostnames, reasons quoting them) cannot send escape sequences to a terminal.
"""

from __future__ import annotations

from dgprofile.records.machine import (
    Accelerator,
    AmdGpu,
    AppleGpu,
    CpuInfo,
    FailedDevice,
    GpuProcess,
    IntelGpu,
    Machine,
    MemoryClass,
    NvidiaGpu,
    Software,
)
from dgprofile.records.values import Unavailable
from dgprofile.text.scenario import nvlink_text, peers_text
from dgprofile.text.units import (
    bandwidth_text,
    bytes_text,
    hertz_text,
    plain_text,
    seconds_text,
    watts_text,
    whole_percent_text,
)

Row = tuple[str, str]


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _with_basis(text: str, value: object, basis: str) -> str:
    """A figure with its basis in brackets; an unavailable figure already carries its reason."""
    return text if isinstance(value, Unavailable) else f"{text} ({basis})"


def _memory_class_rows(memory: MemoryClass) -> list[Row]:
    return [("memory class", memory.kind),
            ("usable memory",
             _with_basis(bytes_text(memory.usable_bytes), memory.usable_bytes, memory.usable_basis)),
            ("memory signals", "; ".join(memory.signals))]


def _cpu_rows(cpu: CpuInfo) -> list[Row]:
    return [
        ("model", plain_text(cpu.model)), ("architecture", plain_text(cpu.architecture)),
        ("cores", f"{plain_text(cpu.physical_cores)} physical, {plain_text(cpu.logical_cores)} logical"),
        ("inference flags", " ".join(cpu.inference_flags) or "none of those dgprofile looks for"),
        ("L3 cache", bytes_text(cpu.l3_cache_bytes)),
        ("RAM", f"{bytes_text(cpu.ram_total_bytes)} total, {bytes_text(cpu.ram_available_bytes)} available"),
        ("DRAM bandwidth", _with_basis(bandwidth_text(cpu.theoretical_bandwidth_bytes_per_s),
                                       cpu.theoretical_bandwidth_bytes_per_s,
                                       cpu.theoretical_bandwidth_basis)),
        ("NUMA nodes", plain_text(cpu.numa_nodes)),
    ]


def _processes_text(gpu: NvidiaGpu | AmdGpu | IntelGpu) -> str:
    if isinstance(gpu.other_processes, Unavailable):
        return plain_text(gpu.other_processes)
    if not gpu.other_processes:
        return "none"
    def one(process: GpuProcess) -> str:
        name = process.name if isinstance(process.name, str) else "unnamed"
        memory = process.used_memory_bytes
        held = "memory unknown" if isinstance(memory, Unavailable) else bytes_text(memory)
        return f"{name} (pid {process.pid}, {held})"

    return ", ".join(one(process) for process in gpu.other_processes)


def _nvidia_rows(gpu: NvidiaGpu) -> list[Row]:
    percent, power = gpu.utilization_percent, gpu.power_limit_w
    return [
        ("UUID", plain_text(gpu.uuid)), ("PCI bus id", plain_text(gpu.pci_bus_id)),
        ("architecture",
         f"{plain_text(gpu.architecture)}, compute capability {plain_text(gpu.compute_capability)}"),
        ("driver", f"{plain_text(gpu.driver_version)} (CUDA {plain_text(gpu.cuda_driver_version)}, "
                   f"NVML {plain_text(gpu.nvml_version)})"),
        ("memory", f"{bytes_text(gpu.memory_total_bytes)} total, {bytes_text(gpu.memory_free_bytes)} free, "
                   f"{bytes_text(gpu.memory_used_bytes)} used"),
        ("memory bus",
         f"{plain_text(gpu.memory_bus_width_bits)} bits at {hertz_text(gpu.memory_clock_max_hz)} max"),
        ("bandwidth", _with_basis(bandwidth_text(gpu.theoretical_bandwidth_bytes_per_s),
                                  gpu.theoretical_bandwidth_bytes_per_s, gpu.theoretical_bandwidth_basis)),
        ("bandwidth cross-check", f"NVML-derived {bandwidth_text(gpu.nvml_derived_bandwidth_bytes_per_s)}, "
                                  f"datasheet {bandwidth_text(gpu.datasheet_bandwidth_bytes_per_s)}"
                                  + (": DISAGREE" if gpu.bandwidth_disagrees_with_datasheet else "")),
        ("datasheet entry", plain_text(gpu.spec_id)),
        ("SMs", _with_basis(plain_text(gpu.sm_count), gpu.sm_count, gpu.sm_count_basis)),
        ("SM clock", f"{hertz_text(gpu.sm_clock_max_hz)} max"),
        ("power limit", watts_text(power)),
        ("PCIe", f"gen {plain_text(gpu.pcie_generation)} x{plain_text(gpu.pcie_width)} (link maximum)"),
        ("NVLink", nvlink_text(gpu)), ("other GPUs", peers_text(gpu)),
        ("MIG", plain_text(gpu.mig_mode)), ("ECC", plain_text(gpu.ecc_mode)),
        ("utilisation", whole_percent_text(percent)),
        ("other processes", _processes_text(gpu)),
        *_memory_class_rows(gpu.memory_class),
    ]


def _amd_rows(gpu: AmdGpu) -> list[Row]:
    return [
        ("UUID", plain_text(gpu.uuid)), ("PCI bus id", plain_text(gpu.pci_bus_id)),
        ("PCI device id", plain_text(gpu.pci_device_id)),
        ("architecture", f"{plain_text(gpu.architecture)} ({plain_text(gpu.gfx_target)})"),
        ("driver", f"amdgpu {plain_text(gpu.driver_version)} (ROCm {plain_text(gpu.rocm_version)}, "
                   f"amdsmi {plain_text(gpu.amdsmi_version)})"),
        ("VRAM", f"{bytes_text(gpu.memory_total_bytes)} total, {bytes_text(gpu.memory_free_bytes)} free, "
                 f"{bytes_text(gpu.memory_used_bytes)} used"
                 + (f" ({gpu.memory_type})" if isinstance(gpu.memory_type, str) else "")),
        ("GTT", f"{bytes_text(gpu.gtt_total_bytes)} total, {bytes_text(gpu.gtt_used_bytes)} used"),
        ("memory bus",
         f"{plain_text(gpu.memory_bus_width_bits)} bits, controller clock {hertz_text(gpu.memory_clock_max_hz)} max"),
        ("bandwidth", _with_basis(bandwidth_text(gpu.theoretical_bandwidth_bytes_per_s),
                                  gpu.theoretical_bandwidth_bytes_per_s, gpu.theoretical_bandwidth_basis)),
        ("bandwidth cross-check", f"amdsmi {bandwidth_text(gpu.library_bandwidth_bytes_per_s)}, "
                                  f"datasheet {bandwidth_text(gpu.datasheet_bandwidth_bytes_per_s)}"
                                  + (": DISAGREE" if gpu.bandwidth_disagrees_with_datasheet else "")),
        ("datasheet entry", plain_text(gpu.spec_id)),
        ("compute units", f"{plain_text(gpu.compute_units)} at up to {hertz_text(gpu.gfx_clock_max_hz)}"),
        ("power limit", watts_text(gpu.power_limit_w)),
        ("PCIe", f"gen {plain_text(gpu.pcie_generation)} x{plain_text(gpu.pcie_width)} (link maximum)"),
        ("partitions", f"compute {plain_text(gpu.compute_partition)}, memory {plain_text(gpu.memory_partition)}"),
        ("utilisation", whole_percent_text(gpu.utilization_percent)),
        ("other processes", _processes_text(gpu)),
        ("verified on hardware", plain_text(gpu.verified_on_hardware)),
        *_memory_class_rows(gpu.memory_class),
    ]


def _intel_rows(gpu: IntelGpu) -> list[Row]:
    return [
        ("PCI bus id", plain_text(gpu.pci_bus_id)), ("PCI device id", gpu.pci_device_id),
        ("architecture", plain_text(gpu.architecture)), ("driver", gpu.driver),
        ("local memory", bytes_text(gpu.memory_total_bytes)),
        ("bandwidth", _with_basis(bandwidth_text(gpu.theoretical_bandwidth_bytes_per_s),
                                  gpu.theoretical_bandwidth_bytes_per_s, gpu.theoretical_bandwidth_basis)),
        ("datasheet entry", plain_text(gpu.spec_id)),
        ("Xe cores", f"{plain_text(gpu.xe_cores)} at up to {hertz_text(gpu.gt_clock_max_hz)}"),
        ("power limit", watts_text(gpu.power_limit_w)),
        ("utilisation", whole_percent_text(gpu.utilization_percent)),
        ("other processes", _processes_text(gpu)),
        ("verified on hardware", plain_text(gpu.verified_on_hardware)),
        *_memory_class_rows(gpu.memory_class),
    ]


def _apple_rows(gpu: AppleGpu) -> list[Row]:
    return [
        ("chip", plain_text(gpu.chip)), ("GPU cores", plain_text(gpu.gpu_cores)),
        ("unified memory", bytes_text(gpu.unified_memory_bytes)),
        ("GPU working set", bytes_text(gpu.recommended_working_set_bytes)),
        ("bandwidth", _with_basis(bandwidth_text(gpu.theoretical_bandwidth_bytes_per_s),
                                  gpu.theoretical_bandwidth_bytes_per_s, gpu.theoretical_bandwidth_basis)),
        ("datasheet entry", plain_text(gpu.spec_id)), ("macOS", plain_text(gpu.macos_version)),
        ("verified on hardware", plain_text(gpu.verified_on_hardware)),
        *_memory_class_rows(gpu.memory_class),
    ]


def _software_rows(software: Software) -> list[Row]:
    return [
        ("Python", software.python_version), ("OS", f"{software.os_name} {software.os_release}"),
        ("torch", f"{plain_text(software.torch_version)}; CUDA {plain_text(software.torch_cuda_version)}; "
                  f"MPS {plain_text(software.torch_mps_available)}"),
        ("triton", plain_text(software.triton_version)),
        ("transformers", plain_text(software.transformers_version)),
        ("vLLM", plain_text(software.vllm_version)),
        ("nvidia-ml-py", plain_text(software.nvidia_ml_py_version)),
    ]


def _accelerator_section(device: Accelerator) -> tuple[str, list[Row]]:
    if isinstance(device, FailedDevice):
        return f"GPU {device.index}: {device.vendor} device that could not be described", [
            ("reason", device.reason)]
    if isinstance(device, NvidiaGpu):
        rows = _nvidia_rows(device)
    elif isinstance(device, AmdGpu):
        rows = _amd_rows(device)
    elif isinstance(device, IntelGpu):
        rows = _intel_rows(device)
    else:
        rows = _apple_rows(device)
    return f"GPU {device.index}: {device.name}", rows


def format_machine(machine: Machine) -> str:
    """The readable table `dgprofile probe` prints."""
    identity = machine.identity.hostname + (" (anonymized)" if machine.identity.anonymized else "")
    sections: list[tuple[str, list[Row]]] = [
        (f"Machine {identity}, probed in {seconds_text(machine.probe_seconds)}", []),
        ("CPU", _cpu_rows(machine.cpu)),
        *(_accelerator_section(device) for device in machine.accelerators),
        ("Software", _software_rows(machine.software)),
    ]
    if not machine.accelerators:
        sections.insert(2, ("Accelerators", [("found", "none (see notes)")]))
    width = max(len(key) for _, rows in sections for key, _ in rows)
    lines: list[str] = []
    for title, rows in sections:
        lines.append(_printable(title))
        lines.extend(f"  {key:<{width}}  {_printable(value)}" for key, value in rows)
        lines.append("")
    for title, items in (("Warnings", machine.warnings), ("Notes", machine.probe_notes)):
        if items:
            lines.append(title)
            lines.extend(f"  - {_printable(item)}" for item in items)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
