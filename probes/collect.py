"""Run every probe and assemble the ``Machine``; a failing probe never sinks the run.

Each probe runs guarded: an exception becomes a warning naming the probe, and its part of the record becomes
``Unavailable`` (or a ``FailedDevice``) with the reason. The hardware seams are gathered in ``ProbeSeams``;
``default_seams()`` describes this machine, tests pass fakes.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TypeVar

from dgprofile.probes import _amdsmi, _nvml
from dgprofile.probes._drm_sysfs import DrmFiles, HostDrmFiles
from dgprofile.probes.env_software import SoftwareSeams, probe_software
from dgprofile.probes.gpu_amd import probe_amd
from dgprofile.probes.gpu_apple import WorkingSetReader, probe_apple, torch_recommended_working_set
from dgprofile.probes.gpu_intel import probe_intel
from dgprofile.probes.gpu_nvidia import probe_nvidia
from dgprofile.probes.host_cpu import HostSeams, probe_cpu
from dgprofile.probes.memory_class import MeminfoReader, read_meminfo
from dgprofile.records.machine import Accelerator, CpuInfo, Identity, Machine, Software
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec

T = TypeVar("T")
NvmlOpener = Callable[[], AbstractContextManager["_nvml.NvmlQuery | Unavailable"]]
AmdSmiOpener = Callable[[], AbstractContextManager["_amdsmi.AmdSmiQuery | Unavailable"]]


@dataclass(frozen=True)
class ProbeSeams:
    """Every place the probes touch the machine."""

    host: HostSeams
    open_nvml: NvmlOpener = _nvml.open_nvml
    open_amdsmi: AmdSmiOpener = _amdsmi.open_amdsmi
    drm_files: DrmFiles = field(default_factory=HostDrmFiles)
    read_meminfo: MeminfoReader = read_meminfo
    apple_working_set: WorkingSetReader = torch_recommended_working_set
    software: SoftwareSeams = field(default_factory=SoftwareSeams)
    hostname: Callable[[], str] = socket.gethostname


def default_seams() -> ProbeSeams:
    """The seams of the machine this runs on."""
    return ProbeSeams(host=HostSeams(os_name=platform.system(), arch=platform.machine()))


def _guarded(label: str, probe: Callable[[], T], fallback: Callable[[str], T], warnings: list[str]) -> T:
    try:
        return probe()
    except Exception as exc:  # the point of the guard: one broken probe must not lose the others' findings
        reason = f"{label} probe failed: {type(exc).__name__}: {exc}"
        warnings.append(reason)
        return fallback(reason)


def collect_machine(*, seams: ProbeSeams | None = None) -> Machine:
    """Run every probe (no benchmarks) and return what they found."""
    started = time.perf_counter()
    seams = seams or default_seams()
    warnings: list[str] = []
    notes: list[str] = []
    accelerators: list[Accelerator] = []

    def nvidia() -> None:
        with seams.open_nvml() as nvml:
            if isinstance(nvml, Unavailable):
                notes.append(f"NVIDIA: {nvml.reason}")
                return
            found = probe_nvidia(nvml, read_host_meminfo=seams.read_meminfo, own_pid=os.getpid())
        accelerators.extend(found.devices)
        notes.extend(found.notes)

    def amd() -> None:
        with seams.open_amdsmi() as smi:
            if isinstance(smi, Unavailable):
                notes.append(f"AMD: {smi.reason}")
                return
            found = probe_amd(smi, read_host_meminfo=seams.read_meminfo, own_pid=os.getpid())
        accelerators.extend(found.devices)
        notes.extend(found.notes)

    _guarded("NVIDIA GPU", nvidia, lambda reason: None, warnings)
    _guarded("AMD GPU", amd, lambda reason: None, warnings)
    if seams.host.os_name == "Linux":
        intel = _guarded("Intel GPU", lambda: probe_intel(seams.drm_files, read_host_meminfo=seams.read_meminfo,
                                                          own_pid=os.getpid()), lambda reason: None, warnings)
        if intel is not None:
            accelerators.extend(intel.devices)
            notes.extend(intel.notes)
    else:
        notes.append(f"Intel: the xe/i915 drivers' files exist only on Linux ({seams.host.os_name}); "
                     "no Intel GPU probed")
    soc_spec: HardwareSpec | Unavailable = Unavailable("not an Apple Silicon Mac")
    if seams.host.os_name == "Darwin":
        apple = _guarded("Apple GPU", lambda: probe_apple(seams.host.run, seams.apple_working_set),
                         lambda reason: None, warnings)
        if apple is not None:
            accelerators.extend(apple.devices)
            notes.extend(apple.notes)
            soc_spec = apple.soc_spec
    else:
        notes.append(f"Apple: not macOS ({seams.host.os_name}); no Apple GPU probed")
    for device in accelerators:
        if device.kind == "failed-device":
            warnings.append(f"GPU {device.index} ({device.vendor}) could not be described: {device.reason}")
        else:
            warnings.extend(f"GPU {device.index} ({device.name}): {warning}" for warning in device.warnings)

    cpu = _guarded("CPU", lambda: probe_cpu(seams.host, soc_spec=soc_spec),
                   lambda reason: _unknown_cpu(seams.host.arch, reason), warnings)
    software = _guarded("software", lambda: probe_software(seams.software),
                        lambda reason: _unknown_software(reason), warnings)
    hostname = _guarded("hostname", seams.hostname, lambda reason: "unknown-host", warnings)
    return Machine(identity=Identity(hostname=hostname, anonymized=False), cpu=cpu,
                      accelerators=tuple(accelerators), software=software,
                      probe_seconds=time.perf_counter() - started, warnings=tuple(warnings),
                      probe_notes=tuple(notes))


def _unknown_cpu(arch: str, reason: str) -> CpuInfo:
    missing = Unavailable(reason)
    return CpuInfo(model=missing, architecture=arch, physical_cores=missing, logical_cores=missing,
                   inference_flags=(), l3_cache_bytes=missing, ram_total_bytes=missing,
                   ram_available_bytes=missing, theoretical_bandwidth_bytes_per_s=missing,
                   theoretical_bandwidth_basis=reason, numa_nodes=missing)


def _unknown_software(reason: str) -> Software:
    missing = Unavailable(reason)
    return Software(python_version=platform.python_version(), os_name=platform.system(),
                    os_release=platform.release(), torch_version=missing, torch_cuda_version=missing,
                    torch_mps_available=missing, triton_version=missing, transformers_version=missing,
                    vllm_version=missing, nvidia_ml_py_version=missing)

