"""The statistics every timed measurement carries (produced by ``dgprofile.probes.harness``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TimerName = Literal["cuda-graph-events", "cuda-events", "xpu-events", "mps-events", "mps-sync", "perf-counter"]
# "cuda" covers NVIDIA and AMD GPUs alike: ROCm builds of torch time HIP devices through torch.cuda's events.
TimerPlatform = Literal["cuda", "xpu", "mps", "cpu"]
TIMER_PLATFORMS: dict[TimerName, TimerPlatform] = {
    "cuda-graph-events": "cuda", "cuda-events": "cuda", "xpu-events": "xpu", "mps-events": "mps",
    "mps-sync": "mps", "perf-counter": "cpu"}

# What to do about an unstable measurement where the remedy depends on the platform: nvidia-smi exists only beside
# an NVIDIA GPU (amd-smi beside an AMD one, xpu-smi and intel_gpu_top beside an Intel one), Activity Monitor only on
# a Mac. The harness writes this advice into each flag; pages look it up
# again by the timing's timer, so older files (GPU advice on every platform) read right too.
PLATFORM_ADVICE: dict[str, dict[TimerPlatform, str]] = {
    "high-variation": {
        "cuda": "another process may be using the GPU: check nvidia-smi (amd-smi on AMD), stop other jobs and "
                "rerun",
        "xpu": "another process may be using the GPU: check xpu-smi or intel_gpu_top, stop other jobs and rerun",
        "mps": "another app may be using the GPU: check Activity Monitor's GPU History, quit other apps and rerun",
        "cpu": "other processes compete for the CPU: check top, stop other jobs and rerun"},
    "outliers": {
        "cuda": "intermittent interference (other processes, a shared GPU): rerun on an idle machine",
        "xpu": "intermittent interference (other processes, a shared GPU): rerun on an idle machine",
        "mps": "intermittent interference (other apps, background jobs): rerun on an idle Mac",
        "cpu": "intermittent interference (other processes, background jobs): rerun on an idle machine"},
    "slowing-down": {
        "cuda": "thermal or power limits are throttling the GPU: check cooling and power with "
                "`nvidia-smi -q -d PERFORMANCE` (`amd-smi metric` on AMD), let it cool down and rerun",
        "xpu": "thermal or power limits are throttling the GPU: check cooling and power with `xpu-smi stats` or "
               "intel_gpu_top, let it cool down and rerun",
        "mps": "the Mac is throttling for heat or power: plug it in, turn Low Power Mode off, let it cool down and "
               "rerun",
        "cpu": "thermal or power limits are throttling the CPU: let it cool down and rerun"},
}


def flag_advice(code: str, timer: TimerName, recorded: str) -> str:
    """The advice for an instability flag on the platform ``timer`` ran on; ``recorded`` where it does not
    depend on the platform."""
    return PLATFORM_ADVICE.get(code, {}).get(TIMER_PLATFORMS[timer], recorded)


@dataclass(frozen=True)
class InstabilityFlag:
    """A named reason to distrust a measurement, with advice."""

    code: str
    message: str
    advice: str


@dataclass(frozen=True)
class Timing:
    """Median and spread of repeated samples of one timed operation.

    Each sample times ``loops`` calls; each call performs ``ops_per_call`` operations (more than one when a
    CUDA graph replays several captured copies). Every ``*_seconds`` figure is per operation.
    """

    median_seconds: float
    iqr_seconds: float
    min_seconds: float
    max_seconds: float
    coefficient_of_variation: float
    samples: int
    loops: int
    warmup_runs: int
    timer: TimerName
    unstable: tuple[InstabilityFlag, ...] = ()
    ops_per_call: int = 1
    sample_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def relative_spread(self) -> float:
        """IQR over median: the width used for uncertainty bands."""
        return self.iqr_seconds / self.median_seconds if self.median_seconds > 0 else 0.0
