"""The GPU of an Apple Silicon Mac, from documented command-line interfaces.

Chip (``sysctl -n machdep.cpu.brand_string``), unified memory (``sysctl -n hw.memsize``), GPU cores
(``system_profiler SPDisplaysDataType -json``: ``sppci_cores``; text output: "Total Number of Cores"), macOS
version (``sw_vers -productVersion``), the hand-set GPU wired limit (``sysctl -n iogpu.wired_limit_mb``) and
Metal's recommended working set (``torch.mps.recommended_max_memory()``, only when torch is installed). No API
exposes memory bandwidth: it comes from the datasheet entry of the chip and its GPU-core bin. Written against
those interfaces and tested with fixtures in their formats; not verified on Apple hardware.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dgprofile.probes.host_cpu import CommandRunner
from dgprofile.probes.memory_class import classify_apple
from dgprofile.records.machine import AppleGpu
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec, match_device_name

WorkingSetReader = Callable[[], "int | Unavailable"]


def torch_recommended_working_set() -> int | Unavailable:
    """Metal's recommendedMaxWorkingSetSize through torch (imported here only, and only if installed)."""
    if importlib.util.find_spec("torch") is None:
        return Unavailable("needs Metal's recommendedMaxWorkingSetSize: install torch to read it")
    try:
        import torch

        if not torch.backends.mps.is_available():
            return Unavailable("torch reports MPS unavailable (torch built without MPS, or macOS too old)")
        return int(torch.mps.recommended_max_memory())
    except Exception as exc:  # any torch failure must leave the rest of the probe standing
        return Unavailable(f"torch.mps.recommended_max_memory() failed ({type(exc).__name__}: {exc})")


@dataclass(frozen=True)
class AppleProbe:
    """What the Apple probe found: the GPU (if any), the chip's datasheet entry, and notes."""

    devices: tuple[AppleGpu, ...]
    soc_spec: HardwareSpec | Unavailable
    notes: tuple[str, ...]


def probe_apple(run: CommandRunner,
                read_working_set: WorkingSetReader = torch_recommended_working_set) -> AppleProbe:
    """Describe the Apple Silicon GPU of this Mac."""
    brand = run(["sysctl", "-n", "machdep.cpu.brand_string"])
    if isinstance(brand, Unavailable):
        return AppleProbe((), brand, (f"Apple: cannot read the chip name ({brand.reason})",))
    chip = brand.strip()
    if not chip.startswith("Apple"):
        return AppleProbe((), Unavailable(f"'{chip}' is not Apple Silicon"),
                          (f"Apple: '{chip}' is an Intel Mac; its GPU is not probed",))
    memory = _integer(run(["sysctl", "-n", "hw.memsize"]), "hw.memsize")
    cores = gpu_core_count(run)
    wired_mb = _integer(run(["sysctl", "-n", "iogpu.wired_limit_mb"]), "iogpu.wired_limit_mb")
    wired = wired_mb if isinstance(wired_mb, Unavailable) else wired_mb * (1 << 20)
    version = run(["sw_vers", "-productVersion"])
    working_set = read_working_set()
    spec = match_device_name(chip, memory_bytes=memory, gpu_cores=cores)
    warnings: list[str] = []
    if isinstance(spec, Unavailable):
        bandwidth: float | Unavailable = Unavailable(f"no datasheet entry to take it from ({spec.reason})")
        basis = "no API exposes Apple memory bandwidth, and this chip is not in the datasheet table"
    else:
        bandwidth = spec.memory_bandwidth_bytes_per_s
        basis = f"datasheet entry '{spec.id}' (no API exposes Apple memory bandwidth)"
        if isinstance(cores, Unavailable):
            basis += "; GPU-core bin unknown, chosen by memory size"
            warnings.append("GPU core count unknown: binned variants of this chip differ in bandwidth, and the "
                            "datasheet entry was chosen by memory size alone")
    gpu = AppleGpu(
        kind="apple-gpu", index=0, name=chip if isinstance(cores, Unavailable) else f"{chip} ({cores}-core GPU)",
        chip=chip, gpu_cores=cores, unified_memory_bytes=memory, recommended_working_set_bytes=working_set,
        theoretical_bandwidth_bytes_per_s=bandwidth, theoretical_bandwidth_basis=basis,
        macos_version=version if isinstance(version, Unavailable) else version.strip(),
        memory_class=classify_apple(recommended_working_set_bytes=working_set, wired_limit_bytes=wired,
                                    unified_memory_bytes=memory),
        spec_id=spec if isinstance(spec, Unavailable) else spec.id, verified_on_hardware=False,
        warnings=tuple(warnings))
    return AppleProbe((gpu,), spec, ())


def _integer(text: str | Unavailable, what: str) -> int | Unavailable:
    if isinstance(text, Unavailable):
        return text
    if not text.strip().isdigit():
        return Unavailable(f"{what} is not a number ({text.strip()[:40]!r})")
    return int(text)


def gpu_core_count(run: CommandRunner) -> int | Unavailable:
    """GPU cores from system_profiler: JSON ``sppci_cores``, else the text's "Total Number of Cores"."""
    report = run(["system_profiler", "SPDisplaysDataType", "-json"])
    if not isinstance(report, Unavailable):
        try:
            cores = _cores_from_json(json.loads(report))
        except ValueError:
            cores = None
        if cores is not None:
            return cores
    text = run(["system_profiler", "SPDisplaysDataType"])
    if isinstance(text, Unavailable):
        return text
    match = re.search(r"Total Number of Cores:\s*(\d+)", text)
    return int(match.group(1)) if match else Unavailable("system_profiler reports no GPU core count")


def _cores_from_json(report: Any) -> int | None:
    for display in report.get("SPDisplaysDataType", []) if isinstance(report, dict) else []:
        cores = str(display.get("sppci_cores", ""))
        vendor = display.get("spdisplays_vendor") or display.get("sppci_vendor") or ""
        built_in = "Apple" in str(vendor) or str(display.get("_name", "")).startswith("Apple")
        if built_in and cores.isdigit():
            return int(cores)
    return None
