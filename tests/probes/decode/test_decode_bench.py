"""run_decode_bench end to end on the CPU with the tiny configuration; scaling, floors, modelling, OOM handling."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

import dgprofile.probes.decode.bench as bench  # noqa: E402
from dgprofile.records.limits import Limits  # noqa: E402
from dgprofile.records.values import Unavailable  # noqa: E402
from dgprofile.specs.pass_cost import pass_cost  # noqa: E402


def fake_limits(**overrides) -> Limits:
    values = dict(device="cpu", device_name="test cpu", stream_read_bytes_per_s=20e9, copy_bytes_per_s=20e9,
                  bandwidth=(), host_transfer=(), matmul=(), peak_flops_per_s={"bf16": 5e10, "fp32": 1e11},
                  ridge_flop_per_byte={}, ridge_tokens={}, latency=(), launch_floor_seconds=Unavailable("test"),
                  seconds_taken=0.0, notes=())
    values.update(overrides)
    return Limits(**values)


@pytest.fixture
def tiny_bench(monkeypatch, tiny):
    monkeypatch.setattr(bench, "load_model_config", lambda name: tiny)
    return tiny


def run(**options):
    options.setdefault("limits", fake_limits())
    options.setdefault("context_tokens", (40,))
    return bench.run_decode_bench(device="cpu", **options)


def test_all_four_pass_kinds_are_measured_in_bf16_and_the_rest_modelled(tiny_bench):
    result = run()
    measured = {(m.pass_kind, m.precision) for m in result.passes if m.measured}
    assert measured == {(k, "bf16") for k in ("prefill", "ar-step", "dg-denoise", "dg-commit")}
    modelled = {m.precision for m in result.passes if not m.measured}
    assert modelled == {"fp8", "int8", "int4", "nvfp4"}
    assert all(m.basis.startswith("modelled") for m in result.passes if not m.measured)


def test_the_estimate_scales_sampled_layers_to_the_full_depth(tiny_bench):
    denoise = next(m for m in run().passes if m.pass_kind == "dg-denoise" and m.measured)
    parts = {p.name: p for p in denoise.parts}
    assert parts["sliding-layers"].layers == 1 and parts["sliding-layers"].scale == 5.0
    assert parts["global-layers"].layers == 1 and parts["global-layers"].scale == 1.0
    assert parts["head-vocab"].scale == 32.0 and parts["head-rest"].scale == 1.0
    assert denoise.seconds == pytest.approx(sum(p.timing.median_seconds * p.scale for p in denoise.parts))
    assert sum(denoise.breakdown_seconds.values()) == pytest.approx(denoise.seconds)
    assert denoise.layers_measured == 2 and denoise.layers_total == 6


def test_floors_and_fractions_come_from_passcost_and_the_limits(tiny_bench):
    m = next(m for m in run().passes if m.pass_kind == "ar-step" and m.measured)
    cost = pass_cost(tiny_bench, kind="ar-step", precision="bf16", concurrency=1, context_tokens=40)
    assert m.bytes_moved == cost.total_bytes and m.flops == cost.total_flops
    assert m.bandwidth_floor_seconds == pytest.approx(cost.total_bytes / 20e9)
    assert m.fraction_of_bandwidth_floor == pytest.approx(m.bandwidth_floor_seconds / m.seconds)
    assert m.compute_floor_seconds == pytest.approx(cost.total_flops / 5e10)
    assert m.roofline_floor_seconds == pytest.approx(cost.roofline_floor_seconds(bytes_per_s=20e9, flops_per_s=5e10))
    assert m.fraction_of_roofline_floor == pytest.approx(m.roofline_floor_seconds / m.seconds)
    assert m.experts_touched_per_layer == 2.0 and m.experts_touched_expected == pytest.approx(2.0)


def test_unknown_bandwidth_leaves_the_floors_unavailable_and_nothing_modelled(tiny_bench):
    result = run(limits=fake_limits(stream_read_bytes_per_s=Unavailable("not measured")), precisions=("bf16", "int4"))
    m = next(m for m in result.passes if m.measured)
    assert isinstance(m.fraction_of_bandwidth_floor, Unavailable)
    assert isinstance(m.roofline_floor_seconds, Unavailable)
    assert not any(not m.measured for m in result.passes)
    assert any("int4 not modelled" in r for r in result.reductions)


def test_modelled_int4_moves_fewer_bytes_than_the_bf16_pass_it_derives_from(tiny_bench):
    result = run(precisions=("bf16", "int4"))
    for kind in ("ar-step", "dg-denoise"):
        bf16 = next(m for m in result.passes if m.pass_kind == kind and m.precision == "bf16")
        int4 = next(m for m in result.passes if m.pass_kind == kind and m.precision == "int4")
        assert int4.bytes_moved < bf16.bytes_moved and int4.parts == ()
        assert not int4.measured and isinstance(int4.timing, Unavailable)


def test_out_of_memory_in_one_pass_skips_it_and_says_so(tiny_bench, monkeypatch):
    original = bench.PassRunner.measure_pass

    def failing(self, kind, concurrency, context):
        if kind == "dg-denoise":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, kind, concurrency, context)

    monkeypatch.setattr(bench.PassRunner, "measure_pass", failing)
    result = run(precisions=("bf16",))
    assert {m.pass_kind for m in result.passes} == {"prefill", "ar-step", "dg-commit"}
    assert any(r.startswith("out of memory: dg-denoise bf16") for r in result.reductions)


def test_short_memory_shrinks_the_plan_and_the_result_says_so(tiny_bench, monkeypatch):
    real_environment = bench._environment

    def small(device, quick):
        env = real_environment(device, quick)
        env.free_memory_bytes = 1e3
        return env

    monkeypatch.setattr(bench, "_environment", small)
    result = run()
    assert result.passes == ()
    assert any("bf16 not measured: its sampled layers do not fit" in r for r in result.reductions)


def test_progress_reports_each_pass(tiny_bench):
    messages: list[str] = []
    run(precisions=("bf16",), progress=messages.append)
    assert messages == [f"decode: {k} bf16 c=1 context=40" for k in ("prefill", "ar-step", "dg-denoise", "dg-commit")]


def test_layer_paths_are_checked_only_for_the_dtypes_the_plan_measures(tiny_bench, monkeypatch):
    checked: list[tuple[str, object]] = []
    monkeypatch.setattr(bench, "check_layers", lambda config, dtype, device: {})
    monkeypatch.setattr(bench, "check_attention", lambda device, dtype, method, *rest: checked.append(
        (f"attention {method}", dtype)) or "")
    monkeypatch.setattr(bench, "check_fused_layer", lambda device, dtype, *rest, **options: checked.append(
        ("fused", dtype)) or "off")
    env = bench._environment("cpu", quick=False)
    env.kind = "cuda"
    plan = bench.plan_bench(tiny_bench, device_kind="cuda", free_memory_bytes=1e12, native_fp8=True,
                            precisions=("bf16", "fp8"))
    bench._check_layer_paths(tiny_bench, env, plan, quick=False)
    assert checked == [("attention matmul", torch.bfloat16), ("attention split-kv", torch.bfloat16),
                       ("fused", torch.bfloat16)]
    assert env.attention_methods[str(torch.bfloat16)] == ("sdpa", "matmul", "split-kv")
    assert env.attention_methods[str(torch.float16)] == ("sdpa",)
    assert env.fused == {str(torch.bfloat16): False, str(torch.float16): False}
    assert any("fused Triton elementwise kernels unusable here (off)" in note for note in env.notes)


def test_quick_runs_compile_and_check_no_fused_layer_paths(tiny_bench, monkeypatch):
    monkeypatch.setattr(bench, "check_layers", lambda *args: pytest.fail("quick runs check no layer paths"))
    env = bench._environment("cpu", quick=True)
    env.kind = "cuda"
    plan = bench.plan_bench(tiny_bench, device_kind="cuda", free_memory_bytes=1e12, native_fp8=True, quick=True)
    bench._check_layer_paths(tiny_bench, env, plan, quick=True)
    assert set(env.attention_methods.values()) == {("sdpa",)} and not any(env.fused.values())
    assert any(note.startswith("quick: layers run SDPA and torch elementwise ops") for note in env.notes)


def test_split_kv_attention_is_offered_only_for_unmasked_passes_of_few_query_rows(tiny_bench):
    applies = bench._attention_applies
    assert applies(tiny_bench, "split-kv", "global", "ar-step", 8, 1, 40)
    assert not applies(tiny_bench, "split-kv", "global", "dg-commit", 1, 2, 40)  # causal: a mask
    assert not applies(tiny_bench, "split-kv", "global", "dg-denoise", 1, 256, 40)  # too many query rows
    assert applies(tiny_bench, "sdpa", "global", "dg-commit", 1, 256, 40)


def test_prefill_layers_of_both_types_are_timed_after_sustained_load_and_decode_passes_are_not(
        tiny_bench, monkeypatch):
    environment = bench._environment

    def with_sustain(device, quick):
        return dataclasses.replace(environment(device, quick), prefill_sustain_seconds=0.25)

    loads = []
    monkeypatch.setattr(bench, "_environment", with_sustain)
    monkeypatch.setattr(bench, "sustain_load", lambda call, seconds, device: loads.append(seconds))
    result = run(precisions=("bf16",), concurrencies=(1,))
    prefill = next(m for m in result.passes if m.pass_kind == "prefill")
    assert [p.name for p in prefill.parts][:2] == ["sliding-layers", "global-layers"]
    assert loads == [0.25, 0.25]  # one load before each layer type of the one prefill, none elsewhere
