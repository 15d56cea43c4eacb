"""A server's own timing from its /metrics: the Prometheus text a real vLLM server (CPU build) wrote, the
increments over a level, and what `verify` records beside the client's figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from dgprofile.app.verify import server_metrics as sm
from dgprofile.app.verify.server import ServerTarget
from dgprofile.app.verify.server_metrics import HistogramTotals, MetricsSnapshot, level_timing, parse_metrics
from dgprofile.app.verify.server_watch import ServerWatch
from dgprofile.probes.verify.server_processes import ServerProcess
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import ProcessGpuMemory, RequestFault, RequestRecord, TimingAgreement

pytest.importorskip("prometheus_client")

DATA = Path(__file__).parent / "data"
SERVED = "/tmp/st-run/gemma4-tiny"  # the served model's name when the fixtures were captured
FRESH = (DATA / "vllm-0.32.0-cpu-metrics-fresh.txt").read_text()
AFTER = (DATA / "vllm-0.32.0-cpu-metrics-after.txt").read_text()


def snapshot(requests: float, ttft: float, e2e: float, tokens: float) -> MetricsSnapshot:
    return MetricsSnapshot({sm.TTFT_HISTOGRAM: HistogramTotals(ttft, requests),
                            sm.E2E_HISTOGRAM: HistogramTotals(e2e, requests),
                            sm.TOKENS_HISTOGRAM: HistogramTotals(tokens, requests)})


def record(ttft: float, total: float, tokens: int, *, failed: bool = False) -> RequestRecord:
    return RequestRecord(
        workload="short-completion", prompt_id="p", role="autoregressive", concurrency=2,
        faults=(RequestFault("stream-cut", "cut"),) if failed else (), prompt_tokens=40, output_tokens=tokens,
        ttft_seconds=ttft, first_useful_draft_seconds=Unavailable("x"), total_latency_seconds=total,
        tokens_per_s=tokens / total, pass_seconds=Unavailable("x"), steps_per_canvas=Unavailable("x"),
        tokens_per_forward=1.0, peak_memory_bytes=Unavailable("x"), drafts=())


def test_a_fresh_vllm_server_counts_nothing_yet():
    fresh = parse_metrics(FRESH, SERVED)
    assert isinstance(fresh, MetricsSnapshot)
    assert all(h == HistogramTotals(0.0, 0.0) for h in fresh.histograms.values())


def test_the_increments_over_a_real_run_are_its_requests():
    before, after = parse_metrics(FRESH, SERVED), parse_metrics(AFTER, SERVED)
    assert isinstance(before, MetricsSnapshot) and isinstance(after, MetricsSnapshot)
    # The run between the two reads: 60 requests of 3,360 tokens in all (4 prompts at concurrency 1, 2, 4, 8).
    assert after.requests() - before.requests() == 60
    assert after.histograms[sm.TOKENS_HISTOGRAM].total == 3360
    assert after.histograms[sm.TTFT_HISTOGRAM].total == pytest.approx(3.0800187587738037)
    assert after.histograms[sm.E2E_HISTOGRAM].total == pytest.approx(37.598299980163574)


def test_another_served_model_is_not_counted():
    found = parse_metrics(AFTER, "google/gemma-4-26B-A4B-it")
    assert isinstance(found, Unavailable)
    assert found.reason == f"the server reports no timing: its /metrics counts models {SERVED}, not google/gemma-4-26B-A4B-it"


def test_metrics_without_vllms_request_histograms_report_no_timing():
    process_only = "\n".join(line for line in AFTER.splitlines() if not line.startswith(("vllm:", "# HELP vllm:",
                                                                                       "# TYPE vllm:")))
    found = parse_metrics(process_only, SERVED)
    assert isinstance(found, Unavailable)
    assert found.reason.startswith("the server reports no timing: its /metrics has no vllm:time_to_first_token")


def test_text_that_is_not_prometheus_reports_no_timing():
    found = parse_metrics("<html>not metrics</html>\n", SERVED)
    assert isinstance(found, Unavailable) and "not Prometheus text" in found.reason


def test_a_level_compares_means_and_token_rates_and_skips_failed_requests():
    before = snapshot(10, ttft=1.0, e2e=10.0, tokens=500)
    after = snapshot(12, ttft=1.0 + 2 * 0.05, e2e=10.0 + 2 * 0.9, tokens=500 + 2 * 48)
    records = [record(0.055, 1.0, 48), record(0.065, 0.98, 48), record(0.2, 0.3, 5, failed=True)]
    level = level_timing(before, after, 2, records)
    assert (level.concurrency, level.client_requests, level.server_requests) == (2, 2, 2)
    assert level.ttft_seconds == TimingAgreement(client=pytest.approx(0.06), server=pytest.approx(0.05),
                                                 relative_difference=pytest.approx(0.2))
    assert level.e2e_latency_seconds.relative_difference == pytest.approx(0.99 / 0.9 - 1)
    assert level.generated_tokens == TimingAgreement(client=96.0, server=96.0, relative_difference=0.0)
    assert level.tokens_per_s.client == pytest.approx(96 / 1.98)
    assert level.tokens_per_s.server == pytest.approx(96 / 1.8)


def test_a_level_the_server_did_not_count_has_nothing_to_compare():
    level = level_timing(snapshot(3, 1, 1, 1), snapshot(3, 1, 1, 1), 1, [record(0.05, 1.0, 48)])
    assert level.server_requests == 0
    assert isinstance(level.ttft_seconds, Unavailable) and "counted no request" in level.ttft_seconds.reason


def test_the_read_after_a_level_waits_until_the_server_counted_every_finished_request():
    reads = iter([snapshot(1, 0, 0, 0), snapshot(2, 0, 0, 0), snapshot(3, 0, 0, 0)])
    after = sm.read_after(lambda: next(reads), snapshot(1, 0, 0, 0), finished=2)
    assert isinstance(after, MetricsSnapshot) and after.requests() == 3


class ScriptedWatch(ServerWatch):
    """A watch whose /metrics reads come from a script (the HTTP read is tested against real servers)."""

    reads: list[MetricsSnapshot | Unavailable]

    def read_metrics(self) -> MetricsSnapshot | Unavailable:
        return self.reads.pop(0)


def memory_readings(*readings):
    script = list(readings)
    return lambda processes: script.pop(0)


def test_a_watch_keeps_each_levels_timing_and_the_largest_memory_of_each_process():
    target = ServerTarget("autoregressive", "http://127.0.0.1:8000", "gemma")
    processes = (ServerProcess(10, "python3"), ServerProcess(11, "VLLM::EngineCore"))
    watch = ScriptedWatch(target, processes, read_memory=memory_readings(
        (ProcessGpuMemory(11, "VLLM::EngineCore", 0, 2e9),), (ProcessGpuMemory(11, "VLLM::EngineCore", 0, 3e9),)))
    watch.reads = [snapshot(0, 0, 0, 0), snapshot(1, 0.05, 1.0, 48), snapshot(1, 0.05, 1.0, 48),
                   snapshot(3, 0.15, 3.0, 144)]
    watch.after_level(watch.read_metrics(), 1, [record(0.055, 1.0, 48)])
    watch.after_level(watch.read_metrics(), 2, [record(0.055, 1.0, 48), record(0.055, 1.0, 48)])
    observation = watch.observation()
    assert [level.concurrency for level in observation.timing] == [1, 2]
    assert observation.gpu_memory == (ProcessGpuMemory(11, "VLLM::EngineCore", 0, 3e9),)
    assert observation.gpu_memory_bytes == 3e9 and observation.metrics_url == "http://127.0.0.1:8000/metrics"


def test_a_watch_of_a_server_without_metrics_on_another_host_says_why_for_both():
    target = ServerTarget("diffusion", "http://gpu-box:8000/v1", "dg")
    watch = ScriptedWatch(target, Unavailable("the server runs on another host (gpu-box)"))
    watch.reads = [sm.no_timing("/metrics answered 404")]
    watch.after_level(watch.read_metrics(), 1, [record(0.5, 2.0, 256)])
    observation = watch.observation()
    assert observation.timing == Unavailable("the server reports no timing: /metrics answered 404")
    assert observation.gpu_memory == observation.gpu_memory_bytes == Unavailable(
        "the server runs on another host (gpu-box)")
