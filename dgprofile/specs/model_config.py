"""The model as data: DiffusionGemma's released configuration and the parameter counts derived from it.

The configuration lives in ``dgprofile/data/<id>.json`` (with the sources of every section); this module only
reads it and does arithmetic on it, so a future variant is a new data file, not new code. The autoregressive
twin (Gemma 4 26B-A4B) shares the backbone and the vision tower and has no self-conditioning MLP or canvas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from dgprofile.errors import UsageError
from dgprofile.records.codec import DecodeError, from_json

DEFAULT_MODEL = "diffusiongemma-26b-a4b"

LayerType = Literal["sliding", "global"]
# Which of the two models that share the backbone is meant: DiffusionGemma adds the self-conditioning MLP.
ModelKind = Literal["diffusion", "autoregressive"]
# Per-layer RMSNorms with a learned hidden-size scale: input, post-attention, pre/post dense MLP, pre/post
# experts, and the norm after their sum (transformers' modeling_diffusion_gemma.py).
HIDDEN_NORMS_PER_LAYER = 7


@dataclass(frozen=True)
class AttentionShape:
    """Key/value layout of one attention kind; ``k_eq_v``: V comes from the K projection (no v_proj weights),
    yet K and V are both cached because V skips RoPE and uses a scale-free norm."""

    num_kv_heads: int
    head_dim: int
    k_eq_v: bool


@dataclass(frozen=True)
class Backbone:
    """The text stack shared by DiffusionGemma and its autoregressive twin."""

    hidden_size: int
    num_layers: int
    layer_types: tuple[LayerType, ...]
    sliding_window: int
    num_attention_heads: int
    sliding_attention: AttentionShape
    global_attention: AttentionShape
    intermediate_size: int
    num_experts: int
    top_k_experts: int
    moe_intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    final_logit_softcapping: float
    max_position_embeddings: int
    source_tags: tuple[str, ...]

    def attention(self, layer_type: LayerType) -> AttentionShape:
        """The key/value layout of a sliding or global layer."""
        return self.sliding_attention if layer_type == "sliding" else self.global_attention

    def count_layers(self, layer_type: LayerType) -> int:
        """How many layers are of this type."""
        return sum(1 for t in self.layer_types if t == layer_type)


@dataclass(frozen=True)
class DiffusionSettings:
    """What DiffusionGemma adds: the canvas, the self-conditioning MLP width, and the sampler's defaults."""

    canvas_length: int
    max_denoising_steps: int
    self_conditioning_size: int
    entropy_bound: float
    t_max: float
    t_min: float
    confidence_threshold: float
    stability_threshold: int
    source_tags: tuple[str, ...]


@dataclass(frozen=True)
class VisionTower:
    """Size of the vision tower and projector (counted for memory; text decoding never runs them)."""

    tower_params: int
    projector_params: int
    source_tags: tuple[str, ...]


@dataclass(frozen=True)
class TwinModel:
    """The autoregressive model that shares the backbone."""

    id: str
    name: str
    hf_repo: str
    shares_backbone: bool
    note: str
    source_tags: tuple[str, ...]


@dataclass(frozen=True)
class ModelConfig:
    """One released model, as its data file describes it."""

    about: str
    id: str
    name: str
    hf_repo: str
    backbone: Backbone
    diffusion: DiffusionSettings
    vision: VisionTower
    autoregressive_twin: TwinModel
    sources: dict[str, str]


@cache
def load_model_config(name: str = DEFAULT_MODEL) -> ModelConfig:
    """The configuration in ``dgprofile/data/<name>.json``; UsageError when there is none or it is malformed."""
    resource = resources.files("dgprofile.data").joinpath(f"{name}.json")
    if not resource.is_file():
        raise UsageError(f"unknown model {name!r}: there is no dgprofile/data/{name}.json")
    try:
        config = from_json(ModelConfig, json.loads(resource.read_text(encoding="utf-8")), f"{name}.json")
    except (DecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"model file {name}.json is malformed: {error}") from error
    _check_consistent(config)
    return config


def _check_consistent(config: ModelConfig) -> None:
    backbone = config.backbone
    if len(backbone.layer_types) != backbone.num_layers:
        raise UsageError(f"model file {config.id}.json: {len(backbone.layer_types)} layer types for "
                         f"{backbone.num_layers} layers")
    if not 0 < backbone.top_k_experts <= backbone.num_experts:
        raise UsageError(f"model file {config.id}.json: top_k_experts must be in 1..num_experts")
    cited = (backbone.source_tags + config.diffusion.source_tags + config.vision.source_tags
             + config.autoregressive_twin.source_tags)
    missing = sorted(set(cited) - set(config.sources))
    if missing:
        raise UsageError(f"model file {config.id}.json cites sources it does not list: {', '.join(missing)}")


# --- parameter counts (pure arithmetic on the configuration) ---------------------------------------------------


# The default model's canvas: the tokens one DiffusionGemma pass denoises per request, read from its config.
CANVAS_TOKENS = load_model_config().diffusion.canvas_length


def attention_params(backbone: Backbone, layer_type: LayerType) -> int:
    """q, k, (v unless K=V) and o projections of one layer."""
    shape = backbone.attention(layer_type)
    query_width = backbone.num_attention_heads * shape.head_dim
    kv_width = shape.num_kv_heads * shape.head_dim
    value_width = 0 if shape.k_eq_v else kv_width
    return backbone.hidden_size * (query_width + kv_width + value_width) + query_width * backbone.hidden_size


def geglu_params(hidden: int, intermediate: int) -> int:
    """A GeGLU MLP: fused gate+up (hidden -> 2 x intermediate) and down (intermediate -> hidden)."""
    return 3 * hidden * intermediate


def expert_params(backbone: Backbone) -> int:
    """One routed expert (a GeGLU of width ``moe_intermediate_size``)."""
    return geglu_params(backbone.hidden_size, backbone.moe_intermediate_size)


def router_params(backbone: Backbone) -> int:
    """Router projection plus its input scale vector and per-expert output scales."""
    return backbone.hidden_size * backbone.num_experts + backbone.hidden_size + backbone.num_experts


def layer_norm_params(backbone: Backbone, layer_type: LayerType) -> int:
    """Learned norm scales of one layer: the hidden-size norms plus the per-head q and k norms (V's is scale-free)."""
    return HIDDEN_NORMS_PER_LAYER * backbone.hidden_size + 2 * backbone.attention(layer_type).head_dim


def self_conditioning_params(config: ModelConfig) -> int:
    """The self-conditioning GeGLU and its learned pre-norm (its post-norm has no scale)."""
    hidden = config.backbone.hidden_size
    return geglu_params(hidden, config.diffusion.self_conditioning_size) + hidden


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts by group for the whole model (all layers)."""

    experts: int
    attention: int
    embedding: int
    dense_mlp: int
    self_conditioning: int
    routers: int
    norms: int
    vision_tower: int
    vision_projector: int
    expert_fraction_active: float

    @property
    def text(self) -> int:
        """Everything but the vision tower and projector."""
        return (self.experts + self.attention + self.embedding + self.dense_mlp + self.self_conditioning
                + self.routers + self.norms)

    @property
    def total(self) -> int:
        """Every unique parameter (tied embedding counted once)."""
        return self.text + self.vision_tower + self.vision_projector

    @property
    def active_non_embedding(self) -> float:
        """Parameters one token reads outside the embedding: attention, dense MLP, routers, norms, top-k experts."""
        return (self.attention + self.dense_mlp + self.routers + self.norms
                + self.experts * self.expert_fraction_active)

    @property
    def active(self) -> float:
        """Active parameters per generated token, including the tied LM head."""
        return self.active_non_embedding + self.embedding


def count_params(config: ModelConfig, *, model: ModelKind = "diffusion") -> ParamCounts:
    """Parameter counts of DiffusionGemma (``model="diffusion"``) or of its autoregressive twin."""
    backbone = config.backbone
    types = backbone.layer_types
    return ParamCounts(
        experts=backbone.num_layers * backbone.num_experts * expert_params(backbone),
        attention=sum(attention_params(backbone, t) for t in types),
        embedding=backbone.vocab_size * backbone.hidden_size,
        dense_mlp=backbone.num_layers * geglu_params(backbone.hidden_size, backbone.intermediate_size),
        self_conditioning=self_conditioning_params(config) if model == "diffusion" else 0,
        routers=backbone.num_layers * router_params(backbone),
        norms=sum(layer_norm_params(backbone, t) for t in types) + backbone.hidden_size,
        vision_tower=config.vision.tower_params,
        vision_projector=config.vision.projector_params,
        expert_fraction_active=backbone.top_k_experts / backbone.num_experts,
    )
