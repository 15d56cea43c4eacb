"""Latency bench: the CPU floor is the eager per-call cost; on CUDA the graph floor beats eager launches."""

from __future__ import annotations

import pytest

from dgprofile.probes.bench_latency import GRAPH_OPS, measure_latency
from dgprofile.probes.harness import Budget, timer_for


def test_cpu_floor_is_the_per_call_cost_of_a_minimal_op() -> None:
    result = measure_latency("cpu", timer=timer_for("cpu"), budget=Budget(0.002, 3, 0.2))
    assert [f.name for f in result.figures] == ["eager-op"]
    assert result.launch_floor is result.eager
    assert result.round_trip is None
    assert result.eager.seconds == result.eager.timing.median_seconds
    assert 1e-8 < result.eager.seconds < 1e-3


@pytest.mark.gpu
def test_cuda_graph_floor_is_below_eager_launches_and_the_sync_round_trip() -> None:
    result = measure_latency("cuda:0", timer=timer_for("cuda:0"), budget=Budget(0.005, 5, 0.3))
    names = [f.name for f in result.figures]
    assert names == ["eager-op", "graph-op", "sync-round-trip"]
    assert result.launch_floor.name == "graph-op"
    assert result.launch_floor.timing.ops_per_call == GRAPH_OPS
    assert result.launch_floor.seconds < result.eager.seconds < result.round_trip.seconds
