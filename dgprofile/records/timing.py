"""The statistics every timed measurement carries (produced by ``dgprofile.probes.harness``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TimerName = Literal["cuda-graph-events", "cuda-events", "xpu-events", "mps-events", "mps-sync", "perf-counter"]


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
