"""NVIDIA GPUs through NVML only: the probe never initialises CUDA or torch, so it holds no GPU context.

Every value comes from one NVML call through the ``dgprofile.probes._nvml`` seam. A value NVML cannot give is recorded
as ``Unavailable`` with the reason; a device that stops answering becomes a ``FailedDevice`` and the others are
still described.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from dgprofile.probes import _nvml
from dgprofile.probes.gpu_common import DATASHEET_TOLERANCE, busy_warnings, process_name
from dgprofile.probes.memory_class import MeminfoReader, NvidiaMemorySignals, classify_nvidia, read_meminfo
from dgprofile.records.machine import (
    Accelerator,
    FailedDevice,
    GpuProcess,
    LinkPath,
    NvidiaGpu,
    NvLink,
    PeerLink,
)
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import match_device_name
from dgprofile.text.units import bandwidth_text, percent_text, signed_percent_text

# FP32 lanes per SM by compute capability: CUDA C++ Programming Guide, "Arithmetic Instructions" throughput
# table (32-bit floating-point add/multiply per clock per multiprocessor). NVML reports lanes ("GPU cores").
FP32_LANES_PER_SM = {(7, 0): 64, (7, 2): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128,
                     (9, 0): 128, (10, 0): 128, (10, 3): 128, (11, 0): 128, (12, 0): 128, (12, 1): 128}


# nvmlGpuTopologyLevel_t (the closest common ancestor of two GPUs) -> the PCIe path it names.
TOPOLOGY_PATHS: dict[int, LinkPath] = {0: "same-board", 10: "pcie-switch", 20: "pcie-switches", 30: "host-bridge",
                                       40: "numa-node", 50: "across-numa"}


@dataclass(frozen=True)
class NvidiaProbe:
    """What the NVIDIA probe found: the devices, and notes on what it could not look at."""

    devices: tuple[Accelerator, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _SystemVersions:
    driver: str | Unavailable
    cuda_driver: str | Unavailable
    nvml: str | Unavailable


def probe_nvidia(nvml: _nvml.NvmlQuery, *, read_host_meminfo: MeminfoReader = read_meminfo,
                 own_pid: int | None = None) -> NvidiaProbe:
    """Describe every NVIDIA GPU NVML can see; ``own_pid`` is left out of the other-processes list."""
    count = nvml.query("nvmlDeviceGetCount")
    if isinstance(count, Unavailable):
        return NvidiaProbe(devices=(), notes=(f"NVIDIA: cannot count GPUs ({count.reason})",))
    if count == 0:
        return NvidiaProbe(devices=(), notes=("NVIDIA: NVML works but sees no GPU",))
    cuda = nvml.query("nvmlSystemGetCudaDriverVersion")
    versions = _SystemVersions(
        driver=_text(nvml.query("nvmlSystemGetDriverVersion")),
        cuda_driver=cuda if isinstance(cuda, Unavailable) else f"{cuda // 1000}.{cuda % 1000 // 10}",
        nvml=_text(nvml.query("nvmlSystemGetNVMLVersion")))
    pid = os.getpid() if own_pid is None else own_pid
    devices = tuple(_probe_device(nvml, index, versions, read_host_meminfo, pid) for index in range(count))
    return NvidiaProbe(devices=_with_peer_links(nvml, devices), notes=())


def _text(value: Any) -> Any:
    return value if isinstance(value, Unavailable) else str(value)


def _failed(index: int, reason: str) -> FailedDevice:
    return FailedDevice(kind="failed-device", index=index, vendor="nvidia", reason=reason)


def _probe_device(nvml: _nvml.NvmlQuery, index: int, versions: _SystemVersions,
                  read_host_meminfo: MeminfoReader, own_pid: int) -> Accelerator:
    try:
        handle = nvml.query("nvmlDeviceGetHandleByIndex", index)
        if isinstance(handle, Unavailable):
            return _failed(index, handle.reason)
        name = nvml.query("nvmlDeviceGetName", handle)
        if isinstance(name, Unavailable):
            return _failed(index, name.reason)
        return _describe(nvml, index, handle, str(name), versions, read_host_meminfo, own_pid)
    except _nvml.DeviceLostError as exc:
        return _failed(index, f"lost while being probed: {exc}")


def _describe(nvml: _nvml.NvmlQuery, index: int, handle: Any, name: str, versions: _SystemVersions,
              read_host_meminfo: MeminfoReader, own_pid: int) -> NvidiaGpu:
    def q(fn_name: str, *args: Any) -> Any:
        return nvml.query(fn_name, handle, *args)

    warnings: list[str] = []
    total, free, used, reserved = _memory(q)
    compute_capability = _pair(q("nvmlDeviceGetCudaComputeCapability"))
    architecture = q("nvmlDeviceGetArchitecture")
    if isinstance(architecture, int):
        architecture = _nvml.ARCHITECTURE_NAMES.get(architecture, f"unknown (NVML architecture {architecture})")
    c2c = q("nvmlDeviceGetC2cModeInfoV")
    memory_class = classify_nvidia(NvidiaMemorySignals(
        name=name, memory_total_bytes=total, memory_reserved_bytes=reserved,
        addressing_mode=q("nvmlDeviceGetAddressingMode"),
        c2c_enabled=c2c if isinstance(c2c, Unavailable) else bool(c2c["isC2cEnabled"]),
        numa_node=q("nvmlDeviceGetNumaNodeId")), read_host_meminfo)

    bus_width = q("nvmlDeviceGetMemoryBusWidth")
    memory_clock_mhz = q("nvmlDeviceGetMaxClockInfo", _nvml.CLOCK_MEM)
    spec = match_device_name(name, memory_bytes=total)
    bandwidth = _bandwidth(bus_width, memory_clock_mhz, spec, shared=memory_class.kind == "shared-physical")
    warnings.extend(bandwidth.warnings)

    sm_count, sm_basis = _sm_count(q, compute_capability)
    mig_mode = _enabled_pair(q("nvmlDeviceGetMigMode"))
    if mig_mode == "enabled" or (isinstance(mig_mode, str) and mig_mode.startswith("enabled")):
        warnings.append("MIG is enabled: NVML describes the whole GPU, but work runs in a MIG slice with a "
                        "fraction of its SMs, memory and bandwidth; measurements describe the slice")
    utilization = q("nvmlDeviceGetUtilizationRates")
    utilization = utilization if isinstance(utilization, Unavailable) else int(utilization["gpu"])
    processes = _other_processes(nvml, q, own_pid)
    warnings.extend(busy_warnings(utilization, processes))
    power = q("nvmlDeviceGetEnforcedPowerLimit")
    sm_clock_mhz = q("nvmlDeviceGetMaxClockInfo", _nvml.CLOCK_SM)
    pci = q("nvmlDeviceGetPciInfo")

    return NvidiaGpu(
        kind="nvidia-gpu", index=index, name=name, uuid=_text(q("nvmlDeviceGetUUID")),
        pci_bus_id=pci if isinstance(pci, Unavailable) else str(pci["busId"]),
        architecture=architecture,
        compute_capability=_join(compute_capability),
        driver_version=versions.driver, cuda_driver_version=versions.cuda_driver, nvml_version=versions.nvml,
        memory_total_bytes=total, memory_free_bytes=free, memory_used_bytes=used,
        memory_bus_width_bits=bus_width, memory_clock_max_hz=_mhz(memory_clock_mhz),
        nvml_derived_bandwidth_bytes_per_s=bandwidth.derived,
        datasheet_bandwidth_bytes_per_s=bandwidth.datasheet,
        bandwidth_disagrees_with_datasheet=bandwidth.disagrees,
        theoretical_bandwidth_bytes_per_s=bandwidth.used, theoretical_bandwidth_basis=bandwidth.basis,
        sm_count=sm_count, sm_count_basis=sm_basis, sm_clock_max_hz=_mhz(sm_clock_mhz),
        power_limit_w=power if isinstance(power, Unavailable) else power / 1000.0,
        pcie_generation=q("nvmlDeviceGetMaxPcieLinkGeneration"), pcie_width=q("nvmlDeviceGetMaxPcieLinkWidth"),
        mig_mode=mig_mode, ecc_mode=_enabled_pair(q("nvmlDeviceGetEccMode")),
        utilization_percent=utilization, other_processes=processes, memory_class=memory_class,
        spec_id=spec if isinstance(spec, Unavailable) else spec.id, warnings=tuple(warnings), nvlink=_nvlink(q),
        peer_links=Unavailable("one NVIDIA GPU: no peers"))


def _nvlink(q: Any) -> NvLink | Unavailable:
    """The NVLink links NVML reports active, their version and the bandwidth they give together."""
    active, version = 0, None
    for link in range(_nvml.NVLINK_MAX_LINKS):
        state = q("nvmlDeviceGetNvLinkState", link)
        if isinstance(state, Unavailable):
            if link == 0:
                return Unavailable(f"no NVLink: {state.reason}")
            break
        if state == _nvml.FEATURE_ENABLED:
            active += 1
            if version is None:
                version = q("nvmlDeviceGetNvLinkVersion", link)
    if active == 0 or version is None:
        return NvLink(active_links=0, version=Unavailable("no NVLink link is active"),
                      bytes_per_s=Unavailable("no NVLink link is active"))
    if isinstance(version, Unavailable) or version not in _nvml.NVLINK_VERSIONS:
        unknown = version if isinstance(version, Unavailable) else Unavailable(
            f"NVML NVLink version code {version} is not in dgprofile's table")
        return NvLink(active_links=active, version=unknown, bytes_per_s=unknown)
    number, per_link = _nvml.NVLINK_VERSIONS[version]
    return NvLink(active_links=active, version=number, bytes_per_s=active * per_link)


@dataclass(frozen=True)
class _NvlinkEnds:
    """Where one GPU's active NVLink links lead: how many to an NVSwitch, and the PCI bus ids of the GPUs the
    others reach directly; ``unknown`` when NVML did not say (then only P2P status tells NVLink is there)."""

    active_links: int
    to_switch: int
    to_gpu_bus_ids: tuple[str, ...]
    unknown: Unavailable | None


def _nvlink_ends(nvml: _nvml.NvmlQuery, handle: Any) -> _NvlinkEnds:
    active, to_switch, bus_ids = 0, 0, []
    unknown: Unavailable | None = None
    for link in range(_nvml.NVLINK_MAX_LINKS):
        state = nvml.query("nvmlDeviceGetNvLinkState", handle, link)
        if isinstance(state, Unavailable):
            break
        if state != _nvml.FEATURE_ENABLED:
            continue
        active += 1
        remote = nvml.query("nvmlDeviceGetNvLinkRemoteDeviceType", handle, link)
        if isinstance(remote, Unavailable):
            unknown = unknown or remote
        elif remote == _nvml.NVLINK_DEVICE_TYPE_SWITCH:
            to_switch += 1
        else:
            pci = nvml.query("nvmlDeviceGetNvLinkRemotePciInfo_v2", handle, link)
            if isinstance(pci, Unavailable):
                unknown = unknown or pci
            else:
                bus_ids.append(str(pci["busId"]).upper())
    return _NvlinkEnds(active, to_switch, tuple(bus_ids), unknown)


def _peer_link(nvml: _nvml.NvmlQuery, handle: Any, peer_handle: Any, peer: NvidiaGpu, own: _NvlinkEnds,
               theirs: _NvlinkEnds) -> PeerLink:
    level = nvml.query("nvmlDeviceGetTopologyCommonAncestor", handle, peer_handle)
    read = nvml.query("nvmlDeviceGetP2PStatus", handle, peer_handle, _nvml.P2P_CAPS_INDEX_READ)
    over_nvlink = nvml.query("nvmlDeviceGetP2PStatus", handle, peer_handle, _nvml.P2P_CAPS_INDEX_NVLINK)
    topology = level if isinstance(level, Unavailable) else _nvml.TOPOLOGY_LEVELS.get(
        level, f"NVML topology level {level}")
    peer_to_peer = read if isinstance(read, Unavailable) else read == _nvml.P2P_STATUS_OK
    nvlink = over_nvlink == _nvml.P2P_STATUS_OK
    direct = sum(1 for bus in own.to_gpu_bus_ids if isinstance(peer.pci_bus_id, str)
                 and bus == peer.pci_bus_id.upper())
    path: LinkPath | Unavailable
    links: int | Unavailable
    if direct:
        path, links = "nvlink", direct
    elif nvlink and own.to_switch and theirs.to_switch:
        path, links = "nvswitch", min(own.to_switch, theirs.to_switch)  # every link reaches the peer through them
    elif nvlink:
        path = "nvlink"
        reason = own.unknown.reason if own.unknown else "none of them leads to it or to an NVSwitch"
        links = Unavailable(f"NVML did not say where this GPU's {own.active_links} NVLink links lead ({reason})")
    elif isinstance(level, Unavailable):
        path, links = level, 0
    else:
        named = TOPOLOGY_PATHS.get(level)
        path = named if named is not None else Unavailable(f"NVML topology level {level} is not in dgprofile's table")
        links = 0
    return PeerLink(peer_index=peer.index, topology=topology, nvlink=nvlink, peer_to_peer=peer_to_peer,
                    common_ancestor_level=level, nvlink_links=links, path=path)


def _with_peer_links(nvml: _nvml.NvmlQuery, devices: tuple[Accelerator, ...]) -> tuple[Accelerator, ...]:
    """Every described GPU with how it reaches each other one (NVML topology, NVLink paths, peer-to-peer)."""
    gpus = [d for d in devices if isinstance(d, NvidiaGpu)]
    if len(gpus) < 2:
        return devices
    handles: dict[int, Any] = {}
    ends: dict[int, _NvlinkEnds | Unavailable] = {}
    for gpu in gpus:
        try:
            handles[gpu.index] = nvml.query("nvmlDeviceGetHandleByIndex", gpu.index)
            ends[gpu.index] = _nvlink_ends(nvml, handles[gpu.index])
        except _nvml.DeviceLostError as exc:
            ends[gpu.index] = Unavailable(f"lost while reading the topology: {exc}")
    linked: list[Accelerator] = []
    for device in devices:
        own = ends.get(device.index) if isinstance(device, NvidiaGpu) else None
        if not isinstance(device, NvidiaGpu) or own is None:
            linked.append(device)
            continue
        if isinstance(own, Unavailable):
            linked.append(dataclasses.replace(device, peer_links=own))
            continue
        try:
            links = []
            for peer in gpus:
                theirs = ends[peer.index]
                handle, peer_handle = handles[device.index], handles[peer.index]
                if peer.index == device.index or isinstance(theirs, Unavailable) \
                        or isinstance(handle, Unavailable) or isinstance(peer_handle, Unavailable):
                    continue
                links.append(_peer_link(nvml, handle, peer_handle, peer, own, theirs))
            peer_links: tuple[PeerLink, ...] | Unavailable = tuple(links)
        except _nvml.DeviceLostError as exc:
            peer_links = Unavailable(f"lost while reading the topology: {exc}")
        linked.append(dataclasses.replace(device, peer_links=peer_links))
    return tuple(linked)


def _memory(q: Any) -> tuple[Any, Any, Any, Any]:
    info = q("nvmlDeviceGetMemoryInfo", _nvml.MEMORY_INFO_V2)
    if isinstance(info, Unavailable) and _nvml.error_code_of(info) != _nvml.ERROR_NOT_SUPPORTED:
        info = q("nvmlDeviceGetMemoryInfo")  # drivers before the v2 structure (R510) answer only v1
    if isinstance(info, Unavailable):
        return info, info, info, info
    reserved = info.get("reserved", Unavailable("this driver reports memory info without the reserved part"))
    return int(info["total"]), int(info["free"]), int(info["used"]), reserved


def _pair(value: Any) -> Any:
    return value if isinstance(value, Unavailable) else (int(value[0]), int(value[1]))


def _join(pair: Any) -> Any:
    return pair if isinstance(pair, Unavailable) else f"{pair[0]}.{pair[1]}"


def _mhz(value: Any) -> Any:
    return value if isinstance(value, Unavailable) else float(value) * 1e6


def _enabled_pair(value: Any) -> Any:
    """NVML's [current, pending] feature state as words."""
    if isinstance(value, Unavailable):
        return value
    current, pending = ("enabled" if v else "disabled" for v in value[:2])
    return current if current == pending else f"{current} (pending {pending} after a reset)"


@dataclass(frozen=True)
class _Bandwidth:
    derived: float | Unavailable
    datasheet: float | Unavailable
    disagrees: bool
    used: float | Unavailable
    basis: str
    warnings: tuple[str, ...]


def _bandwidth(bus_width: Any, memory_clock_mhz: Any, spec: Any, *, shared: bool) -> _Bandwidth:
    """Theoretical bandwidth = 2 x max memory clock x bus width / 8, checked against the datasheet entry."""
    if isinstance(bus_width, Unavailable) or isinstance(memory_clock_mhz, Unavailable):
        missing = bus_width if isinstance(bus_width, Unavailable) else memory_clock_mhz
        derived: float | Unavailable = Unavailable(
            f"needs memory bus width and max memory clock ({missing.reason})")
        formula = ""
    else:
        derived = 2 * memory_clock_mhz * 1e6 * bus_width / 8
        formula = f"2 x {memory_clock_mhz} MHz max memory clock x {bus_width}-bit bus / 8 (NVML)"
    if isinstance(spec, Unavailable):
        datasheet: float | Unavailable = spec
    else:
        datasheet = spec.memory_bandwidth_bytes_per_s
    warnings: list[str] = []
    if shared and not isinstance(derived, Unavailable):
        warnings.append("memory clock and bus width are not reliable on shared-memory parts (unverified): "
                        "trust only a measured bandwidth here")
    if isinstance(derived, Unavailable) and isinstance(datasheet, Unavailable):
        return _Bandwidth(derived, datasheet, False, Unavailable(f"{derived.reason}; {datasheet.reason}"),
                          "no NVML clock/bus width and no datasheet entry", tuple(warnings))
    if isinstance(derived, Unavailable):
        basis = f"datasheet entry '{spec.id}' ({derived.reason})"
        return _Bandwidth(derived, datasheet, False, datasheet, basis, tuple(warnings))
    if isinstance(datasheet, Unavailable):
        basis = f"{formula}; not checked: {datasheet.reason}"
        return _Bandwidth(derived, datasheet, False, derived, basis, tuple(warnings))
    gap = derived / datasheet - 1
    if abs(gap) > DATASHEET_TOLERANCE:
        warnings.append(
            f"NVML-derived bandwidth {bandwidth_text(derived)} disagrees with the datasheet's "
            f"{bandwidth_text(datasheet)} for '{spec.id}' by {signed_percent_text(gap)}: dgprofile uses the "
            "datasheet figure (the 2x data-rate convention does not hold for every memory type) until a measured "
            "bandwidth replaces it")
        basis = f"datasheet entry '{spec.id}', because {formula} disagrees by {signed_percent_text(gap)}"
        return _Bandwidth(derived, datasheet, True, datasheet, basis, tuple(warnings))
    basis = f"{formula}; agrees with datasheet entry '{spec.id}' within {percent_text(abs(gap))}"
    return _Bandwidth(derived, datasheet, False, derived, basis, tuple(warnings))


def _sm_count(q: Any, compute_capability: Any) -> tuple[int | Unavailable, str]:
    attributes = q("nvmlDeviceGetAttributes")
    if not isinstance(attributes, Unavailable) and attributes.get("multiprocessorCount"):
        return int(attributes["multiprocessorCount"]), "NVML device attributes (multiprocessorCount)"
    cores = q("nvmlDeviceGetNumGpuCores")
    if isinstance(cores, Unavailable):
        return cores, "NVML reports neither multiprocessorCount nor the GPU core count"
    if isinstance(compute_capability, Unavailable):
        return compute_capability, f"NVML reports {cores} GPU cores but no compute capability to divide by"
    lanes = FP32_LANES_PER_SM.get(compute_capability)
    if lanes is None or cores % lanes:
        return (Unavailable(f"{cores} GPU cores, but FP32 lanes per SM for compute capability "
                            f"{_join(compute_capability)} are not in dgprofile's table"),
                "no lanes-per-SM figure for this compute capability")
    return cores // lanes, (f"NVML GPU core count {cores} / {lanes} FP32 lanes per SM for compute capability "
                            f"{_join(compute_capability)} (CUDA C++ Programming Guide throughput table)")


def _other_processes(nvml: _nvml.NvmlQuery, q: Any, own_pid: int) -> tuple[GpuProcess, ...] | Unavailable:
    compute = q("nvmlDeviceGetComputeRunningProcesses")
    graphics = q("nvmlDeviceGetGraphicsRunningProcesses")
    if isinstance(compute, Unavailable) and isinstance(graphics, Unavailable):
        return compute
    seen: dict[int, GpuProcess] = {}
    for entry in [*([] if isinstance(compute, Unavailable) else compute),
                  *([] if isinstance(graphics, Unavailable) else graphics)]:
        pid = int(entry["pid"])
        if pid == own_pid or pid in seen:
            continue
        name = nvml.query("nvmlSystemGetProcessName", pid)
        seen[pid] = GpuProcess(
            pid=pid,
            name=name if isinstance(name, Unavailable) else process_name(str(name)),
            used_memory_bytes=_nvml.process_used_memory_bytes(entry))
    return tuple(seen.values())
