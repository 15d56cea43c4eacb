"""The head: sampler statistics, entropy-bound acceptance, and what each pass kind's head computes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from dgprofile.probes.decode.head import (  # noqa: E402
    build_head,
    entropy_bound_accept,
    head_parts,
    softcapped_top_k,
    torch_sampler,
)
from dgprofile.probes.decode.model import AR_TOP_K  # noqa: E402


def test_torch_sampler_matches_a_direct_computation():
    logits = (torch.randn(5, 300) * 20).to(torch.bfloat16)
    probs = torch.empty_like(logits)
    entropy, argmax, sample = torch_sampler(logits, probs, 30.0, 0.8)
    z = torch.tanh(logits.float() / 30.0) * 30.0 / 0.8
    p = z.softmax(-1)
    assert torch.allclose(entropy, -(p * p.log()).sum(-1), atol=1e-4)
    assert torch.equal(argmax, z.argmax(-1))
    assert torch.allclose(probs.float(), p, rtol=1e-2, atol=1e-6)  # bf16 probabilities
    assert bool(((sample >= 0) & (sample < 300)).all())


def test_entropy_bound_accepts_the_cheapest_prefix_within_the_budget():
    entropy = torch.tensor([[0.5, 0.01, 0.02, 0.3, 0.04]])
    # sorted: 0.01, 0.02, 0.04, 0.3, 0.5 -> sum - max: 0, 0.01, 0.03, 0.07, 0.37
    assert entropy_bound_accept(entropy, 0.1).tolist() == [[False, True, True, True, True]]
    assert entropy_bound_accept(entropy, 0.0).tolist() == [[False, True, False, False, False]]


def head(tiny):
    return build_head(tiny, vocab_rows=512, dtype=torch.float32, fp8=False, device="cpu")


def test_denoise_head_writes_probabilities_and_a_new_canvas(tiny):
    parts = head_parts(tiny, head(tiny), kind="dg-denoise", concurrency=2, tokens=16, split=False,
                       sampler=torch_sampler, device="cpu")
    x, stop = parts["head"]()
    assert x.shape == (32, 64) and stop.shape == (2,)


def test_split_heads_put_vocabulary_work_apart(tiny):
    for kind in ("dg-denoise", "ar-step", "prefill"):
        parts = head_parts(tiny, head(tiny), kind=kind, concurrency=2, tokens=16, split=True,
                           sampler=torch_sampler, device="cpu")
        assert set(parts) == {"head-vocab", "head-rest"}
        for fn in parts.values():
            fn()


def test_commit_head_computes_no_logits(tiny):
    parts = head_parts(tiny, head(tiny), kind="dg-commit", concurrency=2, tokens=16, split=True,
                       sampler=torch_sampler, device="cpu")
    assert set(parts) == {"head"} and parts["head"]().shape == (32, 64)


def test_ar_head_samples_one_token_per_request_within_the_vocabulary(tiny):
    _, tokens = head_parts(tiny, head(tiny), kind="ar-step", concurrency=3, tokens=1, split=False,
                           sampler=torch_sampler, device="cpu")["head"]()
    assert tokens.shape == (3, 1) and bool(((tokens >= 0) & (tokens < 512)).all())


def test_ar_top_k_draws_only_among_the_largest_logits_and_each_of_them():
    logits = (torch.randn(1, 5000) * 4).to(torch.bfloat16).expand(4000, 5000)
    draws = softcapped_top_k(logits, 30.0).view(-1)
    top = set(logits[0].float().topk(AR_TOP_K).indices.tolist())
    assert set(draws.tolist()) <= top
    probs = torch.softmax(torch.tanh(logits[0].double() / 30.0) * 30.0, dim=-1)
    likely = probs.topk(3).indices  # drawn about as often as their share of the top-k mass says
    share = probs[likely] / probs[list(top)].sum()
    observed = torch.stack([(draws == token).double().mean() for token in likely])
    assert bool(((observed - share).abs() < 5 * (share * (1 - share) / draws.numel()).sqrt() + 1e-3).all())
