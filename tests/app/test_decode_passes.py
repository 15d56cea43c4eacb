"""time_decode_passes on the CPU with the tiny configuration: the probe's passes get their floors from PassCost
and the limits, and the precisions the probe left are modelled from its bf16 passes."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from fakes.tiny_model import tiny_config  # noqa: E402

import dgprofile.probes.decode.bench as bench  # noqa: E402
from dgprofile.app import decode_passes  # noqa: E402
from dgprofile.model.floors import NOT_RUN  # noqa: E402
from dgprofile.records.limits import Limits  # noqa: E402
from dgprofile.records.values import Unavailable  # noqa: E402
from dgprofile.specs.model_config import ModelConfig  # noqa: E402
from dgprofile.specs.pass_cost import pass_cost  # noqa: E402


def fake_limits(**overrides) -> Limits:
    values = dict(device="cpu", device_name="test cpu", stream_read_bytes_per_s=20e9, copy_bytes_per_s=20e9,
                  bandwidth=(), host_transfer=(), matmul=(), peak_flops_per_s={"bf16": 5e10, "fp32": 1e11},
                  ridge_flop_per_byte={}, ridge_tokens={}, latency=(), launch_floor_seconds=Unavailable("test"),
                  seconds_taken=0.0, notes=())
    values.update(overrides)
    return Limits(**values)


@pytest.fixture
def tiny(monkeypatch) -> ModelConfig:
    config = tiny_config()
    monkeypatch.setattr(bench, "load_model_config", lambda name: config)
    monkeypatch.setattr(decode_passes, "load_model_config", lambda name: config)
    return config


def run(precisions=None, limits=None):
    def small_probe(**options):
        return bench.run_decode_bench(**options, **({"precisions": precisions} if precisions else {}),
                                      context_tokens=(40,))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("dgprofile.probes.decode.run_decode_bench", small_probe)
        return decode_passes.time_decode_passes(device="cpu", limits=limits or fake_limits())


def test_all_four_pass_kinds_are_measured_in_bf16_and_the_rest_modelled(tiny):
    result = run()
    measured = {(m.pass_kind, m.precision) for m in result.passes if m.measured}
    assert measured == {(k, "bf16") for k in ("prefill", "ar-step", "dg-denoise", "dg-commit")}
    modelled = {m.precision for m in result.passes if not m.measured}
    assert modelled == {"fp8", "int8", "int4", "nvfp4"}
    assert all(m.basis.startswith("modelled") for m in result.passes if not m.measured)


def test_floors_and_fractions_come_from_passcost_and_the_limits(tiny):
    m = next(m for m in run().passes if m.pass_kind == "ar-step" and m.measured)
    cost = pass_cost(tiny, kind="ar-step", precision="bf16", concurrency=1, context_tokens=40)
    assert m.bytes_moved == cost.total_bytes and m.flops == cost.total_flops
    assert m.bandwidth_floor_seconds == pytest.approx(cost.total_bytes / 20e9)
    assert m.fraction_of_bandwidth_floor == pytest.approx(m.bandwidth_floor_seconds / m.seconds)
    assert m.compute_floor_seconds == pytest.approx(cost.total_flops / 5e10)
    assert m.roofline_floor_seconds == pytest.approx(cost.roofline_floor_seconds(
        bytes_per_s=20e9, quantised_flops_per_s=5e10, wide_flops_per_s=5e10))
    assert m.fraction_of_roofline_floor == pytest.approx(m.roofline_floor_seconds / m.seconds)
    assert m.experts_touched_per_layer == 2.0 and m.experts_touched_expected == pytest.approx(2.0)


def test_unknown_bandwidth_leaves_the_floors_unavailable_and_nothing_modelled(tiny):
    result = run(limits=fake_limits(stream_read_bytes_per_s=Unavailable("not measured")), precisions=("bf16", "int4"))
    m = next(m for m in result.passes if m.measured)
    assert isinstance(m.fraction_of_bandwidth_floor, Unavailable)
    assert isinstance(m.roofline_floor_seconds, Unavailable)
    assert not any(not m.measured for m in result.passes)
    assert result.reductions[-1].startswith("int4 not modelled")


def test_modelled_int4_moves_fewer_bytes_than_the_bf16_pass_it_derives_from(tiny):
    result = run(precisions=("bf16", "int4"))
    for kind in ("ar-step", "dg-denoise"):
        bf16 = next(m for m in result.passes if m.pass_kind == kind and m.precision == "bf16")
        int4 = next(m for m in result.passes if m.pass_kind == kind and m.precision == "int4")
        assert int4.bytes_moved < bf16.bytes_moved and int4.parts == ()
        assert not int4.measured and int4.timing == NOT_RUN
        assert int4.fraction_of_roofline_floor == pytest.approx(int4.roofline_floor_seconds / int4.seconds)


def test_passes_that_finished_before_a_sigterm_get_their_floors(tiny, monkeypatch):
    from dgprofile.interrupts import Interrupted, Interruption, Terminated

    original = bench.PassRunner.measure_pass

    def terminated_at_commit(self, kind, concurrency, context):
        if kind == "dg-commit":
            raise Terminated
        return original(self, kind, concurrency, context)

    monkeypatch.setattr(bench.PassRunner, "measure_pass", terminated_at_commit)
    with pytest.raises(Interrupted) as interrupted:
        run(precisions=("bf16",))
    assert interrupted.value.interruption is Interruption.SIGTERM
    measured = [m for m in interrupted.value.kept.passes if m.measured]
    assert [m.pass_kind for m in measured] == ["prefill", "ar-step", "dg-denoise"]
    assert all(isinstance(m.bandwidth_floor_seconds, float) for m in measured)
