"""Measured ceilings of a device: memory bandwidth, matmul rates and ridge, latency floor.

Produced by ``dgprofile.probes.measure_limits.measure_limits``; every figure carries the ``Timing`` it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable


@dataclass(frozen=True)
class BandwidthFigure:
    """One bandwidth measurement; ``bytes_per_s`` counts every byte read and written.

    ``name`` is the access pattern ("stream-read", "copy", "triad", "h2d-pinned", "h2d-pageable", "d2h-pinned",
    "d2h-pageable"); ``method`` the code that ran it ("torch.sum", "triton-stream-read", ...).
    """

    name: str
    method: str
    buffer_bytes: int
    bytes_moved_per_call: int
    bytes_per_s: float
    timing: Timing
    fraction_of_theoretical: float | Unavailable


@dataclass(frozen=True)
class MatmulFigure:
    """One matrix-product rate: ``[m x k] @ [k x n]`` in ``dtype``.

    ``shape`` names the product ("square" or a decode shape such as "lm-head"); ``tokens`` is the token count it
    stands for (``m`` can be larger when a kernel needs padded rows). ``weight_copies`` distinct weight matrices
    are used in turn so that decode shapes read their weights from memory, not from cache, as a layer stack does.
    ``bytes_moved`` counts the operands read and the output written once.
    """

    label: str
    dtype: str
    m: int
    n: int
    k: int
    flops_per_s: float
    timing: Timing
    shape: str = "square"
    tokens: int = 0
    weight_copies: int = 1
    bytes_moved: int = 0
    bytes_per_s: float = 0.0


@dataclass(frozen=True)
class TokenRidge:
    """Where extra tokens stop being free for one product shape and dtype.

    ``tokens`` is the smallest measured token count whose time exceeds ``threshold_factor`` times the time at
    ``base_tokens`` tokens (Unavailable when none of the measured counts does).
    """

    dtype: str
    shape: str
    tokens: int | Unavailable
    base_tokens: int
    base_seconds: float
    threshold_factor: float


@dataclass(frozen=True)
class LatencyFigure:
    """A fixed per-launch or per-synchronisation cost."""

    name: str
    seconds: float
    timing: Timing
    description: str = ""


@dataclass(frozen=True)
class Limits:
    """The measured ceilings the model builds on.

    * ``stream_read_bytes_per_s``: the best streaming read (what weight streaming needs), from ``stream_read_method``.
    * ``peak_flops_per_s[dtype]``: matmul rate at the large square shape; ``ridge_flop_per_byte[dtype]`` is that
      over the streaming read; ``ridge_tokens[dtype]``: tokens per pass at which a weight-streaming product of the
      model's width stops being free (see ``token_ridges``; the shape is ``ridge_tokens_shape``).
    * ``launch_floor_seconds``: the fixed cost of one kernel in an efficient engine: a minimal op replayed in a
      CUDA graph on NVIDIA; the per-call cost of a minimal op elsewhere. ``eager_launch_seconds`` and
      ``sync_round_trip_seconds`` are the eager per-op cost and one launch plus synchronisation.
    """

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
    stream_read_method: str = ""
    triad_bytes_per_s: float | Unavailable = Unavailable("not measured")
    theoretical_bandwidth_bytes_per_s: float | Unavailable = Unavailable("not known")
    last_level_cache_bytes: int | Unavailable = Unavailable("not known")
    token_ridges: tuple[TokenRidge, ...] = ()
    ridge_tokens_shape: str = ""
    eager_launch_seconds: float | Unavailable = Unavailable("not measured")
    sync_round_trip_seconds: float | Unavailable = Unavailable("not measured")
    quick: bool = False
    torch_version: str = ""
