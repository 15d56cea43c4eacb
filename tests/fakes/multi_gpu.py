"""Per-GPU limits for the multi-GPU runner's processes (imported by name in each spawned process)."""

from __future__ import annotations

import dataclasses
import time

from result_factory import limits

from dgprofile.records.limits import Limits
from dgprofile.records.machine import Machine

THROTTLED_DEVICE = "cuda:1"
THROTTLED_SHARE = 0.8


def throttled_second_gpu(device: str, machine: Machine | None, quick: bool) -> Limits:
    """H200-like limits, the second GPU streaming at 80% (a throttled card); the start time is kept in the
    notes so a test can see that every process began together."""
    share = THROTTLED_SHARE if device == THROTTLED_DEVICE else 1.0
    measured = limits(device=device, device_name="NVIDIA H200", stream_bytes_per_s=4.5e12 * share,
                      peak_bf16_flops_per_s=6.7e14 * share)
    return dataclasses.replace(measured, notes=(f"started at {time.time():.6f}",))


def failing_gpu(device: str, machine: Machine | None, quick: bool) -> Limits:
    """A GPU whose limits step breaks (as a CUDA error would)."""
    raise RuntimeError(f"CUDA error: an illegal memory access was encountered on {device}")
