"""Which torch device a benchmark should use on this machine (imports torch: call only when measuring)."""

from __future__ import annotations

from dgprofile.machine import Machine, NvidiaGpu


def default_device(machine: Machine) -> str:
    """The first NVIDIA GPU torch can use, else Apple's GPU through MPS, else the CPU."""
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        nvidia = [a.index for a in machine.accelerators if isinstance(a, NvidiaGpu)]
        return f"cuda:{nvidia[0] if nvidia and nvidia[0] < torch.cuda.device_count() else 0}"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"
