"""AMD GPUs and APUs through amdsmi only: the probe never initialises HIP or torch, so it holds no GPU context.

Every value comes from one amdsmi call through the ``dgprofile.probes._amdsmi`` seam. A value amdsmi cannot give is
recorded as ``Unavailable`` with the reason; a device that stops answering becomes a ``FailedDevice`` and the
others are still described. The theoretical bandwidth is amdsmi's own peak VRAM bandwidth where the driver
reports one, checked against the datasheet; it is never derived from the memory clock, because amdgpu reports
the memory controller's clock, not the data rate, and the usual 2 x clock x bus width undercounts HBM3 and GDDR6
by 2-8x (https://github.com/ROCm/xla/pull/970). Written against amdsmi 6.x/7.x's documented Python interface
and tested with fakes; not yet verified on AMD hardware.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dgprofile.probes import _amdsmi
from dgprofile.probes.gpu_common import busy_warnings, cross_check_bandwidth, process_name, whole_number
from dgprofile.probes.memory_class import AmdMemorySignals, MeminfoReader, classify_amd, read_meminfo
from dgprofile.records.machine import AmdGpu, FailedDevice, GpuProcess
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec, match_device_name

# LLVM processor -> architecture family (https://llvm.org/docs/AMDGPUUsage.html#processors).
_FAMILIES = (("gfx95", "CDNA 4"), ("gfx94", "CDNA 3"), ("gfx90a", "CDNA 2"), ("gfx908", "CDNA"),
             ("gfx90", "GCN 5 (Vega)"), ("gfx12", "RDNA 4"), ("gfx115", "RDNA 3.5"), ("gfx110", "RDNA 3"),
             ("gfx103", "RDNA 2"), ("gfx101", "RDNA"))
# amdsmi_vram_type_t names (amdsmi.h); LPDDR parts report UNKNOWN.
VRAM_TYPE_NAMES = {1: "HBM", 2: "HBM2", 3: "HBM2E", 4: "HBM3", 10: "DDR2", 11: "DDR3", 12: "DDR4",
                   17: "GDDR1", 18: "GDDR2", 19: "GDDR3", 20: "GDDR4", 21: "GDDR5", 22: "GDDR6", 23: "GDDR7"}


@dataclass(frozen=True)
class AmdProbe:
    """What the AMD probe found: the devices, and notes on what it could not look at."""

    devices: tuple[AmdGpu | FailedDevice, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Versions:
    amdsmi: str | Unavailable
    rocm: str | Unavailable


def architecture_of(gfx_target: str | Unavailable) -> str | Unavailable:
    """The architecture family of an LLVM AMDGPU processor name ("gfx942" -> "CDNA 3")."""
    if isinstance(gfx_target, Unavailable):
        return gfx_target
    family = next((name for prefix, name in _FAMILIES if gfx_target.startswith(prefix)), None)
    return family or Unavailable(f"{gfx_target} is not in dgprofile's table of AMD architectures")


def probe_amd(smi: _amdsmi.AmdSmiQuery, *, read_host_meminfo: MeminfoReader = read_meminfo,
              own_pid: int | None = None) -> AmdProbe:
    """Describe every AMD GPU amdsmi can see; ``own_pid`` is left out of the other-processes list."""
    handles = smi.query("amdsmi_get_processor_handles")
    if isinstance(handles, Unavailable):
        return AmdProbe(devices=(), notes=(f"AMD: cannot list GPUs ({handles.reason})",))
    if not handles:
        return AmdProbe(devices=(), notes=("AMD: amdsmi works but sees no AMD GPU",))
    pid = os.getpid() if own_pid is None else own_pid
    versions = _Versions(amdsmi=_library_version(smi.query("amdsmi_get_lib_version")),
                         rocm=_rocm_version(smi.query("amdsmi_get_rocm_version")))
    devices = tuple(_probe_device(smi, index, handle, versions, read_host_meminfo, pid)
                    for index, handle in enumerate(handles))
    return AmdProbe(devices=devices, notes=())


def _library_version(value: Any) -> str | Unavailable:
    if isinstance(value, Unavailable):
        return value
    return f"{value['major']}.{value['minor']}.{value['release']}"


def _rocm_version(value: Any) -> str | Unavailable:
    """amdsmi_get_rocm_version answers (found, version or error text)."""
    if isinstance(value, Unavailable):
        return value
    found, text = value
    return str(text) if found else Unavailable(f"ROCm version unknown: {text}")


def _failed(index: int, reason: str) -> FailedDevice:
    return FailedDevice(kind="failed-device", index=index, vendor="amd", reason=reason)


def _probe_device(smi: _amdsmi.AmdSmiQuery, index: int, handle: Any, versions: _Versions,
                  read_host_meminfo: MeminfoReader, own_pid: int) -> AmdGpu | FailedDevice:
    try:
        asic = smi.query("amdsmi_get_gpu_asic_info", handle)
        if isinstance(asic, Unavailable):
            return _failed(index, asic.reason)
        return _describe(smi, index, handle, asic, versions, read_host_meminfo, own_pid)
    except _amdsmi.DeviceLostError as exc:
        return _failed(index, f"lost while being probed: {exc}")


def _text(value: Any, what: str) -> str | Unavailable:
    if isinstance(value, Unavailable):
        return value
    text = str(value).strip()
    if not text or text == _amdsmi.NOT_AVAILABLE_TEXT:
        return Unavailable(f"{what}: the driver does not report it")
    return text


def _field(record: Any, key: str, what: str) -> Any:
    """One field of a dict amdsmi answered, or the Unavailable the whole call answered."""
    return record if isinstance(record, Unavailable) else record.get(key, Unavailable(f"{what}: not reported"))


def _describe(smi: _amdsmi.AmdSmiQuery, index: int, handle: Any, asic: dict[str, Any], versions: _Versions,
              read_host_meminfo: MeminfoReader, own_pid: int) -> AmdGpu:
    def q(fn_name: str, *args: Any) -> Any:
        return smi.query(fn_name, handle, *args)

    warnings: list[str] = []
    device_id = _text(asic.get("device_id"), "PCI device id")
    gfx_target = _text(asic.get("target_graphics_version"), "LLVM target")
    name = _text(asic.get("market_name"), "market name")
    if isinstance(name, Unavailable):
        name = f"AMD GPU {device_id if isinstance(device_id, str) else '(unknown device id)'}"
    compute_units = whole_number(asic.get("num_compute_units"), "compute units")

    vram_total = whole_number(q("amdsmi_get_gpu_memory_total", _amdsmi.MEMORY_VRAM), "VRAM total")
    vram_used = whole_number(q("amdsmi_get_gpu_memory_usage", _amdsmi.MEMORY_VRAM), "VRAM in use")
    gtt_total = whole_number(q("amdsmi_get_gpu_memory_total", _amdsmi.MEMORY_GTT), "GTT total")
    gtt_used = whole_number(q("amdsmi_get_gpu_memory_usage", _amdsmi.MEMORY_GTT), "GTT in use")
    memory_class = classify_amd(AmdMemorySignals(
        name=name, gfx_target=gfx_target, vram_total_bytes=vram_total, vram_used_bytes=vram_used,
        gtt_total_bytes=gtt_total, gtt_used_bytes=gtt_used), read_host_meminfo)

    vram = q("amdsmi_get_gpu_vram_info")
    vram_type = _field(vram, "vram_type", "VRAM type")
    memory_type: str | Unavailable = (vram_type if isinstance(vram_type, Unavailable) else VRAM_TYPE_NAMES.get(
        vram_type, Unavailable(f"amdsmi VRAM type {vram_type} (unknown, as LPDDR on APUs)")))
    bus_width = whole_number(_field(vram, "vram_bit_width", "VRAM bus width"), "VRAM bus width")
    reported_gbps = whole_number(_field(vram, "vram_max_bandwidth", "peak VRAM bandwidth"),
                                 "peak VRAM bandwidth")
    reported: float | Unavailable = (reported_gbps if isinstance(reported_gbps, Unavailable)
                                     else reported_gbps * 1e9)
    spec = _matching_spec(name, gfx_target, compute_units, vram_total)
    bandwidth = cross_check_bandwidth(reported, "amdsmi's peak VRAM bandwidth (amdsmi_get_gpu_vram_info)", spec)
    warnings.extend(bandwidth.warnings)
    if memory_class.kind == "shared-physical":
        warnings.append("an APU shares the host's DRAM: its bandwidth is the memory system's, and only a "
                        "measured bandwidth says what the GPU really gets")

    compute_partition = _text(q("amdsmi_get_gpu_compute_partition"), "compute partition")
    if isinstance(compute_partition, str) and compute_partition != "SPX":
        warnings.append(f"the GPU runs in {compute_partition} compute partition mode: it is split into several "
                        "logical GPUs, each with a fraction of the compute units; measurements describe one of them")
    utilization = whole_number(_field(q("amdsmi_get_gpu_activity"), "gfx_activity", "GFX activity"),
                               "GFX activity")
    processes = _other_processes(q("amdsmi_get_gpu_process_list"), own_pid)
    warnings.extend(busy_warnings(utilization, processes))
    power = whole_number(_field(q("amdsmi_get_power_cap_info"), "power_cap", "power cap"), "power cap")
    pcie = _field(q("amdsmi_get_pcie_info"), "pcie_static", "PCIe link")

    return AmdGpu(
        kind="amd-gpu", index=index, name=name, uuid=_text(q("amdsmi_get_gpu_device_uuid"), "UUID"),
        pci_bus_id=_text(q("amdsmi_get_gpu_device_bdf"), "PCI bus id"), pci_device_id=device_id,
        architecture=architecture_of(gfx_target), gfx_target=gfx_target,
        driver_version=_text(_field(q("amdsmi_get_gpu_driver_info"), "driver_version", "driver version"),
                             "driver version"),
        amdsmi_version=versions.amdsmi, rocm_version=versions.rocm, memory_type=memory_type,
        memory_total_bytes=vram_total,
        memory_free_bytes=(vram_total - vram_used if isinstance(vram_total, int) and isinstance(vram_used, int)
                           else Unavailable("needs VRAM total and use")),
        memory_used_bytes=vram_used, gtt_total_bytes=gtt_total, gtt_used_bytes=gtt_used,
        memory_bus_width_bits=bus_width, memory_clock_max_hz=_max_clock_hz(q("amdsmi_get_clock_info",
                                                                                _amdsmi.CLOCK_MEM)),
        library_bandwidth_bytes_per_s=bandwidth.reported, datasheet_bandwidth_bytes_per_s=bandwidth.datasheet,
        bandwidth_disagrees_with_datasheet=bandwidth.disagrees,
        theoretical_bandwidth_bytes_per_s=bandwidth.used, theoretical_bandwidth_basis=bandwidth.basis,
        compute_units=compute_units, gfx_clock_max_hz=_max_clock_hz(q("amdsmi_get_clock_info", _amdsmi.CLOCK_GFX)),
        power_limit_w=power if isinstance(power, Unavailable) else power / 1e6,
        pcie_generation=whole_number(_field(pcie, "pcie_interface_version", "PCIe generation"), "PCIe generation"),
        pcie_width=whole_number(_field(pcie, "max_pcie_width", "PCIe width"), "PCIe width"),
        compute_partition=compute_partition,
        memory_partition=_text(q("amdsmi_get_gpu_memory_partition"), "memory partition"),
        utilization_percent=utilization, other_processes=processes, memory_class=memory_class,
        spec_id=spec if isinstance(spec, Unavailable) else spec.id, verified_on_hardware=False,
        warnings=tuple(warnings))


def _matching_spec(name: str, gfx_target: str | Unavailable, compute_units: int | Unavailable,
                   vram_total: int | Unavailable) -> HardwareSpec | Unavailable:
    """The datasheet entry by market name; else, for APUs that report only "AMD Radeon Graphics", by LLVM target
    and compute units together (bins of one die differ in compute units, not name)."""
    by_name = match_device_name(name, memory_bytes=vram_total, gpu_cores=compute_units)
    if not isinstance(by_name, Unavailable) or isinstance(gfx_target, Unavailable):
        return by_name
    by_target = match_device_name(gfx_target, gpu_cores=compute_units)
    if isinstance(by_target, Unavailable) or by_target.gpu_cores != compute_units:
        units = compute_units if isinstance(compute_units, int) else "unknown"
        return Unavailable(f"'{name}' ({gfx_target}, {units} compute units) is not in dgprofile's datasheet table")
    return by_target


def _max_clock_hz(value: Any) -> float | Unavailable:
    """The top of a clock's range (amdsmi_get_clock_info, MHz) in Hz."""
    maximum = whole_number(_field(value, "max_clk", "maximum clock"), "maximum clock")
    return maximum if isinstance(maximum, Unavailable) else maximum * 1e6


def _other_processes(listing: Any, own_pid: int) -> tuple[GpuProcess, ...] | Unavailable:
    if isinstance(listing, Unavailable):
        return listing
    found = []
    for entry in listing:
        pid = int(entry["pid"])
        if pid == own_pid:
            continue
        name = str(entry.get("name", ""))
        vram = entry.get("memory_usage", {}).get("vram_mem")
        found.append(GpuProcess(
            pid=pid,
            name=(Unavailable("amdsmi does not report the name (another user's process)")
                  if not name or name == _amdsmi.NOT_AVAILABLE_TEXT else process_name(name)),
            used_memory_bytes=int(vram) if isinstance(vram, int) else Unavailable("not reported")))
    return tuple(found)

