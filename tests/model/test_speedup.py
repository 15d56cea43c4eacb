"""The speedup model: pass times from named terms, and request-level figures for both modes."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from dgprofile.model.calibration import calibrated_parameters
from dgprofile.model.ceilings import ceilings_from_spec
from dgprofile.model.engines import ENGINES
from dgprofile.model.setup import datasheet_interconnect, pcie_link, requested_interconnect
from dgprofile.model.speedup import (
    REFERENCE_ROOFLINE_RATIO,
    PassModel,
    Request,
    autoregressive_estimate,
    canvases,
    diffusion_estimate,
    diffusion_passes,
    pass_body,
    with_measured_passes,
)
from dgprofile.records.passes import PassMeasurement, PassTimes
from dgprofile.records.predictions import ONE_GPU, ArBaseline, EngineParameters, ExecutionMode, Interconnect
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import spec_by_id
from dgprofile.specs.model_config import load_model_config
from dgprofile.specs.pass_cost import pass_cost

CONFIG = load_model_config()
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def ideal(**changes: float) -> EngineParameters:
    return dataclasses.replace(calibrated_parameters()["ideal"], **changes)


def model(hardware: str = "h100-sxm", engine: str = "ideal", parameters: EngineParameters | None = None,
          gpus: int = 1, measured: PassTimes | None = None, mode: ExecutionMode | None = None,
          link: Interconnect | Unavailable | None = None) -> PassModel:
    ceilings = ceilings_from_spec(spec_by_id(hardware), gpus=gpus)
    if link is None:
        link = datasheet_interconnect(ceilings) if gpus > 1 else ONE_GPU
    return PassModel(CONFIG, ceilings, ENGINES[engine], parameters or calibrated_parameters()[engine], measured,
                     mode=mode or ENGINES[engine].default_mode, interconnect=link)


def test_a_weight_bound_pass_takes_its_bytes_over_the_bandwidth() -> None:
    cost = pass_cost(CONFIG, kind="dg-denoise", precision="fp8", concurrency=1, context_tokens=1024)
    ceilings = ceilings_from_spec(spec_by_id("h100-sxm"))
    body = pass_body(cost, ceilings, 1.0, 1.0)
    estimate = model().physics(cost)
    assert estimate.bound_by == "weights"
    assert body.memory_seconds == pytest.approx(cost.total_bytes / ceilings.bandwidth_bytes_per_s)
    assert body.memory_seconds <= estimate.seconds < 1.1 * body.memory_seconds


def test_components_that_are_compute_bound_add_to_a_memory_bound_pass() -> None:
    """On an H200 the attention and LM head of a 256-token canvas are compute-bound while the experts stream:
    run one after another they take longer than the pass's bytes alone (the README's roofline column)."""
    cost = pass_cost(CONFIG, kind="dg-denoise", precision="bf16", concurrency=1, context_tokens=4096)
    body = pass_body(cost, ceilings_from_spec(spec_by_id("h200")), 1.0, 1.0)
    assert body.seconds > body.memory_seconds
    assert body.parts["compute"] > 0 and body.parts["weights"] > body.parts["compute"]


def test_hardware_side_and_engine_additions_sum_to_the_pass() -> None:
    for kind in ("prefill", "ar-step", "dg-denoise", "dg-commit"):
        estimate = model(engine="vllm").estimate(kind, "fp8", concurrency=1, context_tokens=1024,
                                                 tokens_per_request=512 if kind == "prefill" else None)
        assert isinstance(estimate.hardware_seconds, float)
        assert estimate.hardware_seconds + sum(estimate.engine_added_seconds.values()) == pytest.approx(
            estimate.seconds)
    step = model(engine="vllm").estimate("ar-step", "fp8", concurrency=1, context_tokens=1024)
    assert step.engine_added_seconds["floor"] > step.hardware_seconds  # vLLM's AR step is latency-bound


def test_critical_terms_sum_to_the_pass_time() -> None:
    for kind in ("prefill", "ar-step", "dg-denoise", "dg-commit"):
        estimate = model(engine="vllm").estimate(kind, "fp8", concurrency=2, context_tokens=2048,
                                                 tokens_per_request=512 if kind == "prefill" else None)
        assert sum(estimate.critical_seconds.values()) == pytest.approx(estimate.seconds)


def test_vllm_ar_step_is_bound_by_its_latency_floor() -> None:
    step = model(engine="vllm").estimate("ar-step", "fp8", concurrency=1, context_tokens=1024)
    assert step.bound_by == "overhead"
    assert step.terms_seconds["weights"] < step.terms_seconds["overhead"]


def test_diffusion_step_overhead_is_added_to_diffusion_passes_only() -> None:
    m = model(engine="ideal", parameters=ideal(diffusion_step_overhead_seconds=0.002))
    plain = model(engine="ideal")
    for kind in ("dg-denoise", "dg-commit"):
        gap = m.estimate(kind, "fp8", concurrency=1, context_tokens=0).seconds - plain.estimate(
            kind, "fp8", concurrency=1, context_tokens=0).seconds
        assert gap == pytest.approx(0.002)
    assert m.estimate("ar-step", "fp8", concurrency=1, context_tokens=0).seconds == pytest.approx(
        plain.estimate("ar-step", "fp8", concurrency=1, context_tokens=0).seconds)


def test_apple_4bit_denoise_is_compute_bound_and_dequantised() -> None:
    denoise = model("m1-ultra-64gpu", "mlx").estimate("dg-denoise", "mlx-4bit", concurrency=1, context_tokens=64)
    assert denoise.bound_by == "compute"
    assert denoise.terms_seconds["dequantisation"] > 0


def test_fp8_is_native_on_hopper_and_dequantised_on_ampere() -> None:
    hopper = model("h100-sxm").estimate("dg-denoise", "fp8", concurrency=1, context_tokens=0)
    ampere = model("a100-sxm-80gb").estimate("dg-denoise", "fp8", concurrency=1, context_tokens=0)
    assert hopper.terms_seconds["dequantisation"] == 0
    assert ampere.terms_seconds["dequantisation"] > 0
    assert ampere.terms_seconds["compute"] > hopper.terms_seconds["compute"] * 3


def test_an_output_shorter_than_a_canvas_pays_the_whole_canvas() -> None:
    m = model(engine="vllm")
    short, full = Request("fp8", 1, 512, 40), Request("fp8", 1, 512, 256)
    short_dg = diffusion_estimate(diffusion_passes(m, short), short, 16, 0)
    full_dg = diffusion_estimate(diffusion_passes(m, full), full, 16, 0)
    assert short_dg.total_latency_s == pytest.approx(full_dg.total_latency_s)
    assert short_dg.tokens_per_s == pytest.approx(full_dg.tokens_per_s * 40 / 256)


def test_each_canvas_pays_its_steps_and_one_commit() -> None:
    m = model(engine="vllm")
    request = Request("fp8", 1, 512, 600)
    passes = diffusion_passes(m, request)
    dg = diffusion_estimate(passes, request, 12, 0)
    assert canvases(600) == passes.canvases == passes.commits == 3
    assert dg.total_latency_s - passes.prefill.seconds == pytest.approx(
        3 * (12 * passes.denoise.seconds + passes.commit.seconds))
    assert dg.ttft_s == pytest.approx(passes.prefill.seconds + 12 * passes.denoise.seconds + passes.commit.seconds)


def test_engines_that_skip_the_last_commit_pay_one_fewer() -> None:
    passes = diffusion_passes(model("h200", "transformers"), Request("bf16", 1, 1024, 512))
    assert (passes.canvases, passes.commits) == (2, 1)


def test_concurrency_batches_requests_into_one_pass() -> None:
    m = model(engine="vllm")
    one = m.estimate("dg-denoise", "fp8", concurrency=1, context_tokens=1024)
    four = m.estimate("dg-denoise", "fp8", concurrency=4, context_tokens=1024)
    assert one.seconds < four.seconds < 4 * one.seconds  # the weights are read once for all four
    request = Request("fp8", 4, 1024, 1024)
    dg = diffusion_estimate(diffusion_passes(m, request), request, 16, 0)
    assert dg.aggregate_tokens_per_s == pytest.approx(4 * dg.tokens_per_s)


def test_ar_prefill_yields_the_first_token() -> None:
    m = model(engine="vllm")
    ar = autoregressive_estimate(m, Request("fp8", 1, 1024, 100), 0)
    prefill, step = ar.passes
    assert ar.ttft_s == prefill.seconds
    assert ar.total_latency_s == pytest.approx(prefill.seconds + 99 * step.seconds)
    assert ar.tokens_per_s == pytest.approx(1 / step.seconds)


def test_tensor_parallel_splits_the_weights_and_pays_the_interconnect() -> None:
    single = model("rtx-3090", "vllm").estimate("dg-denoise", "int4", concurrency=1, context_tokens=512)
    pair = model("rtx-3090", "vllm", gpus=2).estimate("dg-denoise", "int4", concurrency=1, context_tokens=512)
    assert pair.terms_seconds["weights"] == pytest.approx(single.terms_seconds["weights"] / 2)
    assert single.terms_seconds["interconnect"] == 0 < pair.terms_seconds["interconnect"]


def test_pcie_without_peer_to_peer_costs_more_than_nvlink() -> None:
    """Consumer cards all-reduce through host memory (GeForce drivers refuse peer-to-peer): more latency per
    all-reduce and half the PCIe bandwidth, sixty times a pass."""
    ceilings = ceilings_from_spec(spec_by_id("rtx-3090"), gpus=2)
    host = datasheet_interconnect(ceilings)
    assert (host.kind, host.peer_to_peer) == ("pcie", False)
    p2p = pcie_link(4, 16, peer_to_peer=True, basis="test", source="command-line")
    assert host.bytes_per_s == pytest.approx(p2p.bytes_per_s / 2)
    nvlink = datasheet_interconnect(ceilings_from_spec(spec_by_id("h100-sxm"), gpus=2))
    times = [model("rtx-3090", "vllm", gpus=2, link=link).estimate(
        "dg-denoise", "int4", concurrency=1, context_tokens=512).terms_seconds["interconnect"]
        for link in (nvlink, p2p, host)]
    assert times == sorted(times) and times[0] > 0


def test_an_interconnect_named_on_the_command_line_is_parsed() -> None:
    ceilings = ceilings_from_spec(spec_by_id("rtx-4090"), gpus=2)
    link = requested_interconnect("pcie5x8-no-p2p", ceilings)
    assert (link.description, link.peer_to_peer) == ("PCIe 5.0 x8 without peer-to-peer", False)
    from dgprofile.errors import UsageError

    with pytest.raises(UsageError, match="no NVLink figure"):
        requested_interconnect("nvlink", ceilings)
    with pytest.raises(UsageError, match="unknown interconnect"):
        requested_interconnect("pcie9x16", ceilings)


def test_eager_vllm_pays_its_kernels_host_launches() -> None:
    graphs = model(engine="vllm").estimate("ar-step", "fp8", concurrency=1, context_tokens=1024)
    eager = model(engine="vllm", mode="eager").estimate("ar-step", "fp8", concurrency=1, context_tokens=1024)
    assert eager.seconds > 2 * graphs.seconds
    assert "eager-launches" in eager.critical_seconds
    denoise = model(engine="vllm", mode="eager").estimate("dg-denoise", "fp8", concurrency=1, context_tokens=1024)
    assert denoise.seconds < 2 * model(engine="vllm").estimate("dg-denoise", "fp8", concurrency=1,
                                                               context_tokens=1024).seconds


def test_engine_floors_scale_with_the_devices_launch_latency() -> None:
    fast = model(engine="vllm")
    slow = dataclasses.replace(fast, ceilings=dataclasses.replace(fast.ceilings, floor_scale=1.5))
    base = fast.estimate("ar-step", "fp8", concurrency=1, context_tokens=1024)
    scaled = slow.estimate("ar-step", "fp8", concurrency=1, context_tokens=1024)
    assert scaled.seconds == pytest.approx(1.5 * base.seconds)


def test_the_mtp_drafter_yields_its_accepted_run_per_verification() -> None:
    m = model(engine="vllm")
    request = Request("fp8", 1, 1024, 1024)
    plain = autoregressive_estimate(m, request, 0)
    mtp = autoregressive_estimate(m, request, 0, ArBaseline("mtp", 4, 0.8))
    tokens = (1 - 0.8 ** 5) / (1 - 0.8)
    step = mtp.passes[1]
    assert mtp.tokens_per_s == pytest.approx(tokens / step.seconds)
    assert 1.5 * plain.tokens_per_s < mtp.tokens_per_s < tokens * plain.tokens_per_s
    assert step.engine_added_seconds["mtp-drafter"] > 0


def test_reference_roofline_ratios_are_what_the_sample_cards_measured() -> None:
    """REFERENCE_ROOFLINE_RATIO is the mean over the H100 and H200 of samples/ of each bf16 pass at concurrency
    1 against its roofline at the measured limits: recomputed here from those files."""
    from dgprofile.model.ceilings import ceilings_from_machine
    from dgprofile.records.results import load

    ratios: dict[str, list[float]] = {kind: [] for kind in REFERENCE_ROOFLINE_RATIO}
    for name in ("h100-sxm_20261126.dgprofile.json", "h200_20261126.dgprofile.json"):
        result = load(SAMPLES / name)
        assert not isinstance(result.machine, Unavailable) and isinstance(result.passes, PassTimes)
        ceilings = with_measured_passes(CONFIG, ceilings_from_machine(result.machine, result.limits),
                                        result.passes)
        for factor in ceilings.pass_factors:
            if factor.concurrency == 1:
                ratios[factor.pass_kind].append(factor.measured_seconds / factor.roofline_seconds)
    for kind, reference in REFERENCE_ROOFLINE_RATIO.items():
        assert sum(ratios[kind]) / len(ratios[kind]) == pytest.approx(reference, abs=0.01), kind


def _measurement(kind: str, seconds: float, context_tokens: int) -> PassMeasurement:
    return PassMeasurement(
        pass_kind=kind, precision="bf16", concurrency=1, tokens_per_request=256 if kind != "ar-step" else 1,
        context_tokens=context_tokens, seconds=seconds, timing=Unavailable("test"), measured=True, basis="test",
        layers_measured=30, layers_total=30, experts_touched_per_layer=128.0, bytes_moved=1.0, flops=1.0,
        achieved_bytes_per_s=1.0, achieved_flops_per_s=1.0, bandwidth_floor_seconds=1.0,
        compute_floor_seconds=1.0, fraction_of_bandwidth_floor=1.0, fraction_of_compute_floor=1.0,
        breakdown_seconds={})


def test_the_ideal_engine_uses_measured_passes_and_scales_them_by_the_physics() -> None:
    measured = PassTimes(model_id=CONFIG.id, device="cuda:0",
                         passes=(_measurement("dg-denoise", 0.020, 1024),), reductions=(), seconds_taken=1.0)
    m = model(measured=measured)
    at_shape = m.estimate("dg-denoise", "bf16", concurrency=1, context_tokens=1024)
    longer = m.estimate("dg-denoise", "bf16", concurrency=1, context_tokens=8192)
    physics = model()
    ratio = (physics.estimate("dg-denoise", "bf16", concurrency=1, context_tokens=8192).seconds
             / physics.estimate("dg-denoise", "bf16", concurrency=1, context_tokens=1024).seconds)
    assert (at_shape.seconds, at_shape.basis) == (pytest.approx(0.020), "measured")
    assert longer.seconds == pytest.approx(0.020 * ratio)
    unmeasured = m.estimate("ar-step", "bf16", concurrency=1, context_tokens=1024)
    assert unmeasured.basis == "datasheet" and not math.isclose(unmeasured.seconds, 0.020)


def test_the_first_useful_draft_never_comes_before_the_first_token_where_nothing_shows_before_a_commit() -> None:
    m = model(engine="vllm")
    for output_tokens in (40, 256, 600, 1024):
        request = Request("fp8", 1, 512, output_tokens)
        dg = diffusion_estimate(diffusion_passes(m, request), request, 16, 0)
        assert not isinstance(dg.first_draft_s, Unavailable)
        assert dg.first_draft_s >= dg.ttft_s, output_tokens


def test_the_first_useful_draft_of_a_committing_engine_is_the_commit_of_the_canvas_holding_nine_tenths() -> None:
    m = model(engine="vllm")
    request = Request("fp8", 1, 512, 1024)  # 922 tokens needed: the fourth canvas
    passes = diffusion_passes(m, request)
    dg = diffusion_estimate(passes, request, 16, 0)
    assert dg.first_draft_s == pytest.approx(passes.prefill.seconds + 4 * (16 * passes.denoise.seconds
                                                                          + passes.commit.seconds))


def test_ar_holds_a_useful_draft_once_nine_tenths_of_its_output_is_there() -> None:
    m = model(engine="vllm")
    ar = autoregressive_estimate(m, Request("fp8", 1, 512, 1024), 0)
    prefill, step = ar.passes
    assert ar.first_draft_s == pytest.approx(prefill.seconds + (1024 - 102 - 1) * step.seconds)


def test_an_engine_that_shows_drafts_gives_a_useful_draft_before_its_canvas_commits() -> None:
    m = model("h200", "transformers")
    request = Request("bf16", 1, 512, 64)  # one canvas, 58 tokens needed: 15 of 16 passes
    passes = diffusion_passes(m, request)
    dg = diffusion_estimate(passes, request, 16, 0)
    assert dg.first_draft_s == pytest.approx(passes.prefill.seconds + 15 * passes.denoise.seconds)
    assert not isinstance(dg.first_draft_s, Unavailable) and dg.first_draft_s < dg.ttft_s


def test_a_model_with_fewer_layers_pays_its_share_of_the_engine_floor() -> None:
    # verify --quick on a CPU predicts a 6-layer miniature: with the whole 30-layer floor, fitted to eager
    # transformers on an H200, its AR step came out at 387 ms against 24 ms measured.
    from dgprofile.probes.verify.plan import miniature_config

    small = miniature_config(CONFIG)
    full_model = model(hardware="h200", engine="transformers")
    small_model = dataclasses.replace(full_model, config=small)
    (full, _), (mini, _) = full_model.floor_seconds("ar-step"), small_model.floor_seconds("ar-step")
    assert small.backbone.num_layers < CONFIG.backbone.num_layers
    assert mini == pytest.approx(full * small.backbone.num_layers / CONFIG.backbone.num_layers)
