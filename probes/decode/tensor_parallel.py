"""One decoder layer of ``model.py`` split for tensor parallelism, the way vLLM splits it (Megatron-style).

A rank holds its share of the attention heads (the q/k/v projection's rows, the output projection's columns;
KV heads are split where there are at least as many as ranks, else each rank keeps the one its query heads
use, as vLLM replicates them), of the dense MLP's and of every expert's intermediate width (gate and up rows,
down columns). Norms and the router are replicated. Each rank's attention output and MLP outputs are partial
sums, so a layer all-reduces twice: the attention output, then the dense MLP's and the experts' outputs
together (Gemma 4 normalises each of the two on its own before adding them, so both sums are needed whole).

Shards are cut from the whole layer (built from the same seed on every rank), so the split layer computes what
the whole one does (``tests/probes/test_multi_gpu.py`` checks it with gloo).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch

from dgprofile.probes.decode.model import (
    RMS_EPS,
    LayerState,
    LayerWeights,
    Linear,
    attention,
    component,
    fused_layer_parts,
    geglu,
    mixture_of_experts,
    rms_norm,
)
from dgprofile.specs.model_config import AttentionShape, LayerType, ModelConfig

AllReduce = Callable[[torch.Tensor], torch.Tensor]
ALL_REDUCES_PER_LAYER = 2
ALL_REDUCED_HIDDEN_WIDTHS = 3  # the attention output, then the dense MLP's and the experts' together


def _kv_heads(shape: AttentionShape, tensor_parallel: int) -> int:
    return max(1, shape.num_kv_heads // tensor_parallel)


def shard_config(config: ModelConfig, tensor_parallel: int) -> ModelConfig:
    """The shapes one rank of ``tensor_parallel`` holds; ValueError where the split is not even."""
    b = config.backbone
    widths = {"attention heads": b.num_attention_heads, "dense MLP width": b.intermediate_size,
              "expert width": b.moe_intermediate_size}
    uneven = [f"{name} {value}" for name, value in widths.items() if value % tensor_parallel]
    if uneven:
        raise ValueError(f"tensor parallelism over {tensor_parallel} GPUs does not split {', '.join(uneven)} evenly")
    backbone = dataclasses.replace(
        b, num_attention_heads=b.num_attention_heads // tensor_parallel,
        sliding_attention=dataclasses.replace(b.sliding_attention,
                                              num_kv_heads=_kv_heads(b.sliding_attention, tensor_parallel)),
        global_attention=dataclasses.replace(b.global_attention,
                                             num_kv_heads=_kv_heads(b.global_attention, tensor_parallel)),
        intermediate_size=b.intermediate_size // tensor_parallel,
        moe_intermediate_size=b.moe_intermediate_size // tensor_parallel)
    return dataclasses.replace(config, backbone=backbone)


def _kv_slice(shape: AttentionShape, rank: int, tensor_parallel: int) -> slice:
    """The KV heads rank ``rank`` keeps: its share, or (fewer heads than ranks) the one its query heads read."""
    if shape.num_kv_heads >= tensor_parallel:
        share = shape.num_kv_heads // tensor_parallel
        return slice(rank * share, (rank + 1) * share)
    head = rank * shape.num_kv_heads // tensor_parallel
    return slice(head, head + 1)


def _rows(weight: torch.Tensor, parts: list[slice], dim: int) -> torch.Tensor:
    return torch.cat([weight.narrow(dim, p.start, p.stop - p.start) for p in parts], dim=dim).contiguous()


def _linear(whole: Linear, weight: torch.Tensor) -> Linear:
    if whole.fp8:
        raise ValueError("the tensor-parallel layer is timed in bf16/fp16/fp32 only")
    part = copy.copy(whole)
    part.weight = weight
    return part


def _share(size: int, rank: int, tensor_parallel: int) -> slice:
    share = size // tensor_parallel
    return slice(rank * share, (rank + 1) * share)


def shard_layer(config: ModelConfig, layer: LayerWeights, rank: int, tensor_parallel: int) -> LayerWeights:
    """Rank ``rank``'s share of a whole layer (weights sliced, norms and router shared)."""
    b = config.backbone
    attn = b.attention(layer.layer_type)
    dim = attn.head_dim
    heads = _share(b.num_attention_heads, rank, tensor_parallel)
    kv = _kv_slice(attn, rank, tensor_parallel)
    q_width, kv_width = b.num_attention_heads * dim, attn.num_kv_heads * dim
    qkv_parts = [slice(heads.start * dim, heads.stop * dim),
                 slice(q_width + kv.start * dim, q_width + kv.stop * dim)]
    if not attn.k_eq_v:
        qkv_parts.append(slice(q_width + kv_width + kv.start * dim, q_width + kv_width + kv.stop * dim))
    dense = _share(b.intermediate_size, rank, tensor_parallel)
    gate_up = [dense, slice(b.intermediate_size + dense.start, b.intermediate_size + dense.stop)]
    expert = _share(b.moe_intermediate_size, rank, tensor_parallel)
    expert_gate_up = [expert, slice(b.moe_intermediate_size + expert.start, b.moe_intermediate_size + expert.stop)]
    experts = copy.copy(layer.experts)
    if experts.fp8:
        raise ValueError("the tensor-parallel layer is timed in bf16/fp16/fp32 only")
    experts.gate_up = _rows(layer.experts.gate_up, expert_gate_up, 1)
    experts.down = _rows(layer.experts.down, [expert], 2)
    return dataclasses.replace(
        layer,
        qkv=_linear(layer.qkv, _rows(layer.qkv.weight, qkv_parts, 0)),
        o=_linear(layer.o, _rows(layer.o.weight, [slice(heads.start * dim, heads.stop * dim)], 1)),
        dense_gate_up=_linear(layer.dense_gate_up, _rows(layer.dense_gate_up.weight, gate_up, 0)),
        dense_down=_linear(layer.dense_down, _rows(layer.dense_down.weight, [dense], 1)),
        experts=experts)


def shard_state(config: ModelConfig, state: LayerState, layer_type: LayerType, rank: int,
                tensor_parallel: int) -> LayerState:
    """Rank ``rank``'s KV buffers of a whole layer's state (the routing is the same on every rank)."""
    if state.mask is not None:
        raise ValueError("the tensor-parallel layer is timed for passes without a mask (AR steps, denoise passes)")
    kv = _kv_slice(config.backbone.attention(layer_type), rank, tensor_parallel)
    return dataclasses.replace(state, k_cache=state.k_cache[:, kv].contiguous(),
                               v_cache=state.v_cache[:, kv].contiguous())


def tensor_parallel_layer(config: ModelConfig, x: torch.Tensor, layer: LayerWeights, state: LayerState,
                          concurrency: int, all_reduce: AllReduce) -> torch.Tensor:
    """``model.decoder_layer`` on one rank's shard (``config`` is ``shard_config``'s), with its two all-reduces.
    With ``all_reduce`` the identity and the whole layer, it is the one-GPU layer."""
    if state.fused:
        return _fused_tensor_parallel_layer(config, x, layer, state, concurrency, all_reduce)
    hidden = x.shape[-1]
    a = all_reduce(attention(config, rms_norm(x, layer.input_norm), layer, state, concurrency))
    r = x + rms_norm(a, layer.post_attention_norm)
    dense = layer.dense_down(geglu(layer.dense_gate_up(rms_norm(r, layer.pre_ff_norm))))
    experts = mixture_of_experts(config, r, layer, state.routing, state.expert_method)
    dense, experts = all_reduce(torch.cat([dense, experts], dim=-1)).split(hidden, dim=-1)
    h1 = rms_norm(dense, layer.post_ff_norm_1)
    h2 = rms_norm(experts, layer.post_ff_norm_2)
    return (r + rms_norm(h1 + h2, layer.post_ff_norm)) * layer.layer_scalar


def _fused_tensor_parallel_layer(config: ModelConfig, x: torch.Tensor, layer: LayerWeights, state: LayerState,
                                 concurrency: int, all_reduce: AllReduce) -> torch.Tensor:
    """The fused decoder layer (``model.fused_decoder_layer``'s Triton kernels) split as vLLM splits it: the
    experts' gated sum is a partial sum, so the combine kernel forms it beside the dense output before the
    all-reduce, and computes the output norms from the summed pair after it."""
    from dgprofile.probes.decode.triton_fused import moe_output_norms, moe_partial_sums

    parts = fused_layer_parts(config, x, layer, state, concurrency, attention_sum=all_reduce)
    with component("experts.combine"):
        partial = moe_partial_sums(parts.router_logits, state.routing.expert_ids, layer.per_expert_scale,
                                   parts.expert_rows, parts.expert_positions, parts.dense)
    summed = all_reduce(partial)
    with component("norms"):
        return moe_output_norms(summed, parts.residual,
                                (layer.post_ff_norm_1, layer.post_ff_norm_2, layer.post_ff_norm),
                                layer.layer_scalar, RMS_EPS)
