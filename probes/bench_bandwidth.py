"""Memory bandwidth: streaming read, copy and triad on the device; host<->device transfers on discrete GPUs.

Bytes are counted as BabelStream does: every array element read once and every element written once (a copy
moves 2x its buffer, a triad ``a = b + s * c`` 3x). Buffers are at least ``LLC_MULTIPLE`` times the last-level
cache, so the figures are memory's, not the cache's. On CUDA, ROCm and XPU devices the read is measured both with
torch (``torch.sum``, whose reduction kernel uses vectorised loads) and with a hand-written Triton kernel
(``triton_stream``), the copy with torch and a Triton copy; the best of each is kept, and each figure's method
says which ran (a Triton kernel that does not compile on a backend is noted and left out). On the CPU torch's ops
use all its threads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgprofile.probes import triton_stream
from dgprofile.probes.harness import Budget, Timer
from dgprofile.records.limits import BandwidthFigure
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable

LLC_MULTIPLE = 8
# >= 8x the 50-60 MB L2 of H100/H200; on an H100 SXM 512 MiB buffers read ~1.5% slower than 2 GiB ones.
MIN_DEVICE_BUFFER_BYTES = 1 << 30
MIN_CPU_BUFFER_BYTES = 64 << 20
# Bandwidth buffers (up to three arrays for the triad) never take more than this share of free memory.
FREE_MEMORY_SHARE = 0.5
HOST_TRANSFER_BYTES = 256 << 20
QUICK_HOST_TRANSFER_BYTES = 64 << 20
# Every buffer length is a multiple of this many fp32 elements, so the Triton kernel needs no masks.
ELEMENT_ALIGNMENT = max(config.block for config in triton_stream.STREAM_CONFIGS)
FP32_BYTES = 4
# Relative tolerance between the Triton kernel's sum and torch's (fp32 accumulation in different orders).
SUM_TOLERANCE = 1e-4

# (arrays read, arrays written) per call of each device pattern.
PATTERN_ARRAYS: dict[str, tuple[int, int]] = {"stream-read": (1, 0), "copy": (1, 1), "triad": (2, 1)}
SYSFS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")


def pattern_bytes(pattern: str, buffer_bytes: int) -> int:
    """Bytes one call of ``pattern`` moves over buffers of ``buffer_bytes`` each (reads plus writes)."""
    reads, writes = PATTERN_ARRAYS[pattern]
    return (reads + writes) * buffer_bytes


def bandwidth_figure(name: str, method: str, *, buffer_bytes: int, bytes_per_call: int, timing: Timing,
                     theoretical_bytes_per_s: float | Unavailable) -> BandwidthFigure:
    """A figure from a timing: bytes per call over the median time, and its share of the theoretical peak."""
    rate = bytes_per_call / timing.median_seconds
    fraction: float | Unavailable = (rate / theoretical_bytes_per_s if not isinstance(
        theoretical_bytes_per_s, Unavailable) else theoretical_bytes_per_s)
    return BandwidthFigure(name=name, method=method, buffer_bytes=buffer_bytes, bytes_moved_per_call=bytes_per_call,
                           bytes_per_s=rate, timing=timing, fraction_of_theoretical=fraction)


def best_figure(figures: tuple[BandwidthFigure, ...], name: str) -> BandwidthFigure | None:
    """The fastest figure of one pattern, or None when it was not measured."""
    candidates = [figure for figure in figures if figure.name == name]
    return max(candidates, key=lambda figure: figure.bytes_per_s) if candidates else None


def sysfs_last_level_cache_bytes(cache_dir: Path = SYSFS_CACHE) -> int | Unavailable:
    """Size of the highest cache level the kernel lists for CPU 0 (Linux sysfs)."""
    best_level, best_size = 0, 0
    for index in sorted(cache_dir.glob("index*")):
        try:
            level = int((index / "level").read_text())
            size_text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        size = int(size_text[:-1]) * units[size_text[-1]] if size_text[-1] in units else int(size_text)
        if level > best_level or (level == best_level and size > best_size):
            best_level, best_size = level, size
    return best_size if best_size else Unavailable(f"no cache sizes in {cache_dir}")


def buffer_bytes_for(last_level_cache_bytes: int | Unavailable, *, minimum_bytes: int,
                     free_bytes: int | Unavailable, arrays: int = 3) -> tuple[int, str]:
    """The size of each bandwidth buffer, and a note when memory forced it below the target."""
    cache = 0 if isinstance(last_level_cache_bytes, Unavailable) else last_level_cache_bytes
    target = max(LLC_MULTIPLE * cache, minimum_bytes)
    note = ""
    if not isinstance(free_bytes, Unavailable) and arrays * target > FREE_MEMORY_SHARE * free_bytes:
        target = int(FREE_MEMORY_SHARE * free_bytes / arrays)
        note = (f"bandwidth buffers shrunk to {target >> 20} MiB each to fit free memory; they are "
                f"{target / cache:.1f}x the last-level cache" if cache else "")
    alignment = ELEMENT_ALIGNMENT * FP32_BYTES
    return max(alignment, target // alignment * alignment), note


@dataclass(frozen=True)
class BandwidthResult:
    """What the device bandwidth step measured, and what it had to say about it."""

    figures: tuple[BandwidthFigure, ...]
    notes: tuple[str, ...]


def _filled(torch: Any, numel: int, device: str) -> Any:
    """Random values on accelerators (cheap there, and the Triton check needs a non-trivial sum); a constant on
    the CPU, where generating random numbers for ~1 GB would cost seconds and values do not change bandwidth."""
    if device == "cpu":
        return torch.full((numel,), 1.5, dtype=torch.float32)
    return torch.rand(numel, dtype=torch.float32, device=device)


def _allocate(torch: Any, numel: int, count: int, device: str) -> tuple[list[Any], int, str]:
    """``count`` random fp32 arrays of ``numel`` elements; halves the size on out-of-memory, and says so."""
    requested = numel
    while True:
        try:
            arrays = [_filled(torch, numel, device) for _ in range(count)]
            break
        except torch.OutOfMemoryError:
            if numel <= ELEMENT_ALIGNMENT:
                raise
            numel = numel // 2 // ELEMENT_ALIGNMENT * ELEMENT_ALIGNMENT
    note = (f"out of memory for {requested * FP32_BYTES >> 20} MiB buffers: shrunk to {numel * FP32_BYTES >> 20} MiB"
            if numel != requested else "")
    return arrays, numel, note


def device_bandwidth(device: str, *, buffer_bytes: int, timer: Timer, budget: Budget,
                     theoretical_bytes_per_s: float | Unavailable, sm_count: int | Unavailable,
                     progress: Callable[[str], None] = lambda _: None) -> BandwidthResult:
    """Streaming read, copy and triad on ``device``: torch ops everywhere, the Triton kernels on CUDA too."""
    import torch

    arrays, numel, shrink_note = _allocate(torch, buffer_bytes // FP32_BYTES, 3, device)
    a, b, c = arrays
    size = numel * FP32_BYTES
    notes = [shrink_note] if shrink_note else []
    figures: list[BandwidthFigure] = []

    def add(name: str, method: str, fn: Callable[[], object], bytes_per_call: int) -> None:
        progress(f"bandwidth: {name} ({method})")
        figures.append(bandwidth_figure(name, method, buffer_bytes=size, bytes_per_call=bytes_per_call,
                                        timing=budget.measure(fn, timer=timer),
                                        theoretical_bytes_per_s=theoretical_bytes_per_s))

    # torch.sum writes one fp32 result besides reading the buffer.
    add("stream-read", "torch.sum", lambda: torch.sum(b), size + FP32_BYTES)
    add("copy", "torch copy_", lambda: a.copy_(b), pattern_bytes("copy", size))
    figures.extend(_triton_kernels(device, b, a, sm_count=sm_count, timer=timer, budget=budget,
                                   theoretical_bytes_per_s=theoretical_bytes_per_s, notes=notes, progress=progress))
    add("triad", "torch.add(out=, alpha=)", lambda: torch.add(b, c, alpha=0.5, out=a), pattern_bytes("triad", size))
    if device == "cpu":
        notes.append(f"CPU bandwidth measured with torch on {torch.get_num_threads()} threads")
    return BandwidthResult(tuple(figures), tuple(notes))


def _triton_kernels(device: str, source: Any, destination: Any, *, sm_count: int | Unavailable, timer: Timer,
                    budget: Budget, theoretical_bytes_per_s: float | Unavailable, notes: list[str],
                    progress: Callable[[str], None]) -> Iterator[BandwidthFigure]:
    """The Triton read and copy under each launch configuration, each checked against torch first; a
    configuration that does not compile or run on this backend is noted and torch's figures stand."""
    if device == "cpu" or device == "mps":
        return
    reason = triton_stream.triton_unavailable_reason(device)
    if reason is None and isinstance(sm_count, Unavailable):
        reason = f"multiprocessor count unknown ({sm_count.reason})"
    if reason is not None or isinstance(sm_count, Unavailable):
        notes.append(f"Triton streaming kernels not run: {reason}")
        return
    import torch

    size = source.numel() * FP32_BYTES
    expected = float(torch.sum(source, dtype=torch.float64))
    for config in triton_stream.STREAM_CONFIGS:
        method = f"triton stream-read ({config.label})"
        progress(f"bandwidth: stream-read ({method})")
        try:
            run, bytes_per_call = triton_stream.stream_read(source, sm_count=sm_count, config=config)
            got = float(run().double().sum())
        except Exception as exc:  # Triton's compile errors have no common base class across backends
            notes.append(f"{method} not run on this backend: {type(exc).__name__}: {exc}".splitlines()[0][:300])
            continue
        if abs(got - expected) > SUM_TOLERANCE * abs(expected):
            notes.append(f"{method} discarded: its sum {got:.6g} differs from torch's {expected:.6g}")
            continue
        yield bandwidth_figure("stream-read", method, buffer_bytes=size, bytes_per_call=bytes_per_call,
                               timing=budget.measure(run, timer=timer), theoretical_bytes_per_s=theoretical_bytes_per_s)
    for config in triton_stream.STREAM_CONFIGS:
        method = f"triton copy ({config.label})"
        progress(f"bandwidth: copy ({method})")
        destination.zero_()
        try:
            run, bytes_per_call = triton_stream.stream_copy(source, destination, sm_count=sm_count, config=config)
            copied = torch.equal(run(), source)
        except Exception as exc:  # as above
            notes.append(f"{method} not run on this backend: {type(exc).__name__}: {exc}".splitlines()[0][:300])
            continue
        if not copied:
            notes.append(f"{method} discarded: its copy differs from the source")
            continue
        yield bandwidth_figure("copy", method, buffer_bytes=size, bytes_per_call=bytes_per_call,
                               timing=budget.measure(run, timer=timer), theoretical_bytes_per_s=theoretical_bytes_per_s)


def host_transfer(device: str, *, buffer_bytes: int, timer: Timer, budget: Budget,
                  progress: Callable[[str], None] = lambda _: None) -> tuple[BandwidthFigure, ...]:
    """Host-to-device and device-to-host copies from pinned and pageable host memory (one buffer each way)."""
    import torch

    numel = buffer_bytes // FP32_BYTES
    on_device = torch.rand(numel, dtype=torch.float32, device=device)
    figures = []
    for memory in ("pinned", "pageable"):
        host = torch.rand(numel, dtype=torch.float32).pin_memory() if memory == "pinned" else torch.rand(numel)
        non_blocking = memory == "pinned"
        for name, dst, src in ((f"h2d-{memory}", on_device, host), (f"d2h-{memory}", host, on_device)):
            progress(f"host transfer: {name}")
            timing = budget.measure(functools.partial(dst.copy_, src, non_blocking=non_blocking), timer=timer)
            # PCIe links are rated per direction; a transfer moves its buffer once across the link.
            figures.append(bandwidth_figure(name, "torch copy_", buffer_bytes=numel * FP32_BYTES,
                                            bytes_per_call=numel * FP32_BYTES, timing=timing,
                                            theoretical_bytes_per_s=Unavailable("no theoretical link rate derived")))
        del host
    return tuple(figures)
