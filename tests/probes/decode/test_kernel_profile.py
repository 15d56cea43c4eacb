"""The per-kernel profile: kernels attributed to the component that launched them, and set against floors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dgprofile.probes.decode.kernel_profile import (
    ComponentFloor,
    KernelProfile,
    PartProfile,
    _device_kernel_times,
    component_floors,
    format_kernel_profile,
    short_kernel_name,
)
from dgprofile.specs.model_config import load_model_config
from dgprofile.specs.pass_cost import head_cost, layer_cost, pass_shape, precision_by_name

# One full-width sliding layer of a bf16 AR step at concurrency 1 on an H200, traced over 3 calls by
# scripts/verify_decode.py --profile-only (only the categories the attribution reads are kept).
H200_TRACE = Path(__file__).parent / "data" / "h200-ar-step-bf16-c1-sliding-layer.trace.json"


def test_triton_kernels_launched_through_the_driver_are_attributed_like_torch_kernels():
    kernels = _device_kernel_times(json.loads(H200_TRACE.read_text()), "sliding layer", 3)
    by_step = {(k.step, k.kernel) for k in kernels}
    assert ("experts.gate_up", "_expert_gemm") in by_step  # Triton, launched with cuLaunchKernelEx
    assert ("experts.down", "_expert_gemm") in by_step
    assert ("attention.norms-cache", "_qkv_prologue") in by_step
    assert ("attention.qkv", "nvjet_sm90_tst_64x8_64x16_2x1_v_bz_TNT") in by_step  # cuBLAS, through the runtime
    assert not [k for k in kernels if k.step == "unlabelled"]
    assert all(k.calls == 1 for k in kernels)
    # The profile printed from the same trace: kernels 0.103 ms per call of the layer.
    assert sum(k.seconds for k in kernels) == pytest.approx(103e-6, rel=0.01)


def test_kernel_names_lose_template_arguments_and_parameter_lists():
    name = ("void at::native::(anonymous namespace)::vectorized_elementwise_kernel<4, "
            "at::native::AddFunctor<float>, std::array<char*, 3> >(int, at::native::AddFunctor<float>, "
            "std::array<char*, 3>)")
    assert short_kernel_name(name) == "at::native::vectorized_elementwise_kernel"
    assert short_kernel_name("_expert_gemm") == "_expert_gemm"


def test_a_cpu_profile_attributes_operators_to_every_component(tiny):
    pytest.importorskip("torch")
    from dgprofile.probes.decode.kernel_profile import format_kernel_profile, profile_kernels, summary_lines

    profile = profile_kernels(device="cpu", kind="ar-step", precision="bf16", concurrency=1, context_tokens=64,
                              bytes_per_s=20e9, flops_per_s=1e11, wide_flops_per_s=1e11, config=tiny)
    assert [p.part for p in profile.parts] == ["sliding layer", "global layer", "head"]
    seconds = {(c.part, c.component): c.seconds for c in profile.components}
    for component in ("attention", "dense-mlp", "router", "experts", "norms"):
        assert seconds[("sliding layer", component)] > 0, component
    assert seconds[("head", "lm-head")] > 0 and seconds[("head", "sampler")] > 0
    assert all(c.floor_seconds > 0 for c in profile.components if c.component in ("attention", "experts"))
    assert len(summary_lines(profile)) == 3
    text = "\n".join(format_kernel_profile(profile))
    assert "sliding layer: replay" in text and "experts" in text


# The H200's measured streaming read and matmul rates (samples/h200-verified_*).
H200_BYTES_PER_S, H200_FP8_FLOPS_PER_S, H200_BF16_FLOPS_PER_S = 4.49e12, 1.2535e15, 6.843e14


def test_an_fp8_profile_floors_the_lm_head_and_self_conditioning_at_the_bf16_rate():
    # The CPU cannot run an fp8 profile (no native fp8): the floors are checked on the costs it sets them from.
    config = load_model_config()
    shape = pass_shape(config, kind="dg-denoise", concurrency=1, context_tokens=4096)
    fp8 = precision_by_name("fp8")
    head = component_floors(head_cost(config, shape, fp8), bytes_per_s=H200_BYTES_PER_S,
                            flops_per_s=H200_FP8_FLOPS_PER_S, wide_flops_per_s=H200_BF16_FLOPS_PER_S)
    lm_head = head_cost(config, shape, fp8)["lm-head"]
    assert head["lm-head"] == pytest.approx(lm_head.matmul_flops / H200_BF16_FLOPS_PER_S)  # compute-bound: 553 us
    layer = layer_cost(config, "sliding", shape, fp8)
    floors = component_floors(layer, bytes_per_s=H200_BYTES_PER_S, flops_per_s=H200_FP8_FLOPS_PER_S,
                              wide_flops_per_s=H200_BF16_FLOPS_PER_S)
    dense = layer["dense-mlp"]
    assert floors["dense-mlp"] == pytest.approx(max(dense.total_bytes / H200_BYTES_PER_S,
                                                    dense.matmul_flops / H200_FP8_FLOPS_PER_S))
    attention = layer["attention"]
    assert floors["attention"] == pytest.approx(max(
        attention.total_bytes / H200_BYTES_PER_S,
        attention.matmul_flops / H200_FP8_FLOPS_PER_S + attention.attention_flops / H200_BF16_FLOPS_PER_S))


def profile(precision, flops_per_s, wide_flops_per_s):
    return KernelProfile(device="cuda", kind="dg-denoise", precision=precision, concurrency=1, context_tokens=4096,
                         bytes_per_s=H200_BYTES_PER_S, flops_per_s=flops_per_s, wide_flops_per_s=wide_flops_per_s,
                         parts=(PartProfile(part="head", replay_seconds=2e-3, kernel_seconds=1.9e-3,
                                            floor_seconds=1.3e-3),),
                         components=(ComponentFloor(part="head", component="lm-head", seconds=6e-4, bytes_moved=1.5e9,
                                                    flops=3.8e11, floor_seconds=5.5e-4),),
                         kernels=())


def test_an_fp8_profile_header_names_both_rates_and_a_bf16_one_its_own():
    fp8 = format_kernel_profile(profile("fp8", H200_FP8_FLOPS_PER_S, H200_BF16_FLOPS_PER_S))[0]
    assert "floors at 4.49 TB/s, fp8 matmuls 1254 TFLOP/s, 16-bit FLOPs" in fp8 and "684 TFLOP/s)" in fp8
    bf16 = format_kernel_profile(profile("bf16", H200_BF16_FLOPS_PER_S, H200_BF16_FLOPS_PER_S))[0]
    assert bf16.endswith("(floors at 4.49 TB/s, 684 TFLOP/s)")
