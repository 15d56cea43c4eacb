"""On a real CUDA GPU: the fast paths agree with references, and a quick run at the real shapes fits its budget."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.gpu

from dgprofile.probes.decode.checks import check_experts, check_fp8_linear  # noqa: E402
from dgprofile.probes.decode.head import torch_sampler  # noqa: E402
from dgprofile.probes.decode.model import (  # noqa: E402
    build_layer,
    decoder_layer,
    layer_state,
    mixture_of_experts,
    uniform_routing,
)
from dgprofile.specs.model_config import load_model_config  # noqa: E402


@pytest.mark.parametrize("method", ["grouped", "padded", "triton", "triton-geglu"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_expert_methods_match_per_assignment_matmuls(method, dtype):
    assert check_experts("cuda", dtype, fp8=False, method=method) == ""


@pytest.mark.parametrize("method", ["grouped", "triton"])
def test_fp8_paths_match_their_dequantised_references(method):
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("no native fp8 before sm_89")
    assert check_fp8_linear("cuda") == ""
    assert check_experts("cuda", torch.bfloat16, fp8=True, method=method) == ""


def _replays_in_a_cuda_graph_as_it_ran(call, ran: torch.Tensor) -> None:
    """``call`` captured in a CUDA graph gives again what it gave eagerly (``ran``), the output zeroed first."""
    from dgprofile.probes.harness import graph_or_eager

    outputs = []
    prepared = graph_or_eager(lambda: outputs.append(call()))
    assert prepared.fallback_reason is None
    outputs[-1].zero_()
    prepared.call()
    torch.cuda.synchronize()
    assert float((outputs[-1].float() - ran.float()).norm() / ran.float().norm()) < 1e-3



def test_fused_sampler_matches_the_torch_sampler():
    from dgprofile.probes.decode.triton_sampler import TritonSampler, check_against_torch

    assert check_against_torch(TritonSampler(), torch_sampler, "cuda") == ""


@pytest.mark.parametrize("tokens", [1, 8, 256, 2048])
def test_expert_methods_agree_at_the_real_width(tokens):
    config = load_model_config()
    layer = build_layer(config, "sliding", dtype=torch.bfloat16, fp8=False, device="cuda")
    routing = uniform_routing(tokens, 128, 8, "cuda", torch.Generator().manual_seed(1))
    r = torch.randn(tokens, 2816, device="cuda", dtype=torch.bfloat16)
    expected = mixture_of_experts(config, r, layer, routing, "grouped").float()
    for method in ("padded", "triton"):
        got = mixture_of_experts(config, r, layer, routing, method).float()
        assert float((got - expected).norm() / expected.norm()) < 2e-2, method


@pytest.mark.parametrize("kind", ["dg-denoise", "dg-commit", "ar-step"])
def test_a_global_layer_runs_at_the_real_shapes(kind):
    config = load_model_config()
    new = 1 if kind == "ar-step" else 256
    layer = build_layer(config, "global", dtype=torch.bfloat16, fp8=False, device="cuda")
    state = layer_state(config, "global", kind=kind, concurrency=2, new=new, context=4096, dtype=torch.bfloat16,
                        device="cuda", generator=torch.Generator().manual_seed(0))
    out = decoder_layer(config, torch.randn(2 * new, 2816, device="cuda", dtype=torch.bfloat16), layer, state, 2)
    assert out.shape == (2 * new, 2816) and bool(torch.isfinite(out).all())


def test_quick_bench_at_the_real_shapes_finishes_in_ten_seconds():
    from dgprofile.app.decode_passes import time_decode_passes
    from dgprofile.probes.measure_limits import measure_limits

    limits = measure_limits("cuda", quick=True)
    started = time.perf_counter()
    result = time_decode_passes(device="cuda", limits=limits, quick=True)
    elapsed = time.perf_counter() - started
    kinds = {m.pass_kind for m in result.passes if m.measured and m.precision == "bf16"}
    assert kinds == {"prefill", "ar-step", "dg-denoise", "dg-commit"}
    assert not any(r.startswith("failed") for r in result.reductions), result.reductions
    assert elapsed < 10.0, f"quick decode bench took {elapsed:.1f} s"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fused_layer_and_matmul_attention_match_the_torch_layer(dtype):
    from dgprofile.probes.decode.checks import check_attention, check_fused_layer

    methods = ("triton", "triton-geglu", "padded") + (("grouped",) if dtype == torch.bfloat16 else ())
    assert check_fused_layer("cuda", dtype, methods, attention_methods=("sdpa", "matmul", "split-kv")) == ""
    assert check_attention("cuda", dtype, "matmul") == ""
    assert check_attention("cuda", dtype, "split-kv") == ""


def test_split_kv_attention_matches_sdpa_at_the_real_ar_shapes():
    from dgprofile.probes.decode.triton_decode_attention import split_kv_attention

    for kv_heads, group, dim, keys in ((8, 2, 256, 1025), (2, 8, 512, 4097)):
        q = torch.randn(3, kv_heads, group, dim, device="cuda", dtype=torch.bfloat16) / dim ** 0.25
        k, v = (torch.randn(3, kv_heads, keys, dim, device="cuda", dtype=torch.bfloat16) / dim ** 0.25
                for _ in range(2))
        expected = torch.nn.functional.scaled_dot_product_attention(q.double(), k.double(), v.double(), scale=1.0)
        got = split_kv_attention(q, k, v).double()
        assert float((got - expected).norm() / expected.norm()) < 1e-2


def test_fused_layer_with_matmul_attention_replays_in_a_cuda_graph_as_it_runs_eagerly():
    from dataclasses import replace


    config = load_model_config()
    layer = build_layer(config, "global", dtype=torch.bfloat16, fp8=False, device="cuda")
    state = layer_state(config, "global", kind="dg-denoise", concurrency=1, new=256, context=4096,
                        dtype=torch.bfloat16, device="cuda", generator=torch.Generator().manual_seed(0),
                        expert_method="triton-geglu", attention_method="matmul", fused=True)
    x = torch.randn(256, 2816, device="cuda", dtype=torch.bfloat16)
    eager = decoder_layer(config, x, layer, state, 1).clone()
    _replays_in_a_cuda_graph_as_it_ran(lambda: decoder_layer(config, x, layer, replace(state), 1), eager)


def test_geglu_epilogue_expert_gemm_matches_per_assignment_matmuls():
    assert check_experts("cuda", torch.bfloat16, fp8=False, method="triton-geglu") == ""
    if torch.cuda.get_device_capability() >= (8, 9):
        assert check_experts("cuda", torch.bfloat16, fp8=True, method="triton-geglu") == ""


@pytest.mark.parametrize("layer_type", ["sliding", "global"])
def test_fused_layer_at_the_real_width_matches_the_torch_layer(layer_type):
    from dataclasses import replace

    config = load_model_config()
    layer = build_layer(config, layer_type, dtype=torch.bfloat16, fp8=False, device="cuda")
    state = layer_state(config, layer_type, kind="dg-denoise", concurrency=1, new=256, context=4096,
                        dtype=torch.bfloat16, device="cuda", generator=torch.Generator().manual_seed(0),
                        expert_method="triton-geglu")
    x = torch.randn(256, 2816, device="cuda", dtype=torch.bfloat16)
    expected = decoder_layer(config, x, layer, replace(state, expert_method="grouped"), 1).float()
    got = decoder_layer(config, x, layer, replace(state, fused=True, attention_method="matmul"), 1).float()
    assert float((got - expected).norm() / expected.norm()) < 2e-2


@pytest.mark.parametrize("layer_type", ["sliding", "global"])
def test_fused_tensor_parallel_layer_split_over_two_shards_sums_to_the_fused_layer(layer_type):
    # Two shards on one GPU, their all-reduces done by hand: each half's partial sums added, as NCCL would.
    from dataclasses import replace

    from dgprofile.probes.decode.tensor_parallel import (
        shard_config,
        shard_layer,
        shard_state,
        tensor_parallel_layer,
    )

    config = load_model_config()
    layer = build_layer(config, layer_type, dtype=torch.bfloat16, fp8=False, device="cuda")
    state = layer_state(config, layer_type, kind="dg-denoise", concurrency=1, new=256, context=4096,
                        dtype=torch.bfloat16, device="cuda", generator=torch.Generator().manual_seed(0),
                        expert_method="triton-geglu", attention_method="matmul", fused=True)
    x = torch.randn(256, 2816, device="cuda", dtype=torch.bfloat16)
    expected = decoder_layer(config, x, layer, replace(state, fused=False, expert_method="grouped"), 1).float()
    shard = shard_config(config, 2)
    shards = [(shard_layer(config, layer, rank, 2), shard_state(config, state, layer_type, rank, 2))
              for rank in range(2)]
    sums: list[torch.Tensor] = []  # the all-reduces settled so far, in the order a layer calls them

    def run(rank: int, partials: dict[int, torch.Tensor]) -> torch.Tensor:
        calls = iter(range(2))

        def reduce(tensor: torch.Tensor) -> torch.Tensor:
            index = next(calls)
            if index < len(sums):
                return sums[index]
            partials.setdefault(rank, tensor.clone())  # the first all-reduce not yet settled
            return tensor

        part, part_state = shards[rank]
        return tensor_parallel_layer(shard, x, part, part_state, 1, reduce)

    for _ in range(2):  # each round settles one all-reduce: every shard's partial sum, added
        partials: dict[int, torch.Tensor] = {}
        for rank in range(2):
            run(rank, partials)
        sums.append(partials[0] + partials[1])
    got = run(0, {}).float()
    assert float((got - expected).norm() / expected.norm()) < 2e-2


LAUNCH_THE_CHECKED_SAMPLER = """
import torch
from dgprofile.probes.decode.triton_sampler import TritonSampler
logits = torch.randn(6, 50_000, device="cuda").to(torch.bfloat16)  # the shape the worker compiled
TritonSampler()(logits, torch.empty_like(logits), 30.0, 0.8)
torch.cuda.synchronize()
"""


def test_kernels_a_compile_only_worker_compiled_are_found_in_the_cache_by_the_real_launch(tmp_path):
    # The launch runs in a fresh process: in this one, kernels an earlier test launched at the same shapes would
    # be found in Triton's memory and nothing would be looked up on disk. Nothing new in the cache after it means
    # the worker's kernels are under the launch's keys, and so are their launchers (Triton up to 3.6 builds a C
    # launcher per kernel signature at its first launch; see ``precompile.build_launcher``).
    import subprocess

    from dgprofile.probes.decode.precompile import target_of, worker_command

    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TRITON_CACHE_DIR": str(tmp_path)}
    subprocess.run(worker_command("sampler", quick=True), env=environment, input=target_of("cuda").encode(),
                   check=True)
    compiled = _kernels_and_launchers(tmp_path)
    assert compiled
    environment = {**os.environ, "TRITON_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", LAUNCH_THE_CHECKED_SAMPLER], env=environment, check=True)
    added = {entry: sorted(os.listdir(tmp_path / entry)) for entry in _kernels_and_launchers(tmp_path) - compiled}
    assert not added


def _kernels_and_launchers(cache: Path) -> set[str]:
    """The Triton cache's entries, less the driver module (``cuda_utils``) that a process's first Triton launch
    builds whatever the worker compiled."""
    return {entry.name for entry in cache.iterdir()
            if not any(name.startswith("cuda_utils") for name in os.listdir(entry))}


def test_kernel_profile_attributes_the_triton_kernels_to_their_components():
    from dgprofile.probes.decode.kernel_profile import profile_kernels

    profile = profile_kernels(device="cuda", kind="dg-denoise", precision="bf16", concurrency=1,
                              context_tokens=1024, bytes_per_s=4e12, flops_per_s=6e14, wide_flops_per_s=6e14)
    seconds = {(c.part, c.component): c.seconds for c in profile.components}
    assert seconds[("sliding layer", "experts")] > 0  # the Triton expert GEMMs or torch's grouped GEMM
    assert seconds[("head", "sampler")] > 0
    for part in profile.parts:  # every kernel is inside a component range, and no kernel is counted twice
        assert 0 < part.kernel_seconds <= part.replay_seconds * 1.2
    assert not [k for k in profile.kernels if k.component == "unlabelled"]


def _needs_fp8() -> None:
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("no native fp8 before sm_89")


def test_one_kernel_quantisation_gives_torch_s_scales_and_e4m3_values():
    from dgprofile.probes.decode import triton_fused
    from dgprofile.probes.decode.checks import check_fp8_quantization
    from dgprofile.probes.decode.model import quantize_rows

    _needs_fp8()
    assert check_fp8_quantization("cuda", load_model_config()) == ""  # every quantising kernel
    for width in (704, 2112, 2816, 4096, 8192):  # every fp8 GEMM input of the model
        x = torch.randn(37, width, device="cuda", dtype=torch.bfloat16)
        got, expected = triton_fused.quantize_rows(x), quantize_rows(x)
        assert torch.allclose(got.scales, expected.scales, rtol=1e-6, atol=0), width
        differing = float((got.values.view(torch.uint8) != expected.values.view(torch.uint8)).float().mean())
        assert differing < 1e-3, f"width {width}: {differing:.2%} of the e4m3 values differ from torch's"


def test_fused_fp8_layer_check_passes_with_every_method():
    from dgprofile.probes.decode.checks import check_fused_layer

    _needs_fp8()
    assert check_fused_layer("cuda", torch.bfloat16, ("grouped", "triton", "triton-geglu"),
                             attention_methods=("sdpa", "matmul", "split-kv"), fp8=True) == ""


@pytest.mark.parametrize("kind", ["dg-denoise", "ar-step"])
@pytest.mark.parametrize("layer_type", ["sliding", "global"])
@pytest.mark.parametrize("method", ["grouped", "triton", "triton-geglu"])
def test_fused_fp8_layer_at_the_real_width_matches_the_torch_fp8_layer_and_replays_in_a_cuda_graph(
        kind, layer_type, method):
    from dataclasses import replace

    from dgprofile.probes.decode.checks import FUSED_FP8_TOLERANCE
    from dgprofile.probes.decode.model import grouped_mm_available

    _needs_fp8()
    if method == "grouped" and not grouped_mm_available("cuda", fp8=True):
        pytest.skip("this torch has no fp8 grouped GEMM")
    config = load_model_config()
    new = 1 if kind == "ar-step" else 256
    layer = build_layer(config, layer_type, dtype=torch.bfloat16, fp8=True, device="cuda")
    state = layer_state(config, layer_type, kind=kind, concurrency=1, new=new, context=4096,
                        dtype=torch.bfloat16, device="cuda", generator=torch.Generator().manual_seed(0),
                        expert_method=method)
    x = torch.randn(new, 2816, device="cuda", dtype=torch.bfloat16)
    expected = decoder_layer(config, x, layer, state, 1).float()
    fused = replace(state, fused=True)
    got = decoder_layer(config, x, layer, fused, 1).float()
    assert float((got - expected).norm() / expected.norm()) < FUSED_FP8_TOLERANCE
    _replays_in_a_cuda_graph_as_it_ran(lambda: decoder_layer(config, x, layer, replace(fused), 1), got)


def test_fused_sampler_draws_from_the_softmax_with_a_running_maximum_and_at_the_real_width():
    from dgprofile.probes.decode.triton_sampler import TritonSampler, check_sampling_distribution

    # T = 0.3: cap/T is too wide for one fixed reference, so the kernels keep a running maximum.
    assert check_sampling_distribution(TritonSampler(), "cuda", shape=(512, 50_000), calls=32, temperature=0.3) == ""
    assert check_sampling_distribution(TritonSampler(), "cuda", shape=(256, 262_144), calls=64, temperature=0.8) == ""


@pytest.mark.parametrize("tokens", [1, 8, 256, 2048])
def test_combine_and_input_norm_kernels_match_torch_at_the_real_width(tokens):
    from dgprofile.probes.decode.model import RMS_EPS, rms_norm
    from dgprofile.probes.decode.triton_fused import combine_layout, moe_combine_output
    from dgprofile.probes.decode.triton_fused import rms_norm as fused_rms_norm

    hidden, experts, top_k = 2816, 128, 8
    generator = torch.Generator(device="cuda").manual_seed(tokens)

    def normal(*shape):
        return torch.randn(*shape, device="cuda", generator=generator).to(torch.bfloat16)

    logits, rows, dense, r = normal(tokens, experts), normal(tokens * top_k, hidden), normal(tokens, hidden), \
        normal(tokens, hidden)
    ids = torch.rand(tokens, experts, device="cuda", generator=generator).argsort(dim=1)[:, :top_k].contiguous()
    positions = torch.randperm(tokens * top_k, device="cuda", generator=generator)
    scale, scalar = normal(experts).abs() + 0.5, normal(1).abs() + 0.5
    w1, w2, wff = (normal(hidden).abs() + 0.5 for _ in range(3))
    gates = logits.float().topk(top_k, dim=-1).values.softmax(dim=-1) * scale.float()[ids]
    moe = torch.bmm(gates.unsqueeze(1), rows.float()[positions].view(tokens, top_k, hidden)).squeeze(1)
    h = rms_norm(dense.float(), w1.float()) + rms_norm(moe, w2.float())
    expected = (r.float() + rms_norm(h, wff.float())) * scalar.float()
    got = moe_combine_output(logits, ids, scale, rows, positions, dense, r, (w1, w2, wff), scalar, RMS_EPS).float()
    layout = combine_layout(tokens, top_k)
    assert float((got - expected).norm() / expected.norm()) < 1e-2, layout
    normed = fused_rms_norm(dense, w1, RMS_EPS).float()
    assert float((normed - rms_norm(dense.float(), w1.float())).norm() / normed.norm()) < 1e-2


def test_fused_bf16_ar_step_layer_matches_the_torch_layer_and_replays_in_a_cuda_graph():
    from dataclasses import replace


    config = load_model_config()
    layer = build_layer(config, "sliding", dtype=torch.bfloat16, fp8=False, device="cuda")
    state = layer_state(config, "sliding", kind="ar-step", concurrency=1, new=1, context=4096,
                        dtype=torch.bfloat16, device="cuda", generator=torch.Generator().manual_seed(0),
                        expert_method="triton-geglu")
    x = torch.randn(1, 2816, device="cuda", dtype=torch.bfloat16)
    expected = decoder_layer(config, x, layer, state, 1).float()
    fused = replace(state, fused=True, attention_method="split-kv")
    got = decoder_layer(config, x, layer, fused, 1).float()
    assert float((got - expected).norm() / expected.norm()) < 2e-2
    _replays_in_a_cuda_graph_as_it_ran(lambda: decoder_layer(config, x, layer, replace(fused), 1), got)


def _ar_projections() -> list[tuple[str, int, int, str]]:
    """(name, out, in, fused variant) of the AR step's projections at the real shapes."""
    b = load_model_config().backbone
    found = []
    for layer_type in ("sliding", "global"):
        attn = b.attention(layer_type)
        q_width = b.num_attention_heads * attn.head_dim
        kv_width = attn.num_kv_heads * attn.head_dim * (1 if attn.k_eq_v else 2)
        found += [(f"{layer_type} qkv", q_width + kv_width, b.hidden_size, "norm"),
                  (f"{layer_type} out", b.hidden_size, q_width, "")]
    return found + [("dense gate_up", 2 * b.intermediate_size, b.hidden_size, "geglu"),
                    ("dense down", b.hidden_size, b.intermediate_size, ""),
                    ("router", b.num_experts, b.hidden_size, "")]


@pytest.mark.parametrize("fp8", [False, True])
@pytest.mark.parametrize("rows", [1, 3, 8, 16])
def test_gemv_matches_torch_at_the_real_ar_shapes(rows, fp8):
    from dgprofile.probes.decode.model import Linear, geglu, rms_norm

    if fp8:
        _needs_fp8()
    for name, out_features, in_features, fused in _ar_projections():
        linear = Linear(out_features, in_features, dtype=torch.bfloat16, fp8=fp8, device="cuda")
        weight = linear.weight.double() * (linear.scale.double().T if linear.scale is not None else 1.0)
        x = torch.randn(rows, in_features, device="cuda", dtype=torch.bfloat16)
        norm = (torch.rand(in_features, device="cuda") + 0.5).to(torch.bfloat16)
        cases = [("", linear.gemv(x), x.double() @ weight.T)]
        if fused == "norm":
            cases.append((" with norm", linear.gemv(x, norm_weight=norm),
                          rms_norm(x.double(), norm.double()) @ weight.T))
        if fused == "geglu":
            cases.append((" with GeGLU", linear.gemv(x, geglu=True), geglu(x.double() @ weight.T)))
        for variant, got, expected in cases:
            error = float((got.double() - expected).norm() / expected.norm())
            assert got.dtype == torch.bfloat16 and error < 1e-2, f"{name}{variant}: {error:.2e}"


@pytest.mark.parametrize("fp8", [False, True])
def test_gemv_layer_check_passes(fp8):
    from dgprofile.probes.decode.checks import check_gemv_layer

    if fp8:
        _needs_fp8()
    assert check_gemv_layer("cuda", torch.bfloat16, ("triton-geglu",), attention_methods=("sdpa", "split-kv"),
                            fp8=fp8) == ""


@pytest.mark.parametrize("fp8", [False, True])
@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("layer_type", ["sliding", "global"])
def test_fused_layer_with_gemv_at_the_real_width_matches_the_torch_layer_and_replays_in_a_cuda_graph(
        layer_type, concurrency, fp8):
    from dataclasses import replace

    from dgprofile.probes.decode.checks import BF16_TOLERANCE, FP8_TOLERANCE

    if fp8:
        _needs_fp8()
    config = load_model_config()
    layer = build_layer(config, layer_type, dtype=torch.bfloat16, fp8=fp8, device="cuda")
    state = layer_state(config, layer_type, kind="ar-step", concurrency=concurrency, new=1, context=4096,
                        dtype=torch.bfloat16, device="cuda", generator=torch.Generator().manual_seed(0),
                        expert_method="triton-geglu", attention_method="split-kv")
    x = torch.randn(concurrency, 2816, device="cuda", dtype=torch.bfloat16)
    expected = decoder_layer(config, x, layer, state, concurrency).float()
    gemv_state = replace(state, fused=True, projection_method="gemv")
    got = decoder_layer(config, x, layer, gemv_state, concurrency).float()
    error = float((got - expected).norm() / expected.norm())
    assert error < (FP8_TOLERANCE if fp8 else BF16_TOLERANCE), f"{error:.2e}"
    _replays_in_a_cuda_graph_as_it_ran(lambda: decoder_layer(config, x, layer, gemv_state, concurrency), got)


def test_fused_bf16_denoise_head_matches_the_torch_head_at_the_real_width():
    from dgprofile.probes.decode.head import build_head, head_parts, torch_sampler

    config = load_model_config()
    head = build_head(config, vocab_rows=config.backbone.vocab_size // 16, dtype=torch.bfloat16, fp8=False,
                      device="cuda")
    outputs = []
    for fused in (False, True):
        torch.manual_seed(0)  # the same canvas and buffers for both
        parts = head_parts(config, head, kind="dg-denoise", concurrency=1, tokens=256, split=False,
                           sampler=torch_sampler, device="cuda", fused=fused)
        outputs.append(parts["head"]()[0].float())  # the next step's input: self-conditioning MLP and norms
    assert float((outputs[1] - outputs[0]).norm() / outputs[0].norm()) < 2e-2
