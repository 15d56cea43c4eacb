"""Which torch device a benchmark uses on this machine (imports torch: call only when measuring).

NVIDIA GPUs are "cuda" devices in CUDA builds of torch, AMD GPUs "cuda" devices in ROCm builds (HIP behind the
same API), Intel GPUs "xpu" devices in XPU builds, Apple's GPU "mps". A machine whose GPU this torch build
cannot drive is not measured on its CPU instead: ``undrivable_accelerator`` says why, so the caller can predict
from the GPU's datasheet and tell the user which torch to install.
"""

from __future__ import annotations

from typing import Any

from dgprofile.errors import UsageError
from dgprofile.probes import gpu_backends
from dgprofile.records.machine import AmdGpu, FailedDevice, IntelGpu, Machine, NvidiaGpu

TORCH_BUILDS = "https://pytorch.org/get-started/locally/"


def _first_index(machine: Machine, kind: type, count: int) -> int:
    indices = [a.index for a in machine.accelerators if isinstance(a, kind)]
    return indices[0] if indices and indices[0] < count else 0


def resolve_device(machine: Machine, requested: str) -> str:
    """``requested`` checked against what torch sees, or for "auto" the first GPU torch can use (CUDA or ROCm,
    then XPU), else Apple's GPU through MPS, else the CPU."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available() and torch.cuda.device_count() > 0:
            kind = AmdGpu if gpu_backends.is_rocm(torch) else NvidiaGpu
            return f"cuda:{_first_index(machine, kind, torch.cuda.device_count())}"
        if _xpu_available(torch):
            return f"xpu:{_first_index(machine, IntelGpu, torch.xpu.device_count())}"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    kind_name, _, index = requested.partition(":")
    if kind_name in ("cuda", "xpu"):
        backend = torch.cuda if kind_name == "cuda" else getattr(torch, "xpu", None)
        available = torch.cuda.is_available() if kind_name == "cuda" else _xpu_available(torch)
        if backend is None or not available:
            raise UsageError(f"--device {requested}: this torch sees no {kind_name.upper()} device")
        if index and (not index.isdigit() or int(index) >= backend.device_count()):
            raise UsageError(f"--device {requested}: torch sees {backend.device_count()} {kind_name.upper()} "
                             "device(s)")
        return requested
    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError("--device mps: MPS is not available on this machine")
        return requested
    if requested == "cpu":
        return requested
    raise UsageError(f"unknown --device {requested!r}: expected auto, cuda, cuda:N, xpu, xpu:N, mps or cpu")


def _xpu_available(torch: Any) -> bool:
    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu.is_available() and xpu.device_count() > 0)


def undrivable_accelerator(machine: Machine, device: str) -> str | None:
    """Why measuring ``device`` would not measure the machine's GPU, or None when it would (or there is none).

    "auto" resolves to the CPU when this torch build has no backend for the GPU the probes found: a CUDA torch on
    an AMD machine, a CPU-only torch anywhere. The CPU's figures would say nothing about the GPU.
    """
    if device != "cpu":
        return None
    import torch

    gpu = next((a for a in machine.accelerators if not isinstance(a, FailedDevice)), None)
    if gpu is None:
        return None
    if isinstance(gpu, NvidiaGpu):
        build = "a CUDA build of torch"
    elif isinstance(gpu, AmdGpu):
        build = "the ROCm build of torch"
    elif isinstance(gpu, IntelGpu):
        build = "the XPU build of torch"
    else:
        build = "a torch with MPS (any macOS arm64 build)"
    return (f"not measured: torch {torch.__version__} cannot drive the {gpu.name}, and the CPU's figures would not "
            f"describe it; install {build} ({TORCH_BUILDS}) to measure it. Predicted from its datasheet entry")
