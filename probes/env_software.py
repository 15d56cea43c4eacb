"""Versions of what measurements and predictions depend on, without importing heavy packages to get them.

Versions come from installed-package metadata. torch's CUDA version comes from ``torch.version.cuda`` when torch
is already imported (importing it costs seconds); otherwise from the text of its ``torch/version.py`` (read, not
imported), its version tag (``2.9.0+cu128``) or the CUDA wheels it requires (``cuda-toolkit[...]==13.0.2``,
``nvidia-cuda-runtime-cu12==12.8.90``). Wheels from PyPI drop the local tag from their metadata: torch
``2.11.0+cu130`` reports ``2.11.0``, hence the version file first.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType

from dgprofile.records.machine import Software
from dgprofile.records.values import Unavailable


def installed_version(distribution: str) -> str | Unavailable:
    """The installed version of a distribution, or Unavailable('not installed')."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return Unavailable("not installed")


def installed_requirements(distribution: str) -> tuple[str, ...]:
    """The Requires-Dist lines of an installed distribution (empty when it is not installed)."""
    try:
        return tuple(metadata.requires(distribution) or ())
    except metadata.PackageNotFoundError:
        return ()


def torch_version_file() -> str | None:
    """The text of the installed ``torch/version.py`` without importing torch (None when there is none)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        try:
            return (Path(location) / "version.py").read_text(encoding="utf-8")
        except OSError:
            continue
    return None


@dataclass(frozen=True)
class SoftwareSeams:
    """Where the software probe looks: the running interpreter by default, fakes in tests."""

    version_of: Callable[[str], str | Unavailable] = installed_version
    requirements_of: Callable[[str], tuple[str, ...]] = installed_requirements
    read_torch_version_file: Callable[[], str | None] = torch_version_file
    loaded_modules: Mapping[str, ModuleType] = field(default_factory=lambda: sys.modules)
    os_name: str = field(default_factory=platform.system)
    os_release: str = field(default_factory=platform.release)
    python_version: str = field(default_factory=platform.python_version)


def probe_software(seams: SoftwareSeams | None = None) -> Software:
    """Python, OS, torch (with its CUDA/MPS build), triton, transformers, vLLM and nvidia-ml-py versions."""
    seams = seams or SoftwareSeams()
    torch_version = seams.version_of("torch")
    return Software(
        python_version=seams.python_version, os_name=seams.os_name, os_release=_os_release(seams),
        torch_version=torch_version, torch_cuda_version=_torch_cuda(seams, torch_version),
        torch_mps_available=_torch_mps(seams, torch_version),
        triton_version=seams.version_of("triton"), transformers_version=seams.version_of("transformers"),
        vllm_version=seams.version_of("vllm"), nvidia_ml_py_version=seams.version_of("nvidia-ml-py"))


def _os_release(seams: SoftwareSeams) -> str:
    if seams.os_name == "Darwin":
        return platform.mac_ver()[0] or seams.os_release
    if seams.os_name == "Linux":
        try:
            pretty = platform.freedesktop_os_release().get("PRETTY_NAME")
        except OSError:
            pretty = None
        return f"{pretty} (kernel {seams.os_release})" if pretty else seams.os_release
    return seams.os_release


def _torch_cuda(seams: SoftwareSeams, torch_version: str | Unavailable) -> str | Unavailable:
    if isinstance(torch_version, Unavailable):
        return Unavailable("torch is not installed")
    torch = seams.loaded_modules.get("torch")
    if torch is not None:
        cuda = getattr(getattr(torch, "version", None), "cuda", None)
        hip = getattr(getattr(torch, "version", None), "hip", None)
        if cuda:
            return str(cuda)
        return Unavailable(f"ROCm build of torch (HIP {hip}), not CUDA" if hip
                           else "this torch build has no CUDA (torch.version.cuda is None)")
    version_file = seams.read_torch_version_file()
    if version_file is not None:
        cuda_line = re.search(r"^cuda\b[^=\n]*=\s*(?:'([^']*)'|\"([^\"]*)\"|None)", version_file, re.MULTILINE)
        if cuda_line:
            cuda = cuda_line.group(1) or cuda_line.group(2)
            if cuda:
                return cuda
            hip = re.search(r"^hip\b[^=\n]*=\s*'([^']+)'", version_file, re.MULTILINE)
            return Unavailable(f"ROCm build of torch (HIP {hip.group(1)}), not CUDA" if hip
                               else "CPU-only build of torch: torch/version.py says cuda = None")
    local = torch_version.partition("+")[2]
    if local.startswith("cu") and local[2:].isdigit() and len(local) >= 4:
        return f"{local[2:-1]}.{local[-1]}"  # cu128 -> 12.8, cu130 -> 13.0
    if local == "cpu":
        return Unavailable("CPU-only build of torch")
    if local.startswith("rocm"):
        return Unavailable(f"ROCm build of torch ({local}), not CUDA")
    if local == "xpu":
        return Unavailable("XPU build of torch (Intel GPUs), not CUDA")
    for requirement in seams.requirements_of("torch"):
        match = re.match(r"(?:cuda-toolkit(?:\[[^\]]*\])?|nvidia-cuda-runtime(?:-cu\d+)?)\s*==\s*(\d+)\.(\d+)",
                         requirement)
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    return Unavailable("torch is not imported (that takes seconds) and its metadata names no CUDA build")


def _torch_mps(seams: SoftwareSeams, torch_version: str | Unavailable) -> bool | Unavailable:
    if seams.os_name != "Darwin":
        return False  # MPS exists only on macOS
    if isinstance(torch_version, Unavailable):
        return Unavailable("torch is not installed")
    torch = seams.loaded_modules.get("torch")
    if torch is None:
        return Unavailable("torch is not imported by the probe (that takes seconds)")
    try:
        return bool(torch.backends.mps.is_available())
    except Exception as exc:  # a broken torch install must not sink the probe
        return Unavailable(f"torch.backends.mps.is_available() failed ({type(exc).__name__})")
