"""Workloads: steps per canvas from the tokens-per-call evidence, and command-line overrides."""

from __future__ import annotations

import pytest

from dgprofile.errors import UsageError
from dgprofile.model.workloads import (
    MAX_STEPS,
    MIN_STEPS,
    TOKENS_PER_CALL,
    WORKLOADS,
    steps_from_tokens_per_call,
    with_overrides,
    workload_by_name,
)


def test_a_full_canvas_at_16_tokens_per_call_takes_16_steps() -> None:
    """vLLM's benchmark: 16.02 committed tokens per denoising step at 16 steps per canvas."""
    assert steps_from_tokens_per_call(16.0, 1024) == pytest.approx(16.0)


def test_a_short_answer_counts_only_its_real_tokens() -> None:
    assert steps_from_tokens_per_call(TOKENS_PER_CALL["factual"], 64) == pytest.approx(64 / 5.8)


def test_steps_are_clamped_to_the_sampler_limits() -> None:
    assert steps_from_tokens_per_call(1.0, 256) == MAX_STEPS
    assert steps_from_tokens_per_call(100.0, 16) == MIN_STEPS


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_workload_has_a_consistent_range_with_its_basis(name: str) -> None:
    steps = WORKLOADS[name].steps
    assert MIN_STEPS <= steps.low <= steps.typical <= steps.high <= MAX_STEPS
    assert "arXiv" in steps.basis


def test_code_infill_matches_the_reported_five_to_six_steps_for_simple_coding() -> None:
    steps = WORKLOADS["code-infill"].steps
    assert 5 <= steps.low and steps.high <= 7


def test_fixed_steps_override_has_no_spread() -> None:
    workload = with_overrides(WORKLOADS["long-form-drafting"], steps=16)
    assert (workload.steps.low, workload.steps.typical, workload.steps.high) == (16, 16, 16)


def test_a_new_output_length_rescales_steps_by_real_tokens() -> None:
    base = WORKLOADS["structured-rewrite"]
    shorter = with_overrides(base, output_tokens=128)
    assert shorter.steps.typical == pytest.approx(base.steps.typical / 2)
    assert shorter.output_tokens == 128 and shorter.prompt_tokens == base.prompt_tokens


@pytest.mark.parametrize("overrides", [{"prompt_tokens": 0}, {"output_tokens": -1}, {"steps": 1}, {"steps": 49}])
def test_bad_overrides_are_usage_errors(overrides: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        with_overrides(WORKLOADS["short-completion"], **overrides)


def test_unknown_workload_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match="long-form-drafting"):
        workload_by_name("poetry")
