"""Verdict rules: each class rule, its order, and the reason and advice rules."""

from __future__ import annotations

import pytest

from dgprofile.app.predictor import PredictOptions, predict_for_spec
from dgprofile.model.verdict import (
    ABOUT_EVEN_MAX_SPEEDUP,
    APPLIES_MIN_SPEEDUP,
    CLASS_RULES,
    SpeedupBand,
    _concurrency_sentence,
    classify,
    classify_point,
)
from dgprofile.specs.hardware import spec_by_id
from dgprofile.text.units import bytes_text


def test_nothing_fits_means_cannot_run() -> None:
    assert classify(None) == "cannot-run"


def test_applies_needs_the_lower_band_at_the_threshold() -> None:
    assert classify(SpeedupBand(4.0, APPLIES_MIN_SPEEDUP, 5.0)) == "applies"
    assert classify(SpeedupBand(4.0, APPLIES_MIN_SPEEDUP - 0.01, 5.0)) == "partial"


def test_about_even_or_slower_does_not_apply() -> None:
    assert classify(SpeedupBand(ABOUT_EVEN_MAX_SPEEDUP, 1.0, 1.4)) == "does-not-apply"
    assert classify(SpeedupBand(0.2, 0.15, 0.25)) == "does-not-apply"


def test_faster_but_short_is_partial() -> None:
    assert classify(SpeedupBand(1.3, 1.1, 1.5)) == "partial"


def test_rules_run_in_a_fixed_order_ending_in_a_catch_all() -> None:
    assert [rule.verdict for rule in CLASS_RULES] == ["cannot-run", "applies", "does-not-apply", "partial"]
    assert classify_point(APPLIES_MIN_SPEEDUP) == "applies"


def reasons(hardware: str, **options: object) -> tuple[str, ...]:
    return predict_for_spec(spec_by_id(hardware), options=PredictOptions(**options)).reasons


def test_compute_bound_reason_names_the_pass_cost_ratio() -> None:
    found = [r for r in reasons("m4-max-40gpu") if r.startswith("compute-bound")]
    assert found and "x an AR step" in found[0]


def test_fits_only_at_4bit_reason() -> None:
    assert any(r.startswith("fits only at 4-bit") for r in reasons("rtx-4090"))


def test_short_output_reason() -> None:
    assert any("still pays a whole 256-token canvas" in r for r in reasons("h100-sxm", workload="short-completion"))


def test_unified_memory_reason() -> None:
    assert any(r.startswith("unified memory") for r in reasons("m4-max-40gpu"))


def test_concurrency_reason_says_how_the_advantage_moves() -> None:
    assert any(r.startswith("at concurrency") and "falls to" in r for r in reasons("h100-sxm"))


def test_ar_latency_bound_reason_for_vllm() -> None:
    assert any(r.startswith("AR decoding is latency-bound") for r in reasons("h200"))


@pytest.mark.parametrize(("hardware", "options", "verdict", "phrase"), [
    ("h100-sxm", {"precision": "fp8", "prompt_tokens": 1024, "output_tokens": 1024, "steps": 16}, "applies",
     "worth switching"),
    ("m4-max-40gpu", {}, "does-not-apply", "keep autoregressive Gemma 4"),
    ("m4-10gpu", {"memory_bytes": 16 << 30}, "cannot-run", "needs at least"),
])
def test_advice_follows_the_verdict(hardware: str, options: dict[str, object], verdict: str, phrase: str) -> None:
    predictions = predict_for_spec(spec_by_id(hardware), options=PredictOptions(**options))
    assert predictions.verdict == verdict
    assert phrase in predictions.advice[0]


def test_concurrency_8_that_does_not_fit_states_the_need_at_concurrency_8_and_how_many_requests_fit() -> None:
    options = {"memory_bytes": 48 << 30}
    assert predict_for_spec(spec_by_id("m3-max-30gpu"), options=PredictOptions(**options)).verdict != "cannot-run"
    predictions = predict_for_spec(spec_by_id("m3-max-30gpu"), options=PredictOptions(concurrency=8, **options))
    int4 = next(m for m in predictions.memory if m.precision == "mlx-4bit")
    assert predictions.verdict == "cannot-run" and not int4.fits_diffusion and int4.concurrency == 8
    (advice,) = predictions.advice
    assert advice.startswith(f"DiffusionGemma needs at least {bytes_text(int4.diffusion_needed_bytes)} "
                             f"(mlx-4bit, concurrency 8) where {bytes_text(int4.usable_bytes)} is usable")
    assert f"lower --concurrency to {int4.max_diffusion_concurrency} or less" in advice
    assert "concurrency 1" not in advice
    assert f"needs {bytes_text(int4.diffusion_needed_bytes)} for DiffusionGemma at concurrency 8" in \
        " ".join(predictions.reasons)


def test_one_h100_states_its_usable_memory_once_and_no_smaller_available_figure() -> None:
    predictions = predict_for_spec(spec_by_id("h100-sxm"), options=PredictOptions(concurrency=8))
    text = " ".join((*predictions.reasons, *predictions.advice, *(m.note for m in predictions.memory)))
    assert "available" not in text
    assert {m.usable_bytes for m in predictions.memory} == {predictions.ceilings.usable_memory_bytes}


def test_cannot_run_on_a_mac_never_suggests_gpus_which_predict_refuses_there() -> None:
    predictions = predict_for_spec(spec_by_id("m4-10gpu"), options=PredictOptions(memory_bytes=16 << 30))
    assert predictions.verdict == "cannot-run"
    assert "--gpus" not in predictions.advice[0] and "tensor parallel" not in predictions.advice[0]


def test_cannot_run_on_a_gpu_with_a_link_names_the_command_that_models_tensor_parallelism() -> None:
    predictions = predict_for_spec(spec_by_id("rtx-4090"), options=PredictOptions(memory_bytes=12 << 30))
    assert predictions.verdict == "cannot-run"
    assert "`dgprofile predict --hardware rtx-4090 --gpus 2` models it" in predictions.advice[0]
    two = predict_for_spec(spec_by_id("rtx-4090"), options=PredictOptions(gpus=2, memory_bytes=12 << 30))
    assert two.verdict != "cannot-run"


@pytest.mark.parametrize(("speedup", "headline", "sentence"), [
    (0.096, 0.1058, "at concurrency 2 the speedup falls to 0.096x (from 0.11x)"),
    (0.1051, 0.1058, "at concurrency 2 the speedup stays at 0.11x"),
    (1.93, 5.08, "at concurrency 2 the speedup falls to 1.9x (from 5.1x)"),
])
def test_the_concurrency_reason_never_reads_falls_to_0_1x_from_0_1x(speedup: float, headline: float,
                                                                      sentence: str) -> None:
    assert _concurrency_sentence(2, speedup, headline) == sentence


def test_the_late_first_token_reason_follows_the_engine_s_draft_display() -> None:
    vllm = reasons("h100-sxm")
    assert any("vllm shows nothing until the first canvas commits" in r for r in vllm)
    eager = reasons("h200", engine="transformers", workload="short-completion")
    late = [r for r in eager if r.startswith("the first final token comes later")]
    assert late and "transformers shows drafts before it" in late[0]
    assert not any("shows nothing" in r for r in eager)
