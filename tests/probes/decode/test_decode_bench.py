"""run_decode_bench end to end on the CPU with the tiny configuration: what it measures, scaling, OOM handling.

The floors and the modelled precisions are the model's: tests/app/test_decode_passes.py covers them end to end.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

torch = pytest.importorskip("torch")

import dgprofile.probes.decode.bench as bench  # noqa: E402
from dgprofile.specs.pass_cost import pass_cost  # noqa: E402


@pytest.fixture
def tiny_bench(monkeypatch, tiny):
    monkeypatch.setattr(bench, "load_model_config", lambda name: tiny)
    return tiny


def run(**options):
    options.setdefault("context_tokens", (40,))
    return bench.run_decode_bench(device="cpu", **options)


def test_all_four_pass_kinds_are_measured_in_bf16_and_the_rest_left_to_the_model(tiny_bench):
    result = run()
    measured = {(m.pass_kind, m.precision) for m in result.passes.passes}
    assert measured == {(k, "bf16") for k in ("prefill", "ar-step", "dg-denoise", "dg-commit")}
    assert all(m.measured for m in result.passes.passes)
    assert result.modelled_precisions == ("fp8", "int8", "int4", "nvfp4")
    assert result.passes.fused_layers == ()  # a CPU runs its layers in torch ops


def test_the_estimate_scales_sampled_layers_to_the_full_depth(tiny_bench):
    denoise = next(m for m in run().passes.passes if m.pass_kind == "dg-denoise")
    parts = {p.name: p for p in denoise.parts}
    assert parts["sliding-layers"].layers == 1 and parts["sliding-layers"].scale == 5.0
    assert parts["global-layers"].layers == 1 and parts["global-layers"].scale == 1.0
    assert parts["head-vocab"].scale == 32.0 and parts["head-rest"].scale == 1.0
    assert denoise.seconds == pytest.approx(sum(p.timing.median_seconds * p.scale for p in denoise.parts))
    assert sum(denoise.breakdown_seconds.values()) == pytest.approx(denoise.seconds)
    assert denoise.layers_measured == 2 and denoise.layers_total == 6


def test_the_probe_records_bytes_and_flops_and_leaves_the_floors_to_the_model(tiny_bench):
    m = next(m for m in run().passes.passes if m.pass_kind == "ar-step")
    cost = pass_cost(tiny_bench, kind="ar-step", precision="bf16", concurrency=1, context_tokens=40)
    assert m.bytes_moved == cost.total_bytes and m.flops == cost.total_flops
    assert m.achieved_bytes_per_s == pytest.approx(cost.total_bytes / m.seconds)
    assert m.experts_touched_per_layer == 2.0 and m.experts_touched_expected == pytest.approx(2.0)
    for floor in (m.bandwidth_floor_seconds, m.compute_floor_seconds, m.roofline_floor_seconds,
                  m.fraction_of_bandwidth_floor, m.fraction_of_compute_floor, m.fraction_of_roofline_floor):
        assert floor == bench.NOT_YET_COMPARED


def test_out_of_memory_in_one_pass_skips_it_and_says_so(tiny_bench, monkeypatch):
    original = bench.PassRunner.measure_pass

    def failing(self, kind, concurrency, context):
        if kind == "dg-denoise":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, kind, concurrency, context)

    monkeypatch.setattr(bench.PassRunner, "measure_pass", failing)
    result = run(precisions=("bf16",)).passes
    assert {m.pass_kind for m in result.passes} == {"prefill", "ar-step", "dg-commit"}
    assert any(r.startswith("out of memory: dg-denoise bf16") for r in result.reductions)


def test_short_memory_shrinks_the_plan_and_the_result_says_so(tiny_bench, monkeypatch):
    real_capabilities = bench.device_capabilities

    def small(device, quick):
        return dataclasses.replace(real_capabilities(device, quick), free_memory_bytes=1e3)

    monkeypatch.setattr(bench, "device_capabilities", small)
    result = run().passes
    assert result.passes == ()
    assert any("bf16 not measured: its sampled layers do not fit" in r for r in result.reductions)


def test_progress_reports_each_pass_with_its_place_and_an_estimate_of_the_rest(tiny_bench):
    messages: list[str] = []
    run(precisions=("bf16",), progress=messages.append)
    kinds = ("prefill", "ar-step", "dg-denoise", "dg-commit")
    # The checks come first and take seconds on a GPU: they say so.
    assert messages.pop(0) == "decode: checking the benchmark's fast paths against torch on small shapes"
    assert [m.split(" (")[0] for m in messages] == [f"decode: {k} bf16 c=1 context=40" for k in kinds]
    assert messages[0].endswith("(1 of 4)")
    # An estimate once a pass of a kind other than prefill (the first) has finished.
    assert messages[1].endswith("(2 of 4)")
    assert all(re.search(rf"\({i} of 4, about \d+ s left\)$", m) for i, m in enumerate(messages[2:], start=3))


def test_the_estimate_is_the_mean_time_per_finished_pass_of_each_kind_times_its_passes_left():
    messages: list[str] = []
    now = iter([0.0, 2.0, 4.0, 5.0, 7.0])
    progress = bench.PassProgress(["ar-step", "ar-step", "dg-denoise", "dg-denoise", "dg-commit"], messages.append,
                                  clock=lambda: next(now))
    progress.start("ar-step", "a")
    progress.start("ar-step", "b")  # one ar-step took 2 s: all five passes at 2 s, four left with this one
    progress.start("dg-denoise", "c")  # ar-steps 2 s; denoise and commit not timed: at the ar-steps' 2 s
    progress.start("dg-denoise", "d")  # one denoise took 1 s: 1 s for the other, the commit at the mean, 5/3 s
    progress.start("dg-commit", "e")
    assert messages == ["decode: a (1 of 5)", "decode: b (2 of 5, about 8 s left)",
                        "decode: c (3 of 5, about 6 s left)", "decode: d (4 of 5, about 3 s left)",
                        "decode: e (5 of 5, about 2 s left)"]


def test_a_prefill_pass_alone_gives_no_estimate_and_later_counts_only_for_prefill():
    # A cold full check on an H200 said "about 92 s left" after its prefill pass, with 15 s left: the 2.6 s
    # prefill pass (a sustained load per layer type) was taken as the time of each of the 24 passes after it.
    messages: list[str] = []
    now = iter([0.0, 2.6, 3.1, 3.6])
    kinds = ["prefill", "ar-step", "ar-step", "dg-denoise", "prefill"]
    progress = bench.PassProgress(kinds, messages.append, clock=lambda: next(now))
    progress.start("prefill", "p")
    progress.start("ar-step", "a")
    progress.start("ar-step", "b")  # ar-steps 0.5 s: this one, the denoise at 0.5 s, the prefill at 2.6 s
    progress.start("dg-denoise", "d")
    assert messages[:2] == ["decode: p (1 of 5)", "decode: a (2 of 5)"]
    assert messages[2] == "decode: b (3 of 5, about 4 s left)"
    assert messages[3] == "decode: d (4 of 5, about 3 s left)"


def test_layer_paths_are_checked_only_for_the_dtypes_the_plan_measures(tiny_bench, monkeypatch):
    checked: list[tuple[str, object]] = []
    monkeypatch.setattr(bench, "check_layers", lambda config, dtype, device: {})
    monkeypatch.setattr(bench, "check_attention", lambda device, dtype, method, *rest: checked.append(
        (f"attention {method}", dtype)) or "")
    monkeypatch.setattr(bench, "check_fused_layer", lambda device, dtype, *rest, **options: checked.append(
        ("fused", dtype)) or "off")
    caps = dataclasses.replace(bench.device_capabilities("cpu", quick=False), kind="cuda")
    plan = bench.plan_bench(tiny_bench, device_kind="cuda", free_memory_bytes=1e12, native_fp8=True,
                            precisions=("bf16", "fp8"))
    checked_caps = bench.check_layer_paths(tiny_bench, caps, plan, quick=False)
    assert checked == [("attention matmul", torch.bfloat16), ("attention split-kv", torch.bfloat16),
                       ("fused", torch.bfloat16)]
    assert checked_caps.attention_methods[str(torch.bfloat16)] == ("sdpa", "matmul", "split-kv")
    assert checked_caps.attention_methods[str(torch.float16)] == ("sdpa",)
    # fp8 layers' fused kernels build on the bf16 ones: not checked when those failed.
    assert checked_caps.fused == {str(torch.bfloat16): False, str(torch.float16): False, bench.FP8_LAYERS: False}
    assert any("fused Triton elementwise kernels unusable here (off)" in note for note in checked_caps.notes)
    assert caps.attention_methods[str(torch.bfloat16)] == ("sdpa",)  # the capabilities read first stay as read


@pytest.mark.parametrize("fp8_problem", ["", "fused fp8 layer off by 9.0% (limit 3%)"])
def test_fp8_layers_use_the_quantising_fused_kernels_only_where_their_own_check_passes(
        tiny_bench, monkeypatch, fp8_problem):
    checked: list[tuple[bool, tuple[str, ...]]] = []
    monkeypatch.setattr(bench, "check_layers", lambda config, dtype, device, fp8=False: {})
    monkeypatch.setattr(bench, "check_attention", lambda *args: "")

    def check_fused_layer(device, dtype, methods, *rest, fp8=False, **options):
        checked.append((fp8, methods))
        return fp8_problem if fp8 else ""

    monkeypatch.setattr(bench, "check_fused_layer", check_fused_layer)
    monkeypatch.setattr(bench, "check_gemv_layer", lambda *args, **options: "")
    caps = dataclasses.replace(bench.device_capabilities("cpu", quick=False), kind="cuda",
                               expert_methods={False: ("grouped", "triton"), True: ("triton",)})
    plan = bench.plan_bench(tiny_bench, device_kind="cuda", free_memory_bytes=1e12, native_fp8=True,
                            precisions=("bf16", "fp8"))
    checked_caps = bench.check_layer_paths(tiny_bench, caps, plan, quick=False)
    assert checked == [(False, ("grouped", "triton")), (True, ("triton",))]  # fp8 with the fp8 expert methods
    assert checked_caps.fused[str(torch.bfloat16)]
    assert checked_caps.fused[bench.FP8_LAYERS] == (not fp8_problem)
    fp8_notes = [note for note in checked_caps.notes if note.startswith("fp8 layers")]
    assert bool(fp8_notes) == bool(fp8_problem) and all(fp8_problem in note for note in fp8_notes)
    tuner = bench.Autotuner(timer=bench.timer_for("cpu"), use_graph=False)
    described = bench.describe_methods(checked_caps, bench.Autotuners(experts=tuner, attention=tuner,
                                                                      projections=tuner), set())
    elementwise = next(line for line in described if line.startswith("layer elementwise work"))
    assert ("fp8: torch ops" in elementwise) == bool(fp8_problem)
    assert ("quantised per token by the kernels that produce them" in elementwise) == (not fp8_problem)


def test_quick_runs_compile_and_check_no_fused_layer_paths(tiny_bench, monkeypatch):
    monkeypatch.setattr(bench, "check_layers", lambda *args: pytest.fail("quick runs check no layer paths"))
    caps = dataclasses.replace(bench.device_capabilities("cpu", quick=True), kind="cuda")
    plan = bench.plan_bench(tiny_bench, device_kind="cuda", free_memory_bytes=1e12, native_fp8=True, quick=True)
    caps = bench.check_layer_paths(tiny_bench, caps, plan, quick=True)
    assert set(caps.attention_methods.values()) == {("sdpa",)} and not any(caps.fused.values())
    assert any(note.startswith("quick: layers run SDPA and torch elementwise ops") for note in caps.notes)


def test_split_kv_attention_is_offered_only_for_unmasked_passes_of_few_query_rows(tiny_bench):
    applies = bench._attention_applies
    assert applies(tiny_bench, "split-kv", "global", "ar-step", 8, 1, 40)
    assert not applies(tiny_bench, "split-kv", "global", "dg-commit", 1, 2, 40)  # causal: a mask
    assert not applies(tiny_bench, "split-kv", "global", "dg-denoise", 1, 256, 40)  # too many query rows
    assert applies(tiny_bench, "sdpa", "global", "dg-commit", 1, 256, 40)


def test_prefill_layers_of_both_types_are_timed_after_sustained_load_and_decode_passes_are_not(
        tiny_bench, monkeypatch):
    capabilities = bench.device_capabilities

    def with_sustain(device, quick):
        return dataclasses.replace(capabilities(device, quick), prefill_sustain_seconds=0.25)

    loads = []
    monkeypatch.setattr(bench, "device_capabilities", with_sustain)
    monkeypatch.setattr(bench, "sustain_load", lambda call, seconds, device: loads.append(seconds))
    result = run(precisions=("bf16",), concurrencies=(1,)).passes
    prefill = next(m for m in result.passes if m.pass_kind == "prefill")
    assert [p.name for p in prefill.parts][:2] == ["sliding-layers", "global-layers"]
    assert loads == [0.25, 0.25]  # one load before each layer type of the one prefill, none elsewhere


def test_ctrl_c_keeps_every_pass_that_finished(tiny_bench, monkeypatch):
    from dgprofile.interrupts import Interrupted

    original = bench.PassRunner.measure_pass

    def interrupted_at_denoise(self, kind, concurrency, context):
        if kind == "dg-denoise":
            raise KeyboardInterrupt
        return original(self, kind, concurrency, context)

    monkeypatch.setattr(bench.PassRunner, "measure_pass", interrupted_at_denoise)
    with pytest.raises(Interrupted) as interrupted:
        run(precisions=("bf16",))
    kept = interrupted.value.kept.passes
    assert [m.pass_kind for m in kept.passes] == ["prefill", "ar-step"]
    assert kept.reductions[-1] == "interrupted (Ctrl-C): the passes not listed were not timed"


class CallReturnsItsSeconds:
    """A timer for calls that return how long they take."""

    name = "perf-counter"
    resolution_seconds = 1e-9

    def elapsed_seconds(self, fn, loops: int) -> float:
        return sum(fn() for _ in range(loops))


def test_gemv_projections_are_timed_against_torch_s_only_for_few_rows_where_their_check_passed(
        tiny_bench, monkeypatch):
    layer_seconds = {"torch": 0.004, "gemv": 0.003}
    timed: list[tuple[int, str]] = []

    def fake_layer(config, x, layer, state, concurrency):
        assert state.fused  # the GEMV runs in the fused layer
        timed.append((x.shape[0], state.projection_method))
        return layer_seconds[state.projection_method]

    monkeypatch.setattr(bench, "decoder_layer", fake_layer)
    cpu = bench.device_capabilities("cpu", quick=False)
    caps = dataclasses.replace(cpu, fused={key: True for key in cpu.fused},
                               gemv={**cpu.gemv, str(torch.bfloat16): True})
    tuners = bench.Autotuners(*(bench.Autotuner(timer=CallReturnsItsSeconds(), use_graph=False) for _ in range(3)))
    layers = [bench.build_layer(tiny_bench, "sliding", dtype=torch.bfloat16, fp8=False, device="cpu")]
    methods = bench.LayerMethods(tiny_bench, caps, tuners, "bf16")
    states = methods.layer_states(layers, "ar-step", 8, 1, 40)
    assert [s.projection_method for s in states] == ["gemv"] and set(timed) == {(8, "torch"), (8, "gemv")}
    calls = len(timed)
    # More rows than the GEMV takes (17 requests), or a precision whose GEMV check failed: torch's, untimed.
    assert methods.layer_states(layers, "ar-step", 17, 1, 40)[0].projection_method == "torch"
    fp8_layers = [bench.build_layer(tiny_bench, "sliding", dtype=torch.bfloat16, fp8=True, device="cpu")]
    fp8_methods = bench.LayerMethods(tiny_bench, dataclasses.replace(caps, expert_methods={True: ("grouped",)}),
                                     tuners, "fp8")
    assert fp8_methods.projection_method(fp8_layers[0], "ar-step", 1, 1, 40, "grouped", "sdpa") == "torch"
    assert len(timed) == calls
    described = bench.describe_methods(caps, tuners, set())
    assert "projections bf16 sliding ar-step c=8 x 1 at 40: gemv (gemv 3.000 ms, torch 4.000 ms)" in described
    summary = next(line for line in described if line.startswith("projections (q/k/v"))
    assert summary.endswith("gemv passed its check here for: bfloat16")


def test_a_failed_gemv_layer_check_leaves_torch_s_projections_and_says_why(tiny_bench, monkeypatch):
    monkeypatch.setattr(bench, "check_layers", lambda config, dtype, device, fp8=False: {})
    monkeypatch.setattr(bench, "check_attention", lambda *args: "")
    monkeypatch.setattr(bench, "check_fused_layer", lambda *args, **options: "")
    monkeypatch.setattr(bench, "check_gemv_layer", lambda device, dtype, methods, *rest, fp8=False, **options:
                        "GEMV fp8 layer off by 9.0% (limit 8%)" if fp8 else "")
    caps = dataclasses.replace(bench.device_capabilities("cpu", quick=False), kind="cuda",
                               expert_methods={False: ("grouped",), True: ("triton",)})
    plan = bench.plan_bench(tiny_bench, device_kind="cuda", free_memory_bytes=1e12, native_fp8=True,
                            precisions=("bf16", "fp8"))
    checked = bench.check_layer_paths(tiny_bench, caps, plan, quick=False)
    assert checked.gemv == {str(torch.bfloat16): False, str(torch.float16): False, bench.FP8_LAYERS: False}
    assert ("fp8 layers: GEMV projections unusable here (GEMV fp8 layer off by 9.0% (limit 8%)); torch's GEMMs "
            "project") in checked.notes


def test_only_fp8_layers_try_the_gemv(tiny_bench, monkeypatch):
    """On the H200 the GEMV lost every bf16 AR shape to cuBLAS and won the fp8 ones at c = 1."""
    checked_dtypes: list[bool] = []
    monkeypatch.setattr(bench, "check_layers", lambda config, dtype, device, fp8=False: {})
    monkeypatch.setattr(bench, "check_attention", lambda *args: "")
    monkeypatch.setattr(bench, "check_fused_layer", lambda *args, **options: "")
    monkeypatch.setattr(bench, "check_gemv_layer", lambda device, dtype, methods, *rest, fp8=False, **options:
                        checked_dtypes.append(fp8) or "")
    caps = dataclasses.replace(bench.device_capabilities("cpu", quick=False), kind="cuda",
                               expert_methods={False: ("grouped",), True: ("triton",)})
    plan = bench.plan_bench(tiny_bench, device_kind="cuda", free_memory_bytes=1e12, native_fp8=True,
                            precisions=("bf16", "fp8"))
    checked = bench.check_layer_paths(tiny_bench, caps, plan, quick=False)
    assert checked_dtypes == [True]
    assert checked.gemv == {str(torch.bfloat16): False, str(torch.float16): False, bench.FP8_LAYERS: True}


def test_the_checks_wait_for_the_check_jobs_and_each_pass_kind_for_its_own(tiny_bench):
    """A cold check waited for every compile worker before its first pass; now each waits for its own kernels."""
    asked: list[str] = []
    run(kernels_ready=asked.append)
    assert asked == ["bf16:checks", "fp8:checks", "sampler", "bf16:prefill", "bf16:ar-step", "bf16:dg-denoise",
                     "bf16:dg-commit"]
