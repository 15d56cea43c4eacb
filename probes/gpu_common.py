"""What every GPU probe shares: the busy-GPU warnings and the datasheet cross-check of a reported bandwidth."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dgprofile.records.machine import GpuProcess
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec
from dgprofile.text.units import bandwidth_text, bytes_text, percent_text, plural, signed_percent_text

# Above this disagreement a library-reported bandwidth is not trusted: clock conventions differ between memory
# types and vendors (e.g. https://github.com/ROCm/xla/pull/970).
DATASHEET_TOLERANCE = 0.15
# A GPU busier than this (percent of the last sample period with a kernel running) spoils timings.
BUSY_UTILIZATION_PERCENT = 5


def process_name(path: str) -> str:
    """The executable's base name only: full paths can carry user names into shared result files."""
    return os.path.basename(path) or path


def busy_warnings(utilization: int | Unavailable, processes: tuple[GpuProcess, ...] | Unavailable) -> list[str]:
    """Warnings when other processes hold the GPU or it was busy while probed."""
    warnings = []
    if isinstance(processes, tuple) and processes:
        held = sum(p.used_memory_bytes for p in processes if isinstance(p.used_memory_bytes, int))
        names = ", ".join(f"{p.name if isinstance(p.name, str) else '?'} (pid {p.pid})" for p in processes[:5])
        warnings.append(f"the GPU is busy: {plural(len(processes), 'other process', 'other processes')} use it: "
                        f"{names}, {bytes_text(held)} held; measurements here will be unreliable")
    if isinstance(utilization, int) and utilization >= BUSY_UTILIZATION_PERCENT:
        warnings.append(f"the GPU was {utilization}% utilised while probed: "
                        "measurements here will be unreliable")
    return warnings


@dataclass(frozen=True)
class BandwidthCheck:
    """A library-reported theoretical bandwidth set against the datasheet, and the figure to use."""

    reported: float | Unavailable
    datasheet: float | Unavailable
    disagrees: bool
    used: float | Unavailable
    basis: str
    warnings: tuple[str, ...]


def cross_check_bandwidth(reported: float | Unavailable, reported_basis: str,
                          spec: HardwareSpec | Unavailable) -> BandwidthCheck:
    """The reported figure where it agrees with the datasheet entry within ``DATASHEET_TOLERANCE``; the datasheet
    where it disagrees (with a warning) or where nothing was reported."""
    datasheet: float | Unavailable = spec if isinstance(spec, Unavailable) else spec.memory_bandwidth_bytes_per_s
    if isinstance(reported, Unavailable) and isinstance(spec, Unavailable):
        return BandwidthCheck(reported, datasheet, False, Unavailable(f"{reported.reason}; {spec.reason}"),
                              "no reported bandwidth and no datasheet entry", ())
    if isinstance(spec, Unavailable):
        return BandwidthCheck(reported, datasheet, False, reported,
                              f"{reported_basis}; not checked: {spec.reason}", ())
    if isinstance(reported, Unavailable):
        return BandwidthCheck(reported, datasheet, False, datasheet,
                              f"datasheet entry '{spec.id}' ({reported.reason})", ())
    gap = reported / spec.memory_bandwidth_bytes_per_s - 1
    if abs(gap) > DATASHEET_TOLERANCE:
        warning = (f"the reported bandwidth {bandwidth_text(reported)} disagrees with the datasheet's "
                   f"{bandwidth_text(spec.memory_bandwidth_bytes_per_s)} for '{spec.id}' by "
                   f"{signed_percent_text(gap)}: dgprofile uses the datasheet figure until a measured bandwidth "
                   "replaces it")
        return BandwidthCheck(reported, datasheet, True, datasheet,
                              f"datasheet entry '{spec.id}', because {reported_basis} disagrees by "
                              f"{signed_percent_text(gap)}",
                              (warning,))
    return BandwidthCheck(reported, datasheet, False, reported,
                          f"{reported_basis}; agrees with datasheet entry '{spec.id}' within "
                          f"{percent_text(abs(gap))}", ())


def whole_number(value: Any, what: str) -> int | Unavailable:
    """An integer a library answered, or Unavailable when it answered an error, "N/A" or something else."""
    if isinstance(value, Unavailable):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        return Unavailable(f"{what}: the driver does not report it (answered {str(value)[:20]!r})")
    return value
