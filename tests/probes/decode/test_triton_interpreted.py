"""The decode benchmark's Triton kernels on the CPU, under Triton's interpreter, against torch references.

On GPUs the benchmark checks each kernel before using it (``checks.py``) and ``test_decode_gpu.py`` runs them at
the real shapes; here the same kernels run at tiny shapes wherever Triton is installed, GPU or not. Each case runs
in a child process: Triton picks the interpreter when a kernel is defined, from ``TRITON_INTERPRET``. The fused
layer check is left to the GPU: interpreted, it takes minutes; the sampler runs here on small layouts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

pytest.importorskip("triton")


def release(distribution: str) -> tuple[int, int]:
    major, minor = re.match(r"(\d+)\.(\d+)", metadata.version(distribution)).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


# Triton's interpreter before 3.7 turns scalar arguments into Python ints with int() of a one-element array, which
# NumPy 2.3 and later refuse ("only 0-dimensional arrays can be converted"); Triton 3.7 squeezes the array first.
# The compiled kernels on a GPU are not affected.
pytestmark = pytest.mark.skipif(
    release("triton") < (3, 7) and release("numpy") >= (2, 3),
    reason=f"Triton {metadata.version('triton')}'s interpreter fails with NumPy {metadata.version('numpy')}: "
           "the CPU kernel tests need Triton >= 3.7 (or NumPy < 2.3)")

PRELUDE = """
import torch
import torch.nn.functional as F
torch.manual_seed(0)

def assert_close(got, expected, limit, what):
    error = float((got.double() - expected.double()).norm() / expected.double().norm())
    assert error < limit, f"{what}: relative error {error:.2e}"
"""


def run_interpreted(body: str) -> None:
    script = PRELUDE + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "TRITON_INTERPRET": "1"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_expert_gemms_with_and_without_the_geglu_epilogue_match_per_assignment_matmuls():
    run_interpreted("""
        from dgprofile.probes.decode.checks import check_experts
        for method in ("triton", "triton-geglu"):
            problem = check_experts("cpu", torch.float32, fp8=False, method=method)
            assert problem == "", f"{method}: {problem}"
    """)


def test_split_kv_attention_matches_softmax_attention_over_every_key():
    run_interpreted("""
        from dgprofile.probes.decode.triton_decode_attention import split_kv_attention
        # Spans of three key steps (the online rescaling inside a span), and of one.
        for requests, kv_heads, rows, keys, dim in ((2, 2, 3, 300, 32), (1, 1, 20, 33, 16)):
            q = torch.randn(requests, kv_heads, rows, dim) / dim ** 0.25
            k, v = (torch.randn(requests, kv_heads, keys, dim) / dim ** 0.25 for _ in range(2))
            expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), scale=1.0)
            assert_close(split_kv_attention(q, k, v), expected, 1e-5, f"{rows} rows over {keys} keys")
    """)


def test_attention_probabilities_are_the_masked_softmax_of_the_scores():
    run_interpreted("""
        from dgprofile.probes.decode import triton_fused
        triton_fused.SOFTMAX_BLOCK = 16  # several steps per row, as at the real lengths
        scores = torch.randn(2, 3, 5, 40) * 4
        mask = torch.rand(5, 40) > 0.3
        mask[:, 0] = True
        for m in (None, mask):
            expected = torch.softmax(scores if m is None else scores.masked_fill(~m, float("-inf")), dim=-1)
            got = triton_fused.attention_probabilities(scores, m, torch.float32)
            assert_close(got, expected, 1e-6, "masked" if m is not None else "unmasked")
            if m is not None:
                assert bool((got[..., ~m] == 0).all()), "masked keys got probability"
    """)


def test_qkv_prologue_normalises_heads_writes_the_cache_and_folds_the_queries():
    run_interpreted("""
        from dgprofile.probes.decode.model import RMS_EPS, rms_norm
        from dgprofile.probes.decode.triton_fused import qkv_prologue
        requests, new, heads, kv_heads, dim, cached = 2, 3, 4, 2, 16, 5
        group = heads // kv_heads
        for k_eq_v in (False, True):
            width = (heads + kv_heads * (1 if k_eq_v else 2)) * dim
            qkv = torch.randn(requests * new, width)
            q_norm, k_norm = torch.rand(dim) + 0.5, torch.rand(dim) + 0.5
            k_cache, v_cache = (torch.zeros(requests, kv_heads, cached + new, dim) for _ in range(2))
            q = qkv_prologue(qkv, q_norm, k_norm, k_cache, v_cache, cached=cached, heads=heads, k_eq_v=k_eq_v,
                             eps=RMS_EPS)
            q_ref = rms_norm(qkv[:, :heads * dim].view(requests, new, kv_heads, group, dim), q_norm)
            q_ref = q_ref.permute(0, 2, 3, 1, 4).reshape(requests, kv_heads, group * new, dim)
            k_raw = qkv[:, heads * dim:(heads + kv_heads) * dim].view(requests, new, kv_heads, dim)
            v_raw = k_raw if k_eq_v else qkv[:, (heads + kv_heads) * dim:].view(requests, new, kv_heads, dim)
            assert_close(q, q_ref, 1e-6, "q")
            assert_close(k_cache[:, :, cached:], rms_norm(k_raw, k_norm).transpose(1, 2), 1e-6, "k")
            assert_close(v_cache[:, :, cached:], rms_norm(v_raw, None).transpose(1, 2), 1e-6, "v")
            assert bool((k_cache[:, :, :cached] == 0).all() and (v_cache[:, :, :cached] == 0).all()), \\
                "wrote outside the new slots"
    """)


SAMPLER_CASE = """
    from dgprofile.probes.decode.head import torch_sampler
    from dgprofile.probes.decode.triton_sampler import SamplerLayout, TritonSampler, fixed_reference, row_splits

    # Small steps so that small vocabularies take several spans, steps and groups: 8 spans of 256 tokens, which
    # for 1100 leave the last three past the vocabulary (masked loads) and for 2048 fill it exactly.
    layout = SamplerLayout(lanes=64, group=8, probs_block=64)
    for rows, vocab in ((3, 1100), (2, 2048)):
        assert (fixed_reference(30.0 / TEMPERATURE * 1.4426950408889634, vocab) is None) == ONLINE
        # Peaked rows (most mass on a few tokens) and flat ones (spread over every span).
        logits = (torch.randn(rows, vocab) * torch.tensor([8.0, 0.3, 2.0, 0.05])[:rows, None]).to(torch.bfloat16)
        logits[0, 5] = logits[0, 900] = logits[0].max() + 1  # a tie: the first index wins
        fused_probs = torch.empty_like(logits)
        entropy, argmax, sample = TritonSampler(torch.Generator().manual_seed(3), layout)(
            logits, fused_probs, 30.0, TEMPERATURE)
        reference_entropy, reference_argmax, _ = torch_sampler(logits, torch.empty_like(logits), 30.0, TEMPERATURE)
        assert_close(entropy, reference_entropy, 1e-4, "entropy")
        assert argmax.tolist() == reference_argmax.tolist(), (argmax, reference_argmax)
        exact = torch.softmax(torch.tanh(logits.double() / 30.0) * (30.0 / TEMPERATURE), dim=-1)
        # Within one bf16 step (the interpreter truncates to bf16 where a GPU rounds), above fp32's normal range.
        normal = exact > 1e-30
        off = float(((fused_probs.double() - exact).abs() / exact)[normal].max())
        assert off < 2**-7, f"probabilities off by {off:.1e}"

        # The draw is the inverse CDF of the row's uniform number, taking the tokens span by span, in a span group
        # by group, in a group step by step (lanes of a step in order): exactly, away from fp32 rounding.
        uniform = torch.rand(rows, generator=torch.Generator().manual_seed(3)).double()
        splits = row_splits(rows, vocab, layout.step)
        span = -(-vocab // splits // layout.step) * layout.step
        order = torch.tensor([index for first in range(0, splits * span, span)
                              for group in range(0, layout.lanes, layout.group)
                              for depth in range(first, first + span, layout.lanes)
                              for index in range(depth + group, depth + group + layout.group) if index < vocab])
        through = exact[:, order].cumsum(-1)
        expected = order[(through <= uniform[:, None]).sum(-1).clamp(max=vocab - 1)]
        clear = ((through - uniform[:, None]).abs() > 1e-5).all(-1)
        assert bool(clear.any())
        assert sample[clear].tolist() == expected[clear].tolist(), (sample, expected)
"""


def test_fused_sampler_with_a_fixed_reference_matches_torch_and_draws_by_the_inverse_cdf():
    run_interpreted("TEMPERATURE, ONLINE = 0.8, False\n" + textwrap.dedent(SAMPLER_CASE))


def test_fused_sampler_with_a_running_maximum_matches_torch_and_draws_by_the_inverse_cdf():
    # At T = 0.2, cap/T = 150 spans more powers of two than fp32 holds: the kernels keep a running maximum.
    run_interpreted("TEMPERATURE, ONLINE = 0.2, True\n" + textwrap.dedent(SAMPLER_CASE))
