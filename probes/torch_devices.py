"""Which torch device a benchmark uses on this machine (imports torch: call only when measuring)."""

from __future__ import annotations

from dgprofile.errors import UsageError


def resolve_device(requested: str) -> str:
    """``requested`` checked against what torch sees, or for "auto" the first NVIDIA GPU torch can use (cuda:0),
    else Apple's GPU through MPS, else the CPU."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available() and torch.cuda.device_count() > 0:
            return "cuda:0"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    kind, _, index = requested.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {requested}: this torch sees no CUDA device")
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise UsageError(f"--device {requested}: torch sees {torch.cuda.device_count()} CUDA device(s)")
        return requested
    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError("--device mps: MPS is not available on this machine")
        return requested
    if requested == "cpu":
        return requested
    raise UsageError(f"unknown --device {requested!r}: expected auto, cuda, cuda:N, mps or cpu")
