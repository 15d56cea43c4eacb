"""Whole fake machines for the probes: a Linux host with any mix of fake NVIDIA, AMD and Intel GPUs."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dgprofile.probes.collect import ProbeSeams
from dgprofile.records.values import Unavailable
from fakes import amdsmi as fake_amdsmi
from fakes import cpu
from fakes.intel_sysfs import FakeDrmFiles

GIB = 1 << 30
HOST_MEMINFO = {"MemTotal": 124 * GIB, "MemAvailable": 118 * GIB}


def seams(tmp_path: Path, *, nvml: Any = None, amd: Any = None, intel: FakeDrmFiles | None = None,
          meminfo: dict[str, int] | None = None) -> ProbeSeams:
    """Probe seams of a Linux host named gpu-box-7; absent vendors answer as on a machine without them."""
    @contextlib.contextmanager
    def open_nvml() -> Iterator[Any]:
        yield nvml if nvml is not None else Unavailable("NVML init: no NVIDIA driver here")

    root = Path(tempfile.mkdtemp(prefix="host-", dir=tmp_path))  # one host tree per call
    return ProbeSeams(host=cpu.linux_seams(cpu.linux_tree(root)), open_nvml=open_nvml,
                      open_amdsmi=fake_amdsmi.opener(amd if amd is not None else fake_amdsmi.NOT_INSTALLED),
                      drm_files=intel if intel is not None else FakeDrmFiles(),
                      read_meminfo=lambda: meminfo or HOST_MEMINFO, hostname=lambda: "gpu-box-7")
