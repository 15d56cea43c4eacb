"""The parts of a pass outside the decoder layers: embedding, self-conditioning, final norm, LM head and sampler.

The denoise head follows DiffusionGemma's step (transformers' generation_diffusion_gemma.py): canvas
embeddings plus the self-conditioning signal softmax(previous logits / T) @ E through its MLP; logits through
the tied LM head with the fp32 softcap; the entropy-bound sampler over [canvas x vocab] (temperature, softmax,
entropy, argmax, Gumbel-max draw, accept mask by sorted entropy budget, renoise, stop test) which also writes
the probabilities the next step's self-conditioning reads. The AR head samples greedy/top-k from one row of
logits per request.

When the plan measures the vocabulary-sized products on a slice of the vocabulary, the head is timed in two parts:
``head-vocab`` (LM head, self-conditioning product, sampler: scaled by the slice divisor) and ``head-rest``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dgprofile.probes.decode.model import (
    AR_TOP_K,
    RMS_EPS,
    Linear,
    component,
    geglu,
    random_tensor,
    rms_norm,
)
from dgprofile.records.passes import PassKind, PassPartName
from dgprofile.specs.model_config import ModelConfig

# (logits [rows, vocab] bf16, probabilities out [rows, vocab] bf16, softcap, temperature)
#   -> (entropy [rows] fp32, argmax [rows], Gumbel-max sample [rows])
Sampler = Callable[[torch.Tensor, torch.Tensor, float, float], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def torch_sampler(logits: torch.Tensor, probs_out: torch.Tensor, softcap: float,
                  temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The denoise sampler's per-position work in plain torch ops (in place where torch allows)."""
    z = logits.float()
    z.mul_(1.0 / softcap).tanh_().mul_(softcap / temperature)
    z_max, argmax = z.max(dim=-1, keepdim=True)
    z.sub_(z_max)
    p = z.exp()
    total = p.sum(dim=-1, keepdim=True)
    entropy = total.log().squeeze(-1) - (p * z).sum(dim=-1) / total.squeeze(-1)
    gumbel = torch.rand_like(z).log_().neg_().log_().neg_().add_(z)
    sample = gumbel.argmax(dim=-1)
    probs_out.copy_(p.div_(total))
    return entropy, argmax.squeeze(-1), sample


def entropy_bound_accept(entropy: torch.Tensor, bound: float) -> torch.Tensor:
    """Per canvas row, accept the lowest-entropy positions while sum(H) - max(H) stays within ``bound``."""
    sorted_entropy, order = entropy.sort(dim=-1)
    budget = sorted_entropy.cumsum(dim=-1) - sorted_entropy.cummax(dim=-1).values
    return torch.zeros_like(order, dtype=torch.bool).scatter_(-1, order, budget <= bound)


@dataclass
class HeadWeights:
    """Tied embedding / LM head (a slice of the vocabulary when the plan says so), final norm, self-conditioning."""

    embedding: torch.Tensor  # [vocab rows, hidden], always bf16/fp16 (quantised checkpoints keep it so)
    final_norm: torch.Tensor
    sc_pre_norm: torch.Tensor
    sc_gate_up: Linear
    sc_down: Linear


def build_head(config: ModelConfig, *, vocab_rows: int, dtype: Any, fp8: bool, device: str) -> HeadWeights:
    """Random head weights; ``vocab_rows`` rows of the embedding."""
    hidden, width = config.backbone.hidden_size, config.diffusion.self_conditioning_size
    return HeadWeights(
        embedding=random_tensor((vocab_rows, hidden), dtype, device),
        final_norm=1.0 + random_tensor((hidden,), dtype, device, std=0.1),
        sc_pre_norm=1.0 + random_tensor((hidden,), dtype, device, std=0.1),
        sc_gate_up=Linear(2 * width, hidden, dtype=dtype, fp8=fp8, device=device),
        sc_down=Linear(hidden, width, dtype=dtype, fp8=fp8, device=device),
    )


def softcapped_top_k(logits: torch.Tensor, softcap: float) -> torch.Tensor:
    """Top-k sampling of an AR step: the k largest logits, softcapped in fp32, a Gumbel-max draw among them.

    The softcap is increasing, so the k largest logits are the k largest capped ones: they are selected on the
    logits as the LM head wrote them (half the bytes of an fp32 copy, and no softcap over the whole vocabulary).
    The Gumbel noise -log(-log u) is -log E with E = -log u exponentially distributed: one kernel draws E."""
    values, indices = logits.topk(min(AR_TOP_K, logits.shape[-1]), dim=-1)
    z = values.float().mul_(1.0 / softcap).tanh_().mul_(softcap)
    choice = z.sub_(torch.empty_like(z).exponential_().log_()).argmax(dim=-1, keepdim=True)
    return indices.gather(-1, choice)


def head_parts(config: ModelConfig, head: HeadWeights, *, kind: PassKind, concurrency: int, tokens: int,
               split: bool, sampler: Sampler, device: str,
               fused: bool = False) -> dict[PassPartName, Callable[[], object]]:
    """Callables on fixed buffers for the head of one pass: {"head": ...}, or {"head-vocab": ..., "head-rest": ...}
    when ``split`` (vocabulary-sized work apart from the rest). ``fused``: the norms (with the scaling and addition
    around them) and the self-conditioning GeGLU run in the fused layers' Triton kernels (checked with them), and
    an FP8 self-conditioning MLP takes its inputs quantised by its norm's and GeGLU's kernels."""
    backbone, diffusion = config.backbone, config.diffusion
    hidden, vocab = backbone.hidden_size, head.embedding.shape[0]
    dtype = head.embedding.dtype
    rows = concurrency * tokens
    embed_scale = math.sqrt(hidden)
    softcap = backbone.final_logit_softcapping
    ids = torch.randint(0, vocab, (concurrency, tokens), device=device)
    states = random_tensor((rows, hidden), dtype, device, std=1.0)

    def embed() -> torch.Tensor:
        with component("embedding"):
            return head.embedding.index_select(0, ids.view(-1)) * embed_scale

    def final_norm(x: torch.Tensor) -> torch.Tensor:
        if not fused:
            return rms_norm(x, head.final_norm)
        from dgprofile.probes.decode.triton_fused import rms_norm as fused_rms_norm

        return fused_rms_norm(x, head.final_norm, RMS_EPS)

    if kind == "dg-commit":
        return {"head": embed}
    if kind in ("ar-step", "prefill"):
        last = states.view(concurrency, tokens, hidden)[:, -1]

        def vocab_part() -> torch.Tensor:
            with component("lm-head"):
                logits = final_norm(last) @ head.embedding.t()
            with component("sampler"):
                return softcapped_top_k(logits, softcap)

        if split:
            return {"head-vocab": vocab_part, "head-rest": embed}
        return {"head": lambda: (embed(), vocab_part())}

    probs = torch.full((rows, vocab), 1.0 / vocab, dtype=dtype, device=device)
    noise = torch.randint(0, vocab, (concurrency, tokens), device=device)
    previous_argmax = torch.zeros((concurrency, tokens), dtype=torch.long, device=device)
    soft = torch.empty((rows, hidden), dtype=dtype, device=device)
    temperature = diffusion.t_max

    def self_conditioning_product() -> None:
        with component("self-conditioning.product"):
            soft.copy_(probs @ head.embedding)

    def logits_and_sampler() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with component("lm-head"):
            logits = final_norm(states) @ head.embedding.t()
        with component("sampler"):
            entropy, argmax, sample = sampler(logits, probs, softcap, temperature)
        return entropy.view(concurrency, tokens), sample.view(concurrency, tokens), argmax.view(concurrency, tokens)

    def canvas_update(entropy: torch.Tensor, sample: torch.Tensor, argmax: torch.Tensor) -> torch.Tensor:
        with component("sampler.canvas"):
            accept = entropy_bound_accept(entropy, diffusion.entropy_bound)
            ids.copy_(torch.where(accept, sample, noise))
            stop = ((argmax == previous_argmax).all(dim=-1)
                    & (entropy.mean(dim=-1) < diffusion.confidence_threshold))
            previous_argmax.copy_(argmax)
            return stop

    def self_conditioning_mlp() -> torch.Tensor:
        if not fused:
            return head.sc_down(geglu(head.sc_gate_up(rms_norm(soft * embed_scale, head.sc_pre_norm))))
        from dgprofile.probes.decode import triton_fused

        if head.sc_gate_up.fp8:
            normed = triton_fused.rms_norm_quantized(soft, head.sc_pre_norm, RMS_EPS, scale=embed_scale)
            return head.sc_down(triton_fused.geglu_quantized(head.sc_gate_up(normed)))
        normed_rows = triton_fused.rms_norm(soft, head.sc_pre_norm, RMS_EPS, scale=embed_scale)
        return head.sc_down(triton_fused.geglu(head.sc_gate_up(normed_rows)))

    def rest() -> torch.Tensor:
        with component("self-conditioning.mlp"):
            sc = self_conditioning_mlp()
        if not fused:
            embedded = embed()
            with component("norms"):
                return rms_norm(embedded + sc, None)
        from dgprofile.probes.decode.triton_fused import rms_norm as fused_rms_norm

        with component("embedding"):
            gathered = head.embedding.index_select(0, ids.view(-1))
        with component("norms"):  # the embedding's scale applied on the way in
            return fused_rms_norm(gathered, None, RMS_EPS, scale=embed_scale, add=sc)

    def whole() -> tuple[torch.Tensor, torch.Tensor]:
        self_conditioning_product()
        x = rest()
        return x, canvas_update(*logits_and_sampler())

    if not split:
        return {"head": whole}
    entropy_row = torch.rand((concurrency, tokens), device=device)

    def denoise_vocab_part() -> None:
        self_conditioning_product()
        logits_and_sampler()

    return {"head-vocab": denoise_vocab_part,
            "head-rest": lambda: (rest(), canvas_update(entropy_row, ids, previous_argmax))}
