"""The harness with a fake device: calibration, statistics, budget and every instability flag (no torch)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dgprofile.probes import harness
from dgprofile.probes.harness import GraphReplay, PerfCounterTimer, measure, timer_for


class FakeDevice:
    """A device whose n-th call lasts ``call_seconds(n)``; its clock advances only when calls run."""

    def __init__(self, call_seconds: Callable[[int], float], resolution_seconds: float = 1e-9) -> None:
        self.call_seconds = call_seconds
        self.calls = 0
        self.now = 0.0
        self.name = "perf-counter"
        self.resolution_seconds = resolution_seconds
        self.loops_seen: list[int] = []

    def clock(self) -> float:
        return self.now

    def elapsed_seconds(self, fn: Callable[[], object], loops: int) -> float:
        self.loops_seen.append(loops)
        total = 0.0
        for _ in range(loops):
            fn()
            total += self.call_seconds(self.calls)
            self.calls += 1
        self.now += total
        return total


def constant(seconds: float) -> Callable[[int], float]:
    return lambda _: seconds


def test_calibration_doubles_loops_until_a_sample_lasts_the_minimum() -> None:
    device = FakeDevice(constant(1e-3))
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.01, samples=5, warmup=0, clock=device.clock)
    # 1 ms per call: 1, 2, 4, 8 are too short, 16 calls = 16 ms is the first to reach 10 ms.
    assert device.loops_seen[:5] == [1, 2, 4, 8, 16]
    assert timing.loops == 16
    assert timing.samples == 5
    assert timing.median_seconds == pytest.approx(1e-3)
    assert timing.sample_seconds == pytest.approx(16e-3)
    assert timing.unstable == ()


def test_warmup_calls_run_before_calibration_and_are_recorded() -> None:
    device = FakeDevice(constant(0.02))
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.01, samples=3, warmup=4, clock=device.clock)
    assert device.loops_seen[0] == 4
    assert timing.warmup_runs == 4
    assert timing.loops == 1


def test_statistics_are_per_operation_and_match_hand_computed_values() -> None:
    # Calibration call (discarded) then samples 10, 12, 11, 13, 14 ms.
    durations = [0.05, 0.010, 0.012, 0.011, 0.013, 0.014]
    device = FakeDevice(lambda n: durations[n])
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.001, samples=5, warmup=0,
                     ops_per_call=2, clock=device.clock)
    assert timing.samples == 5
    assert timing.ops_per_call == 2
    assert timing.median_seconds == pytest.approx(0.012 / 2)
    assert timing.min_seconds == pytest.approx(0.010 / 2)
    assert timing.max_seconds == pytest.approx(0.014 / 2)
    # Inclusive quartiles of 10..14 ms are 11 and 13 ms.
    assert timing.iqr_seconds == pytest.approx(0.002 / 2)
    # stdev of 10..14 is sqrt(2.5) ms, mean 12 ms.
    assert timing.coefficient_of_variation == pytest.approx(2.5 ** 0.5 / 12)


def test_steady_samples_raise_no_flag() -> None:
    device = FakeDevice(lambda n: 1e-3 * (1 + 0.001 * (n % 3)))
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.005, samples=10, warmup=1, clock=device.clock)
    assert timing.unstable == ()


def codes(timing) -> set[str]:
    return {flag.code for flag in timing.unstable}


def test_noisy_gpu_samples_are_flagged_high_variation_with_nvidia_smi_advice() -> None:
    device = FakeDevice(lambda n: 0.010 if n % 2 else 0.013)
    device.name = "cuda-events"
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.005, samples=10, warmup=0, clock=device.clock)
    flag = next(flag for flag in timing.unstable if flag.code == "high-variation")
    assert timing.coefficient_of_variation >= harness.CV_THRESHOLD
    assert "nvidia-smi" in flag.advice


def test_noisy_samples_on_a_cpu_only_machine_get_no_gpu_or_mac_advice() -> None:
    device = FakeDevice(lambda n: 0.010 if n % 2 else 0.013)
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.005, samples=10, warmup=0, clock=device.clock)
    advice = " ".join(flag.advice for flag in timing.unstable)
    assert "high-variation" in codes(timing)
    assert "nvidia-smi" not in advice and "Activity Monitor" not in advice and "GPU" not in advice
    assert "top" in advice


def test_a_single_slow_sample_is_flagged_as_outlier() -> None:
    durations = [0.01] * 6 + [0.03] + [0.01] * 6
    device = FakeDevice(lambda n: durations[n])
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.005, samples=10, warmup=0, clock=device.clock)
    assert "outliers" in codes(timing)
    assert timing.max_seconds / timing.median_seconds == pytest.approx(3.0)


def test_samples_getting_faster_are_flagged_as_clocks_ramping() -> None:
    device = FakeDevice(lambda n: 0.02 * 0.97 ** n)
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.001, samples=12, warmup=0, clock=device.clock)
    flag = next(flag for flag in timing.unstable if flag.code == "speeding-up")
    assert "ramping" in flag.advice


def test_samples_getting_slower_are_flagged_as_thermal_or_power_limits() -> None:
    device = FakeDevice(lambda n: 0.02 * 1.03 ** n)
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.001, samples=12, warmup=0, clock=device.clock)
    flag = next(flag for flag in timing.unstable if flag.code == "slowing-down")
    assert "thermal" in flag.advice


def test_drift_is_not_judged_on_too_few_samples() -> None:
    device = FakeDevice(lambda n: 0.02 * 1.03 ** n)
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.001, samples=harness.DRIFT_MIN_SAMPLES - 1,
                     warmup=0, clock=device.clock)
    assert "slowing-down" not in codes(timing)


def test_samples_close_to_the_timer_resolution_are_flagged() -> None:
    device = FakeDevice(constant(1e-6), resolution_seconds=1e-6)
    timing = measure(lambda: None, timer=device, min_sample_seconds=50e-6, samples=5, warmup=0, clock=device.clock)
    assert timing.loops == 64
    assert "below-timer-resolution" in codes(timing)


def test_loop_cap_stops_calibration_and_flags_short_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "MAX_LOOPS", 8)
    device = FakeDevice(constant(1e-6))
    timing = measure(lambda: None, timer=device, min_sample_seconds=1.0, samples=3, warmup=0, clock=device.clock)
    assert timing.loops == 8
    flag = next(flag for flag in timing.unstable if flag.code == "short-samples")
    assert "loop cap" in flag.message


def test_budget_stops_sampling_but_keeps_the_minimum_number_of_samples() -> None:
    device = FakeDevice(constant(0.3))
    timing = measure(lambda: None, timer=device, min_sample_seconds=0.01, samples=10, warmup=0, max_seconds=1.0,
                     clock=device.clock)
    assert timing.samples == harness.MIN_SAMPLES
    assert "few-samples" in codes(timing)
    assert timing.total_seconds == pytest.approx(0.3 * (1 + harness.MIN_SAMPLES))


def test_budget_stops_calibration_of_a_slow_operation() -> None:
    # Each call 0.1 s, minimum sample 10 s: the budget (1 s) halts doubling at half the budget.
    device = FakeDevice(constant(0.1))
    timing = measure(lambda: None, timer=device, min_sample_seconds=10.0, samples=3, warmup=0, max_seconds=1.0,
                     clock=device.clock)
    assert timing.loops == 4
    assert "the time budget" in next(f for f in timing.unstable if f.code == "short-samples").message


def test_graph_replays_are_recorded_with_the_graph_timer() -> None:
    device = FakeDevice(constant(1e-3))
    device.name = "cuda-events"
    replay = GraphReplay(graph=type("G", (), {"replay": lambda self: None})(), ops_per_call=4)
    timing = measure(replay, timer=device, min_sample_seconds=0.002, samples=3, warmup=0,
                     ops_per_call=replay.ops_per_call, clock=device.clock)
    assert timing.timer == "cuda-graph-events"
    assert timing.median_seconds == pytest.approx(1e-3 / 4)


def test_perf_counter_timer_measures_real_sleep() -> None:
    timer = PerfCounterTimer()
    import time

    elapsed = timer.elapsed_seconds(lambda: time.sleep(0.002), 3)
    assert 0.006 <= elapsed < 0.5


def test_timer_for_cpu_is_the_monotonic_clock_and_unknown_devices_are_refused() -> None:
    assert timer_for("cpu").name == "perf-counter"
    with pytest.raises(ValueError, match="no timer"):
        timer_for("tpu")


def test_invalid_sample_count_is_refused() -> None:
    with pytest.raises(ValueError):
        measure(lambda: None, timer=PerfCounterTimer(), samples=0)


@pytest.mark.gpu
def test_cuda_events_agree_with_the_synchronised_host_clock_on_long_work() -> None:
    import torch

    a = torch.randn(4096, 4096, device="cuda")
    events = timer_for("cuda:0")
    host = PerfCounterTimer(synchronize=torch.cuda.synchronize)
    events.elapsed_seconds(lambda: a @ a, 3)
    on_device = events.elapsed_seconds(lambda: a @ a, 50)
    on_host = host.elapsed_seconds(lambda: a @ a, 50)
    assert events.name == "cuda-events"
    assert on_device == pytest.approx(on_host, rel=0.2)


@pytest.mark.gpu
def test_cuda_graph_replays_the_captured_work_and_refuses_host_syncs() -> None:
    import torch

    from dgprofile.probes.harness import cuda_graph, graph_or_eager

    counter = torch.zeros(1, device="cuda")
    replay = cuda_graph(lambda: counter.add_(1.0), ops_per_call=5)
    assert isinstance(replay, GraphReplay)
    before = float(counter)
    replay()
    torch.cuda.synchronize()
    assert float(counter) - before == 5.0
    timing = measure(replay, timer=timer_for("cuda"), samples=3, ops_per_call=5)
    assert timing.timer == "cuda-graph-events"

    failed = cuda_graph(lambda: counter.item())
    assert not isinstance(failed, GraphReplay) and "capture failed" in failed.reason
    prepared = graph_or_eager(lambda: counter.item(), ops_per_call=2)
    assert prepared.fallback_reason == failed.reason and prepared.ops_per_call == 2
    torch.cuda.synchronize()


@pytest.mark.gpu
def test_failed_capture_after_a_random_op_leaves_random_numbers_working() -> None:
    """Seen on an H100: after a capture failed midway through random work, every later torch.rand in the process
    raised "Offset increment outside graph capture", so the limits step measured no bandwidth."""
    import torch

    from dgprofile.probes.harness import cuda_graph

    noise = torch.empty(1024, device="cuda")

    def random_then_host_sync() -> float:
        noise.uniform_()
        return float(noise.sum())

    failed = cuda_graph(random_then_host_sync)
    assert not isinstance(failed, GraphReplay)
    fresh = torch.rand(4096, device="cuda")
    torch.cuda.synchronize()
    assert 0.0 <= float(fresh.min()) and float(fresh.max()) <= 1.0
