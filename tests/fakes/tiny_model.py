"""A tiny DiffusionGemma-shaped configuration: the decode code is shape-generic, so CPU tests run it small."""

from __future__ import annotations

from dataclasses import replace

from dgprofile.specs.model_config import AttentionShape, ModelConfig, load_model_config


def tiny_config() -> ModelConfig:
    """Six layers (five sliding, one global with K=V), 8 experts top-2, a 512-token vocabulary, canvas 16."""
    real = load_model_config()
    backbone = replace(real.backbone, hidden_size=64, num_layers=6, layer_types=("sliding",) * 5 + ("global",),
                       sliding_window=16, num_attention_heads=4,
                       sliding_attention=AttentionShape(num_kv_heads=2, head_dim=16, k_eq_v=False),
                       global_attention=AttentionShape(num_kv_heads=1, head_dim=32, k_eq_v=True),
                       intermediate_size=96, num_experts=8, top_k_experts=2, moe_intermediate_size=32,
                       vocab_size=512)
    return replace(real, backbone=backbone,
                   diffusion=replace(real.diffusion, canvas_length=16, self_conditioning_size=96))
