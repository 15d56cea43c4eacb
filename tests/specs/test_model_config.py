"""The released configuration, read from data, reproduces the parameter counts of the released model (as
instantiated on PyTorch's meta device; the model card's 25.2 B total, 3.8 B active)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dgprofile.errors import UsageError
from dgprofile.specs.model_config import (
    CANVAS_TOKENS,
    attention_params,
    count_params,
    expert_params,
    load_model_config,
    router_params,
    self_conditioning_params,
)


@pytest.fixture(scope="module")
def config():
    return load_model_config()


def test_layer_pattern_is_five_sliding_then_one_global_five_times(config):
    backbone = config.backbone
    assert backbone.layer_types == ("sliding",) * 5 + ("global",) + ("sliding",) * 5 + ("global",) \
        + ("sliding",) * 5 + ("global",) + ("sliding",) * 5 + ("global",) + ("sliding",) * 5 + ("global",)
    assert backbone.count_layers("sliding") == 25 and backbone.count_layers("global") == 5


def test_per_layer_shapes_match_the_verified_instantiation(config):
    backbone = config.backbone
    assert attention_params(backbone, "sliding") == 34_603_008
    assert attention_params(backbone, "global") == 49_020_928
    assert expert_params(backbone) == 5_947_392
    assert router_params(backbone) == 360_448 + 2816 + 128
    assert self_conditioning_params(config) == 17_844_992


def test_parameter_groups_reproduce_the_meta_device_counts_exactly(config):
    counts = count_params(config)
    assert counts.experts == 22_837_985_280
    assert counts.attention == 1_110_179_840
    assert counts.embedding == 738_197_504
    assert counts.dense_mlp == 535_265_280
    assert counts.self_conditioning == 17_844_992
    assert counts.routers == 10_901_760
    assert counts.norms == 612_096
    assert counts.text == 25_250_986_752
    assert counts.total == 25_823_778_864


def test_active_parameters_match_the_model_card(config):
    counts = count_params(config)
    assert round(counts.active_non_embedding / 1e9, 2) == 3.08
    assert round(counts.active / 1e9, 2) == 3.82


def test_autoregressive_twin_shares_the_backbone_without_self_conditioning(config):
    diffusion, autoregressive = count_params(config), count_params(config, model="autoregressive")
    assert autoregressive.self_conditioning == 0
    assert diffusion.text - autoregressive.text == 17_844_992
    assert config.autoregressive_twin.shares_backbone


def test_every_cited_source_tag_has_a_url(config):
    tags = config.backbone.source_tags + config.diffusion.source_tags + config.autoregressive_twin.source_tags
    assert all(config.sources[tag].startswith("https://") for tag in tags)


def test_unknown_model_name_is_a_one_line_usage_error():
    with pytest.raises(UsageError, match="unknown model 'no-such-model'"):
        load_model_config("no-such-model")


def test_shape_arithmetic_is_generic_for_a_tiny_variant(config):
    tiny_backbone = replace(config.backbone, hidden_size=64, num_layers=2, layer_types=("sliding", "global"),
                            num_attention_heads=4, intermediate_size=96, num_experts=8, top_k_experts=2,
                            moe_intermediate_size=32, vocab_size=512)
    tiny = replace(config, backbone=tiny_backbone)
    counts = count_params(tiny)
    assert counts.experts == 2 * 8 * 3 * 64 * 32
    assert counts.embedding == 512 * 64
    assert counts.attention == attention_params(tiny_backbone, "sliding") + attention_params(tiny_backbone, "global")


def test_the_canvas_length_is_read_from_the_config() -> None:
    assert CANVAS_TOKENS == load_model_config().diffusion.canvas_length == 256
