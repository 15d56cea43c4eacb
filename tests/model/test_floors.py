"""Floors of a measured pass at the machine's limits, and precisions modelled from the bf16 pass (no torch)."""

from __future__ import annotations

import dataclasses

import pytest

from dgprofile.model.floors import NOT_RUN, passes_against_limits, with_floors
from dgprofile.records.limits import Limits
from dgprofile.records.passes import PassMeasurement, PassTimes
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import load_model_config
from dgprofile.specs.pass_cost import QUANTISED_COMPONENTS, pass_cost

CONFIG = load_model_config()
NOT_YET = Unavailable("not yet set against the machine's limits")


def limits(**peaks: float) -> Limits:
    return Limits(device="cuda", device_name="test gpu", stream_read_bytes_per_s=3e12, copy_bytes_per_s=3e12,
                  bandwidth=(), host_transfer=(), matmul=(), peak_flops_per_s={"bf16": 8e14, "fp32": 5e13, **peaks},
                  ridge_flop_per_byte={}, ridge_tokens={}, latency=(), launch_floor_seconds=Unavailable("test"),
                  seconds_taken=0.0, notes=())


def measured_denoise(seconds: float = 0.02, precision: str = "bf16") -> PassMeasurement:
    cost = pass_cost(CONFIG, kind="dg-denoise", precision=precision, concurrency=1, context_tokens=4096)
    return PassMeasurement(
        pass_kind="dg-denoise", precision=precision, concurrency=1, tokens_per_request=256, context_tokens=4096,
        seconds=seconds, timing=Unavailable("timed in parts"), measured=True, basis="test", layers_measured=3,
        layers_total=30, experts_touched_per_layer=100.0, bytes_moved=cost.total_bytes, flops=cost.total_flops,
        achieved_bytes_per_s=cost.total_bytes / seconds, achieved_flops_per_s=cost.total_flops / seconds,
        bandwidth_floor_seconds=NOT_YET, compute_floor_seconds=NOT_YET, fraction_of_bandwidth_floor=NOT_YET,
        fraction_of_compute_floor=NOT_YET, breakdown_seconds={}, compute_format=precision,
        roofline_floor_seconds=NOT_YET, fraction_of_roofline_floor=NOT_YET)


def test_a_measured_pass_gets_its_three_floors_and_fractions() -> None:
    m = with_floors(CONFIG, limits(), measured_denoise())
    assert m.bandwidth_floor_seconds == pytest.approx(m.bytes_moved / 3e12)
    assert m.compute_floor_seconds == pytest.approx(m.flops / 8e14)
    assert m.fraction_of_roofline_floor == pytest.approx(m.roofline_floor_seconds / 0.02)


def test_an_fp8_pass_floor_rises_by_exactly_the_bf16_time_of_its_16_bit_flops() -> None:
    # Its LM head, self-conditioning, router, attention products and sampler run at bf16's rate: an fp8 denoise
    # pass on an H200 was set against a roofline with all of them at fp8's (7.06 ms where 7.67 ms is the floor).
    fp8_rate = 1.25e15
    m = with_floors(CONFIG, limits(fp8=fp8_rate), measured_denoise(precision="fp8"))
    cost = pass_cost(CONFIG, kind="dg-denoise", precision="fp8", concurrency=1, context_tokens=4096)
    sixteen_bit = cost.total_flops - sum(cost.breakdown[name].matmul_flops for name in QUANTISED_COMPONENTS)
    parts = cost.breakdown
    assert sixteen_bit == pytest.approx(sum(parts[name].total_flops for name in
                                            ("lm-head", "self-conditioning", "router", "sampler"))
                                        + parts["attention"].attention_flops)
    assert m.compute_floor_seconds == pytest.approx(m.flops / fp8_rate + sixteen_bit * (1 / 8e14 - 1 / fp8_rate))
    # With unbounded bandwidth every component is compute-bound: the roofline is the compute floor.
    unbounded = with_floors(CONFIG, dataclasses.replace(limits(fp8=fp8_rate), stream_read_bytes_per_s=float("inf")),
                            measured_denoise(precision="fp8"))
    assert unbounded.roofline_floor_seconds == pytest.approx(m.compute_floor_seconds)
    assert m.roofline_floor_seconds == pytest.approx(cost.roofline_floor_seconds(
        bytes_per_s=3e12, quantised_flops_per_s=fp8_rate, wide_flops_per_s=8e14))
    assert m.fraction_of_roofline_floor == pytest.approx(m.roofline_floor_seconds / 0.02)


def test_an_fp8_pass_on_a_device_with_only_an_fp16_rate_prices_its_16_bit_flops_at_fp16() -> None:
    only_fp16 = dataclasses.replace(limits(fp8=1.25e15, fp16=6e14), peak_flops_per_s={"fp8": 1.25e15, "fp16": 6e14})
    m = with_floors(CONFIG, only_fp16, measured_denoise(precision="fp8"))
    cost = pass_cost(CONFIG, kind="dg-denoise", precision="fp8", concurrency=1, context_tokens=4096)
    assert m.compute_floor_seconds == pytest.approx(
        cost.compute_floor_seconds(quantised_flops_per_s=1.25e15, wide_flops_per_s=6e14))


def test_an_fp8_pass_without_a_measured_16_bit_rate_says_its_compute_and_roofline_floors_are_unavailable() -> None:
    only_fp8 = dataclasses.replace(limits(), peak_flops_per_s={"fp8": 1.25e15})
    m = with_floors(CONFIG, only_fp8, measured_denoise(precision="fp8"))
    assert m.bandwidth_floor_seconds == pytest.approx(m.bytes_moved / 3e12)
    assert isinstance(m.compute_floor_seconds, Unavailable) and "16-bit" in m.compute_floor_seconds.reason
    assert isinstance(m.roofline_floor_seconds, Unavailable) and "16-bit" in m.roofline_floor_seconds.reason
    assert isinstance(m.fraction_of_roofline_floor, Unavailable)


def test_a_bf16_pass_floors_keep_every_flop_at_the_bf16_rate() -> None:
    m = with_floors(CONFIG, limits(fp8=1.25e15, fp16=6e14), measured_denoise())
    cost = pass_cost(CONFIG, kind="dg-denoise", precision="bf16", concurrency=1, context_tokens=4096)
    assert m.compute_floor_seconds == pytest.approx(cost.total_flops / 8e14)
    assert m.roofline_floor_seconds == pytest.approx(
        sum(count * max(terms.total_bytes / 3e12, terms.total_flops / 8e14) for _, terms, count in cost.components))


def test_native_formats_use_their_rate_and_the_others_dequantise_to_bf16() -> None:
    passes = PassTimes(model_id=CONFIG.id, device="cuda", passes=(measured_denoise(),), reductions=("kept",),
                       seconds_taken=1.0)
    result = passes_against_limits(CONFIG, limits(int8=1.6e15), passes, ("int8", "int4"))
    int8, int4 = (next(m for m in result.passes if m.precision == p) for p in ("int8", "int4"))
    assert int8.compute_format == "int8" and "native int8 matmul rate for its quantised matrices" in int8.basis
    assert int4.compute_format == "bf16" and "dequantised to bf16" in int4.basis
    assert not int4.measured and int4.timing == NOT_RUN and int4.bytes_moved < result.passes[0].bytes_moved
    assert result.reductions == ("kept",)


def test_without_a_bf16_pass_nothing_is_modelled_and_the_reductions_say_so() -> None:
    passes = PassTimes(model_id=CONFIG.id, device="cuda", passes=(), reductions=(), seconds_taken=1.0)
    result = passes_against_limits(CONFIG, limits(), passes, ("fp8",))
    assert result.passes == ()
    assert result.reductions == ("fp8 not modelled: needs the measured bf16 passes, streaming-read bandwidth and "
                                 "bf16 matmul rate",)


def test_a_quick_check_without_an_fp32_rate_still_models_the_formats_the_gpu_multiplies_natively() -> None:
    # `check --quick` on an H200 recorded no fp8 passes: its limits step measures no fp32 rate.
    passes = PassTimes(model_id=CONFIG.id, device="cuda", passes=(measured_denoise(),), reductions=(),
                       seconds_taken=1.0)
    quick = limits(fp8=1.6e15)
    quick = dataclasses.replace(quick, peak_flops_per_s={k: v for k, v in quick.peak_flops_per_s.items()
                                                         if k != "fp32"})
    result = passes_against_limits(CONFIG, quick, passes, ("fp8", "int4"))
    assert [m.precision for m in result.passes] == ["bf16", "fp8"]
    assert result.reductions == ("int4 not modelled: this device has no measured int4 matmul rate, and no fp32 rate "
                                 "to price dequantising it to bf16",)


def test_a_native_format_torch_multiplies_slowly_is_modelled_at_the_rate_the_predictions_take() -> None:
    # On an H200 torch's int8 GEMM measured 127 TFLOP/s against bf16's 679: the modelled int8 denoise pass came out
    # at 29.5 ms, slower than the measured bf16 one, while the predictions priced int8 at the datasheet's rate.
    passes = PassTimes(model_id=CONFIG.id, device="cuda", passes=(measured_denoise(),), reductions=(),
                       seconds_taken=1.0)
    slow_torch = limits(int8=1.27e14)
    engine_rates = {**slow_torch.peak_flops_per_s, "int8": 1.6e15}
    at_torch, at_engines = (next(m for m in passes_against_limits(CONFIG, slow_torch, passes, ("int8",), rates).passes
                                 if m.precision == "int8") for rates in (None, engine_rates))
    assert at_engines.seconds < measured_denoise().seconds and at_engines.seconds < at_torch.seconds
    assert "as engines reach it (1.60 PFLOP/s" in at_engines.basis and "measured 127 TFLOP/s" in at_engines.basis
    int8_cost = pass_cost(CONFIG, kind="dg-denoise", precision="int8", concurrency=1, context_tokens=4096)
    assert at_engines.compute_floor_seconds == pytest.approx(
        int8_cost.compute_floor_seconds(quantised_flops_per_s=1.6e15, wide_flops_per_s=8e14))

