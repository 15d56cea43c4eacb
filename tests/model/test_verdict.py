"""Verdict rules: each class rule, its order, and the reason and advice rules."""

from __future__ import annotations

import pytest

from dgprofile.app.predictor import PredictOptions, predict_for_spec
from dgprofile.model.verdict import (
    ABOUT_EVEN_MAX_SPEEDUP,
    APPLIES_MIN_SPEEDUP,
    CLASS_RULES,
    SpeedupBand,
    classify,
    classify_point,
)
from dgprofile.specs.hardware import spec_by_id


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
