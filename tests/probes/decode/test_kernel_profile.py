"""The per-kernel profile: kernels attributed to the component that launched them, and set against floors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dgprofile.probes.decode.kernel_profile import _device_kernel_times, short_kernel_name

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
                              bytes_per_s=20e9, flops_per_s=1e11, config=tiny)
    assert [p.part for p in profile.parts] == ["sliding layer", "global layer", "head"]
    seconds = {(c.part, c.component): c.seconds for c in profile.components}
    for component in ("attention", "dense-mlp", "router", "experts", "norms"):
        assert seconds[("sliding layer", component)] > 0, component
    assert seconds[("head", "lm-head")] > 0 and seconds[("head", "sampler")] > 0
    assert all(c.floor_seconds > 0 for c in profile.components if c.component in ("attention", "experts"))
    assert len(summary_lines(profile)) == 3
    text = "\n".join(format_kernel_profile(profile))
    assert "sliding layer: replay" in text and "experts" in text
