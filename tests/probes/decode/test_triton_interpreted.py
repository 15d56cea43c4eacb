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


# Triton's interpreter rounds float32 to e4m3 by adding the first dropped bit to the kept mantissa, without carrying
# into the exponent and without ties to even (127.5 becomes 64, 42 becomes 44); the GPU's conversion rounds to
# nearest even, as torch's does. The fp8 tests put torch's conversion in its place.
TORCH_FP8_ROUNDING = """
import numpy as np
import triton.language as tl
from triton.runtime import interpreter

_convert_float = interpreter._convert_float

def _torch_rounding(values, input_dtype, output_dtype, rounding_mode):
    if input_dtype == tl.float32 and output_dtype == tl.float8e4nv:
        as_torch = torch.from_numpy(np.ascontiguousarray(values).view(np.float32))
        return as_torch.to(torch.float8_e4m3fn).view(torch.uint8).numpy()
    return _convert_float(values, input_dtype, output_dtype, rounding_mode)

interpreter._convert_float = _torch_rounding
"""


def run_interpreted(body: str, prelude: str = "") -> None:
    script = PRELUDE + prelude + textwrap.dedent(body)
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
            for tokens in (3, 40, 200):  # 200: blocks of 64 rows, launched with other tiles
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


def test_combine_matches_the_torch_combine_with_tied_logits_an_odd_top_k_and_every_tile_of_expert_rows():
    # Router logits from a handful of values (many ties: each must still take its own rank), top-k 3 (padded to 4
    # slots) and 8, and tiles of 1, 2 and all of a token's expert rows.
    run_interpreted("""
        from dgprofile.probes.decode.model import rms_norm
        from dgprofile.probes.decode.triton_fused import CombineLayout, moe_combine_output
        hidden, experts = 40, 12
        for tokens, top_k in ((1, 3), (6, 8)):
            logits = torch.randint(-2, 3, (tokens, experts)).float() * 0.75
            ids = torch.rand(tokens, experts).argsort(dim=1)[:, :top_k]
            scale = torch.rand(experts) + 0.5
            positions = torch.randperm(tokens * top_k)
            rows = torch.randn(tokens * top_k, hidden)
            dense, r = torch.randn(tokens, hidden), torch.randn(tokens, hidden)
            norms = tuple(torch.rand(hidden) + 0.5 for _ in range(3))
            scalar = torch.tensor([0.7])
            gates = logits.topk(top_k, dim=-1).values.softmax(dim=-1) * scale[ids]
            moe = torch.bmm(gates.unsqueeze(1), rows[positions].view(tokens, top_k, hidden)).squeeze(1)
            h = rms_norm(dense, norms[0]) + rms_norm(moe, norms[1])
            expected = (r + rms_norm(h, norms[2])) * scalar
            for rows_at_once in (1, 2, 8):
                got = moe_combine_output(logits, ids, scale, rows, positions, dense, r, norms, scalar, 1e-6,
                                         layout=CombineLayout(rows_at_once=rows_at_once, num_warps=4))
                assert_close(got, expected, 1e-5, f"{tokens} tokens, top {top_k}, {rows_at_once} rows a tile")
    """)


def test_combine_layouts_are_the_ones_measured_fastest_per_token_count():
    """On the H200 a 4-row tile lost 2048 tokens to a 2-row one (60.1 against 53.8 us) while winning 256."""
    from dgprofile.probes.decode.triton_fused import CombineLayout, combine_layout

    assert combine_layout(1, 8) == CombineLayout(rows_at_once=8, num_warps=16)  # one token: all its rows at once
    assert combine_layout(256, 8) == CombineLayout(rows_at_once=4, num_warps=8)
    assert combine_layout(2048, 8) == CombineLayout(rows_at_once=2, num_warps=8)
    assert combine_layout(1, 3).rows_at_once == 4  # never more slots than the padded top-k


def test_rms_norm_kernel_with_a_weight_a_scale_an_addition_and_strided_rows_matches_torch():
    run_interpreted("""
        from dgprofile.probes.decode.model import RMS_EPS, quantize_rows, rms_norm
        from dgprofile.probes.decode.triton_fused import rms_norm as fused_rms_norm, rms_norm_quantized
        states = torch.randn(3, 4, 300)
        last = states[:, -1]  # strided rows, as the AR head's last tokens
        w, add = torch.rand(300) + 0.5, torch.randn(3, 300)
        assert_close(fused_rms_norm(last, w, RMS_EPS), rms_norm(last, w), 1e-6, "weighted, strided")
        assert_close(fused_rms_norm(last, None, RMS_EPS, scale=53.0, add=add), rms_norm(last * 53.0 + add, None),
                     1e-6, "scaled and added, no weight")
        half = fused_rms_norm(last.to(torch.bfloat16), w.to(torch.bfloat16), RMS_EPS)
        assert half.dtype == torch.bfloat16
        assert_close(half, rms_norm(last.to(torch.bfloat16).float(), w.to(torch.bfloat16).float()), 1e-2, "bf16")
        got = rms_norm_quantized(last, w, RMS_EPS, scale=53.0)
        expected = quantize_rows(rms_norm(last * 53.0, w))
        assert_close(got.scales, expected.scales, 1e-6, "quantised: scales")
        assert_close(got.values.float() * got.scales, expected.values.float() * expected.scales, 1e-2, "quantised")
    """, TORCH_FP8_ROUNDING)


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


def test_torch_s_rounding_to_fp8_replaces_the_interpreter_s():
    run_interpreted("""
        import triton
        import triton.language as tl

        @triton.jit
        def to_fp8(x_ptr, out_ptr, BLOCK: tl.constexpr):
            offs = tl.arange(0, BLOCK)
            tl.store(out_ptr + offs, tl.load(x_ptr + offs).to(out_ptr.dtype.element_ty))

        x = torch.tensor([127.5, 42.0, -42.0, 1.3125, 447.0, 0.0, -3e-3, 1e-9])
        out = torch.empty(8, dtype=torch.float8_e4m3fn)
        to_fp8[(1,)](x, out, BLOCK=8)
        expected = x.to(torch.float8_e4m3fn)
        assert bool((out.view(torch.uint8) == expected.view(torch.uint8)).all()), (out.float(), expected.float())
    """, TORCH_FP8_ROUNDING)


def test_one_kernel_quantisations_match_torch_s_per_token_quantisation():
    run_interpreted("""
        from dgprofile.probes.decode import model, triton_fused
        from dgprofile.probes.decode.model import RMS_EPS, geglu, quantize_rows, rms_norm

        def dequantised(q):
            return q.values.float() * q.scales

        def assert_same_quantisation(got, expected, what, value_limit):
            assert got.values.dtype == torch.float8_e4m3fn and got.scales.shape == (got.values.shape[0], 1), what
            assert_close(got.scales, expected.scales, 1e-6, f"{what}: scales")
            assert_close(dequantised(got), dequantised(expected), value_limit, f"{what}: values")

        x = torch.randn(5, 300) * torch.tensor([[1.0], [1e-3], [30.0], [0.0], [2.0]])  # an all-zero row too
        got = triton_fused.quantize_rows(x)
        expected = quantize_rows(x)
        assert bool((got.values.view(torch.uint8) == expected.values.view(torch.uint8)).all()), "values"
        assert_same_quantisation(got, expected, "quantize_rows", 1e-7)
        assert float(got.values.float().abs().amax(dim=-1)[0]) == model.FP8_MAX  # the row's peak maps to e4m3's

        # Fused producers: their fp32 rows differ from torch's in the last bits, which can move a value across
        # an fp8 rounding step (about 6% apart); a wrong scale or row would be off by far more.
        w = torch.rand(300) + 0.5
        assert_same_quantisation(triton_fused.rms_norm_quantized(x, w, RMS_EPS), quantize_rows(rms_norm(x, w)),
                                 "rms_norm_quantized", 1e-2)
        h = torch.randn(7, 2 * 300)
        assert_same_quantisation(triton_fused.geglu_quantized(h), quantize_rows(geglu(h)), "geglu_quantized", 1e-2)
        a = torch.randn(5, 300)
        weights = (w, torch.rand(300) + 0.5, torch.rand(300) + 0.5)
        r, plain = triton_fused.residual_norms(x, a, w, weights, RMS_EPS)
        r_q, mixed = triton_fused.residual_norms(x, a, w, weights, RMS_EPS, quantized=(True, False, True))
        assert torch.equal(r, r_q) and torch.equal(plain[1], mixed[1]), "unquantised outputs changed"
        for index in (0, 2):
            assert_same_quantisation(mixed[index], quantize_rows(plain[index]), f"residual norm {index}", 1e-2)
    """, TORCH_FP8_ROUNDING)


def test_fp8_down_projection_over_an_inner_width_of_one_and_a_half_steps_masks_its_last_step():
    # fp8's down projection steps 128 columns at a time whatever its inner width (704 at full size: five steps and
    # a masked half); 192 is one whole step and a masked half.
    run_interpreted("""
        from dgprofile.probes.decode.checks import FP8_TOLERANCE, _reference
        from dgprofile.probes.decode.model import Experts, run_experts, uniform_routing
        from dgprofile.probes.decode.triton_moe import expert_tiles
        assert expert_tiles(block_m=32, k_dim=192, fuse_geglu=False, fp8=True).block_k == 128
        experts = Experts(4, 128, 192, dtype=torch.float32, fp8=True, device="cpu")
        routing = uniform_routing(9, 4, 2, "cpu", torch.Generator().manual_seed(1))
        x = torch.randn(9, 128)
        assert_close(run_experts("triton-geglu", experts, x, routing), _reference(experts, x, routing),
                     FP8_TOLERANCE, "width 192")
    """, TORCH_FP8_ROUNDING)


def test_fp8_expert_gemms_take_activations_quantised_per_token_by_their_producer():
    run_interpreted("""
        from dgprofile.probes.decode.checks import FP8_TOLERANCE, _reference
        from dgprofile.probes.decode.model import Experts, quantize_rows, run_experts, uniform_routing
        experts = Experts(4, 128, 64, dtype=torch.float32, fp8=True, device="cpu")
        routing = uniform_routing(9, 4, 2, "cpu", torch.Generator().manual_seed(0))
        x = torch.randn(9, 128) * torch.logspace(-2, 2, 9).view(-1, 1)  # scales far apart
        expected = _reference(experts, x, routing)
        for method in ("triton", "triton-geglu"):
            # Quantised in the GEMM's own kernel, or already (as a fused pre-norm writes them): the GEMM gathers
            # each token's scale with its row.
            got = run_experts(method, experts, x, routing)
            assert_close(got, expected, FP8_TOLERANCE, method)
            assert torch.equal(run_experts(method, experts, quantize_rows(x), routing), got), method
    """, TORCH_FP8_ROUNDING)


def test_a_fused_fp8_layer_quantises_in_its_kernels_and_matches_the_torch_fp8_layer():
    run_interpreted("""
        import sys
        from dataclasses import replace
        sys.path.insert(0, "tests")
        from fakes.tiny_model import tiny_config
        from dgprofile.probes.decode import model
        from dgprofile.probes.decode.checks import FUSED_FP8_TOLERANCE
        tiny = tiny_config()
        # Widths the Triton expert GEMM's column slices divide.
        config = replace(tiny, backbone=replace(tiny.backbone, hidden_size=128, moe_intermediate_size=64))
        layer = model.build_layer(config, "sliding", dtype=torch.bfloat16, fp8=True, device="cpu")
        state = model.layer_state(config, "sliding", kind="dg-denoise", concurrency=2, new=5, context=12,
                                  dtype=torch.bfloat16, device="cpu", generator=torch.Generator().manual_seed(1),
                                  expert_method="triton")
        x = torch.randn(10, 128, dtype=torch.bfloat16)
        expected = model.decoder_layer(config, x, layer, state, 2).float()

        def torch_quantisation(x):
            raise AssertionError("the fused fp8 layer quantised in torch ops")

        model.quantize_rows = torch_quantisation
        got = model.decoder_layer(config, x, layer, replace(state, fused=True), 2).float()
        assert_close(got, expected, FUSED_FP8_TOLERANCE, "fused fp8 layer")
    """, TORCH_FP8_ROUNDING)


def test_an_fp8_head_s_self_conditioning_mlp_takes_rows_its_norm_and_geglu_quantised():
    run_interpreted("""
        import sys
        sys.path.insert(0, "tests")
        from fakes.tiny_model import tiny_config
        from dgprofile.probes.decode import model
        from dgprofile.probes.decode.head import build_head, head_parts, torch_sampler
        config = tiny_config()
        head = build_head(config, vocab_rows=512, dtype=torch.bfloat16, fp8=True, device="cpu")
        outputs = []
        for fused in (False, True):
            torch.manual_seed(0)  # the same canvas and buffers for both
            parts = head_parts(config, head, kind="dg-denoise", concurrency=1, tokens=16, split=False,
                               sampler=torch_sampler, device="cpu", fused=fused)
            if fused:
                def torch_quantisation(x):
                    raise AssertionError("the fused fp8 head quantised in torch ops")
                model.quantize_rows = torch_quantisation
            outputs.append(parts["head"]()[0].float())
        assert_close(outputs[1], outputs[0], 1e-2, "fused fp8 head")
    """, TORCH_FP8_ROUNDING)


def test_a_fused_bf16_head_runs_its_norms_in_triton_and_matches_the_torch_head():
    run_interpreted("""
        import sys
        sys.path.insert(0, "tests")
        from fakes.tiny_model import tiny_config
        from dgprofile.probes.decode import head as head_module
        from dgprofile.probes.decode.head import build_head, head_parts, torch_sampler
        config = tiny_config()
        head = build_head(config, vocab_rows=512, dtype=torch.bfloat16, fp8=False, device="cpu")
        outputs = []
        torch_rms_norm = head_module.rms_norm
        for fused in (False, True):
            torch.manual_seed(0)  # the same canvas and buffers for both
            parts = head_parts(config, head, kind="dg-denoise", concurrency=1, tokens=16, split=False,
                               sampler=torch_sampler, device="cpu", fused=fused)
            ar = head_parts(config, head, kind="ar-step", concurrency=2, tokens=1, split=False,
                            sampler=torch_sampler, device="cpu", fused=fused)
            if fused:
                def torch_norm(x, weight):
                    raise AssertionError("the fused head ran a torch norm")
                head_module.rms_norm = torch_norm
            outputs.append(parts["head"]()[0].float())
            ar["head"]()
        head_module.rms_norm = torch_rms_norm
        assert_close(outputs[1], outputs[0], 1e-2, "fused bf16 head")
    """)


def test_the_fp8_quantisation_check_passes_the_kernels_and_catches_a_wrong_scale():
    run_interpreted("""
        from dgprofile.probes.decode import checks, triton_fused
        from dgprofile.probes.decode.checks import check_fp8_quantization
        from dgprofile.probes.decode.model import QuantizedRows
        from dgprofile.specs.model_config import load_model_config
        checks.ROWS = 3  # interpreted programs run one after another
        config = load_model_config()
        assert check_fp8_quantization("cpu", config) == ""
        geglu_quantized = triton_fused.geglu_quantized

        def scale_off_by_a_tenth(h):
            q = geglu_quantized(h)
            return QuantizedRows(q.values, q.scales * 1.1)

        triton_fused.geglu_quantized = scale_off_by_a_tenth
        problem = check_fp8_quantization("cpu", config)
        assert problem.startswith("GeGLU at width 2112 off by 10.0%"), problem
    """, TORCH_FP8_ROUNDING)


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


def test_gemv_matches_torch_for_bf16_fp16_and_fp8_weights_with_norm_prologue_and_geglu_epilogue():
    # Triton's interpreter multiplies bf16 tensors in tl.dot as their raw bits (fp16 and fp32 are right): the
    # several-row (tensor-core) path is checked here with fp16 activations, the one-row path with bf16 too; the GPU
    # tests run both paths in bf16 at the real shapes.
    run_interpreted("""
        from dgprofile.probes.decode.model import RMS_EPS, rms_norm
        from dgprofile.probes.decode.triton_gemv import gemv

        def geglu(h):
            gate, up = h.chunk(2, dim=-1)
            return F.gelu(gate, approximate="tanh") * up

        width, out = 300, 72  # no multiple of the K step; 36 GeGLU columns and 72 outputs end mid-block
        for rows in (1, 3, 8):
            for dtype in ((torch.bfloat16, torch.float16) if rows == 1 else (torch.float16,)):
                x = torch.randn(rows, width, dtype=dtype)
                norm = (torch.rand(width) + 0.5).to(dtype)
                plain = (torch.randn(out, width) * 0.05).to(dtype)
                fp8 = (torch.randn(out, width) * 0.2).to(torch.float8_e4m3fn)
                scale = torch.rand(1, out) * 0.01 + 0.001
                for name, weight, channel_scale in (("plain", plain, None), ("fp8", fp8, scale)):
                    dequantised = weight.double() * (1.0 if channel_scale is None else channel_scale.double().T)
                    what = f"{rows} rows, {dtype}, {name} weight"
                    for variant, got, expected in (
                            ("", gemv(x, weight, channel_scale), x.double() @ dequantised.T),
                            (" with norm", gemv(x, weight, channel_scale, norm_weight=norm, eps=RMS_EPS),
                             rms_norm(x.double(), norm.double()) @ dequantised.T),
                            (" with GeGLU", gemv(x, weight, channel_scale, geglu=True),
                             geglu(x.double() @ dequantised.T))):
                        assert got.dtype == dtype and got.shape == expected.shape, what + variant
                        assert_close(got, expected, 1e-2, what + variant)
    """)


def test_fused_layer_with_gemv_projections_matches_the_torch_layer_and_reads_fp8_weights_with_bf16_rows():
    run_interpreted("""
        import sys
        from dataclasses import replace
        sys.path.insert(0, "tests")
        from fakes.tiny_model import tiny_config
        from dgprofile.probes.decode import checks
        from dgprofile.probes.decode.model import build_layer
        tiny = tiny_config()
        # Widths the Triton expert GEMM's column slices divide (the fp8 layers' experts).
        config = replace(tiny, backbone=replace(tiny.backbone, hidden_size=128, moe_intermediate_size=64))
        scaled_mm = torch._scaled_mm
        quantised_gemms = []

        def counted_scaled_mm(*args, **kwargs):
            quantised_gemms.append(1)
            return scaled_mm(*args, **kwargs)

        torch._scaled_mm = counted_scaled_mm
        # Several rows only in fp16: the interpreter's tl.dot multiplies bf16 as raw bits.
        for fp8, dtype, concurrencies, experts in ((False, torch.bfloat16, (1,), "padded"),
                                                   (False, torch.float16, (1, 3), "padded"),
                                                   (True, torch.bfloat16, (1,), "triton")):
            layers = {t: build_layer(config, t, dtype=dtype, fp8=fp8, device="cpu") for t in ("sliding", "global")}
            checks.GEMV_CHECK_CONCURRENCIES = concurrencies
            limit = checks.FP8_TOLERANCE if fp8 else checks.BF16_TOLERANCE
            for reference, got in checks.gemv_layer_outputs(config, layers, "cpu", dtype, experts, ("sdpa",)):
                assert got.dtype == dtype
                assert_close(got, reference, limit, f"fp8={fp8} {dtype}")
                # The torch fp8 layer's four projections (q/k/v, output, gate_up, down); the GEMV layer's none.
                assert len(quantised_gemms) == (4 if fp8 else 0), len(quantised_gemms)
                quantised_gemms.clear()
    """, TORCH_FP8_ROUNDING)
