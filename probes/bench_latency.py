"""The latency floor: what a minimal operation costs, so the fixed per-pass cost of batch-1 decoding is known.

On CUDA: a one-element add replayed inside a CUDA graph (``GRAPH_OPS`` copies per replay: the per-kernel cost an
efficient engine pays), the same add launched eagerly (the per-op cost of eager frameworks), and one launch
plus ``torch.cuda.synchronize`` timed on the host clock (the round trip a pass pays to hand results back). On
the CPU, XPU and MPS: the per-call cost of the same minimal op, and (XPU, MPS) one op plus synchronisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dgprofile.probes.harness import Budget, PerfCounterTimer, Timer, cuda_graph
from dgprofile.records.limits import LatencyFigure
from dgprofile.records.values import Unavailable

GRAPH_OPS = 100


@dataclass(frozen=True)
class LatencyResult:
    """The latency figures and the one that stands for the device's launch floor."""

    figures: tuple[LatencyFigure, ...]
    launch_floor: LatencyFigure
    eager: LatencyFigure
    round_trip: LatencyFigure | None
    notes: tuple[str, ...]


def measure_latency(device: str, *, timer: Timer, budget: Budget,
                    progress: Callable[[str], None] = lambda _: None) -> LatencyResult:
    """Minimal-op costs on ``device``: in a CUDA graph (CUDA), eagerly, and with a host synchronisation."""
    import torch

    scalar = torch.ones(1, device=device)

    def tiny_op() -> None:
        scalar.add_(1.0)

    progress("latency: eager minimal op")
    timing = budget.measure(tiny_op, timer=timer)
    eager = LatencyFigure("eager-op", timing.median_seconds, timing, "one-element add, launched eagerly, back to back")
    figures = [eager]
    notes: list[str] = []
    launch_floor = eager
    round_trip = None
    if device.startswith("cuda"):
        progress("latency: minimal op in a CUDA graph")
        replay = cuda_graph(tiny_op, ops_per_call=GRAPH_OPS)
        if isinstance(replay, Unavailable):
            notes.append(f"launch floor from eager launches: {replay.reason}")
        else:
            timing = budget.measure(replay, timer=timer, ops_per_call=GRAPH_OPS)
            launch_floor = LatencyFigure("graph-op", timing.median_seconds, timing,
                                         f"one-element add, {GRAPH_OPS} per CUDA-graph replay")
            figures.append(launch_floor)
        synchronize: Callable[[], object] | None = torch.cuda.synchronize
    elif device.startswith("xpu"):
        synchronize = torch.xpu.synchronize
    elif device == "mps":
        synchronize = torch.mps.synchronize
    else:
        synchronize = None
    if synchronize is not None:
        progress("latency: launch and synchronise")

        def launch_and_sync() -> None:
            tiny_op()
            synchronize()

        timing = budget.measure(launch_and_sync, timer=PerfCounterTimer())
        round_trip = LatencyFigure("sync-round-trip", timing.median_seconds, timing,
                                   "one minimal op then a device synchronisation, on the host clock")
        figures.append(round_trip)
    return LatencyResult(tuple(figures), launch_floor, eager, round_trip, tuple(notes))
