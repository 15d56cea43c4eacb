"""The fused sampler's host side: its fixed reference, and the chi-square test its GPU check applies to draws."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from dgprofile.probes.decode.triton_sampler import (  # noqa: E402
    FP32_MAX_EXPONENT,
    FP32_MIN_EXPONENT,
    chi_square_problem,
    fixed_reference,
)

VOCAB = 262_144


@pytest.mark.parametrize("temperature", [0.8, 0.6, 0.4])
def test_the_models_temperatures_keep_every_weight_and_sum_inside_fp32_against_a_fixed_reference(temperature):
    cap2 = 30.0 / temperature * math.log2(math.e)
    reference = fixed_reference(cap2, VOCAB)
    assert reference is not None
    assert -cap2 - reference > FP32_MIN_EXPONENT  # the least likely token's weight is a normal number
    assert math.log2(VOCAB * cap2) + cap2 - reference < FP32_MAX_EXPONENT  # sum of weight x z at most that


def test_a_temperature_too_low_for_one_reference_falls_back_to_a_running_maximum():
    assert fixed_reference(30.0 / 0.3 * math.log2(math.e), VOCAB) is None


def softmax_of(logits: torch.Tensor, temperature: float = 0.8) -> torch.Tensor:
    return torch.softmax(torch.tanh(logits.double() / 30.0) * (30.0 / temperature), dim=-1)


def test_draws_from_the_softmax_pass_the_chi_square_test():
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        probs = softmax_of(torch.randn(50_000, generator=generator) * 8)
        assert chi_square_problem(torch.multinomial(probs, 16_384, replacement=True, generator=generator),
                                  probs) == ""


def test_draws_from_a_neighbouring_temperature_or_moved_by_a_few_places_fail_it():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(50_000, generator=generator) * 8
    probs = softmax_of(logits)
    warmer = torch.multinomial(softmax_of(logits, 0.85), 16_384, replacement=True, generator=generator)
    assert "do not follow the softmax" in chi_square_problem(warmer, probs)
    draws = torch.multinomial(probs, 16_384, replacement=True, generator=generator)
    draws[:400] = (draws[:400] + 4096) % 50_000  # a few draws in the wrong span
    assert "do not follow the softmax" in chi_square_problem(draws, probs)
    assert chi_square_problem(torch.tensor([50_000]), probs) == "a draw outside the vocabulary"
