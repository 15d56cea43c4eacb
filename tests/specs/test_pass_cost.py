"""Pass costs reproduce figures derived by hand from the released config (FLOPs per pass, weight sizes, KV cache
per sequence) and behave sensibly at the edges."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dgprofile.specs.model_config import load_model_config
from dgprofile.specs.pass_cost import (
    COMPONENTS,
    PRECISIONS,
    QUANTISED_COMPONENTS,
    attention_pairs,
    component_roofline_seconds,
    dg_request_buffers_bytes,
    expected_distinct_experts,
    kv_cache_bytes,
    layer_weight_bytes,
    pass_cost,
    pass_shape,
    precision_by_name,
    weights_bytes,
)

GIB, MIB = 2**30, 2**20


@pytest.fixture(scope="module")
def config():
    return load_model_config()


def denoise(config, context_tokens=0, concurrency=1, precision="bf16"):
    return pass_cost(config, kind="dg-denoise", precision=precision, concurrency=concurrency,
                     context_tokens=context_tokens)


def test_expected_distinct_experts_formula():
    assert expected_distinct_experts(128, 8, 1) == pytest.approx(8.0)
    assert expected_distinct_experts(128, 8, 0) == 0.0
    assert expected_distinct_experts(128, 8, 2) == pytest.approx(128 * (1 - (120 / 128) ** 2))
    assert expected_distinct_experts(128, 8, 256) == pytest.approx(128.0, abs=1e-4)


def test_denoise_step_at_empty_context_is_2_34_tflop_of_matmul_and_2_38_in_all(config):
    cost = denoise(config)
    assert cost.matmul_flops / 1e12 == pytest.approx(2.34, abs=0.005)
    assert cost.total_flops / 1e12 == pytest.approx(2.38, abs=0.005)
    assert cost.breakdown["lm-head"].matmul_flops / 1e12 == pytest.approx(0.38, abs=0.005)
    assert cost.breakdown["self-conditioning"].matmul_flops / 1e12 == pytest.approx(0.39, abs=0.01)


@pytest.mark.parametrize(("context", "total_tflop"), [(4096, 2.66), (32768, 3.86), (131072, 7.99)])
def test_denoise_step_totals_grow_with_context(config, context, total_tflop):
    assert denoise(config, context).total_flops / 1e12 == pytest.approx(total_tflop, abs=0.01)


def test_denoise_step_streams_about_52_gb_of_bf16_weights_and_touches_every_expert(config):
    cost = denoise(config)
    assert cost.weight_bytes / 1e9 == pytest.approx(52.0, abs=0.1)
    assert cost.experts_touched_per_layer == pytest.approx(128.0, abs=1e-4)
    assert cost.kv_write_bytes == 0.0


def test_denoise_reads_280_mib_of_kv_at_4k(config):
    assert denoise(config, 4096).kv_read_bytes / MIB == pytest.approx(280.0)


def test_ar_step_is_7_6_gflop_and_7_6_gb(config):
    cost = pass_cost(config, kind="ar-step", precision="bf16", concurrency=1, context_tokens=0)
    assert cost.matmul_flops / 1e9 == pytest.approx(7.64, abs=0.01)
    assert cost.weight_bytes / 1e9 == pytest.approx(7.64, abs=0.01)
    assert cost.experts_touched_per_layer == pytest.approx(8.0)


def test_commit_writes_55_mib_of_kv_and_computes_no_logits(config):
    cost = pass_cost(config, kind="dg-commit", precision="bf16", concurrency=1, context_tokens=4096)
    assert cost.kv_write_bytes / MIB == pytest.approx(55.0)
    assert cost.matmul_flops / 1e12 == pytest.approx(1.58, abs=0.005)
    assert cost.breakdown["lm-head"].total_flops == 0.0 and cost.breakdown["sampler"].total_bytes == 0.0


@pytest.mark.parametrize(("prompt", "total_tflop"), [(512, 3.2), (4096, 28.0), (32768, 304.0)])
def test_prefill_totals_match_the_hand_derived_figures(config, prompt, total_tflop):
    cost = pass_cost(config, kind="prefill", precision="bf16", concurrency=1, context_tokens=0,
                     tokens_per_request=prompt)
    assert cost.total_flops / 1e12 == pytest.approx(total_tflop, rel=0.02)


def test_sliding_layers_see_at_most_the_window(config):
    backbone = config.backbone
    short = pass_shape(config, kind="ar-step", concurrency=1, context_tokens=100)
    long = pass_shape(config, kind="ar-step", concurrency=1, context_tokens=100_000)
    assert attention_pairs(backbone, "sliding", short) == 101
    assert attention_pairs(backbone, "sliding", long) == 1024
    assert attention_pairs(backbone, "global", long) == 100_001


def test_causal_pairs_with_window_match_a_brute_force_count(config):
    backbone = replace(config.backbone, sliding_window=10)
    shape = pass_shape(config, kind="prefill", concurrency=1, context_tokens=4, tokens_per_request=12)
    brute = sum(min(4 + i + 1, 10) for i in range(12))
    assert attention_pairs(backbone, "sliding", shape) == brute


def test_concurrency_scales_flops_but_not_weights_in_a_denoise_pass(config):
    one, four = denoise(config, 4096, 1), denoise(config, 4096, 4)
    assert four.weight_bytes == pytest.approx(one.weight_bytes, rel=1e-3)  # only embedding rows grow
    assert four.matmul_flops == pytest.approx(4 * one.matmul_flops)
    assert four.kv_read_bytes == pytest.approx(4 * one.kv_read_bytes)


def test_breakdown_sums_to_the_totals(config):
    cost = denoise(config, 4096, 2, "fp8")
    assert set(cost.breakdown) == set(COMPONENTS)
    assert sum(t.total_bytes for t in cost.breakdown.values()) == pytest.approx(cost.total_bytes)
    assert sum(t.total_flops for t in cost.breakdown.values()) == pytest.approx(cost.total_flops)


def roofline(config, kind, tokens, bytes_per_s, flops_per_s):
    cost = pass_cost(config, kind=kind, precision="bf16", concurrency=1, context_tokens=4096,
                     tokens_per_request=tokens)
    return cost.roofline_floor_seconds(bytes_per_s=bytes_per_s, quantised_flops_per_s=flops_per_s,
                                       wide_flops_per_s=flops_per_s)


def test_roofline_floor_is_the_bandwidth_or_compute_floor_when_the_other_limit_is_unbounded(config):
    cost = denoise(config, 4096)
    assert roofline(config, "dg-denoise", 256, 4.5e12, float("inf")) == pytest.approx(cost.total_bytes / 4.5e12)
    assert roofline(config, "dg-denoise", 256, float("inf"), 7e14) == pytest.approx(cost.total_flops / 7e14)


def test_roofline_floor_of_an_h200_denoise_pass_is_above_its_bandwidth_floor_but_not_of_an_ar_step(config):
    # The H200's measured limits: streaming read 4.52 TB/s, bf16 matmul 683 TFLOP/s (samples/h200_*).
    bandwidth, peak = 4.52e12, 6.83e14
    cost = denoise(config, 4096)
    floor = cost.total_bytes / bandwidth
    assert roofline(config, "dg-denoise", 256, bandwidth, peak) == pytest.approx(1.095 * floor, rel=0.01)
    step = pass_cost(config, kind="ar-step", precision="bf16", concurrency=1, context_tokens=4096)
    assert roofline(config, "ar-step", 1, bandwidth, peak) == pytest.approx(step.total_bytes / bandwidth)


# The H200's measured matmul rates (samples/h200-verified_*): fp8 and bf16.
H200_FP8_FLOPS_PER_S, H200_BF16_FLOPS_PER_S = 1.2535e15, 6.843e14


def test_an_fp8_pass_prices_its_bf16_lm_head_at_the_bf16_rate(config):
    # The LM head of the published FP8 checkpoints is the bf16 tied embedding: its GEMM over a 256-token canvas
    # takes 553 us at bf16's rate, not the 302 us fp8's would give.
    cost = denoise(config, 4096, precision="fp8")
    head = cost.breakdown["lm-head"]
    floor = component_roofline_seconds("lm-head", head, bytes_per_s=float("inf"),
                                       quantised_flops_per_s=H200_FP8_FLOPS_PER_S,
                                       wide_flops_per_s=H200_BF16_FLOPS_PER_S)
    assert floor == pytest.approx(head.matmul_flops / H200_BF16_FLOPS_PER_S)
    assert floor * 1e6 == pytest.approx(553, abs=1)
    experts = cost.breakdown["experts"]
    assert component_roofline_seconds("experts", experts, bytes_per_s=float("inf"),
                                      quantised_flops_per_s=H200_FP8_FLOPS_PER_S,
                                      wide_flops_per_s=H200_BF16_FLOPS_PER_S) == pytest.approx(
        experts.matmul_flops / H200_FP8_FLOPS_PER_S)


def test_an_fp8_pass_compute_floor_takes_only_the_quantised_matmuls_at_the_fp8_rate(config):
    cost = denoise(config, 4096, precision="fp8")
    quantised = sum(cost.breakdown[name].matmul_flops for name in QUANTISED_COMPONENTS)
    floor = cost.compute_floor_seconds(quantised_flops_per_s=H200_FP8_FLOPS_PER_S,
                                       wide_flops_per_s=H200_BF16_FLOPS_PER_S)
    assert floor == pytest.approx(quantised / H200_FP8_FLOPS_PER_S
                                  + (cost.total_flops - quantised) / H200_BF16_FLOPS_PER_S)
    # The LM head, self-conditioning, the router, attention's products and the sampler: two fifths of the FLOPs.
    assert (cost.total_flops - quantised) / cost.total_flops == pytest.approx(0.41, abs=0.01)
    # Compute-bound at a 256-token canvas, they raise the roofline too (bytes at the H200's streaming read).
    one_rate = cost.roofline_floor_seconds(bytes_per_s=4.49e12, quantised_flops_per_s=H200_FP8_FLOPS_PER_S,
                                           wide_flops_per_s=H200_FP8_FLOPS_PER_S)
    two_rates = cost.roofline_floor_seconds(bytes_per_s=4.49e12, quantised_flops_per_s=H200_FP8_FLOPS_PER_S,
                                            wide_flops_per_s=H200_BF16_FLOPS_PER_S)
    assert two_rates > one_rate * 1.05


def test_a_bf16_pass_given_its_rate_twice_has_every_flop_at_that_rate(config):
    cost = denoise(config, 4096)
    assert cost.compute_floor_seconds(quantised_flops_per_s=H200_BF16_FLOPS_PER_S,
                                      wide_flops_per_s=H200_BF16_FLOPS_PER_S) == pytest.approx(
        cost.total_flops / H200_BF16_FLOPS_PER_S)
    assert cost.roofline_floor_seconds(bytes_per_s=4.49e12, quantised_flops_per_s=H200_BF16_FLOPS_PER_S,
                                       wide_flops_per_s=H200_BF16_FLOPS_PER_S) == pytest.approx(
        sum(count * max(terms.total_bytes / 4.49e12, terms.total_flops / H200_BF16_FLOPS_PER_S)
            for _, terms, count in cost.components))


def test_weights_per_precision_match_published_checkpoint_sizes(config):
    assert weights_bytes(config, "bf16") / 1e9 == pytest.approx(51.6, abs=0.1)
    assert weights_bytes(config, "bf16", include_vision=False) / 1e9 == pytest.approx(50.5, abs=0.1)
    assert 27.0 <= weights_bytes(config, "fp8") / 1e9 <= 29.0
    assert 15.0 <= weights_bytes(config, "int4") / 1e9 <= 17.0
    assert 15.0 <= weights_bytes(config, "nvfp4") / 1e9 <= 17.0
    assert weights_bytes(config, "int4") < weights_bytes(config, "nvfp4") < weights_bytes(config, "fp8")


def test_quantised_formats_keep_the_embedding_in_bf16(config):
    fp8 = denoise(config, 0, 1, "fp8")
    assert fp8.breakdown["lm-head"].weight_bytes == pytest.approx(262_144 * 2816 * 2)
    assert fp8.breakdown["experts"].weight_bytes == pytest.approx(denoise(config).breakdown["experts"]
                                                                  .weight_bytes / 2, rel=0.01)
    assert fp8.dequant_ops > 0 and denoise(config).dequant_ops == 0


def test_nvfp4_block_scales_cost_half_a_bit_per_weight():
    nvfp4 = precision_by_name("nvfp4")
    assert nvfp4.matrix_bytes(2816, 1024) == pytest.approx(2816 * 1024 * 4.5 / 8 + 4)
    assert PRECISIONS["int4"].matrix_bytes(10, 256) == pytest.approx(10 * 256 * 0.5 + 10 * 2 * 2)


def test_kv_cache_per_sequence_matches_the_hand_derived_figures(config):
    assert kv_cache_bytes(config, 8192, "bf16") / GIB == pytest.approx(0.35, abs=0.01)
    assert kv_cache_bytes(config, 262_144, "bf16") / GIB == pytest.approx(5.2, abs=0.01)
    assert kv_cache_bytes(config, 8192, "bf16", sequences=4) == pytest.approx(4 * kv_cache_bytes(config, 8192, "bf16"))


def test_dg_request_buffers_are_about_2_5_gib(config):
    assert dg_request_buffers_bytes(config) / GIB == pytest.approx(2.5, abs=0.01)


def test_prefill_without_a_prompt_length_is_refused(config):
    with pytest.raises(ValueError, match="prompt length"):
        pass_cost(config, kind="prefill", precision="bf16", concurrency=1, context_tokens=0)


def test_unknown_precision_names_the_known_ones(config):
    with pytest.raises(ValueError, match="known are bf16"):
        denoise(config, precision="fp6")


def test_layer_weights_add_up_to_the_backbone(config):
    layers = sum(layer_weight_bytes(config, t, "bf16") for t in config.backbone.layer_types)
    outside = (262_144 * 2816 + 2816 + 17_844_992 + 569_548_080 + 3_244_032) * 2
    assert layers + outside == pytest.approx(weights_bytes(config, "bf16"))
