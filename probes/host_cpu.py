"""The host CPU and its memory: model, cores, inference-relevant ISA flags, L3, RAM, DRAM bandwidth, NUMA.

On Linux everything comes from /proc and /sys (fast); on macOS from ``sysctl``; elsewhere from py-cpuinfo, which
is slow (about 1.2 s on a 2-core Xeon, because it re-runs Python in a subprocess to read CPUID) and so is the
last resort. Cores and RAM come from psutil. Every source sits behind ``HostSeams`` so tests use a fake tree.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgprofile.records.machine import CpuInfo
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec

CommandRunner = Callable[[Sequence[str]], "str | Unavailable"]
COMMAND_TIMEOUT_SECONDS = 5.0

# ISA features that decide how fast a CPU runs matrix and vector work, in Linux /proc/cpuinfo spelling
# (x86 "flags", Arm "Features"; asimd is NEON).
INFERENCE_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                   "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
                   "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme")
# macOS `sysctl hw.optional` keys for the same features.
DARWIN_FLAG_KEYS = {
    "hw.optional.neon": "asimd", "hw.optional.arm.FEAT_FP16": "asimdhp",
    "hw.optional.arm.FEAT_DotProd": "asimddp", "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16", "hw.optional.arm.FEAT_SME": "sme",
    "hw.optional.avx1_0": "avx", "hw.optional.avx2_0": "avx2", "hw.optional.fma": "fma",
    "hw.optional.f16c": "f16c", "hw.optional.avx512f": "avx512f", "hw.optional.avx512bw": "avx512bw",
    "hw.optional.avx512vnni": "avx512_vnni",
}
SMBIOS_MEMORY_DEVICE = 17
NOT_A_SOC = Unavailable("the CPU is not part of an Apple chip")


def run_command(argv: Sequence[str]) -> str | Unavailable:
    """Run a system command (sysctl, system_profiler, sw_vers) and return its stdout, or why it failed."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Unavailable(f"`{' '.join(argv)}` could not run ({exc})")
    if done.returncode != 0:
        detail = done.stderr.strip()[:200] or f"exit {done.returncode}"
        return Unavailable(f"`{' '.join(argv)}` failed: {detail}")
    return done.stdout


@dataclass(frozen=True)
class HostCounts:
    """Core counts and RAM as psutil reports them."""

    physical_cores: int | Unavailable
    logical_cores: int | Unavailable
    ram_total_bytes: int | Unavailable
    ram_available_bytes: int | Unavailable


def psutil_counts() -> HostCounts:
    """Cores and RAM from psutil (RAM available is MemAvailable on Linux)."""
    import psutil

    physical = psutil.cpu_count(logical=False)
    logical = psutil.cpu_count(logical=True)
    memory = psutil.virtual_memory()
    return HostCounts(
        physical_cores=physical if physical else Unavailable("psutil cannot count physical cores here"),
        logical_cores=logical if logical else Unavailable("psutil cannot count logical cores here"),
        ram_total_bytes=int(memory.total), ram_available_bytes=int(memory.available))


def py_cpuinfo() -> dict[str, Any]:
    """py-cpuinfo's description (slow: about a second; used only where no faster source exists)."""
    import cpuinfo

    info: dict[str, Any] = cpuinfo.get_cpu_info()  # py-cpuinfo ships no types
    return info


@dataclass(frozen=True)
class HostSeams:
    """Where the CPU probe reads from: the real system by default, a fake tree in tests."""

    os_name: str  # platform.system()
    arch: str  # platform.machine()
    root: Path = Path("/")
    run: CommandRunner = run_command
    counts: Callable[[], HostCounts] = psutil_counts
    cpuinfo_library: Callable[[], dict[str, Any]] = py_cpuinfo


def probe_cpu(seams: HostSeams, *, soc_spec: HardwareSpec | Unavailable = NOT_A_SOC) -> CpuInfo:
    """Describe the host CPU; ``soc_spec`` is the Apple chip's datasheet entry when the GPU probe found one."""
    counts = seams.counts()
    if seams.os_name == "Linux":
        model, flags = _linux_model_and_flags(seams.root)
        l3 = _linux_l3_bytes(seams.root)
        bandwidth, basis = smbios_bandwidth(seams.root / "sys/firmware/dmi/entries")
        numa = _linux_numa_nodes(seams.root)
    elif seams.os_name == "Darwin":
        model, flags, l3 = _darwin_model_flags_l3(seams.run)
        bandwidth, basis = _soc_bandwidth(soc_spec)
        numa = Unavailable("macOS exposes no NUMA topology")
    else:
        model, flags, l3 = _library_model_flags_l3(seams.cpuinfo_library)
        bandwidth = Unavailable(f"no source for DRAM speed on {seams.os_name}")
        basis = "not derivable on this operating system"
        numa = Unavailable(f"NUMA topology is not read on {seams.os_name}")
    return CpuInfo(
        model=model, architecture=seams.arch, physical_cores=counts.physical_cores,
        logical_cores=counts.logical_cores, inference_flags=tuple(f for f in INFERENCE_FLAGS if f in flags),
        l3_cache_bytes=l3, ram_total_bytes=counts.ram_total_bytes,
        ram_available_bytes=counts.ram_available_bytes,
        theoretical_bandwidth_bytes_per_s=bandwidth, theoretical_bandwidth_basis=basis, numa_nodes=numa)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _linux_model_and_flags(root: Path) -> tuple[str | Unavailable, set[str]]:
    text = _read(root / "proc/cpuinfo")
    if text is None:
        return Unavailable("/proc/cpuinfo is not readable"), set()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor's entry describes them all
            fields[key.strip()] = value.strip()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    for key in ("model name", "Model", "Hardware"):
        if fields.get(key):
            return fields[key], flags
    board = _read(root / "proc/device-tree/model")
    if board:
        return board.rstrip("\x00"), flags
    if "CPU implementer" in fields:
        return f"Arm CPU (implementer {fields['CPU implementer']}, part {fields.get('CPU part', '?')})", flags
    return Unavailable("/proc/cpuinfo names no model"), flags


def _size_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([KMG]?)", text.strip())
    if not match:
        raise ValueError(f"unexpected cache size {text!r}")
    return int(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2)]


def _linux_l3_bytes(root: Path) -> int | Unavailable:
    """Total L3 over all its instances (one per socket or CCX), read from sysfs."""
    instances: dict[str, int] = {}
    for cache in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cache/index[0-9]*")):
        if _read(cache / "level") != "3":
            continue
        size = _read(cache / "size")
        if not size:
            continue
        key = _read(cache / "id") or _read(cache / "shared_cpu_list") or str(cache.parent.parent)
        instances[key] = _size_bytes(size)
    if not instances:
        return Unavailable("sysfs lists no L3 cache for this CPU")
    return sum(instances.values())


def _linux_numa_nodes(root: Path) -> int | Unavailable:
    nodes = [p for p in (root / "sys/devices/system/node").glob("node[0-9]*") if p.is_dir()]
    return len(nodes) if nodes else Unavailable("/sys/devices/system/node lists no NUMA node")


def _darwin_model_flags_l3(run: CommandRunner) -> tuple[str | Unavailable, set[str], int | Unavailable]:
    brand = run(["sysctl", "-n", "machdep.cpu.brand_string"])
    model = brand if isinstance(brand, Unavailable) else brand.strip()
    optional = run(["sysctl", "hw.optional"])
    flags = set()
    if not isinstance(optional, Unavailable):
        for line in optional.splitlines():
            key, _, value = line.partition(":")
            if value.strip() == "1" and key.strip() in DARWIN_FLAG_KEYS:
                flags.add(DARWIN_FLAG_KEYS[key.strip()])
    l3_text = run(["sysctl", "-n", "hw.l3cachesize"])
    if isinstance(l3_text, Unavailable) or not l3_text.strip().isdigit() or int(l3_text) == 0:
        l3: int | Unavailable = Unavailable(
            "sysctl reports no L3 (Apple chips do not expose their system-level cache)")
    else:
        l3 = int(l3_text)
    return model, flags, l3


def _library_model_flags_l3(library: Callable[[], dict[str, Any]]) -> tuple[Any, set[str], Any]:
    try:
        info = library()
    except Exception as exc:  # py-cpuinfo fails in odd ways on unusual systems; the probe must go on
        reason = Unavailable(f"py-cpuinfo failed ({type(exc).__name__}: {exc})")
        return reason, set(), reason
    model = info.get("brand_raw") or Unavailable("py-cpuinfo names no model")
    l3 = info.get("l3_cache_size") or Unavailable("py-cpuinfo reports no L3 size")
    return model, set(info.get("flags", ())), l3


def _soc_bandwidth(soc_spec: HardwareSpec | Unavailable) -> tuple[float | Unavailable, str]:
    if isinstance(soc_spec, Unavailable):
        return (Unavailable(f"no datasheet entry for this chip ({soc_spec.reason})"),
                "chip not in the datasheet table")
    return soc_spec.memory_bandwidth_bytes_per_s, (
        f"datasheet entry '{soc_spec.id}': the chip's memory bandwidth, shared with the GPU "
        "(the CPU cores alone reach only a fraction of it)")


def smbios_bandwidth(entries: Path) -> tuple[float | Unavailable, str]:
    """Theoretical DRAM bandwidth from SMBIOS type-17 (memory device) tables: sum of speed x width per module."""
    try:
        raws = [(path / "raw").read_bytes() for path in sorted(entries.glob(f"{SMBIOS_MEMORY_DEVICE}-*"))]
    except PermissionError:
        return (Unavailable("SMBIOS memory tables are readable by root only (run as root to derive it)"),
                "not derived")
    except OSError as exc:
        return Unavailable(f"SMBIOS memory tables unreadable ({exc})"), "not derived"
    if not raws:
        return (Unavailable("no SMBIOS memory-device tables in /sys/firmware/dmi (usual in virtual machines "
                            "and containers)"), "not derived")
    modules = [m for m in (parse_memory_device(raw) for raw in raws) if m is not None]
    if not modules:
        return Unavailable("SMBIOS lists no populated memory module with a known speed and width"), "not derived"
    total = sum(speed * 1e6 * width / 8 for speed, width in modules)
    speeds = sorted({speed for speed, _ in modules})
    widths = sorted({width for _, width in modules})
    return total, (f"SMBIOS: {len(modules)} module(s) x {'/'.join(map(str, speeds))} MT/s x "
                   f"{'/'.join(map(str, widths))}-bit / 8, assuming each module has its own channel "
                   "(an upper bound when modules share channels)")


def parse_memory_device(raw: bytes) -> tuple[int, int] | None:
    """(MT/s, data width in bits) of one populated SMBIOS type-17 structure; None when empty or unknown.

    Offsets from the SMBIOS reference specification (DSP0134), "Memory Device (Type 17)": data width at 0x0A,
    size at 0x0C, speed at 0x15, configured speed at 0x20 (2.7+), extended speeds at 0x54/0x58 (3.3+).
    """
    if len(raw) < 0x17 or raw[0] != SMBIOS_MEMORY_DEVICE:
        return None
    length = raw[1]

    def word(offset: int) -> int | None:
        return struct.unpack_from("<H", raw, offset)[0] if offset + 2 <= length else None

    def dword(offset: int) -> int | None:
        return struct.unpack_from("<I", raw, offset)[0] if offset + 4 <= length else None

    size, width = word(0x0C), word(0x0A)
    if not size or width in (None, 0, 0xFFFF):
        return None
    configured, extended_configured = word(0x20), dword(0x58)
    speed, extended_speed = word(0x15), dword(0x54)
    for value, extended in ((configured, extended_configured), (speed, extended_speed)):
        if value == 0xFFFF and extended:
            return extended, width
        if value and value != 0xFFFF:
            return value, width
    return None
