"""The one module that reads the kernel's DRM files for the Intel probe: sysfs, DRM fdinfo and the pci.ids names.

Intel maintains three ways to look at its GPUs: Level Zero Sysman (a C API with no maintained Python bindings;
it also needs ``ZES_ENABLE_SYSMAN=1`` and the compute runtime), ``xpu-smi`` (XPU Manager, aimed at data-centre
GPUs, with partial Arc support) and the xe / i915 kernel drivers' own files. dgprofile reads the driver's files:
they are there on every Linux machine with the upstream driver, need no extra package or root, are the ABI the
kernel documents (Documentation/ABI/testing/sysfs-driver-xe, Documentation/gpu/drm-usage-stats.rst) and what
nvtop reads. They carry no product name, memory clock or bus width: names come from the datasheet table by PCI
device id, else from the system's pci.ids database (lspci's).

``DrmFiles`` is the seam: three read-only operations on paths. ``HostDrmFiles`` reads this machine; tests pass
a fake tree (tests/fakes/intel_sysfs.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from dgprofile.records.values import Unavailable

SYS_CLASS_DRM = "/sys/class/drm"
PROC = "/proc"
PCI_IDS_PATHS = ("/usr/share/hwdata/pci.ids", "/usr/share/misc/pci.ids")


class DrmFiles(Protocol):
    """Read-only access to the files the Intel probe looks at."""

    def read_text(self, path: str) -> str | Unavailable:
        """The file's text, or Unavailable with the reason it cannot be read."""
        ...

    def list_dir(self, path: str) -> tuple[str, ...] | Unavailable:
        """The sorted names in a directory, or Unavailable."""
        ...

    def resolve(self, path: str) -> str | Unavailable:
        """Where a symbolic link finally points (an absolute path), or Unavailable."""
        ...


class HostDrmFiles:
    """This machine's files."""

    def read_text(self, path: str) -> str | Unavailable:
        """The file's text, or Unavailable with the reason it cannot be read."""
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return Unavailable(f"{path} is not readable ({exc.strerror or exc})")

    def list_dir(self, path: str) -> tuple[str, ...] | Unavailable:
        """The sorted names in a directory, or Unavailable."""
        try:
            return tuple(sorted(os.listdir(path)))
        except OSError as exc:
            return Unavailable(f"{path} cannot be listed ({exc.strerror or exc})")

    def resolve(self, path: str) -> str | Unavailable:
        """Where a symbolic link finally points (an absolute path), or Unavailable."""
        try:
            os.lstat(path)
        except OSError as exc:
            return Unavailable(f"{path} does not exist ({exc.strerror or exc})")
        return os.path.realpath(path)
