"""Intel GPUs (Arc cards and integrated graphics) through the xe / i915 kernel drivers' files.

Everything is read through the ``dgprofile.probes._drm_sysfs`` seam (why sysfs and not Level Zero or xpu-smi is
said there). Per card: PCI ids and bus id, driver, local memory (xe: ``tileN/physical_vram_size_bytes``), the
hardware's maximum GT clock (xe: ``tile0/gt0/freq0/rp0_freq``; i915: ``gt_RP0_freq_mhz``), the sustained power
limit (hwmon ``power1_max``, microwatts) and the processes holding the GPU with their memory (DRM fdinfo). The
driver exposes no name, core count or memory bandwidth, so they come from the datasheet entry of the PCI id;
an integrated GPU's memory is the host's. Written against the kernel's documented files and tested with fakes;
not yet verified on Intel hardware.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from dgprofile.probes._drm_sysfs import PCI_IDS_PATHS, PROC, SYS_CLASS_DRM, DrmFiles
from dgprofile.probes.gpu_common import busy_warnings, process_name
from dgprofile.probes.memory_class import IntelMemorySignals, MeminfoReader, classify_intel, read_meminfo
from dgprofile.records.machine import GpuProcess, IntelGpu
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec, match_device_name, match_pci_device

INTEL_VENDOR_ID = "0x8086"
INTEL_DRIVERS = ("xe", "i915")
# Xe generation by the first byte of the PCI device id, from the id groups of the kernel's
# include/drm/intel/pciids.h (INTEL_DG2_IDS, INTEL_MTL_IDS, INTEL_ARL_IDS, INTEL_LNL_IDS, INTEL_BMG_IDS,
# INTEL_PTL_IDS).
_GENERATIONS = (("56", "Xe-HPG (Alchemist)"), ("7d", "Xe-LPG (Meteor Lake / Arrow Lake)"),
                ("64", "Xe2-LPG (Lunar Lake)"), ("e2", "Xe2-HPG (Battlemage)"), ("b0", "Xe3-LPG (Panther Lake)"))
# Memory per region ("drm-total-vram0: 9437184 KiB"); "drm-total-cycles-<engine>" counts GPU clock cycles.
_FDINFO_MEMORY = re.compile(r"^drm-total-(?!cycles-)(\S+):\s+(\d+)\s*(KiB|MiB|GiB)?\s*$", re.MULTILINE)
_UNITS = {None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


@dataclass(frozen=True)
class IntelProbe:
    """What the Intel probe found: the devices, and notes on what it could not look at."""

    devices: tuple[IntelGpu, ...]
    notes: tuple[str, ...]


def architecture_of(device_id: str) -> str | Unavailable:
    """The Xe generation of an Intel GPU's PCI device id ("e20b" -> "Xe2-HPG (Battlemage)")."""
    return next((name for prefix, name in _GENERATIONS if device_id.startswith(prefix)),
                Unavailable(f"PCI device 8086:{device_id} is not in dgprofile's table of Xe generations"))


def intel_cards(files: DrmFiles) -> tuple[tuple[str, str], ...] | Unavailable:
    """(card directory, driver) of every Intel GPU the xe or i915 driver runs, in card order."""
    names = files.list_dir(SYS_CLASS_DRM)
    if isinstance(names, Unavailable):
        return names
    cards = sorted((n for n in names if re.fullmatch(r"card\d+", n)), key=lambda n: int(n[4:]))
    found = []
    for card in cards:
        path = f"{SYS_CLASS_DRM}/{card}"
        vendor = files.read_text(f"{path}/device/vendor")
        driver = files.resolve(f"{path}/device/driver")
        if isinstance(vendor, str) and vendor.strip() == INTEL_VENDOR_ID and isinstance(driver, str):
            if os.path.basename(driver) in INTEL_DRIVERS:
                found.append((path, os.path.basename(driver)))
    return tuple(found)


def probe_intel(files: DrmFiles, *, read_host_meminfo: MeminfoReader = read_meminfo,
                own_pid: int | None = None) -> IntelProbe:
    """Describe every Intel GPU the xe or i915 driver runs; ``own_pid`` is left out of the processes."""
    cards = intel_cards(files)
    if isinstance(cards, Unavailable):
        return IntelProbe((), (f"Intel: no DRM devices to look at ({cards.reason})",))
    if not cards:
        return IntelProbe((), ("Intel: no GPU driven by xe or i915",))
    pid = os.getpid() if own_pid is None else own_pid
    clients = drm_clients(files, own_pid=pid)
    devices = tuple(_describe(files, index, card, driver, clients, read_host_meminfo)
                    for index, (card, driver) in enumerate(cards))
    return IntelProbe(devices, ())


def _integer(text: str | Unavailable, what: str, base: int = 10) -> int | Unavailable:
    if isinstance(text, Unavailable):
        return text
    try:
        return int(text.strip(), base)
    except ValueError:
        return Unavailable(f"{what} is not a number ({text.strip()[:20]!r})")


def _describe(files: DrmFiles, index: int, card: str, driver: str, clients: dict[str, list[GpuProcess]],
              read_host_meminfo: MeminfoReader) -> IntelGpu:
    device_id = files.read_text(f"{card}/device/device")
    device_hex = device_id.strip().lower().removeprefix("0x") if isinstance(device_id, str) else "unknown"
    bus = files.resolve(f"{card}/device")
    bus_id: str | Unavailable = bus if isinstance(bus, Unavailable) else os.path.basename(bus)
    spec = match_pci_device("8086", device_hex)
    name = spec.name if isinstance(spec, HardwareSpec) else _pci_ids_name(files, device_hex)
    if isinstance(spec, Unavailable):
        spec = _spec_by_name(name, spec)
    vram = _local_memory(files, card) if driver == "xe" else Unavailable(
        "the i915 driver reports no local-memory size in sysfs")
    memory_class = classify_intel(IntelMemorySignals(
        pci_bus_id=bus_id, vram_total_bytes=vram,
        spec_memory_class=spec if isinstance(spec, Unavailable) else spec.memory_class), read_host_meminfo)
    warnings: list[str] = []
    if isinstance(spec, Unavailable):
        bandwidth: float | Unavailable = Unavailable(f"the driver reports no memory bandwidth ({spec.reason})")
        basis = "the xe/i915 drivers report no memory clock or bus width, and this GPU is not in the table"
        if memory_class.kind == "shared-physical":
            basis = "an integrated GPU streams the host's DRAM: see the CPU's DRAM bandwidth, or measure it"
    else:
        bandwidth = spec.memory_bandwidth_bytes_per_s
        basis = f"datasheet entry '{spec.id}' (the xe/i915 drivers report no memory clock or bus width)"
    processes = clients.get(bus_id, []) if isinstance(bus_id, str) else []
    utilization: int | Unavailable = Unavailable(
        "the xe/i915 drivers report engine busyness per client over time (DRM fdinfo), not as a percentage")
    warnings.extend(busy_warnings(utilization, tuple(processes)))
    return IntelGpu(
        kind="intel-gpu", index=index, name=name, pci_bus_id=bus_id, pci_device_id=f"8086:{device_hex}",
        architecture=architecture_of(device_hex), driver=driver, memory_total_bytes=vram,
        theoretical_bandwidth_bytes_per_s=bandwidth, theoretical_bandwidth_basis=basis,
        xe_cores=spec if isinstance(spec, Unavailable) else spec.gpu_cores,
        gt_clock_max_hz=_max_clock_hz(files, card, driver), power_limit_w=_power_limit_w(files, card),
        utilization_percent=utilization, other_processes=tuple(processes), memory_class=memory_class,
        spec_id=spec if isinstance(spec, Unavailable) else spec.id, verified_on_hardware=False,
        warnings=tuple(warnings))


def _spec_by_name(name: str, by_id: Unavailable) -> HardwareSpec | Unavailable:
    by_name = match_device_name(name)
    return by_name if isinstance(by_name, HardwareSpec) else Unavailable(f"{by_id.reason}, nor is '{name}'")


def _pci_ids_name(files: DrmFiles, device_hex: str) -> str:
    """"Intel Arc B580" from a pci.ids line "\te20b  Battlemage G21 [Arc B580]" (the bracket holds the product
    name); the whole description when there is no bracket; a PCI id when the database has no such line."""
    for path in PCI_IDS_PATHS:
        text = files.read_text(path)
        if isinstance(text, Unavailable):
            continue
        start = text.find("\n8086  ")
        end = text.find("\n8087  ", start) if start >= 0 else -1
        match = re.search(rf"^\t{re.escape(device_hex)}  (.+)$", text[start:end], re.MULTILINE) if start >= 0 else None
        if match:
            description = match.group(1).strip()
            bracket = re.search(r"\[([^\]]+)\]", description)
            product = bracket.group(1) if bracket else description
            return product if product.startswith("Intel") else f"Intel {product}"
    return f"Intel GPU 8086:{device_hex}"


def _local_memory(files: DrmFiles, card: str) -> int | Unavailable:
    """xe's per-tile local memory, summed (Documentation/ABI/testing/sysfs-driver-xe: physical_vram_size_bytes)."""
    entries = files.list_dir(f"{card}/device")
    if isinstance(entries, Unavailable):
        return entries
    sizes = [_integer(files.read_text(f"{card}/device/{tile}/physical_vram_size_bytes"), "VRAM size")
             for tile in entries if re.fullmatch(r"tile\d+", tile)]
    known = [size for size in sizes if isinstance(size, int)]
    if not known:
        return Unavailable("the xe driver reports no local memory (an integrated GPU, or a kernel before 6.8)")
    return sum(known)


def _max_clock_hz(files: DrmFiles, card: str, driver: str) -> float | Unavailable:
    """The hardware's maximum GT frequency (RP0), in Hz."""
    path = f"{card}/device/tile0/gt0/freq0/rp0_freq" if driver == "xe" else f"{card}/gt_RP0_freq_mhz"
    mhz = _integer(files.read_text(path), "maximum GT frequency")
    return mhz if isinstance(mhz, Unavailable) else mhz * 1e6


def _power_limit_w(files: DrmFiles, card: str) -> float | Unavailable:
    """The sustained power limit the driver enforces (hwmon power1_max, microwatts; 0 means none is set)."""
    monitors = files.list_dir(f"{card}/device/hwmon")
    if isinstance(monitors, Unavailable):
        return Unavailable("no hwmon power interface (integrated GPUs share the package's power limit)")
    for monitor in monitors:
        microwatts = _integer(files.read_text(f"{card}/device/hwmon/{monitor}/power1_max"), "power limit")
        if isinstance(microwatts, int):
            return microwatts / 1e6 if microwatts else Unavailable("the driver enforces no sustained power limit")
    return Unavailable("hwmon has no power1_max")


def drm_clients(files: DrmFiles, *, own_pid: int) -> dict[str, list[GpuProcess]]:
    """Processes with an Intel DRM file open, by PCI bus id, with the memory their clients hold.

    From DRM fdinfo (Documentation/gpu/drm-usage-stats.rst): each open DRM file names its driver, device and
    client id, and the memory the client holds per region (``drm-total-<region>``). A client open through
    several file descriptors is counted once. Other users' processes are visible only to root.
    """
    pids = files.list_dir(PROC)
    if isinstance(pids, Unavailable):
        return {}
    memory: dict[str, dict[int, dict[str, int]]] = {}
    for pid_text in pids:
        if not pid_text.isdigit() or int(pid_text) == own_pid:
            continue
        descriptors = files.list_dir(f"{PROC}/{pid_text}/fd")
        for fd in () if isinstance(descriptors, Unavailable) else descriptors:
            target = files.resolve(f"{PROC}/{pid_text}/fd/{fd}")
            if isinstance(target, Unavailable) or not target.startswith("/dev/dri/"):
                continue
            info = files.read_text(f"{PROC}/{pid_text}/fdinfo/{fd}")
            if isinstance(info, Unavailable):
                continue
            fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            if fields.get("drm-driver", "").strip() not in INTEL_DRIVERS:
                continue
            client = fields.get("drm-client-id", fd).strip()
            held = sum(int(m.group(2)) * _UNITS[m.group(3)] for m in _FDINFO_MEMORY.finditer(info))
            device = memory.setdefault(fields.get("drm-pdev", "").strip(), {})
            device.setdefault(int(pid_text), {})[client] = held
    found: dict[str, list[GpuProcess]] = {}
    for bus_id, by_pid in memory.items():
        for pid, by_client in sorted(by_pid.items()):
            comm = files.read_text(f"{PROC}/{pid}/comm")
            found.setdefault(bus_id, []).append(GpuProcess(
                pid=pid, name=comm if isinstance(comm, Unavailable) else process_name(comm.strip()),
                used_memory_bytes=sum(by_client.values())))
    return found
