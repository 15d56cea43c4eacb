"""Measured ceilings of a device: memory bandwidth, matmul rates and ridge, latency floor."""

from __future__ import annotations

from dataclasses import dataclass

from dgprofile.timing import Timing
from dgprofile.values import Unavailable


@dataclass(frozen=True)
class BandwidthFigure:
    """One bandwidth measurement; ``bytes_per_s`` counts every byte read and written."""

    name: str
    method: str
    buffer_bytes: int
    bytes_moved_per_call: int
    bytes_per_s: float
    timing: Timing
    fraction_of_theoretical: float | Unavailable


@dataclass(frozen=True)
class MatmulFigure:
    """One matrix-product rate: ``[m x k] @ [k x n]`` in ``dtype``."""

    label: str
    dtype: str
    m: int
    n: int
    k: int
    flops_per_s: float
    timing: Timing


@dataclass(frozen=True)
class LatencyFigure:
    """A fixed per-launch or per-synchronisation cost."""

    name: str
    seconds: float
    timing: Timing


@dataclass(frozen=True)
class Limits:
    """The measured ceilings the model builds on."""

    device: str
    device_name: str
    stream_read_bytes_per_s: float | Unavailable
    copy_bytes_per_s: float | Unavailable
    bandwidth: tuple[BandwidthFigure, ...]
    host_transfer: tuple[BandwidthFigure, ...]
    matmul: tuple[MatmulFigure, ...]
    peak_flops_per_s: dict[str, float]
    ridge_flop_per_byte: dict[str, float]
    ridge_tokens: dict[str, int]
    latency: tuple[LatencyFigure, ...]
    launch_floor_seconds: float | Unavailable
    seconds_taken: float
    notes: tuple[str, ...]
