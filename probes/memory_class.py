"""How an accelerator's memory relates to the host's, and how much of it the accelerator can really use.

Three classes: ``discrete`` (its own memory across PCIe/SXM), ``shared-physical`` (one DRAM pool with the CPU:
Apple Silicon, Jetson, GB10 / DGX Spark, Strix Halo, integrated GPUs) and ``coherent-split`` (own HBM plus CPU
memory joined by NVLink-C2C: GH200 / GB200 class). Every decision lists the signals it used; name heuristics
are the last resort and say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dgprofile.probes import _nvml
from dgprofile.records.machine import MemoryClass, MemoryClassKind
from dgprofile.records.values import Unavailable
from dgprofile.text.units import bytes_text

MEMINFO_PATH = Path("/proc/meminfo")

# Names of NVIDIA parts whose GPU shares the CPU's DRAM, or may report only a BIOS carve-out as its memory.
SHARED_PHYSICAL_NAME_HINTS = ("GB10", "Jetson", "Orin", "Thor", "Xavier", "Tegra", "nvgpu", "N1X")
COHERENT_SPLIT_NAME_HINTS = ("GH200", "GB200", "GB300")

MeminfoReader = Callable[[], "dict[str, int] | Unavailable"]


def read_meminfo(path: Path = MEMINFO_PATH) -> dict[str, int] | Unavailable:
    """/proc/meminfo as {field: bytes}; Unavailable off Linux or when unreadable."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError as exc:
        return Unavailable(f"{path} is not readable ({exc.strerror or exc})")
    values = {}
    for line in text.splitlines():
        match = re.match(r"(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?", line)
        if match:
            multiplier = 1024 if line.rstrip().endswith("kB") else 1
            values[match.group(1)] = int(match.group(2)) * multiplier
    return values


@dataclass(frozen=True)
class NvidiaMemorySignals:
    """What NVML said about one GPU's memory, as the NVIDIA probe read it."""

    name: str
    memory_total_bytes: int | Unavailable
    memory_reserved_bytes: int | Unavailable
    addressing_mode: int | Unavailable
    c2c_enabled: bool | Unavailable
    numa_node: int | Unavailable


def _has_hint(name: str, hints: tuple[str, ...]) -> str | None:
    return next((hint for hint in hints if re.search(rf"\b{re.escape(hint)}\b", name, re.IGNORECASE)), None)


def classify_nvidia(signals: NvidiaMemorySignals,
                    read_host_meminfo: MeminfoReader = read_meminfo) -> MemoryClass:
    """Classify an NVIDIA GPU's memory from NVML signals (decision order in the code, first match wins)."""
    observed: list[str] = []
    memory_not_supported = _nvml.error_code_of(signals.memory_total_bytes) == _nvml.ERROR_NOT_SUPPORTED
    if memory_not_supported:
        observed.append("NVML memory info is NOT_SUPPORTED (no dedicated memory pool, as on GB10)")
    elif isinstance(signals.memory_total_bytes, int):
        observed.append(f"NVML reports {signals.memory_total_bytes} bytes of dedicated memory")
    mode = signals.addressing_mode
    if isinstance(mode, int):
        observed.append(f"addressing mode {_nvml.ADDRESSING_MODE_NAMES.get(mode, mode)}")
    else:
        observed.append(f"addressing mode unknown ({mode.reason})")
    if isinstance(signals.c2c_enabled, bool):
        observed.append(f"NVLink-C2C {'enabled' if signals.c2c_enabled else 'disabled'}")
    if isinstance(signals.numa_node, int):
        observed.append(f"GPU memory is NUMA node {signals.numa_node}")
    ats = mode == 2
    c2c = signals.c2c_enabled is True
    shared_hint = _has_hint(signals.name, SHARED_PHYSICAL_NAME_HINTS)
    coherent_hint = _has_hint(signals.name, COHERENT_SPLIT_NAME_HINTS)

    kind: MemoryClassKind
    if memory_not_supported:
        kind, decided_by = "shared-physical", "decided by: no dedicated memory reported"
    elif (ats or c2c) and shared_hint:
        kind = "shared-physical"
        decided_by = f"decided by: ATS/C2C with a shared-memory part name ('{shared_hint}')"
    elif ats or c2c:
        kind, decided_by = "coherent-split", "decided by: dedicated memory plus ATS/C2C to the CPU"
    elif shared_hint:
        kind, decided_by = "shared-physical", f"decided by name only (last resort): '{shared_hint}'"
    elif coherent_hint:
        kind, decided_by = "coherent-split", f"decided by name only (last resort): '{coherent_hint}'"
    else:
        note = " (HMM is software mirroring, not shared memory)" if mode == 1 else ""
        kind, decided_by = "discrete", f"decided by: dedicated memory, no ATS or C2C{note}"
    observed.append(decided_by)

    if kind == "shared-physical":
        usable, basis = _host_available(read_host_meminfo)
    else:
        usable, basis = _dedicated(signals, kind)
    return MemoryClass(kind=kind, signals=tuple(observed), usable_bytes=usable, usable_basis=basis)


def _host_available(read_host_meminfo: MeminfoReader) -> tuple[int | Unavailable, str]:
    meminfo = read_host_meminfo()
    basis = ("MemAvailable from /proc/meminfo: the GPU allocates from the host's pool, and MemFree would count "
             "reclaimable page cache as used")
    if isinstance(meminfo, Unavailable):
        return meminfo, basis
    if "MemAvailable" not in meminfo:
        return Unavailable("/proc/meminfo has no MemAvailable (kernel older than 3.14)"), basis
    return meminfo["MemAvailable"], basis


def _dedicated(signals: NvidiaMemorySignals, kind: MemoryClassKind) -> tuple[int | Unavailable, str]:
    total = signals.memory_total_bytes
    if isinstance(total, Unavailable):
        return total, "dedicated memory reported by NVML"
    reserved = signals.memory_reserved_bytes
    if isinstance(reserved, int):
        usable = total - reserved
        basis = f"NVML dedicated memory minus {bytes_text(reserved)} reserved by the driver"
    else:
        usable, basis = total, "NVML dedicated memory (this driver does not report its reserved part)"
    if kind == "coherent-split":
        basis += "; CPU memory reachable over NVLink-C2C (slower) is not counted"
    return usable, basis


def classify_apple(*, recommended_working_set_bytes: int | Unavailable, wired_limit_bytes: int | Unavailable,
                   unified_memory_bytes: int | Unavailable) -> MemoryClass:
    """Apple Silicon: always one pool; the GPU may use up to Metal's recommended working set."""
    observed = ["Apple Silicon: CPU and GPU share one LPDDR pool "
                "(every Apple-silicon MTLDevice has unified memory)"]
    if isinstance(unified_memory_bytes, int):
        observed.append(f"hw.memsize {unified_memory_bytes} bytes")
    wired_limit_set = isinstance(wired_limit_bytes, int) and wired_limit_bytes > 0
    if wired_limit_set:
        observed.append(f"iogpu.wired_limit_mb was set by hand to {wired_limit_bytes} bytes")
    observed.append("decided by: Apple Silicon")
    usable: int | Unavailable = recommended_working_set_bytes
    basis = "Metal recommendedMaxWorkingSetSize (torch.mps.recommended_max_memory())"
    if isinstance(usable, Unavailable) and wired_limit_set:
        usable, basis = wired_limit_bytes, "iogpu.wired_limit_mb (the GPU wired-memory limit set by hand)"
    return MemoryClass(kind="shared-physical", signals=tuple(observed), usable_bytes=usable, usable_basis=basis)


# LLVM processors that are APUs (the "dGPU/APU" column of https://llvm.org/docs/AMDGPUUsage.html#processors):
# their GPU shares the CPU's DRAM. gfx942 is both MI300X (discrete) and MI300A (APU), so it is told by name.
AMD_APU_GFX_TARGETS = frozenset({"gfx902", "gfx909", "gfx90c", "gfx1033", "gfx1035", "gfx1036", "gfx1103",
                                 "gfx1150", "gfx1151", "gfx1152"})
AMD_SHARED_PHYSICAL_NAME_HINTS = ("MI300A", "Ryzen AI", "Radeon 8060S", "Radeon 8050S", "Radeon 8040S",
                                  "Radeon 890M", "Radeon 880M", "Radeon 780M", "Radeon 760M")


@dataclass(frozen=True)
class AmdMemorySignals:
    """What amdsmi said about one AMD GPU's memory, as the AMD probe read it."""

    name: str
    gfx_target: str | Unavailable
    vram_total_bytes: int | Unavailable
    vram_used_bytes: int | Unavailable
    gtt_total_bytes: int | Unavailable
    gtt_used_bytes: int | Unavailable


def classify_amd(signals: AmdMemorySignals, read_host_meminfo: MeminfoReader = read_meminfo) -> MemoryClass:
    """Classify an AMD GPU's memory: APU targets and names share the host's DRAM, the rest is discrete.

    An APU's "VRAM" is the BIOS carve-out; the driver also maps system memory for it (GTT, sized by
    amdgpu.gttsize / ttm.pages_limit), so it can use the free carve-out plus as much GTT as the host has free
    (https://github.com/AlexsJones/llmfit/issues/964). A discrete card uses its own VRAM.
    """
    observed: list[str] = []
    for label, value in (("VRAM", signals.vram_total_bytes), ("GTT", signals.gtt_total_bytes)):
        if isinstance(value, int):
            observed.append(f"amdgpu reports {value} bytes of {label}")
    if isinstance(signals.gfx_target, str):
        observed.append(f"LLVM target {signals.gfx_target}")
    apu_target = isinstance(signals.gfx_target, str) and signals.gfx_target in AMD_APU_GFX_TARGETS
    name_hint = _has_hint(signals.name, AMD_SHARED_PHYSICAL_NAME_HINTS)
    kind: MemoryClassKind
    if apu_target:
        kind, decided_by = "shared-physical", f"decided by: {signals.gfx_target} is an APU target (LLVM)"
    elif name_hint:
        kind, decided_by = "shared-physical", f"decided by name only (last resort): '{name_hint}'"
    else:
        kind, decided_by = "discrete", "decided by: a discrete target with its own VRAM"
    observed.append(decided_by)
    if kind == "shared-physical":
        usable, basis = _apu_usable(signals, read_host_meminfo)
    else:
        usable, basis = _free(signals.vram_total_bytes, signals.vram_used_bytes, "VRAM")
    return MemoryClass(kind=kind, signals=tuple(observed), usable_bytes=usable, usable_basis=basis)


def _free(total: int | Unavailable, used: int | Unavailable, label: str) -> tuple[int | Unavailable, str]:
    if isinstance(total, Unavailable):
        return total, f"{label} reported by amdsmi"
    if isinstance(used, Unavailable):
        return total, f"{label} total reported by amdsmi (its use now is unknown: {used.reason})"
    return total - used, f"{label} total less what is in use now (driver reservations and other processes)"


def _apu_usable(signals: AmdMemorySignals, read_host_meminfo: MeminfoReader) -> tuple[int | Unavailable, str]:
    carve_out, carve_basis = _free(signals.vram_total_bytes, signals.vram_used_bytes, "VRAM")
    gtt, _ = _free(signals.gtt_total_bytes, signals.gtt_used_bytes, "GTT")
    host, _ = _host_available(read_host_meminfo)
    if isinstance(gtt, Unavailable) or isinstance(host, Unavailable):
        if isinstance(carve_out, Unavailable):
            return carve_out, carve_basis
        missing = "; ".join(v.reason for v in (gtt, host) if isinstance(v, Unavailable))
        return carve_out, f"the free BIOS carve-out only: GTT or host memory unknown ({missing})"
    from_host = min(gtt, host)
    limit = "GTT" if gtt <= host else "MemAvailable"
    if isinstance(carve_out, Unavailable):
        return from_host, f"GTT the host can back now (min of free GTT and MemAvailable: {limit}); carve-out unknown"
    return (carve_out + from_host,
            f"free BIOS carve-out (VRAM) plus the GTT the host can back now (min of free GTT and MemAvailable: "
            f"{limit} limits it; raise amdgpu.gttsize / ttm.pages_limit for more)")


@dataclass(frozen=True)
class IntelMemorySignals:
    """What the xe / i915 driver said about one Intel GPU's memory, as the Intel probe read it."""

    pci_bus_id: str | Unavailable
    vram_total_bytes: int | Unavailable
    spec_memory_class: MemoryClassKind | Unavailable


# Intel's integrated GPU is always PCI device 2, function 0, on the root bus (Intel's processor datasheets).
INTEL_IGPU_BUS_ID = "0000:00:02.0"


def classify_intel(signals: IntelMemorySignals, read_host_meminfo: MeminfoReader = read_meminfo) -> MemoryClass:
    """Classify an Intel GPU: local memory (VRAM) makes it discrete; the integrated GPU's bus slot, or a
    shared-memory datasheet entry, make it shared-physical (it allocates from the host's pool)."""
    observed: list[str] = []
    if isinstance(signals.vram_total_bytes, int):
        observed.append(f"the driver reports {signals.vram_total_bytes} bytes of local memory (VRAM)")
    else:
        observed.append(f"no local memory reported ({signals.vram_total_bytes.reason})")
    if isinstance(signals.pci_bus_id, str):
        observed.append(f"PCI {signals.pci_bus_id}")
    kind: MemoryClassKind
    if isinstance(signals.vram_total_bytes, int):
        kind, decided_by = "discrete", "decided by: local memory (VRAM)"
    elif signals.pci_bus_id == INTEL_IGPU_BUS_ID:
        kind, decided_by = "shared-physical", f"decided by: the integrated GPU's slot {INTEL_IGPU_BUS_ID}"
    elif signals.spec_memory_class == "shared-physical":
        kind, decided_by = "shared-physical", "decided by: its datasheet entry (a shared-memory part)"
    else:
        kind, decided_by = "discrete", "decided by: its datasheet entry (local memory not reported by this driver)"
    observed.append(decided_by)
    if kind == "shared-physical":
        usable, basis = _host_available(read_host_meminfo)
    elif isinstance(signals.vram_total_bytes, int):
        usable, basis = signals.vram_total_bytes, "local memory the driver reports (sysfs)"
    else:
        usable, basis = signals.vram_total_bytes, "local memory not reported by this driver"
    return MemoryClass(kind=kind, signals=tuple(observed), usable_bytes=usable, usable_basis=basis)
