"""Measured limits as terminal text: bandwidth, host transfers, matmul peaks and ridges, decode shapes, latency."""

from __future__ import annotations

from dgprofile.analysis.instability import limits_timings, unstable_groups
from dgprofile.records.limits import Limits, MatmulFigure
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable
from dgprofile.text.units import (
    bandwidth_text,
    bytes_text,
    flops_text,
    intensity_text,
    percent_text,
    seconds_text,
    text_table,
)


def _spread(timing: Timing) -> str:
    marks = "" if not timing.unstable else " !"
    return f"IQR {percent_text(timing.relative_spread)}{marks}"


def _fraction(value: float | Unavailable) -> str:
    """A share of the theoretical peak; "-" when unknown (the header says why)."""
    return "-" if isinstance(value, Unavailable) else percent_text(value)


def _bandwidth_lines(limits: Limits) -> list[str]:
    lines = [f"Memory bandwidth (theoretical {bandwidth_text(limits.theoretical_bandwidth_bytes_per_s)}, "
             f"last-level cache {bytes_text(limits.last_level_cache_bytes)})"]
    if limits.bandwidth:
        rows = [("pattern", "method", "buffer", "rate", "of theoretical", "spread")]
        rows += [(f.name, f.method, bytes_text(f.buffer_bytes), bandwidth_text(f.bytes_per_s),
                  _fraction(f.fraction_of_theoretical), _spread(f.timing)) for f in limits.bandwidth]
        lines += text_table(rows)
    lines.append(f"  streaming read {bandwidth_text(limits.stream_read_bytes_per_s)}"
                 + (f" by {limits.stream_read_method}" if limits.stream_read_method else "")
                 + f", copy {bandwidth_text(limits.copy_bytes_per_s)}, triad {bandwidth_text(limits.triad_bytes_per_s)}")
    if limits.host_transfer:
        lines += ["", "Host transfers (one direction)"]
        transfer_rows = [("direction", "buffer", "rate", "spread")]
        transfer_rows += [(f.name, bytes_text(f.buffer_bytes), bandwidth_text(f.bytes_per_s), _spread(f.timing))
                          for f in limits.host_transfer]
        lines += text_table(transfer_rows)
    return lines


def _matmul_lines(limits: Limits) -> list[str]:
    squares = [f for f in limits.matmul if f.shape == "square"]
    if not squares:
        return ["Matmul: not measured"]
    lines = ["Matmul peak (large square product) and ridge"]
    rows = [("dtype", "shape", "rate", "spread", "ridge FLOP/byte", f"ridge tokens ({limits.ridge_tokens_shape or '-'})")]
    for f in squares:
        ridge = limits.ridge_flop_per_byte.get(f.dtype)
        tokens = limits.ridge_tokens.get(f.dtype)
        rows.append((f.dtype, f"{f.m}x{f.k}x{f.n}", flops_text(f.flops_per_s), _spread(f.timing),
                     intensity_text(ridge).removesuffix(" FLOP/byte") if ridge is not None else "-",
                     str(tokens) if tokens is not None else _ridge_absent(limits, f.dtype)))
    lines += text_table(rows)
    decode = [f for f in limits.matmul if f.shape != "square"]
    if decode:
        lines += ["", "Decode shapes: time per product (weights read from memory), by tokens per pass"]
        lines += text_table(_decode_rows(decode))
    return lines


def _ridge_absent(limits: Limits, dtype: str) -> str:
    """"> N" when time never grew up to the largest measured token count N, "-" when not measured."""
    measured = [f.tokens for f in limits.matmul if f.dtype == dtype and f.shape == limits.ridge_tokens_shape]
    return f"> {max(measured)}" if measured else "-"


def _decode_rows(decode: list[MatmulFigure]) -> list[tuple[str, ...]]:
    tokens = sorted({f.tokens for f in decode})
    groups: dict[tuple[str, str], dict[int, MatmulFigure]] = {}
    for f in decode:
        groups.setdefault((f.dtype, f.shape), {})[f.tokens] = f
    rows: list[tuple[str, ...]] = [("dtype", "shape", "[k x n]", *(f"M={t}" for t in tokens), "at M=1")]
    for (dtype, shape), by_tokens in groups.items():
        first = by_tokens[min(by_tokens)]
        cells = tuple(seconds_text(by_tokens[t].timing.median_seconds) + (" !" if by_tokens[t].timing.unstable else "")
                      if t in by_tokens else "-" for t in tokens)
        rows.append((dtype, shape, f"{first.k}x{first.n}", *cells, bandwidth_text(first.bytes_per_s)))
    return rows


def _latency_lines(limits: Limits) -> list[str]:
    lines = ["Latency floor"]
    if limits.latency:
        lines += text_table([(f.name, seconds_text(f.seconds), _spread(f.timing), f.description) for f in limits.latency])
    lines.append(f"  launch floor {seconds_text(limits.launch_floor_seconds)} per kernel")
    return lines


def _warning_lines(limits: Limits) -> list[str]:
    lines = [f"  {group.text()}" for group in unstable_groups(limits_timings(limits))]
    return ["", "Unstable measurements (marked !)", *lines] if lines else []


def format_limits(limits: Limits) -> str:
    """The whole limits step as readable text for the terminal."""
    header = (f"Limits of {limits.device} ({limits.device_name}), measured in {seconds_text(limits.seconds_taken)}"
              + (f" with torch {limits.torch_version}" if limits.torch_version else "")
              + (" (quick)" if limits.quick else ""))
    lines = [header, "", *_bandwidth_lines(limits), "", *_matmul_lines(limits), "", *_latency_lines(limits)]
    lines += _warning_lines(limits)
    if limits.notes:
        lines += ["", "Notes", *(f"  - {note}" for note in limits.notes)]
    return "\n".join(lines)
