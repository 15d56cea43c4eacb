"""The decode benchmark's Triton kernels on the CPU, under Triton's interpreter, against torch references.

On GPUs the benchmark checks each kernel before using it (``checks.py``) and ``test_decode_gpu.py`` runs them at
the real shapes; here the same kernels run at tiny shapes wherever Triton is installed, GPU or not. Each case runs
in a child process: Triton picks the interpreter when a kernel is defined, from ``TRITON_INTERPRET``. The fused
layer check and the sampler check are left to the GPU: interpreted, they take minutes.
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


def test_expert_gemms_of_a_width_split_for_tensor_parallelism_match_per_assignment_matmuls():
    # 704 / 2 = 352 columns is no multiple of the kernels' column slices (64 and 128): on a 2x H200 the split
    # layer's Triton experts refused it.
    run_interpreted("""
        from dgprofile.probes.decode.checks import _reference, _relative_error
        from dgprofile.probes.decode.model import Experts, run_experts, uniform_routing
        experts = Experts(8, 256, 96, dtype=torch.float32, fp8=False, device="cpu")
        for method in ("triton", "triton-geglu"):
            for tokens in (3, 40):
                routing = uniform_routing(tokens, 8, 2, "cpu", torch.Generator().manual_seed(tokens))
                x = torch.randn(tokens, 256)
                error = _relative_error(run_experts(method, experts, x, routing), _reference(experts, x, routing))
                assert error < 1e-4, f"{method}, {tokens} tokens: relative error {error:.2e}"
    """)


def test_combine_split_around_an_all_reduce_gives_the_whole_combine():
    # Two GPUs' partial [dense | gated experts] sums, added as the all-reduce adds them, then the output norms.
    run_interpreted("""
        from dgprofile.probes.decode.triton_fused import moe_combine_output, moe_output_norms, moe_partial_sums
        tokens, hidden, experts, top_k = 5, 48, 6, 2
        logits = torch.randn(tokens, experts)
        ids = logits.topk(top_k, dim=-1).indices
        scale = torch.rand(experts) + 0.5
        positions = torch.randperm(tokens * top_k)
        norms = tuple(torch.rand(hidden) + 0.5 for _ in range(3))
        scalar, r = torch.tensor([0.7]), torch.randn(tokens, hidden)
        halves = [(torch.randn(tokens * top_k, hidden), torch.randn(tokens, hidden)) for _ in range(2)]
        rows, dense = (halves[0][i] + halves[1][i] for i in range(2))
        whole = moe_combine_output(logits, ids, scale, rows, positions, dense, r, norms, scalar, 1e-6)
        summed = sum(moe_partial_sums(logits, ids, scale, y, positions, d) for y, d in halves)
        assert_close(moe_output_norms(summed, r, norms, scalar, 1e-6), whole, 1e-5, "split combine")
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


def test_flash_attention_matches_softmax_attention_over_every_key():
    run_interpreted("""
        from dgprofile.probes.decode.triton_flash_attention import FlashTiles, flash_attention
        # Several KV heads with groups of query rows folded in; rows and keys no multiple of the tiles (a partial
        # last key step, masked rows); the head dimensions scaled down from 256 and 512, the latter with its value
        # columns split across programs as at 512.
        cases = ((2, 3, 2 * 10, 45, 32, None), (1, 2, 4 * 9, 50, 64, FlashTiles(16, 16, 32, 4, 1)),
                 (1, 1, 16, 32, 16, None))
        for requests, kv_heads, rows, keys, dim, tiles in cases:
            q = torch.randn(requests, kv_heads, rows, dim) / dim ** 0.25 * 2
            k, v = (torch.randn(requests, kv_heads, keys, dim) for _ in range(2))
            k = k / dim ** 0.25 * 2
            expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), scale=1.0)
            what = f"{kv_heads} KV heads x {rows} rows over {keys} keys, dim {dim}"
            assert_close(flash_attention(q, k, v, tiles), expected, 1e-5, what)
    """)


def test_flash_attention_is_checked_on_the_shapes_the_benchmark_offers_it_for():
    run_interpreted("""
        from dataclasses import replace
        from dgprofile.probes.decode.checks import check_attention, check_config
        from dgprofile.specs.model_config import load_model_config
        # Narrow enough to interpret in seconds: head dims 32 and 64, 4 query heads over 2 and 1 KV heads.
        config = check_config(load_model_config())
        backbone = config.backbone
        small = replace(config, backbone=replace(
            backbone, hidden_size=64, num_attention_heads=4,
            sliding_attention=replace(backbone.sliding_attention, num_kv_heads=2, head_dim=32),
            global_attention=replace(backbone.global_attention, num_kv_heads=1, head_dim=64)))
        assert check_attention("cpu", torch.float32, "flash", small) == ""
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
