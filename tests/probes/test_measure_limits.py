"""The limits step: assembly of the record, a small real CPU run, a failing part, the result-file round trip."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import result_factory as factory

from dgprofile.interrupts import Interrupted, Interruption, Terminated
from dgprofile.probes import bench_bandwidth, bench_latency, bench_matmul
from dgprofile.probes import measure_limits as limits_module
from dgprofile.probes.bench_bandwidth import bandwidth_figure
from dgprofile.probes.bench_matmul import MatmulPlan, MatmulShape, matmul_figure, token_ridge
from dgprofile.probes.harness import Budget
from dgprofile.probes.measure_limits import DeviceFacts, LimitsPlan, assemble_limits, measure_limits
from dgprofile.records.codec import from_json, to_json
from dgprofile.records.limits import Limits
from dgprofile.records.results import validate_document
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable

MIB = 1 << 20


def timing(median: float) -> Timing:
    return Timing(median_seconds=median, iqr_seconds=0.0, min_seconds=median, max_seconds=median,
                  coefficient_of_variation=0.0, samples=5, loops=1, warmup_runs=1, timer="cuda-events")


FACTS = DeviceFacts(name="Fake GPU", theoretical_bandwidth_bytes_per_s=3.35e12, last_level_cache_bytes=50 * MIB,
                    free_bytes=80 << 30, sm_count=132, discrete=True)


def test_assembly_picks_the_best_read_and_derives_ridges_from_peak_over_read() -> None:
    no_peak = Unavailable("x")
    bandwidth = (
        bandwidth_figure("stream-read", "torch.sum", buffer_bytes=1, bytes_per_call=3_000, timing=timing(1e-9),
                         theoretical_bytes_per_s=no_peak),
        bandwidth_figure("stream-read", "triton", buffer_bytes=1, bytes_per_call=3_100, timing=timing(1e-9),
                         theoretical_bytes_per_s=no_peak),
        bandwidth_figure("copy", "torch copy_", buffer_bytes=1, bytes_per_call=3_000, timing=timing(1e-9),
                         theoretical_bytes_per_s=no_peak),
    )
    square = matmul_figure(dtype="bf16", shape="square", tokens=8192, m=8192, n=8192, k=8192, weight_copies=1,
                           timing=timing(2 * 8192 ** 3 / 7.75e14))
    lm_head = tuple(matmul_figure(dtype="bf16", shape="lm-head", tokens=t, m=t, n=262144, k=2816, weight_copies=1,
                                  timing=timing(s)) for t, s in ((1, 5e-4), (256, 5.5e-4), (1024, 1.6e-3)))
    dense = tuple(matmul_figure(dtype="bf16", shape="dense-mlp", tokens=t, m=t, n=2112, k=2816, weight_copies=17,
                                timing=timing(s)) for t, s in ((1, 4e-6), (256, 9e-6)))
    ridges = (token_ridge(lm_head, "bf16", "lm-head"), token_ridge(dense, "bf16", "dense-mlp"))
    limits = assemble_limits(
        device="cuda:0", facts=FACTS, bandwidth=bandwidth, host=(), matmul=(square, *lm_head, *dense),
        ridges=ridges, latency=(), launch_floor=2e-6, eager=6e-6, round_trip=Unavailable("none"), quick=False,
        torch_version="2.11", notes=(), seconds_taken=9.0)
    assert limits.stream_read_bytes_per_s == pytest.approx(3.1e12)
    assert limits.stream_read_method == "triton"
    assert limits.copy_bytes_per_s == pytest.approx(3.0e12)
    assert isinstance(limits.triad_bytes_per_s, Unavailable)
    assert limits.peak_flops_per_s["bf16"] == pytest.approx(7.75e14)
    assert limits.ridge_flop_per_byte["bf16"] == pytest.approx(7.75e14 / 3.1e12)
    # The LM head is the preferred ridge shape: its 1024-token product is the first past 1.25x.
    assert limits.ridge_tokens_shape == "lm-head"
    assert limits.ridge_tokens == {"bf16": 1024}
    assert limits.launch_floor_seconds == 2e-6 and limits.eager_launch_seconds == 6e-6


def test_assembly_without_bandwidth_has_no_flop_per_byte_ridge() -> None:
    square = matmul_figure(dtype="fp32", shape="square", tokens=64, m=64, n=64, k=64, weight_copies=1,
                           timing=timing(1e-3))
    limits = assemble_limits(device="cpu", facts=FACTS, bandwidth=(), host=(), matmul=(square,), ridges=(),
                             latency=(), launch_floor=Unavailable("x"), eager=Unavailable("x"),
                             round_trip=Unavailable("x"), quick=True, torch_version="", notes=(), seconds_taken=1.0)
    assert isinstance(limits.stream_read_bytes_per_s, Unavailable)
    assert limits.ridge_flop_per_byte == {}
    assert limits.ridge_tokens == {} and limits.ridge_tokens_shape == ""


def tiny_plan(device: str, *, quick: bool) -> LimitsPlan:
    return LimitsPlan(
        bandwidth=Budget(0.002, 3, 0.2), host_transfer=Budget(0.002, 3, 0.2), host_transfer_bytes=MIB,
        latency=Budget(0.002, 3, 0.2),
        matmul=MatmulPlan(square=64, tokens=(1, 8), shapes=(MatmulShape("tiny", 64, 48, "test"),),
                          square_budget=Budget(0.001, 3, 0.2), decode_budget=Budget(0.001, 3, 0.2)),
        matmul_dtypes=("fp32",))


@pytest.fixture
def small_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits_module, "plan_for", tiny_plan)
    monkeypatch.setattr(bench_bandwidth, "MIN_CPU_BUFFER_BYTES", 2 * MIB)
    monkeypatch.setattr(limits_module, "device_facts", lambda torch, device, machine: DeviceFacts(
        name="Test CPU", theoretical_bandwidth_bytes_per_s=Unavailable("no SMBIOS"), last_level_cache_bytes=MIB // 4,
        free_bytes=8 << 30, sm_count=Unavailable("cpu"), discrete=False))


def test_cpu_limits_step_fills_every_figure_and_survives_the_result_file_round_trip(small_cpu: None) -> None:
    messages: list[str] = []
    limits = measure_limits("cpu", progress=messages.append)
    assert limits.device == "cpu" and limits.device_name == "Test CPU"
    assert limits.stream_read_method == "torch.sum"
    assert limits.bandwidth[0].buffer_bytes == 2 * MIB  # 8 x the 256 KiB cache is below the 2 MiB minimum
    assert set(limits.peak_flops_per_s) == {"fp32"}
    assert limits.ridge_tokens_shape == "tiny"
    assert limits.host_transfer == ()
    assert limits.launch_floor_seconds == limits.eager_launch_seconds
    assert isinstance(limits.sync_round_trip_seconds, Unavailable)
    assert any(m.startswith("bandwidth:") for m in messages) and any(m.startswith("matmul:") for m in messages)
    document = json.loads(json.dumps(to_json(limits)))
    assert from_json(Limits, document) == limits


@pytest.mark.parametrize(("flags", "measured"), [(("avx2", "fma"), {"fp32"}), (("avx2", "avx512_bf16"), {"fp32", "bf16"}),
                                                (("asimd", "bf16"), {"fp32", "bf16"})])
def test_a_cpu_without_bf16_arithmetic_skips_the_emulated_bf16_matmul(
        small_cpu: None, monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...], measured: set[str]) -> None:
    # On a 2-core x86 VM without AVX512-BF16, torch 2.13 multiplied bf16 at 0.45 GFLOP/s: the quick limits step
    # spent eight minutes on its bf16 products.
    monkeypatch.setattr(limits_module, "plan_for", lambda device, *, quick: dataclasses.replace(
        tiny_plan(device, quick=quick), matmul_dtypes=("fp32", "bf16")))
    host = factory.machine(cpu_info=dataclasses.replace(factory.cpu(), inference_flags=flags))
    limits = measure_limits("cpu", machine=host)
    assert set(limits.peak_flops_per_s) == measured
    assert any(note.startswith("bf16 matmul not measured: this CPU has no bf16 arithmetic") for note in limits.notes) \
        == ("bf16" not in measured)


def test_a_failing_part_is_noted_and_the_rest_still_measured(small_cpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\ndetails")

    monkeypatch.setattr(bench_bandwidth, "device_bandwidth", out_of_memory)
    limits = measure_limits("cpu")
    assert limits.stream_read_bytes_per_s == Unavailable("bandwidth not measured")
    assert "bandwidth not measured: CUDA out of memory. Tried to allocate 2.00 GiB" in limits.notes
    assert limits.peak_flops_per_s and limits.latency


def test_measured_limits_validate_inside_a_result_file(small_cpu: None) -> None:
    from dgprofile.records.results import RunInfo, dumps, new_result

    run = RunInfo(command=("dgprofile", "bench"), origin="measured", label="test", started_at="2026-01-01T00:00:00",
                  finished_at="2026-01-01T00:00:01", duration_seconds=1.0, status="complete", incomplete_reasons=())
    result = new_result(run=run, machine=Unavailable("not probed in this test"), limits=measure_limits("cpu"))
    validate_document(json.loads(dumps(result)), source="test")


def test_unknown_devices_are_refused() -> None:
    import torch

    with pytest.raises(ValueError, match="unknown device"):
        limits_module.device_facts(torch, "tpu", None)


@pytest.mark.gpu
def test_gpu_limits_step_is_fast_and_complete() -> None:
    started = time.perf_counter()
    limits = measure_limits("cuda")
    assert time.perf_counter() - started < 20
    assert limits.seconds_taken < 15, limits.seconds_taken
    assert isinstance(limits.stream_read_bytes_per_s, float), limits.notes
    assert limits.stream_read_bytes_per_s > 0.85 * limits.theoretical_bandwidth_bytes_per_s
    assert {"fp32", "tf32", "bf16", "fp16", "fp8", "int8"} <= set(limits.peak_flops_per_s), limits.notes
    assert limits.ridge_tokens_shape == "lm-head" and "bf16" in limits.ridge_tokens
    assert [f.name for f in limits.host_transfer] == ["h2d-pinned", "d2h-pinned", "h2d-pageable", "d2h-pageable"]
    assert limits.launch_floor_seconds < limits.eager_launch_seconds


def test_ctrl_c_during_latency_keeps_the_bandwidth_and_matmul_figures_that_finished(
        small_cpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def pressed_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_latency, "measure_latency", pressed_ctrl_c)
    with pytest.raises(Interrupted) as interrupted:
        measure_limits("cpu")
    limits = interrupted.value.kept
    assert limits.stream_read_bytes_per_s > 0 and limits.peak_flops_per_s["fp32"] > 0
    assert limits.latency == () and limits.launch_floor_seconds == Unavailable("latency not measured")
    assert "interrupted (Ctrl-C) during latency: what had not finished is not measured" in limits.notes
    assert interrupted.value.interruption is Interruption.CTRL_C


def test_sigterm_during_matmul_keeps_the_products_and_patterns_that_finished(
        small_cpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def terminated_on_the_decode_shapes(*args, **kwargs):
        raise Terminated

    monkeypatch.setattr(bench_matmul, "_shape_figures", terminated_on_the_decode_shapes)
    with pytest.raises(Interrupted) as interrupted:
        measure_limits("cpu")
    limits = interrupted.value.kept
    assert {f.name for f in limits.bandwidth} == {"stream-read", "copy", "triad"}
    assert [(f.dtype, f.shape) for f in limits.matmul] == [("fp32", "square")]  # finished before the SIGTERM
    assert "interrupted (SIGTERM) during matmul: what had not finished is not measured" in limits.notes
    assert interrupted.value.interruption is Interruption.SIGTERM
