"""Bytes moved and FLOPs of one forward pass, from the model description alone (pure arithmetic, no torch).

Shared by the decode benchmark (its bandwidth and compute floors) and the speedup model (its predictions), so every
term is named and documented. Conventions, per pass of ``concurrency`` requests x ``tokens_per_request`` tokens
against ``context_tokens`` already-cached positions per request:

* Weights are read once per pass (an efficient engine streams each weight matrix once however many tokens it
  multiplies); routed experts count only those the pass's tokens touch (``expected_distinct_experts``).
* Matmul FLOPs are 2 x tokens x parameters of each matrix (experts: each token through its top-k experts).
  Only the matmuls of ``QUANTISED_COMPONENTS`` run at a quantised format's rate; every other FLOP (the router, the
  LM head and self-conditioning products with the bf16 tied embedding, attention's score and value products, the
  sampler) runs at the 16-bit rate whatever the format (``CostTerms.compute_seconds``).
* Attention FLOPs are 4 x query heads x head dim per (query, key) pair: QK^T and PV. Sliding layers see at most
  the window; global layers see the whole context.
* KV cache: K and V are both stored on every layer (also on K=V global layers: V skips RoPE and uses a scale-free
  norm). Cached entries are read once per layer; new tokens' entries are written once (not by a denoise pass,
  whose canvas is never cached). Sliding layers keep only the last ``sliding_window`` positions.
* Activations: every GEMM reads its input and writes its output once, attention reads q/k/v of the new tokens
  and writes its output, elementwise work is fused (bf16, 2 bytes an element). A modelled lower bound.
* LM head and sampler: see ``_logit_rows`` and the ``*_SAMPLER_*`` constants; logits are stored bf16 and
  processed in fp32 (softcap, softmax, entropy, sampling).

Pass kinds: ``prefill`` (causal over the prompt, writes KV, logits of the last position for the first AR token),
``ar-step`` (one token per request, logits and greedy/top-k sampling), ``dg-denoise`` (bidirectional over the
canvas, reads KV, logits with softcap, the entropy-bound sampler, self-conditioning), ``dg-commit`` (causal over
the canvas, writes KV, no logits: the transformers reference; vLLM also samples on commit, adding roughly one LM
head and sampler).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from dgprofile.records.passes import PassKind
from dgprofile.specs.model_config import (
    Backbone,
    LayerType,
    ModelConfig,
    ModelKind,
    count_params,
    layer_norm_params,
    router_params,
)

PASS_KINDS: tuple[PassKind, ...] = ("prefill", "ar-step", "dg-denoise", "dg-commit")
ScaleBlock = Literal["none", "row", "group"]

ACTIVATION_BYTES = 2  # bf16 hidden states between kernels, whatever the weight format
# The LM head GEMM writes bf16 logits (vLLM's does); the softcap and the sampler then compute in fp32
# (transformers' and vLLM's diffusion_gemma code).
LOGIT_BYTES = 2
PROBABILITY_BYTES = 2  # probabilities handed to the self-conditioning product, in the embedding's dtype (bf16)
# The entropy-bound sampler over [tokens x vocab] logits (fp32 arithmetic), as a fused engine does it: one sweep
# for the row max, log-sum-exp, entropy, argmax and Gumbel-max draw; one for the probabilities it writes.
DENOISE_SAMPLER_LOGIT_READS = 2
# Per logit: softcap (divide, tanh, multiply), temperature (1), exp and subtract (2), sum (1), entropy
# p * log p and sum (3), Gumbel noise -log(-log u) (3), add and argmax compare (2), probability write scale (1).
# The benchmark's fused kernels draw by inverse CDF instead (no noise per logit): the same bytes, and fewer
# operations, which at either count take a fraction of the bytes' time.
DENOISE_SAMPLER_FLOPS_PER_LOGIT = 16
# Greedy or top-k over an AR step's logits: softcap (3) and one compare (1) per logit, logits read once.
AR_SAMPLER_LOGIT_READS = 1
AR_SAMPLER_FLOPS_PER_LOGIT = 4
# vLLM's DiffusionGemma sampler holds "~10 transient fp32 copies of [group * CL, vocab]" per decoding request,
# plus a persistent self-conditioning embedding [canvas, hidden] fp32 per slot
# (vllm/model_executor/models/diffusion_gemma.py).
SAMPLER_TRANSIENT_FP32_COPIES = 10
SELF_CONDITIONING_BUFFER_BYTES_PER_ELEMENT = 4
FP32_BYTES = 4


@dataclass(frozen=True)
class Precision:
    """How weights are stored and computed in one format.

    Quantised formats apply to the attention projections, the dense MLP, the routed experts and the
    self-conditioning MLP; routers, norms and the vision tower stay bf16. The tied embedding / LM head is stored
    at ``head_weight_bytes`` per element: bf16 in the published FP8, NVFP4 and AWQ checkpoints; quantised with the
    rest in MLX conversions (mlx-lm quantises embeddings with the model) and GGUF files (Q6_K in a Q4_K_M file),
    which is what makes their logits quantised. ``native_compute_format`` names the matmul rate of hardware that
    computes the format directly; GGUF and MLX formats name themselves (no table has a rate for them: their
    kernels always unpack the weights first).
    """

    name: str
    description: str
    weight_bytes: float  # per stored weight element of a quantised matrix
    scale_block: ScaleBlock  # "row": one scale per output channel; "group": one per group_size inputs
    group_size: int  # inputs sharing one scale when scale_block == "group" (unused otherwise)
    scale_bytes: float  # bytes of one scale
    tensor_scale_bytes: float  # one extra per-tensor scale (NVFP4's fp32 global scale)
    native_compute_format: str  # the matmul-rate key of hardware that computes this format directly
    dequant_ops_per_weight: float  # ops to expand one weight to bf16 where the hardware lacks the native format
    kv_bytes_per_element: float  # KV cache element size engines use with this format by default
    measurable: bool  # the decode bench can time it with torch on hardware that computes it natively
    head_weight_bytes: float = 2.0  # per element of the tied embedding / LM head (bf16 unless quantised with it)
    weight_only: bool = False  # activations stay 16-bit: the GEMM unpacks the weights, never multiplies in them

    def matrix_bytes(self, out_features: int, in_features: int) -> float:
        """Bytes of one quantised ``[out_features x in_features]`` matrix, scales included."""
        if self.scale_block == "row":
            scales = out_features
        elif self.scale_block == "group":
            scales = out_features * math.ceil(in_features / self.group_size)
        else:
            scales = 0
        return out_features * in_features * self.weight_bytes + scales * self.scale_bytes + self.tensor_scale_bytes


BF16_BYTES = 2.0
Q6_K_BYTES = 6.5625 / 8  # llama.cpp's Q6_K: 210 bytes per 256 weights
PRECISIONS: dict[str, Precision] = {
    "bf16": Precision("bf16", "bfloat16 weights and compute", BF16_BYTES, "none", 0, 0.0, 0.0, "bf16", 0.0,
                      BF16_BYTES, True),
    "fp16": Precision("fp16", "float16 weights and compute", BF16_BYTES, "none", 0, 0.0, 0.0, "fp16", 0.0,
                      BF16_BYTES, True),
    "fp8": Precision("fp8", "FP8 e4m3 weights with one fp32 scale per output channel, dynamic per-token fp8 "
                     "activations (FP8-dynamic checkpoints); native on sm_89+, else run as W8A16 (weights "
                     "dequantised to fp16 in the GEMM: vLLM's Marlin kernels on Ampere)",
                     1.0, "row", 0, 4.0, 0.0, "fp8", 2.0, BF16_BYTES, True),
    "int8": Precision("int8", "int8 weights with one bf16 scale per output channel (W8A8 with dynamic per-token "
                      "activations); native int8 tensor cores, else dequantised to bf16", 1.0, "row", 0, 2.0, 0.0,
                      "int8", 2.0, BF16_BYTES, False),
    "int4": Precision("int4", "AWQ / GPTQ int4 weights in groups of 128 inputs with one bf16 scale each (W4A16, "
                      "4.125 bits a weight; AWQ's 4-bit zero points not counted): vLLM runs them through Marlin, "
                      "dequantised to fp16 in the GEMM", 0.5, "group", 128, 2.0, 0.0, "int4", 2.0,
                      BF16_BYTES, False, weight_only=True),
    "nvfp4": Precision("nvfp4", "NVFP4: e2m1 weights, one fp8 e4m3 scale per 16 inputs and one fp32 scale per "
                       "tensor (4.5 bits a weight); native on Blackwell (sm_100 and sm_120 families), else run as "
                       "W4A16 (dequantised to bf16)", 0.5, "group", 16, 1.0, 4.0, "fp4", 2.0, BF16_BYTES, False),
    "q8_0": Precision("q8_0", "GGUF Q8_0 (llama.cpp): blocks of 32 int8 weights with one fp16 scale (8.5 bits a "
                      "weight), embedding included", 8.5 / 8, "none", 0, 0.0, 0.0, "q8_0", 2.0, BF16_BYTES, False,
                      head_weight_bytes=8.5 / 8, weight_only=True),
    "q4_k_m": Precision("q4_k_m", "GGUF Q4_K_M (llama.cpp): Q4_K super-blocks (4.5 bits a weight) with Q6_K for "
                        "half the layers' attention V and FFN down projections, about 4.85 bits a weight on "
                        "average; the tied embedding in Q6_K", 4.85 / 8, "none", 0, 0.0, 0.0, "q4_k_m", 2.0,
                        BF16_BYTES, False, head_weight_bytes=Q6_K_BYTES, weight_only=True),
    "mlx-8bit": Precision("mlx-8bit", "MLX 8-bit: 8-bit weights with an fp16 scale and bias per 64 (8.5 bits a "
                          "weight), embedding included (mlx-lm's default conversion)", 1.0, "group", 64, 4.0, 0.0,
                          "mlx-8bit", 2.0, BF16_BYTES, False, head_weight_bytes=1.0 + 4.0 / 64, weight_only=True),
    "mlx-4bit": Precision("mlx-4bit", "MLX 4-bit: 4-bit weights with an fp16 scale and bias per 64 (4.5 bits a "
                          "weight), embedding included (mlx-lm's default conversion)", 0.5, "group", 64, 4.0, 0.0,
                          "mlx-4bit", 2.0, BF16_BYTES, False, head_weight_bytes=0.5 + 4.0 / 64, weight_only=True),
}
# Formats whose weights are 4 bits or so: the headline prefers wider ones when they fit.
FOUR_BIT_PRECISIONS: tuple[str, ...] = ("int4", "nvfp4", "q4_k_m", "mlx-4bit")


def precision_by_name(name: str) -> Precision:
    """The entry of ``PRECISIONS``; ValueError listing the known names otherwise."""
    try:
        return PRECISIONS[name]
    except KeyError:
        raise ValueError(f"unknown precision {name!r}: known are {', '.join(PRECISIONS)}") from None


def expected_distinct_experts(num_experts: int, top_k: int, tokens: float) -> float:
    """Mean number of distinct experts ``tokens`` uniformly routed tokens touch in one layer: E(1-(1-k/E)^T)."""
    if tokens <= 0:
        return 0.0
    return num_experts * (1.0 - math.pow(1.0 - top_k / num_experts, tokens))


# --- terms -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostTerms:
    """Named bytes and FLOPs of one component (or of a whole pass)."""

    weight_bytes: float = 0.0
    kv_read_bytes: float = 0.0
    kv_write_bytes: float = 0.0
    activation_bytes: float = 0.0
    sampler_bytes: float = 0.0
    matmul_flops: float = 0.0
    attention_flops: float = 0.0
    sampler_flops: float = 0.0
    dequant_ops: float = 0.0  # spent only where the hardware lacks the precision's native format

    @property
    def total_bytes(self) -> float:
        """Every byte the component moves through device memory."""
        return (self.weight_bytes + self.kv_read_bytes + self.kv_write_bytes + self.activation_bytes
                + self.sampler_bytes)

    @property
    def total_flops(self) -> float:
        """Matmul, attention and sampler FLOPs (dequantisation ops are kept apart)."""
        return self.matmul_flops + self.attention_flops + self.sampler_flops

    def compute_seconds(self, *, matmul_flops_per_s: float, wide_flops_per_s: float) -> float:
        """The least time for this component's FLOPs: its matmuls at ``matmul_flops_per_s`` (the rate of the
        format its weights are in: ``component_matmul_flops_per_s``), attention's products and the sampler at the
        16-bit rate ``wide_flops_per_s``."""
        return (self.matmul_flops / matmul_flops_per_s
                + (self.attention_flops + self.sampler_flops) / wide_flops_per_s)

    def roofline_seconds(self, *, bytes_per_s: float, matmul_flops_per_s: float, wide_flops_per_s: float) -> float:
        """The least time for this component alone: the larger of its memory time and its compute time
        (``compute_seconds``)."""
        return max(self.total_bytes / bytes_per_s,
                   self.compute_seconds(matmul_flops_per_s=matmul_flops_per_s, wide_flops_per_s=wide_flops_per_s))

    def __add__(self, other: CostTerms) -> CostTerms:
        # Field by field (dataclasses.astuple deep-copies, which made `predict` slow).
        return CostTerms(*(getattr(self, name) + getattr(other, name) for name in _COST_TERM_FIELDS))

    def scaled(self, factor: float) -> CostTerms:
        """Every term multiplied by ``factor`` (e.g. per layer -> all layers of a type)."""
        return CostTerms(*(getattr(self, name) * factor for name in _COST_TERM_FIELDS))


_COST_TERM_FIELDS = tuple(f.name for f in dataclasses.fields(CostTerms))


COMPONENTS = ("embedding", "attention", "dense-mlp", "router", "experts", "norms", "lm-head", "self-conditioning",
              "sampler")
# Components whose matmuls multiply weights in the pass's format, at its matmul rate (fp8 tensor cores, say). The
# router and the tied embedding (LM head, self-conditioning product) stay bf16 in the published FP8, NVFP4 and AWQ
# checkpoints (RedHatAI's FP8-dynamic ones keep `lm_head` unquantised), so their matmuls run at the 16-bit rate;
# the formats that quantise the embedding too (GGUF, MLX) are weight-only, all of whose matmuls run at that rate.
# The self-conditioning MLP is quantised as well, but its matmuls share a component with the product's and are
# priced with them at the 16-bit rate: about 2% of that component's FLOPs.
QUANTISED_COMPONENTS = ("attention", "dense-mlp", "experts")


def component_matmul_flops_per_s(component: str, *, quantised_flops_per_s: float, wide_flops_per_s: float
                                 ) -> float:
    """The rate ``component``'s matmuls run at: the format's (``quantised_flops_per_s``) for the quantised
    components, the 16-bit rate (``wide_flops_per_s``) for the rest; a 16-bit pass passes its own rate twice."""
    return quantised_flops_per_s if component in QUANTISED_COMPONENTS else wide_flops_per_s


def component_roofline_seconds(component: str, terms: CostTerms, *, bytes_per_s: float,
                               quantised_flops_per_s: float, wide_flops_per_s: float) -> float:
    """``component``'s roofline floor (``CostTerms.roofline_seconds``) with its matmuls at its format's rate."""
    return terms.roofline_seconds(
        bytes_per_s=bytes_per_s, wide_flops_per_s=wide_flops_per_s,
        matmul_flops_per_s=component_matmul_flops_per_s(component, quantised_flops_per_s=quantised_flops_per_s,
                                                        wide_flops_per_s=wide_flops_per_s))


@dataclass(frozen=True)
class PassCost:
    """Bytes and FLOPs of one pass, in total and by component (keys of ``COMPONENTS``); ``components`` lists each
    component of one layer of each type with its number of layers, then the head's components once."""

    kind: PassKind
    precision: str
    concurrency: int
    tokens_per_request: int
    context_tokens: int
    tokens: int
    weight_bytes: float
    kv_read_bytes: float
    kv_write_bytes: float
    activation_bytes: float
    sampler_bytes: float
    total_bytes: float
    matmul_flops: float
    attention_flops: float
    sampler_flops: float
    total_flops: float
    dequant_ops: float
    experts_touched_per_layer: float
    breakdown: dict[str, CostTerms]
    components: tuple[tuple[str, CostTerms, int], ...]

    def compute_floor_seconds(self, *, quantised_flops_per_s: float, wide_flops_per_s: float) -> float:
        """The least time for all the pass's FLOPs: the matmuls of ``QUANTISED_COMPONENTS`` at the format's rate
        (``quantised_flops_per_s``), every other FLOP at the 16-bit rate (``wide_flops_per_s``; a 16-bit pass
        passes its own rate twice)."""
        return sum(count * terms.compute_seconds(
                       wide_flops_per_s=wide_flops_per_s,
                       matmul_flops_per_s=component_matmul_flops_per_s(
                           name, quantised_flops_per_s=quantised_flops_per_s, wide_flops_per_s=wide_flops_per_s))
                   for name, terms, count in self.components)

    def roofline_floor_seconds(self, *, bytes_per_s: float, quantised_flops_per_s: float, wide_flops_per_s: float
                               ) -> float:
        """The least time for the pass with its components run one after another, each at the larger of its
        bandwidth floor (bytes / ``bytes_per_s``) and its compute floor, per layer. A component's compute floor
        prices the matmuls of ``QUANTISED_COMPONENTS`` at the format's rate (``quantised_flops_per_s``) and every
        other FLOP at the 16-bit rate (``wide_flops_per_s``): in an fp8 pass the LM head and self-conditioning
        products, the router, attention's score and value products and the sampler stay 16-bit.

        It exceeds the pass's bandwidth floor wherever a component is compute-bound: on an H200 the attention,
        dense MLP, LM head and self-conditioning product of a 256-token canvas are. Only running compute-bound
        kernels at the same time as bandwidth-bound ones gets below it."""
        return sum(count * component_roofline_seconds(name, terms, bytes_per_s=bytes_per_s,
                                                      quantised_flops_per_s=quantised_flops_per_s,
                                                      wide_flops_per_s=wide_flops_per_s)
                   for name, terms, count in self.components)

    @property
    def flop_per_byte(self) -> float:
        """Arithmetic intensity of the whole pass."""
        return self.total_flops / self.total_bytes


@dataclass(frozen=True)
class PassShape:
    """The work of one pass: who attends to what, and which outputs it computes."""

    kind: PassKind
    concurrency: int
    tokens_per_request: int
    context_tokens: int

    @property
    def tokens(self) -> int:
        """Tokens through the backbone in this pass (all requests)."""
        return self.concurrency * self.tokens_per_request


def pass_shape(config: ModelConfig, *, kind: PassKind, concurrency: int, context_tokens: int,
               tokens_per_request: int | None = None) -> PassShape:
    """The shape of a pass; ``tokens_per_request`` defaults to 1 (ar-step) or the canvas (dg-*), and is required
    for prefill (the prompt length)."""
    if kind not in PASS_KINDS:
        raise ValueError(f"unknown pass kind {kind!r}: known are {', '.join(PASS_KINDS)}")
    if tokens_per_request is None:
        if kind == "prefill":
            raise ValueError("a prefill pass needs tokens_per_request (the prompt length)")
        tokens_per_request = 1 if kind == "ar-step" else config.diffusion.canvas_length
    if concurrency < 1 or tokens_per_request < 1 or context_tokens < 0:
        raise ValueError("concurrency and tokens_per_request must be >= 1 and context_tokens >= 0")
    return PassShape(kind, concurrency, tokens_per_request, context_tokens)


def _sum_min(first: int, last: int, cap: int) -> int:
    """sum(min(j, cap) for j in first..last), in closed form."""
    if last < first:
        return 0
    below_end = min(last, cap)
    below = (below_end - first + 1) * (first + below_end) // 2 if below_end >= first else 0
    return below + max(0, last - max(first - 1, cap)) * cap


def visible_cached_tokens(backbone: Backbone, layer_type: LayerType, context_tokens: int) -> int:
    """Cached positions a layer keeps and reads: the window on sliding layers, everything on global ones."""
    return min(context_tokens, backbone.sliding_window) if layer_type == "sliding" else context_tokens


def attention_pairs(backbone: Backbone, layer_type: LayerType, shape: PassShape) -> int:
    """(query, key) pairs one request's tokens form in one layer."""
    new, cached = shape.tokens_per_request, shape.context_tokens
    if shape.kind == "dg-denoise":  # bidirectional over the canvas, plus the (windowed) cache
        return new * (visible_cached_tokens(backbone, layer_type, cached) + new)
    cap = backbone.sliding_window if layer_type == "sliding" else cached + new
    return _sum_min(cached + 1, cached + new, cap)  # causal: query i sees cached + i + 1 keys


def kv_bytes_per_token(backbone: Backbone, layer_type: LayerType, precision: Precision) -> float:
    """K and V of one position in one layer."""
    shape = backbone.attention(layer_type)
    return 2 * shape.num_kv_heads * shape.head_dim * precision.kv_bytes_per_element


def _attention_matrices(backbone: Backbone, layer_type: LayerType) -> list[tuple[int, int]]:
    """(out, in) of q, k, o and, unless K=V, v projections."""
    attn = backbone.attention(layer_type)
    hidden, query_width = backbone.hidden_size, backbone.num_attention_heads * attn.head_dim
    kv_width = attn.num_kv_heads * attn.head_dim
    matrices = [(query_width, hidden), (kv_width, hidden), (hidden, query_width)]
    if not attn.k_eq_v:
        matrices.append((kv_width, hidden))
    return matrices


def _attention_terms(backbone: Backbone, layer_type: LayerType, shape: PassShape, precision: Precision) -> CostTerms:
    attn = backbone.attention(layer_type)
    hidden, query_width = backbone.hidden_size, backbone.num_attention_heads * attn.head_dim
    kv_width = attn.num_kv_heads * attn.head_dim
    matrices = _attention_matrices(backbone, layer_type)
    params = sum(o * i for o, i in matrices)
    tokens = shape.tokens
    per_token_kv = kv_bytes_per_token(backbone, layer_type, precision)
    writes = 0.0 if shape.kind == "dg-denoise" else tokens * per_token_kv
    # Per token: q/k/v projections (in hidden, out q + k + v), attention (reads q, k, v; writes its output),
    # output projection (in query width, out hidden).
    activation_elements = hidden + (query_width + 2 * kv_width) * 2 + query_width * 2 + hidden
    return CostTerms(
        weight_bytes=sum(precision.matrix_bytes(o, i) for o, i in matrices),
        kv_read_bytes=shape.concurrency * visible_cached_tokens(backbone, layer_type, shape.context_tokens)
        * per_token_kv,
        kv_write_bytes=writes,
        activation_bytes=tokens * activation_elements * ACTIVATION_BYTES,
        matmul_flops=2.0 * tokens * params,
        attention_flops=4.0 * backbone.num_attention_heads * attn.head_dim * shape.concurrency
        * attention_pairs(backbone, layer_type, shape),
        dequant_ops=params * precision.dequant_ops_per_weight,
    )


def _geglu_weight_bytes(hidden: int, width: int, precision: Precision) -> float:
    """Fused gate_up (2 x width outputs) and down projection of one GeGLU MLP."""
    return precision.matrix_bytes(2 * width, hidden) + precision.matrix_bytes(hidden, width)


def _geglu_terms(hidden: int, width: int, tokens: float, copies: float, precision: Precision) -> CostTerms:
    """``copies`` GeGLU MLPs of ``width`` read once, with ``tokens`` token-passes through them in total."""
    params = 3 * hidden * width
    weight = _geglu_weight_bytes(hidden, width, precision)
    # Per token: gate_up (in hidden, out 2 x width), down (in width, out hidden).
    activation_elements = hidden + 2 * width + width + hidden
    return CostTerms(weight_bytes=copies * weight, activation_bytes=tokens * activation_elements * ACTIVATION_BYTES,
                     matmul_flops=2.0 * tokens * params, dequant_ops=copies * params * precision.dequant_ops_per_weight)


def experts_touched(backbone: Backbone, shape: PassShape) -> float:
    """Expected distinct experts per layer for all tokens of the pass, routed uniformly."""
    return expected_distinct_experts(backbone.num_experts, backbone.top_k_experts, shape.tokens)


def layer_cost(config: ModelConfig, layer_type: LayerType, shape: PassShape, precision: Precision
               ) -> dict[str, CostTerms]:
    """Components of one decoder layer: attention, dense MLP, router, experts, norms."""
    backbone = config.backbone
    tokens = shape.tokens
    hidden = backbone.hidden_size
    router_matrix = backbone.num_experts * hidden
    return {
        "attention": _attention_terms(backbone, layer_type, shape, precision),
        "dense-mlp": _geglu_terms(hidden, backbone.intermediate_size, tokens, 1, precision),
        "router": CostTerms(weight_bytes=router_params(backbone) * BF16_BYTES,
                            activation_bytes=tokens * (hidden + backbone.num_experts) * ACTIVATION_BYTES,
                            matmul_flops=2.0 * tokens * router_matrix),
        "experts": _geglu_terms(hidden, backbone.moe_intermediate_size, tokens * backbone.top_k_experts,
                                experts_touched(backbone, shape), precision),
        "norms": CostTerms(weight_bytes=layer_norm_params(backbone, layer_type) * BF16_BYTES),
    }


def _logit_rows(shape: PassShape) -> int:
    """Positions whose logits a pass computes: the last prompt token per request (prefill, for the first AR token),
    every token of an AR step or a denoise canvas, none on a commit."""
    if shape.kind == "dg-commit":
        return 0
    if shape.kind == "prefill":
        return shape.concurrency
    return shape.tokens


def head_cost(config: ModelConfig, shape: PassShape, precision: Precision) -> dict[str, CostTerms]:
    """Components outside the layers: embedding lookup, final norm, LM head, self-conditioning, sampler.
    The self-conditioning MLP is quantised; the tied embedding / LM head is in the format's head bytes."""
    backbone = config.backbone
    hidden, vocab = backbone.hidden_size, backbone.vocab_size
    embedding_matrix = vocab * hidden * precision.head_weight_bytes
    rows = _logit_rows(shape)
    logits = rows * vocab
    parts = {
        "embedding": CostTerms(weight_bytes=min(shape.tokens, vocab) * hidden * precision.head_weight_bytes,
                               activation_bytes=shape.tokens * hidden * ACTIVATION_BYTES),
        "norms": CostTerms(weight_bytes=hidden * BF16_BYTES),
        "lm-head": CostTerms(weight_bytes=embedding_matrix if rows else 0.0,
                             activation_bytes=rows * hidden * ACTIVATION_BYTES + logits * LOGIT_BYTES,
                             matmul_flops=2.0 * logits * hidden),
    }
    if shape.kind == "dg-denoise":
        reads, flops_per_logit = DENOISE_SAMPLER_LOGIT_READS, DENOISE_SAMPLER_FLOPS_PER_LOGIT
        probabilities = logits * PROBABILITY_BYTES
        parts["sampler"] = CostTerms(sampler_bytes=logits * LOGIT_BYTES * reads + probabilities,
                                     sampler_flops=logits * flops_per_logit)
        sc_width = config.diffusion.self_conditioning_size
        mlp = _geglu_terms(hidden, sc_width, shape.tokens, 1, precision)
        # softmax(previous logits) @ E: a second full read of the tied embedding, as large as the LM head.
        product = CostTerms(weight_bytes=embedding_matrix, sampler_bytes=probabilities,
                            activation_bytes=shape.tokens * hidden * ACTIVATION_BYTES,
                            matmul_flops=2.0 * logits * hidden)
        parts["self-conditioning"] = product + mlp + CostTerms(weight_bytes=hidden * BF16_BYTES)
    elif rows:
        parts["sampler"] = CostTerms(sampler_bytes=logits * LOGIT_BYTES * AR_SAMPLER_LOGIT_READS,
                                     sampler_flops=logits * AR_SAMPLER_FLOPS_PER_LOGIT)
    return parts


def _component_costs(config: ModelConfig, shape: PassShape, fmt: Precision
                     ) -> tuple[tuple[str, CostTerms, int], ...]:
    """Each component of one layer of each type with its number of layers, then the head's components once."""
    layers = tuple((name, terms, config.backbone.count_layers(layer_type))
                   for layer_type in ("sliding", "global")
                   for name, terms in layer_cost(config, layer_type, shape, fmt).items())
    return layers + tuple((name, terms, 1) for name, terms in head_cost(config, shape, fmt).items())


def pass_cost(config: ModelConfig, *, kind: PassKind, precision: str | Precision, concurrency: int,
              context_tokens: int, tokens_per_request: int | None = None) -> PassCost:
    """Bytes moved and FLOPs of one full-depth pass of ``kind`` (see the module docstring for the conventions)."""
    fmt = precision if isinstance(precision, Precision) else precision_by_name(precision)
    shape = pass_shape(config, kind=kind, concurrency=concurrency, context_tokens=context_tokens,
                       tokens_per_request=tokens_per_request)
    components = _component_costs(config, shape, fmt)
    breakdown = {name: CostTerms() for name in COMPONENTS}
    for name, terms, count in components:
        breakdown[name] = breakdown[name] + terms.scaled(count)
    total = CostTerms()
    for terms in breakdown.values():
        total = total + terms
    return PassCost(
        kind=kind, precision=fmt.name, concurrency=concurrency, tokens_per_request=shape.tokens_per_request,
        context_tokens=context_tokens, tokens=shape.tokens,
        weight_bytes=total.weight_bytes, kv_read_bytes=total.kv_read_bytes, kv_write_bytes=total.kv_write_bytes,
        activation_bytes=total.activation_bytes, sampler_bytes=total.sampler_bytes, total_bytes=total.total_bytes,
        matmul_flops=total.matmul_flops, attention_flops=total.attention_flops, sampler_flops=total.sampler_flops,
        total_flops=total.total_flops, dequant_ops=total.dequant_ops,
        experts_touched_per_layer=experts_touched(config.backbone, shape),
        breakdown=breakdown, components=components,
    )


# --- memory footprint ----------------------------------------------------------------------------------------------


def weights_bytes(config: ModelConfig, precision: str | Precision, *, model: ModelKind = "diffusion",
                  include_vision: bool = True) -> float:
    """Bytes of all weights held in memory: quantisable linears in ``precision``, the embedding in its head bytes,
    the rest (routers, norms, vision tower) in bf16."""
    fmt = precision if isinstance(precision, Precision) else precision_by_name(precision)
    backbone = config.backbone
    counts = count_params(config, model=model)
    hidden = backbone.hidden_size
    quantised = sum(fmt.matrix_bytes(o, i) for t in backbone.layer_types for o, i in _attention_matrices(backbone, t))
    quantised += backbone.num_layers * _geglu_weight_bytes(hidden, backbone.intermediate_size, fmt)
    quantised += backbone.num_layers * backbone.num_experts * _geglu_weight_bytes(
        hidden, backbone.moe_intermediate_size, fmt)
    if model == "diffusion":
        quantised += _geglu_weight_bytes(hidden, config.diffusion.self_conditioning_size, fmt)
    bf16_params = counts.routers + counts.norms
    quantised += counts.embedding * fmt.head_weight_bytes
    if model == "diffusion":
        bf16_params += backbone.hidden_size  # the self-conditioning pre-norm
    if include_vision:
        bf16_params += counts.vision_tower + counts.vision_projector
    return quantised + bf16_params * BF16_BYTES


def layer_weight_bytes(config: ModelConfig, layer_type: LayerType, precision: str | Precision) -> float:
    """Weights one decoder layer holds in memory, all experts included."""
    fmt = precision if isinstance(precision, Precision) else precision_by_name(precision)
    backbone = config.backbone
    hidden = backbone.hidden_size
    return (sum(fmt.matrix_bytes(o, i) for o, i in _attention_matrices(backbone, layer_type))
            + _geglu_weight_bytes(hidden, backbone.intermediate_size, fmt)
            + backbone.num_experts * _geglu_weight_bytes(hidden, backbone.moe_intermediate_size, fmt)
            + (router_params(backbone) + layer_norm_params(backbone, layer_type)) * BF16_BYTES)


def kv_cache_bytes(config: ModelConfig, context_tokens: int, precision: str | Precision, *,
                   sequences: int = 1) -> float:
    """KV cache of ``sequences`` sequences of ``context_tokens`` each; sliding layers keep only the window."""
    fmt = precision if isinstance(precision, Precision) else precision_by_name(precision)
    backbone = config.backbone
    per_sequence = sum(visible_cached_tokens(backbone, t, context_tokens) * kv_bytes_per_token(backbone, t, fmt)
                       for t in backbone.layer_types)
    return sequences * per_sequence


def dg_request_buffers_bytes(config: ModelConfig) -> float:
    """Memory one concurrently decoding DiffusionGemma request needs beyond weights and KV: the persistent
    self-conditioning embedding [canvas x hidden] fp32 and the sampler's transient fp32 [canvas x vocab] copies
    (vLLM's diffusion_gemma.py: ~10 of them, ~2.5 GiB)."""
    canvas, backbone = config.diffusion.canvas_length, config.backbone
    persistent = canvas * backbone.hidden_size * SELF_CONDITIONING_BUFFER_BYTES_PER_ELEMENT
    transient = SAMPLER_TRANSIENT_FP32_COPIES * canvas * backbone.vocab_size * FP32_BYTES
    return float(persistent + transient)
