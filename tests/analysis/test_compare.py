"""`compare` as a pure function: outcome per row, direction declared per metric, and the plain-words account."""

from __future__ import annotations

import dataclasses

import pytest
import result_factory as factory

from dgprofile.analysis.compare import RowOutcome, compare
from dgprofile.records.values import Unavailable


@pytest.fixture(scope="module")
def gpu_vs_mac():
    return compare(factory.measured_h100_result(), factory.predicted_apple_result())


def row(comparison, metric: str):
    return next(r for r in comparison.rows if r.metric == metric)


def test_a_result_against_itself_is_the_same_everywhere() -> None:
    result = factory.measured_h100_result()
    outcomes = {r.outcome for r in compare(result, result).rows}
    assert outcomes == {RowOutcome.SAME}


def test_a_file_compared_with_itself_never_says_one_side_is_longer() -> None:
    result = factory.measured_h100_result()
    text = "\n".join(compare(result, result).explanations)
    assert "longer" not in text and "1.0x" not in text
    assert "about the same" in text


def test_a_gpu_and_a_mac_are_compared_per_workload_and_concurrency_at_each_sides_best_precision(gpu_vs_mac) -> None:
    rows = [r for r in gpu_vs_mac.rows if r.section == "predictions" and r.scenario]
    assert {r.outcome for r in rows} == {RowOutcome.WORSE}
    long_form = row(gpu_vs_mac, "speedup: long-form-drafting, concurrency 1, best precision each")
    assert (long_form.a_runs, long_form.b_runs) == ("fp8, vllm", "fp8, mlx")
    assert long_form.summary == "B 29x lower"


def test_a_ratio_in_the_thousands_is_written_out() -> None:
    slow = factory.result(limits_=factory.limits(stream_bytes_per_s=3.07e12 / 1800))
    bandwidth = row(compare(factory.measured_h100_result(), slow), "streaming read bandwidth")
    assert bandwidth.summary == "B 1,800x lower"


def test_higher_bandwidth_is_better_and_longer_passes_are_worse() -> None:
    a = factory.measured_h100_result()
    faster = factory.result(limits_=factory.limits(stream_bytes_per_s=4.4e12))
    c = compare(a, faster)
    bandwidth = row(c, "streaming read bandwidth")
    assert bandwidth.outcome is RowOutcome.BETTER and bandwidth.summary == "B 1.4x higher"
    assert bandwidth.ratio == pytest.approx(4.4 / 3.07)
    slower_passes = factory.result(passes_=factory.passes(overhead_seconds=8e-3, precisions=("bf16", "fp8")))
    ar = row(compare(a, slower_passes), "AR decode step, fp8, concurrency 1 (measured)")
    assert ar.outcome is RowOutcome.WORSE and ar.higher_is_better is False


def test_a_difference_inside_the_measured_spread_is_not_significant() -> None:
    noisy = factory.limits(stream_bytes_per_s=3.3e12)
    noisy = dataclasses.replace(noisy, bandwidth=tuple(
        dataclasses.replace(f, timing=factory.timing(f.timing.median_seconds, cv=0.1)) for f in noisy.bandwidth))
    c = compare(factory.measured_h100_result(), factory.result(limits_=noisy))
    bandwidth = row(c, "streaming read bandwidth")
    assert bandwidth.outcome is RowOutcome.NOT_SIGNIFICANT
    assert bandwidth.summary == "B 1.1x higher (within the spread)"


def test_unavailable_values_say_which_side_lacks_them_and_why(gpu_vs_mac) -> None:
    launch = row(gpu_vs_mac, "launch floor per kernel")
    assert launch.outcome is RowOutcome.ONLY_A
    assert launch.summary == "predicted from the datasheet of Apple M3 Max (40-core GPU): nothing was measured"
    int4 = row(compare(factory.predicted_apple_result(), factory.predicted_apple_result()),
               "speedup: code-infill, int4, concurrency 1")
    assert int4.outcome is RowOutcome.SAME
    probe = factory.probe_only_result()
    both = row(compare(probe, probe), "launch floor per kernel")
    assert both.outcome is RowOutcome.UNAVAILABLE and isinstance(both.ratio, Unavailable)


def test_passes_of_different_precisions_are_not_comparable(gpu_vs_mac) -> None:
    denoise = row(gpu_vs_mac, "DG denoise pass, headline scenario (predicted)")
    assert denoise.outcome is RowOutcome.NOT_COMPARABLE
    assert denoise.summary == "different precisions (fp8 on A, int4 on B)"


def test_datasheet_figures_are_labelled_and_the_mac_loses_on_bandwidth_and_ridge(gpu_vs_mac) -> None:
    bandwidth = row(gpu_vs_mac, "streaming read bandwidth")
    assert (bandwidth.a.basis, bandwidth.b.basis) == ("measured", "datasheet")
    assert bandwidth.outcome is RowOutcome.WORSE and bandwidth.summary == "B 7.7x lower"
    ridge = row(gpu_vs_mac, "ridge: FLOP per byte at the matmul peak (bf16 on A, fp16 on B)")
    assert ridge.outcome is RowOutcome.WORSE and ridge.b.value == pytest.approx(28.4e12 / 400e9)
    assert row(gpu_vs_mac, "headline speedup (each machine's own headline scenario)").outcome is RowOutcome.WORSE


def test_the_account_names_bandwidth_ridge_fit_memory_and_engines(gpu_vs_mac) -> None:
    text = "\n".join(gpu_vs_mac.explanations)
    assert "DiffusionGemma is 5.1x faster (applies, fp8, vllm)" in text
    assert "DiffusionGemma is 4.5x slower (does not apply, int4, mlx)" in text
    assert "on B each pass takes at least 7.7x longer than on A" in text
    assert "Ridge on A: 235 FLOP/byte; a denoise pass (87 FLOP/byte in the headline scenario) sits below it" in text
    assert "Ridge on B: 71 FLOP/byte; a denoise pass (87 FLOP/byte in the headline scenario) sits above it" in text
    assert "on B DiffusionGemma fits in fp8, int4 but not in bf16 (needs 52.9 GiB, 48.0 GiB usable)" in text
    assert "A is discrete, B is shared-physical" in text
    assert "A is predicted with vllm, B with mlx" in text


def test_measured_runs_are_compared_workload_by_workload():
    a = factory.measured_h100_result(measured_runs=(factory.measured_run(dg_factor=1.0),))
    b = factory.measured_h100_result(measured_runs=(factory.measured_run(dg_factor=2.0),))
    rows = {r.metric: r for r in compare(a, b).rows if r.section == "measured"}
    speedup = rows["speedup: long-form-drafting, concurrency 1"]
    assert speedup.outcome is RowOutcome.WORSE and speedup.ratio == pytest.approx(0.5)
    assert rows["Gemma 4 tokens/s: long-form-drafting, concurrency 1"].outcome is RowOutcome.SAME
    other_engine = factory.measured_h100_result(measured_runs=(factory.measured_run(engine="transformers"),))
    row = next(r for r in compare(a, other_engine).rows if r.section == "measured")
    assert row.outcome is RowOutcome.NOT_COMPARABLE and "different engines" in row.summary


def test_without_measured_runs_there_is_nothing_to_compare_in_that_section():
    assert not [r for r in compare(factory.measured_h100_result(), factory.measured_h100_result()).rows
                if r.section == "measured"]
