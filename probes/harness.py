"""The one measurement harness: every timed thing in dgprofile goes through ``measure``.

A measurement warms up, calibrates the number of calls per sample (doubling until one sample lasts at least
``min_sample_seconds``), takes ``samples`` samples within a time budget, and returns a ``Timing``: median, IQR,
min/max, coefficient of variation, the loops and timer used, and instability flags with advice.

Timers sit behind a small seam (``Timer``): CUDA events (also around CUDA-graph replays; on ROCm builds these are
HIP events), XPU events on Intel GPUs, MPS events or MPS synchronisation, and ``time.perf_counter`` on the CPU. torch is imported lazily, only by the device timers and
``cuda_graph``, so the statistics and calibration are testable with a fake timer and clock.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dgprofile.records.timing import InstabilityFlag, TimerName, Timing, flag_advice
from dgprofile.records.values import Unavailable
from dgprofile.text.units import factor_text, percent_text, seconds_text

DEFAULT_MIN_SAMPLE_SECONDS = 0.01
DEFAULT_SAMPLES = 10
DEFAULT_WARMUP_CALLS = 2
DEFAULT_MAX_SECONDS = 1.0
# Calibration doubles the loops up to this cap (a sample of 2**20 calls of a ~1 us op lasts ~1 s).
MAX_LOOPS = 1 << 20
# Fewer samples than this and no statistic means much; the budget never cuts below it.
MIN_SAMPLES = 3

# Instability thresholds: a Timing carries a flag for each one crossed.
CV_THRESHOLD = 0.05  # coefficient of variation (stdev / mean) of the samples
OUTLIER_RATIO = 1.5  # max / median, or median / min
DRIFT_THRESHOLD = 0.05  # change between the median of the first and the last third of the samples
DRIFT_MIN_SAMPLES = 6  # fewer samples cannot show a trend
TIMER_RESOLUTION_MARGIN = 100  # a sample should last at least this many timer ticks

# CUDA documents event timing as having "a resolution of around 0.5 microseconds" (cudaEventElapsedTime).
CUDA_EVENT_RESOLUTION_SECONDS = 0.5e-6
# Metal reports GPU timestamps in nanoseconds, torch.mps.Event in float milliseconds; no finer claim is made.
MPS_EVENT_RESOLUTION_SECONDS = 1e-6
# Level Zero event timestamps tick in tens of nanoseconds on Arc (zeDeviceGetProperties timerResolution), and
# torch.xpu.Event reports float milliseconds; as for MPS, no finer claim than a microsecond is made.
XPU_EVENT_RESOLUTION_SECONDS = 1e-6


class Timer(Protocol):
    """Times ``loops`` back-to-back calls of ``fn`` on one device and returns the elapsed seconds."""

    @property
    def name(self) -> TimerName:
        """Which clock the figures came from (recorded in every Timing)."""
        ...

    @property
    def resolution_seconds(self) -> float:
        """The finest interval the clock resolves."""
        ...

    def elapsed_seconds(self, fn: Callable[[], object], loops: int) -> float:
        """Seconds for ``loops`` calls, including any device work they queued."""
        ...


@dataclass(frozen=True)
class PerfCounterTimer:
    """Host monotonic clock; ``synchronize`` (if given) runs before reading the clock at both ends."""

    synchronize: Callable[[], object] | None = None
    name: TimerName = "perf-counter"
    resolution_seconds: float = time.get_clock_info("perf_counter").resolution

    def elapsed_seconds(self, fn: Callable[[], object], loops: int) -> float:
        """Seconds for ``loops`` calls, measured on the host clock."""
        if self.synchronize is not None:
            self.synchronize()
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        if self.synchronize is not None:
            self.synchronize()
        return time.perf_counter() - start


def _between_events(event: Callable[..., Any], fn: Callable[[], object], loops: int) -> float:
    """Device seconds between an event recorded before the first call and one after the last."""
    start, end = event(enable_timing=True), event(enable_timing=True)
    start.record()
    for _ in range(loops):
        fn()
    end.record()
    end.synchronize()
    return float(start.elapsed_time(end)) / 1e3  # torch reports milliseconds


@dataclass(frozen=True)
class CudaEventTimer:
    """CUDA events recorded on the current stream of ``device_index`` around the calls."""

    device_index: int
    name: TimerName = "cuda-events"
    resolution_seconds: float = CUDA_EVENT_RESOLUTION_SECONDS

    def elapsed_seconds(self, fn: Callable[[], object], loops: int) -> float:
        """Device seconds between an event before the first call and one after the last."""
        import torch

        with torch.cuda.device(self.device_index):
            return _between_events(torch.cuda.Event, fn, loops)


@dataclass(frozen=True)
class XpuEventTimer:
    """Intel XPU events recorded on the current stream of ``device_index`` around the calls (torch.xpu.Event)."""

    device_index: int
    name: TimerName = "xpu-events"
    resolution_seconds: float = XPU_EVENT_RESOLUTION_SECONDS

    def elapsed_seconds(self, fn: Callable[[], object], loops: int) -> float:
        """Device seconds between an event before the first call and one after the last."""
        import torch

        with torch.xpu.device(self.device_index):
            return _between_events(torch.xpu.Event, fn, loops)


@dataclass(frozen=True)
class MpsEventTimer:
    """Apple MPS events around the calls (torch.mps.Event); unverified on hardware."""

    name: TimerName = "mps-events"
    resolution_seconds: float = MPS_EVENT_RESOLUTION_SECONDS

    def elapsed_seconds(self, fn: Callable[[], object], loops: int) -> float:
        """Device seconds between an event before the first call and one after the last."""
        import torch

        return _between_events(torch.mps.Event, fn, loops)


def timer_for(device: str) -> Timer:
    """The best timer for a torch device string: "cuda", "cuda:N", "xpu", "xpu:N", "mps" or "cpu"."""
    kind, _, index = device.partition(":")
    if kind == "cuda":
        import torch

        return CudaEventTimer(int(index) if index else torch.cuda.current_device())
    if kind == "xpu":
        import torch

        return XpuEventTimer(int(index) if index else torch.xpu.current_device())
    if kind == "mps":
        import torch

        if hasattr(torch.mps, "Event"):
            return MpsEventTimer()
        return PerfCounterTimer(synchronize=torch.mps.synchronize, name="mps-sync")
    if kind == "cpu":
        return PerfCounterTimer()
    raise ValueError(f"no timer for device {device!r}: expected cuda, cuda:N, xpu, xpu:N, mps or cpu")


def make_current(device: str) -> None:
    """Make a CUDA ``device`` ("cuda:N") the process's current one: CUDA graphs capture on the current device's
    stream, so a graph of another GPU's work captures nothing (and times as free)."""
    if device.startswith("cuda:"):
        import torch

        torch.cuda.set_device(torch.device(device))


class GraphReplay:
    """Replays a captured CUDA graph holding ``ops_per_call`` back-to-back copies of one operation."""

    def __init__(self, graph: Any, ops_per_call: int) -> None:
        self._graph = graph
        self.ops_per_call = ops_per_call

    def __call__(self) -> None:
        self._graph.replay()


def cuda_graph(fn: Callable[[], object], *, ops_per_call: int = 1,
               all_ranks_captured: Callable[[bool], bool] | None = None) -> GraphReplay | Unavailable:
    """Capture ``ops_per_call`` calls of ``fn`` in one CUDA graph; Unavailable (with the reason) if capture fails.

    ``fn`` must only launch device work on fixed buffers (no host synchronisation, no new allocations that
    outlive the call). It runs a few times on a side stream first, as CUDA-graph capture requires. Where ``fn``
    holds collectives, every rank calls this together and ``all_ranks_captured`` tells each rank whether every
    rank's capture worked before any replays: a captured collective replayed on some ranks only waits forever.
    """
    import torch

    # A capture that fails after an RNG op leaves the generator mid-capture, and every later random op in the
    # process then fails ("Offset increment outside graph capture"); a clean copy of its state undoes that.
    generator = torch.cuda.default_generators[torch.cuda.current_device()]
    clean_state = generator.clone_state()
    graph = torch.cuda.CUDAGraph()
    problem: str | None = None
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(DEFAULT_WARMUP_CALLS):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        # Collectives' watchdog threads query their events during a capture: only this thread's calls may be
        # checked against it.
        mode = "global" if all_ranks_captured is None else "thread_local"
        with torch.cuda.graph(graph, capture_error_mode=mode):
            for _ in range(ops_per_call):
                fn()
    except RuntimeError as exc:  # torch reports capture failures (host syncs, unsupported ops) as RuntimeError
        problem = f"CUDA graph capture failed: {exc}".splitlines()[0]
    if all_ranks_captured is not None and not all_ranks_captured(problem is None) and problem is None:
        problem = "CUDA graph capture failed on another rank"
    if problem is None:
        try:
            graph.replay()
            torch.cuda.synchronize()
        except RuntimeError as exc:
            problem = f"CUDA graph replay failed: {exc}".splitlines()[0]
    if problem is not None:
        generator.graphsafe_set_state(clean_state)
        return Unavailable(problem)
    return GraphReplay(graph, ops_per_call)


@dataclass(frozen=True)
class Prepared:
    """A callable ready for ``measure``: a graph replay, or eager calls when capture failed (and why)."""

    call: Callable[[], object]
    ops_per_call: int
    fallback_reason: str | None


def graph_or_eager(fn: Callable[[], object], *, ops_per_call: int = 1, use_graph: bool = True,
                   all_ranks_captured: Callable[[bool], bool] | None = None) -> Prepared:
    """``fn`` captured ``ops_per_call`` times in a CUDA graph, or the same calls run eagerly if that fails
    (``all_ranks_captured``: as ``cuda_graph``'s, where ``fn`` holds collectives)."""
    if use_graph:
        replay = cuda_graph(fn, ops_per_call=ops_per_call, all_ranks_captured=all_ranks_captured)
        if isinstance(replay, GraphReplay):
            return Prepared(replay, ops_per_call, None)
        reason: str | None = replay.reason
    else:
        reason = None

    def eager() -> None:
        for _ in range(ops_per_call):
            fn()

    return Prepared(eager if ops_per_call > 1 else fn, ops_per_call, reason)


def measure(fn: Callable[[], object], *, timer: Timer, min_sample_seconds: float = DEFAULT_MIN_SAMPLE_SECONDS,
            samples: int = DEFAULT_SAMPLES, warmup: int = DEFAULT_WARMUP_CALLS,
            max_seconds: float = DEFAULT_MAX_SECONDS, ops_per_call: int = 1,
            clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Time ``fn``: warm up, calibrate loops per sample, take samples within ``max_seconds``, flag instability.

    ``ops_per_call`` divides every figure (a graph replay of N captured operations counts N). ``clock`` is the
    host clock that enforces the budget; the budget never cuts below ``MIN_SAMPLES`` samples.
    """
    if samples < 1 or ops_per_call < 1:
        raise ValueError("samples and ops_per_call must be at least 1")
    started = clock()
    if warmup > 0:
        timer.elapsed_seconds(fn, warmup)

    # Calibration: its samples are discarded (they double as warm-up while clocks ramp).
    loops = 1
    stopped_by = ""
    while True:
        elapsed = timer.elapsed_seconds(fn, loops)
        if elapsed >= min_sample_seconds:
            break
        if loops >= MAX_LOOPS:
            stopped_by = f"the loop cap ({MAX_LOOPS})"
            break
        if clock() - started >= max_seconds / 2:
            stopped_by = "the time budget"
            break
        loops = min(loops * 2, MAX_LOOPS)

    wanted = max(samples, 1)
    raw: list[float] = []
    while len(raw) < wanted:
        raw.append(timer.elapsed_seconds(fn, loops))
        if len(raw) >= MIN_SAMPLES and clock() - started >= max_seconds:
            break
    total = clock() - started

    per_op = [value / (loops * ops_per_call) for value in raw]
    timer_name: TimerName = "cuda-graph-events" if (
        isinstance(fn, GraphReplay) and timer.name == "cuda-events") else timer.name
    median = statistics.median(per_op)
    sample_median = statistics.median(raw)
    flags = instability_flags(per_op, raw, timer_resolution_seconds=timer.resolution_seconds,
                              min_sample_seconds=min_sample_seconds, short_reason=stopped_by,
                              requested_samples=wanted, max_seconds=max_seconds, timer=timer_name)
    return Timing(median_seconds=median, iqr_seconds=_iqr(per_op), min_seconds=min(per_op),
                  max_seconds=max(per_op), coefficient_of_variation=_cv(per_op), samples=len(per_op),
                  loops=loops, warmup_runs=warmup, timer=timer_name, unstable=flags, ops_per_call=ops_per_call,
                  sample_seconds=sample_median, total_seconds=total)


@dataclass(frozen=True)
class Budget:
    """How long to time one thing: ``measure``'s minimum sample time, samples, budget and warm-up calls."""

    min_sample_seconds: float = DEFAULT_MIN_SAMPLE_SECONDS
    samples: int = DEFAULT_SAMPLES
    max_seconds: float = DEFAULT_MAX_SECONDS
    warmup: int = DEFAULT_WARMUP_CALLS

    def measure(self, fn: Callable[[], object], *, timer: Timer, ops_per_call: int = 1) -> Timing:
        """``measure`` with this budget."""
        return measure(fn, timer=timer, min_sample_seconds=self.min_sample_seconds, samples=self.samples,
                       warmup=self.warmup, max_seconds=self.max_seconds, ops_per_call=ops_per_call)


def _iqr(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return quartiles[2] - quartiles[0]


def _cv(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else 0.0


def _drift(values: Sequence[float]) -> float:
    """Relative change from the median of the first third of the samples to that of the last third."""
    third = len(values) // 3
    first = statistics.median(values[:third])
    last = statistics.median(values[-third:])
    return (last - first) / first if first > 0 else 0.0


def instability_flags(per_op: Sequence[float], raw_samples: Sequence[float], *, timer_resolution_seconds: float,
                      min_sample_seconds: float, short_reason: str, requested_samples: int,
                      max_seconds: float, timer: TimerName) -> tuple[InstabilityFlag, ...]:
    """Every named threshold the samples cross, each with a message and advice a user can act on on the
    platform ``timer`` runs on.

    ``per_op`` are the per-operation times, ``raw_samples`` the whole-sample durations they came from;
    ``short_reason`` says what stopped calibration before samples reached ``min_sample_seconds`` ("" if nothing).
    """
    flags: list[InstabilityFlag] = []
    median = statistics.median(per_op)
    cv = _cv(per_op)
    if cv >= CV_THRESHOLD:
        flags.append(InstabilityFlag(
            "high-variation", f"samples vary by {percent_text(cv)}, threshold {percent_text(CV_THRESHOLD)}",
            flag_advice("high-variation", timer, "")))
    worst = max(max(per_op) / median, median / min(per_op)) if min(per_op) > 0 else float("inf")
    if worst >= OUTLIER_RATIO:
        flags.append(InstabilityFlag(
            "outliers", f"a sample lies {factor_text(worst)} away from the median, threshold "
                        f"{factor_text(OUTLIER_RATIO)}",
            flag_advice("outliers", timer, "")))
    if len(per_op) >= DRIFT_MIN_SAMPLES:
        drift = _drift(per_op)
        if drift <= -DRIFT_THRESHOLD:
            flags.append(InstabilityFlag(
                "speeding-up", f"samples got {percent_text(-drift)} faster during the measurement",
                "clocks were still ramping up (the device was idle before): rerun, or warm the device up first"))
        elif drift >= DRIFT_THRESHOLD:
            flags.append(InstabilityFlag(
                "slowing-down", f"samples got {percent_text(drift)} slower during the measurement",
                flag_advice("slowing-down", timer, "")))
    shortest = min(raw_samples)
    if shortest < TIMER_RESOLUTION_MARGIN * timer_resolution_seconds:
        flags.append(InstabilityFlag(
            "below-timer-resolution",
            f"a sample lasted {seconds_text(shortest)}, under {TIMER_RESOLUTION_MARGIN}x the timer resolution "
            f"({seconds_text(timer_resolution_seconds)})",
            "the timer cannot resolve samples this short: raise the minimum sample time"))
    if short_reason:
        flags.append(InstabilityFlag(
            "short-samples",
            f"samples lasted {seconds_text(statistics.median(raw_samples))}, under the "
            f"{seconds_text(min_sample_seconds)} target: {short_reason} stopped calibration",
            "raise the time budget so each sample can run long enough"))
    if len(per_op) < requested_samples:
        flags.append(InstabilityFlag(
            "few-samples", f"only {len(per_op)} of {requested_samples} samples fit the "
            f"{seconds_text(max_seconds)} budget",
            "the spread is less certain than usual: raise the time budget for a firmer figure"))
    return tuple(flags)
