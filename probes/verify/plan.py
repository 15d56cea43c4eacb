"""How big a random-weight model `verify` builds on this machine, and how its timings scale to the whole model.

Pure arithmetic, no torch. Three sizes:

* ``full``: the released architecture at full depth and width, where its bf16 weights fit the memory the
  benchmark lets itself use;
* ``sampled-layers``: full width, a sample of layers (two sliding, one global, as `bench` measures them), timed
  layer by layer and scaled to the model's depth; on a CPU the vocabulary-sized work (LM head, self-conditioning
  product, sampler) also runs on 1/32 of the vocabulary and is scaled up, as `bench`'s CPU path does;
* ``miniature``: the architecture scaled down (width / 8, one period of the 5:1 layer pattern, 16 experts top-2,
  vocabulary / 32, the real 256-token canvas) and predicted as what it is. A quick run on a CPU builds it: even
  one full-width layer takes seconds per canvas pass on a few cores, so the released shapes cannot run there in a
  few minutes.

The vision tower is never run by text requests, so every size builds a minimal one; the predictions count the
released tower's weights in memory (1.1 GB in bf16), so measured peak memory runs that much under the predicted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from dgprofile.errors import UsageError
from dgprofile.specs.model_config import (
    AttentionShape,
    Backbone,
    LayerType,
    ModelConfig,
    ModelKind,
    VisionTower,
    count_params,
)

ModelSize = Literal["full", "sampled-layers", "miniature"]
MODEL_SIZES: tuple[ModelSize, ...] = ("full", "sampled-layers", "miniature")
DeviceKind = Literal["cuda", "mps", "cpu"]

SAMPLED_LAYERS: tuple[LayerType, ...] = ("sliding", "sliding", "global")  # as `bench` samples them
CPU_VOCAB_DIVISOR = 32  # `bench`'s CPU path runs the vocabulary-sized products on 1/32 of the rows
# Share of the free memory (or available RAM) the run lets itself plan for, and what a request needs beyond the
# weights: the sampler's fp32 [256 x vocabulary] transients (~10 copies), the KV cache and activations.
MEMORY_HEADROOM = {"cuda": 0.85, "mps": 0.6, "cpu": 0.6}
REQUEST_TRANSIENT_BYTES = 8 * 2**30
BF16_BYTES = 2
MINIATURE_WIDTH_DIVISOR = 8
MINIATURE_LAYERS: tuple[LayerType, ...] = ("sliding",) * 5 + ("global",)
MINIATURE_EXPERTS = (16, 2)


@dataclass(frozen=True)
class SizePlan:
    """What one random-weight build runs and how its timed parts count toward the model it stands for.

    ``layer_types`` are the layers built; ``layer_scale`` says how many layers of the model each built layer of a
    type stands for; ``vocab_run`` rows of the vocabulary are built and the vocabulary-sized work counts
    ``vocab_scale`` times. ``config`` is the model the figures describe (the released one, or the miniature).
    """

    size: ModelSize
    config: ModelConfig
    layer_types: tuple[LayerType, ...]
    layer_scale: dict[str, float]
    vocab_run: int
    vocab_scale: float
    description: str

    @property
    def scaled(self) -> bool:
        """True when timed parts must be scaled to stand for the model."""
        return self.vocab_scale != 1.0 or any(scale != 1.0 for scale in self.layer_scale.values())


def weights_fit(config: ModelConfig, *, model: ModelKind, device_kind: DeviceKind, free_memory_bytes: float) -> bool:
    """Whether the bf16 text weights of one model and a request's transients fit the memory the run may use."""
    weights = count_params(config, model=model).text * BF16_BYTES
    return weights + REQUEST_TRANSIENT_BYTES <= MEMORY_HEADROOM[device_kind] * free_memory_bytes


def miniature_config(config: ModelConfig) -> ModelConfig:
    """The released architecture scaled down: width / 8 (hidden, MLPs, experts, head dims), one period of the
    layer pattern, 16 experts top-2, vocabulary / 32; the 256-token canvas and the sampler settings unchanged."""
    backbone = config.backbone
    divisor = MINIATURE_WIDTH_DIVISOR

    def narrower(shape: AttentionShape) -> AttentionShape:
        return dataclasses.replace(shape, num_kv_heads=max(1, shape.num_kv_heads // 4),
                                   head_dim=shape.head_dim // divisor)

    experts, top_k = MINIATURE_EXPERTS
    small = dataclasses.replace(
        backbone, hidden_size=backbone.hidden_size // divisor, num_layers=len(MINIATURE_LAYERS),
        layer_types=MINIATURE_LAYERS, num_attention_heads=backbone.num_attention_heads // 4,
        sliding_attention=narrower(backbone.sliding_attention), global_attention=narrower(backbone.global_attention),
        intermediate_size=backbone.intermediate_size // divisor, num_experts=experts, top_k_experts=top_k,
        moe_intermediate_size=backbone.moe_intermediate_size // divisor,
        vocab_size=backbone.vocab_size // CPU_VOCAB_DIVISOR)
    diffusion = dataclasses.replace(config.diffusion,
                                    self_conditioning_size=config.diffusion.self_conditioning_size // divisor)
    vision = VisionTower(tower_params=0, projector_params=0, source_tags=config.vision.source_tags)
    return dataclasses.replace(config, id=f"{config.id}-miniature", name=f"{config.name} miniature",
                               backbone=small, diffusion=diffusion, vision=vision)


def _sampled_plan(config: ModelConfig, device_kind: DeviceKind) -> SizePlan:
    backbone = config.backbone
    scale = {t: backbone.count_layers(t) / SAMPLED_LAYERS.count(t) for t in ("sliding", "global")}
    divisor = CPU_VOCAB_DIVISOR if device_kind == "cpu" else 1
    vocab = f"; the vocabulary-sized work on 1/{divisor} of the vocabulary, scaled up" if divisor > 1 else ""
    return SizePlan(
        size="sampled-layers", config=config, layer_types=SAMPLED_LAYERS, layer_scale=scale,
        vocab_run=backbone.vocab_size // divisor, vocab_scale=float(divisor),
        description=(f"sampled layers: {SAMPLED_LAYERS.count('sliding')} sliding + {SAMPLED_LAYERS.count('global')} "
                     f"global at full width, each timed and scaled to {backbone.count_layers('sliding')} + "
                     f"{backbone.count_layers('global')} layers{vocab}"))


def plan_size(config: ModelConfig, *, model: ModelKind, device_kind: DeviceKind, free_memory_bytes: float,
              quick: bool, requested: ModelSize | None = None) -> SizePlan:
    """The size to build: ``requested``, else the miniature for a quick CPU run, the full model where it fits,
    and sampled layers otherwise."""
    size = requested
    if size is None:
        if quick and device_kind == "cpu":
            size = "miniature"
        elif weights_fit(config, model=model, device_kind=device_kind, free_memory_bytes=free_memory_bytes):
            size = "full"
        else:
            size = "sampled-layers"
    backbone = config.backbone
    match size:
        case "full":
            if requested == "full" and not weights_fit(config, model=model, device_kind=device_kind,
                                                       free_memory_bytes=free_memory_bytes):
                raise UsageError(f"--size full: the bf16 weights of {config.name} do not fit the memory free here "
                                 f"({free_memory_bytes / 2**30:.0f} GiB); use --size sampled-layers")
            return SizePlan(size="full", config=config, layer_types=backbone.layer_types,
                            layer_scale={"sliding": 1.0, "global": 1.0}, vocab_run=backbone.vocab_size,
                            vocab_scale=1.0, description="full size: every layer and the whole vocabulary")
        case "sampled-layers":
            return _sampled_plan(config, device_kind)
        case "miniature":
            small = miniature_config(config)
            b = small.backbone
            return SizePlan(
                size="miniature", config=small, layer_types=b.layer_types,
                layer_scale={"sliding": 1.0, "global": 1.0}, vocab_run=b.vocab_size, vocab_scale=1.0,
                description=(f"miniature: the architecture at width / {MINIATURE_WIDTH_DIVISOR} (hidden "
                             f"{b.hidden_size}), {b.num_layers} layers, {b.num_experts} experts top-{b.top_k_experts}, "
                             f"vocabulary {b.vocab_size:,}, 256-token canvas; predicted as that model"))


def sized_backbone(plan: SizePlan) -> Backbone:
    """The backbone as built: the plan's layers and vocabulary rows."""
    return dataclasses.replace(plan.config.backbone, num_layers=len(plan.layer_types), layer_types=plan.layer_types,
                               vocab_size=plan.vocab_run)
