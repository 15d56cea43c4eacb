"""The denoise sampler fused into two Triton kernels, as engines compile theirs (vLLM's is a torch.compile'd step).

Pass 1 reads the bf16 logits once and keeps, per lane, the sums of the softcapped, temperature-scaled logits'
exponentials and of exponential x logit (the entropy's two terms) and the largest logit. Each row is cut into
``splits`` spans, one program each, so that a few hundred rows still fill every SM; the programs leave their span's
partial statistics, and the same per group of a few lanes. Pass 2 merges a row's partials (entropy, argmax, sample),
reads the row again and writes the probabilities (bf16) that the next step's self-conditioning product reads.
That is the traffic ``dgprofile.specs.pass_cost`` counts for the sampler: two reads of the logits and one write of
probabilities (the partial sums add 1 KB a program: 2 MB, half a percent, at c = 1).

Pass 1 is arithmetic-bound unless kept lean. The design that came before this one (a running maximum, a Gumbel-max
draw per element, a division in the softcap) took 437 us over [256 x 262,144] on an H200, against 90 us for the
sampler's bytes. Per element, pass 1 now does two special-function operations (MUFU: the softcap's and the
weight's exponentials) and about 16 other instructions:

* **No running maximum.** The softcap bounds every logit to (-cap/T, cap/T), so the exponentials can all be taken
  against one fixed reference that keeps the smallest a normal fp32 number and the row's sums finite
  (``fixed_reference``). The online softmax (a running maximum, rescaling with every new one) is needed only where
  cap/T is too wide for that: temperatures below about 0.38 at Gemma's softcap of 30; DiffusionGemma's schedule
  runs from 0.8 to 0.4.
* **Inverse-CDF sampling instead of Gumbel-max.** A Gumbel-max draw costs two logarithms and a random number per
  element. Instead each row gets one uniform number u; pass 2 picks the span where the spans' cumulative mass
  crosses u x total, in it the group of lanes, and that span's program finds the element among the group's few
  (tokens taken span by span, group by group, then in index order). Any fixed order of the tokens samples the
  same distribution: the softmax of the softcapped, tempered logits, exactly up to fp32 rounding (a token below
  about 1e-7 of its group's mass is drawn at a rounded rate, as by any fp32 sampler).
* **The softcap's reciprocal on the FMA units.** tanh(x / cap) cap / T, times log2(e), is ``c (1 - 2 r)`` with
  r = 1 / (2^(x k) + 1). The reciprocal would be a third special-function operation, on the unit that limits the
  kernel; Newton's iteration from a bit-trick first guess spreads it over the FMA units instead.

The argmax's index is found the same way: pass 1 keeps the largest logit per group, pass 2's program for the span
holding the row's largest searches that group. Imported only on CUDA with Triton present; ``check_against_torch``
validates it before the benchmark uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from dgprofile.probes.decode.head import Sampler
from dgprofile.probes.decode.triton_fused import NEGATIVE_LARGE

TARGET_PROGRAMS = 2048  # enough programs per kernel for every SM of a large GPU to hold several
MAX_SPLITS = 16
LOG2_E = math.log2(math.e)
# fp32's normal range, in powers of two: a weight 2^(z - reference) must stay inside it.
FP32_MAX_EXPONENT = 127
FP32_MIN_EXPONENT = -126
REFERENCE_MARGIN = 1.0  # powers of two kept free at both ends, for the approximate exponential's rounding
RECIPROCAL_MAGIC = tl.constexpr(0x7EF311C3)  # minus a float's bits, the bits of a first guess at its reciprocal
RECIPROCAL_CLAMP = tl.constexpr(2.0**64)  # 1 / (y + 1) is 0 to fp32 beyond it; the bit trick needs y finite


@triton.jit
def _tanh_complement(x, exp_scale):
    """(1 - tanh(x / cap)) / 2 = 1 / (2^(x exp_scale) + 1), exp_scale = 2 log2(e) / cap: in (0, 1], 0 at x = inf.

    The reciprocal runs on the FMA units, not on the special-function unit that the two exponentials already keep
    busy: a bit-trick first guess (within 5.1%), one third-order step r (1 + e + e^2) with e = 1 - y r (the error
    cubed: 1.3e-4) and one Newton step r (1 + e) (squared: 1.7e-8, below fp32's rounding)."""
    y = tl.minimum(tl.exp2(x * exp_scale), RECIPROCAL_CLAMP) + 1.0
    r = (-y.to(tl.int32, bitcast=True) + RECIPROCAL_MAGIC).to(tl.float32, bitcast=True)
    e = 1.0 - y * r
    r = r + r * (e + e * e)
    return r + r * (1.0 - y * r)


@triton.jit
def _row_stats(logits_ptr, stride, vocab, span, exp_scale, cap2, reference, part_reference, part_sum,
               part_weighted, part_best, group_sum, group_best, SPLITS: tl.constexpr, SUB_BLOCKS: tl.constexpr,
               LANES: tl.constexpr, GROUP: tl.constexpr, ONLINE: tl.constexpr, MASKED: tl.constexpr,
               NEG: tl.constexpr):
    """Per span: the sums of w = 2^(z - r) and of w z (z = cap2 tanh(x / cap), the capped, tempered logit in base-2
    units; r the fixed reference or, with ``ONLINE``, the span's maximum) and the largest logit; per group of
    GROUP lanes, its share of the first sum and its largest logit, from which pass 2 finds the sample's and the
    argmax's index. A step reads [SUB_BLOCKS, LANES] elements; a thread holds all SUB_BLOCKS of its lanes."""
    row = tl.program_id(0)
    split = tl.program_id(1)
    base = logits_ptr + row.to(tl.int64) * stride
    tile = tl.arange(0, SUB_BLOCKS)[:, None] * LANES + tl.arange(0, LANES)[None, :]
    if ONLINE:
        m = tl.full([LANES], NEG, tl.float32)
    s = tl.zeros([LANES], tl.float32)
    t = tl.zeros([LANES], tl.float32)
    best = tl.full([LANES], float("-inf"), tl.float32)
    first = split * span
    for start in range(first, first + span, SUB_BLOCKS * LANES):
        offs = start + tile
        if MASKED:
            x = tl.load(base + offs, mask=offs < vocab, other=float("-inf")).to(tl.float32)
        else:
            x = tl.load(base + offs).to(tl.float32)
        r = _tanh_complement(x, exp_scale)
        if ONLINE:
            z = cap2 - 2.0 * cap2 * r
            if MASKED:
                z = tl.where(offs < vocab, z, NEG)
            m_new = tl.maximum(m, tl.max(z, 0))
            rescale = tl.exp2(m - m_new)
            w = tl.exp2(z - m_new[None, :])
            s = s * rescale + tl.sum(w, 0)
            t = t * rescale + tl.sum(w * z, 0)
            m = m_new
        else:
            w = tl.exp2((cap2 - reference) - 2.0 * cap2 * r)
            if MASKED:
                w = tl.where(offs < vocab, w, 0.0)  # a masked element reads -inf: the softcap makes that -cap2
            s += tl.sum(w, 0)
            t += tl.sum(w * r, 0)  # sum w z = cap2 (sum w - 2 sum w r): z itself would cost an instruction
        best = tl.maximum(best, tl.max(x, 0))  # the softcap is increasing: the largest logit is the largest z
    out = row * SPLITS + split
    groups = out * (LANES // GROUP) + tl.arange(0, LANES // GROUP)
    if ONLINE:
        span_reference = tl.max(m, 0)
        scale = tl.exp2(m - span_reference)
        s = s * scale
        weighted = tl.sum(t * scale, 0)
    else:
        span_reference = reference
        weighted = cap2 * (tl.sum(s, 0) - 2.0 * tl.sum(t, 0))
    sums = tl.sum(tl.reshape(s, [LANES // GROUP, GROUP]), 1)
    bests = tl.max(tl.reshape(best, [LANES // GROUP, GROUP]), 1)
    tl.store(group_sum + groups, sums)
    tl.store(group_best + groups, bests)
    tl.store(part_reference + out, span_reference)
    tl.store(part_sum + out, tl.sum(sums, 0))
    tl.store(part_weighted + out, weighted)
    tl.store(part_best + out, tl.max(bests, 0))


@triton.jit
def _row_probs(logits_ptr, stride, probs_ptr, probs_stride, vocab, span, exp_scale, cap2, uniform, part_reference,
               part_sum, part_weighted, part_best, group_sum, group_best, entropy_out, argmax_out, sample_out,
               SPLITS: tl.constexpr, LANES: tl.constexpr, GROUP: tl.constexpr, BLOCK: tl.constexpr,
               DEPTH: tl.constexpr, MASKED: tl.constexpr):
    """Merges a row's spans (entropy; the span holding the largest logit; the span where u x total falls) and
    writes its probabilities; the programs of those two spans then find the argmax's and the sample's index
    among the few elements of one group of lanes."""
    row = tl.program_id(0)
    split = tl.program_id(1)
    spans = tl.arange(0, SPLITS)
    parts = row * SPLITS + spans
    span_reference = tl.load(part_reference + parts)
    row_reference = tl.max(span_reference, 0)
    scale = tl.exp2(span_reference - row_reference)
    mass = tl.load(part_sum + parts) * scale  # each span's sum of 2^(z - row_reference)
    total = tl.sum(mass, 0)
    if split == 0:
        weighted = tl.sum(tl.load(part_weighted + parts) * scale, 0)
        # H = -sum p ln p with p = 2^(z - r) / total, z in base-2 units: ln 2 (log2 total + r - sum p z).
        tl.store(entropy_out + row, 0.6931471805599453 * (tl.log2(total) + row_reference - weighted / total))
    base = logits_ptr + row.to(tl.int64) * stride
    out = probs_ptr + row.to(tl.int64) * probs_stride
    inv_total = 1.0 / total
    first = split * span
    for start in range(first, first + span, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        if MASKED:
            x = tl.load(base + offs, mask=offs < vocab, other=float("-inf")).to(tl.float32)
        else:
            x = tl.load(base + offs).to(tl.float32)
        p = tl.exp2((cap2 - row_reference) - 2.0 * cap2 * _tanh_complement(x, exp_scale)) * inv_total
        if MASKED:
            tl.store(out + offs, p.to(out.dtype.element_ty), mask=offs < vocab)
        else:
            tl.store(out + offs, p.to(out.dtype.element_ty))

    # A group's elements, in the order both searches take them: depth k (first + k LANES), then lane.
    group_offs = tl.arange(0, DEPTH)[:, None] * LANES + tl.arange(0, GROUP)[None, :]
    positions = tl.arange(0, DEPTH * GROUP)
    span_groups = tl.arange(0, LANES // GROUP)
    span_best = tl.load(part_best + parts)
    row_best = tl.max(span_best, 0)
    if split == tl.argmax(span_best, 0):  # the first span holding the largest logit: its first such group
        is_best = tl.load(group_best + (row * SPLITS + split) * (LANES // GROUP) + span_groups) == row_best
        group = tl.min(tl.where(is_best, span_groups, LANES // GROUP), 0)
        argmax = first + span
        for depth in range(0, span // LANES, DEPTH):
            offs = first + depth * LANES + group * GROUP + group_offs
            inside = (offs < first + span) & (offs < vocab)
            x = tl.load(base + offs, mask=inside, other=float("-inf")).to(tl.float32)
            argmax = tl.minimum(argmax, tl.min(tl.min(tl.where(x == row_best, offs, first + span), 1), 0))
        tl.store(argmax_out + row, argmax.to(tl.int64))

    # Inverse CDF, in the order (span, group, depth, lane): the span where the cumulative mass first exceeds
    # u x total, the group inside it, then the element. Each step stops at the last with mass, where fp32 rounding
    # of the same sums taken in another order could carry it past.
    target = tl.load(uniform + row) * total
    chosen = tl.sum((tl.cumsum(mass, 0) <= target).to(tl.int32), 0)
    chosen = tl.minimum(chosen, tl.max(tl.where(mass > 0, spans, 0), 0))
    if split == chosen:
        residual = target - tl.sum(tl.where(spans < chosen, mass, 0.0), 0)
        group_mass = tl.load(group_sum + (row * SPLITS + split) * (LANES // GROUP) + span_groups)
        group_mass = group_mass * tl.exp2(tl.load(part_reference + row * SPLITS + split) - row_reference)
        group = tl.sum((tl.cumsum(group_mass, 0) <= residual).to(tl.int32), 0)
        group = tl.minimum(group, tl.max(tl.where(group_mass > 0, span_groups, 0), 0))
        residual -= tl.sum(tl.where(span_groups < group, group_mass, 0.0), 0)
        sample = first
        found = 0
        running = 0.0
        for depth in range(0, span // LANES, DEPTH):
            offs = first + depth * LANES + group * GROUP + group_offs
            inside = (offs < first + span) & (offs < vocab)
            x = tl.load(base + offs, mask=inside, other=float("-inf")).to(tl.float32)
            w = tl.exp2((cap2 - row_reference) - 2.0 * cap2 * _tanh_complement(x, exp_scale))
            w = tl.reshape(tl.where(inside, w, 0.0), [DEPTH * GROUP])
            flat = tl.reshape(offs, [DEPTH * GROUP])
            if found == 0:
                crossing = tl.sum((tl.cumsum(w, 0) + running <= residual).to(tl.int32), 0)
                if crossing < DEPTH * GROUP:
                    found = 1
                else:  # no crossing yet: the last element with mass, should no later one cross either
                    crossing = tl.max(tl.where(w > 0, positions, -1), 0)
                if crossing >= 0:
                    sample = tl.sum(tl.where(positions == crossing, flat, 0), 0)
                running += tl.sum(w, 0)
        tl.store(sample_out + row, sample.to(tl.int64))


def row_splits(rows: int, vocab: int, chunk: int) -> int:
    """Programs per row (a power of two): enough for ``TARGET_PROGRAMS`` in all, never a span below one chunk."""
    splits = 1
    while splits < MAX_SPLITS and rows * splits < TARGET_PROGRAMS and vocab > splits * chunk:
        splits *= 2
    return splits


def fixed_reference(cap2: float, vocab: int) -> float | None:
    """A reference r for which every weight 2^(z - r), z in [-cap2, cap2] (base-2 units), is a normal fp32 number
    and a row's sums of weights and of weight x z stay finite; None when cap2 is too wide for one (the online
    softmax then keeps a running maximum). r sits where both ends keep the same room."""
    growth = math.log2(vocab) + math.log2(max(cap2, 1.0))  # the sums' largest term times vocab x |z|
    reference = (growth - FP32_MAX_EXPONENT - FP32_MIN_EXPONENT) / 2
    room = -cap2 - reference - FP32_MIN_EXPONENT  # by that choice also FP32_MAX_EXPONENT - (growth + cap2 - r)
    return reference if room >= REFERENCE_MARGIN else None


@dataclass(frozen=True)
class SamplerLayout:
    """How the kernels cut a row: pass 1 steps of ``sub_blocks`` x ``lanes`` elements (a span is a whole number of
    steps), sums kept per ``group`` of lanes, pass 2 steps of ``probs_block`` elements; ``num_warps`` each."""

    lanes: int = 1024  # 8 lanes a thread at 4 warps: 16-byte bf16 loads
    sub_blocks: int = 4  # several loads in flight per thread before the arithmetic that needs them
    group: int = 8  # 128 groups a span: pass 1 writes 1 KB of them, pass 2 searches 8 lanes of one
    probs_block: int = 4096
    num_warps: int = 4

    @property
    def step(self) -> int:
        return self.sub_blocks * self.lanes


DEFAULT_LAYOUT = SamplerLayout()
SEARCH_DEPTH = 32  # steps of a group's elements a search reads at once (32 x 8 lanes)


class TritonSampler:
    """Callable with ``torch_sampler``'s signature; buffers are allocated per call shape inside the graph pool.

    Each call draws one uniform number per row from ``generator`` (torch's default generator when None, which
    CUDA-graph replays advance, so every replay draws afresh, as ``torch_sampler``'s ``rand_like`` does)."""

    def __init__(self, generator: torch.Generator | None = None, layout: SamplerLayout = DEFAULT_LAYOUT) -> None:
        self.generator = generator
        self.layout = layout

    def __call__(self, logits: torch.Tensor, probs_out: torch.Tensor, softcap: float,
                 temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        layout = self.layout
        rows, vocab = logits.shape
        splits = row_splits(rows, vocab, layout.step)
        span = triton.cdiv(triton.cdiv(vocab, splits), layout.step) * layout.step
        device = logits.device
        parts = tuple(torch.empty(rows * splits, dtype=torch.float32, device=device) for _ in range(4))
        groups = tuple(torch.empty(rows * splits * (layout.lanes // layout.group), dtype=torch.float32,
                                   device=device) for _ in range(2))
        entropy = torch.empty(rows, dtype=torch.float32, device=device)
        argmax, sample = (torch.empty(rows, dtype=torch.long, device=device) for _ in range(2))
        uniform = torch.rand(rows, device=device, generator=self.generator)
        cap2 = softcap / temperature * LOG2_E
        softcap_terms = (2.0 * LOG2_E / softcap, cap2)
        reference = fixed_reference(cap2, vocab)
        masked = splits * span != vocab
        _row_stats[(rows, splits)](logits, logits.stride(0), vocab, span, *softcap_terms,
                                   0.0 if reference is None else reference, *parts, *groups, SPLITS=splits,
                                   SUB_BLOCKS=layout.sub_blocks, LANES=layout.lanes, GROUP=layout.group,
                                   ONLINE=reference is None, MASKED=masked, NEG=NEGATIVE_LARGE,
                                   num_warps=layout.num_warps)
        _row_probs[(rows, splits)](logits, logits.stride(0), probs_out, probs_out.stride(0), vocab, span,
                                   *softcap_terms, uniform, *parts, *groups, entropy, argmax, sample, SPLITS=splits,
                                   LANES=layout.lanes, GROUP=layout.group,
                                   BLOCK=min(layout.probs_block, layout.step), DEPTH=SEARCH_DEPTH, MASKED=masked,
                                   num_warps=layout.num_warps)
        return entropy, argmax, sample


# The checks' shapes, which the compile workers compile too (``precompile.py``): (rows, vocab). The statistics
# check's vocabulary leaves its last spans empty; the distribution check's rows all read one row of logits.
STATISTICS_CHECK_SHAPE = (6, 50_000)
DISTRIBUTION_CHECK_SHAPE = (512, 50_000)
DISTRIBUTION_CHECK_CALLS = 32  # 16,384 draws
CHECK_SOFTCAP = 30.0
CHECK_TEMPERATURE = 0.8
# A chi-square statistic this many standard normal deviations into its upper tail fails (p about 1e-6).
CHI_SQUARE_DEVIATIONS = 4.75
MIN_EXPECTED_PER_BIN = 5.0  # the usual rule for the chi-square approximation
INDEX_BINS = 64  # tokens too unlikely for a bin of their own are pooled in runs of neighbouring indices


def check_against_torch(sampler: TritonSampler, reference: Sampler, device: str) -> str:
    """Empty when the fused sampler agrees with the torch one on random logits and its draws follow the softmax;
    else what disagreed."""
    generator = torch.Generator(device=device).manual_seed(7)
    logits = (torch.randn(*STATISTICS_CHECK_SHAPE, device=device, generator=generator) * 8).to(torch.bfloat16)
    fused_probs, torch_probs = (torch.empty_like(logits) for _ in range(2))
    entropy, argmax, sample = sampler(logits, fused_probs, CHECK_SOFTCAP, CHECK_TEMPERATURE)
    ref_entropy, ref_argmax, _ = reference(logits, torch_probs, CHECK_SOFTCAP, CHECK_TEMPERATURE)
    problems = []
    if not torch.allclose(entropy, ref_entropy, rtol=1e-3, atol=1e-3):
        problems.append(f"entropy off by {(entropy - ref_entropy).abs().max().item():.2e}")
    rows = torch.arange(logits.shape[0], device=logits.device)
    if not torch.equal(logits[rows, argmax], logits[rows, ref_argmax]):  # ties in bf16 may pick either index
        problems.append("argmax differs")
    if not torch.allclose(fused_probs.float(), torch_probs.float(), rtol=2e-2, atol=1e-5):
        problems.append("probabilities differ")
    if not bool(((sample >= 0) & (sample < logits.shape[1])).all()):
        problems.append("sample out of range")
    problem = check_sampling_distribution(sampler, device, shape=DISTRIBUTION_CHECK_SHAPE,
                                          calls=DISTRIBUTION_CHECK_CALLS, temperature=CHECK_TEMPERATURE)
    return "; ".join([*problems, *([problem] if problem else [])])


def check_sampling_distribution(sampler: TritonSampler, device: str, *, shape: tuple[int, int], calls: int,
                                temperature: float, seed: int = 11) -> str:
    """Empty when ``calls`` x rows draws from one row of random logits (every row reads it; each call with its own
    uniform numbers) pass a chi-square test against the softmax of the softcapped, tempered logits; else the statistic."""
    rows, vocab = shape
    generator = torch.Generator(device=device).manual_seed(seed)
    row = (torch.randn(vocab, device=device, generator=generator) * 8).to(torch.bfloat16)
    logits = row.expand(rows, vocab)
    probs = torch.empty(rows, vocab, dtype=torch.bfloat16, device=device)
    fused = TritonSampler(generator=generator, layout=sampler.layout)
    draws = [fused(logits, probs, CHECK_SOFTCAP, temperature)[2] for _ in range(calls)]
    softmax = torch.softmax(torch.tanh(row.double() / CHECK_SOFTCAP) * (CHECK_SOFTCAP / temperature), dim=-1)
    return chi_square_problem(torch.cat(draws), softmax)


def chi_square_problem(draws: torch.Tensor, probs: torch.Tensor) -> str:
    """Empty when the draws' counts fit the distribution ``probs`` (a chi-square test with bins of at least
    ``MIN_EXPECTED_PER_BIN`` expected draws: a token of its own where it is likely enough, else runs of
    neighbouring tokens, so that a draw put in the wrong span or at the wrong offset shows); else what failed."""
    vocab = probs.numel()
    if bool(((draws < 0) | (draws >= vocab)).any()):
        return "a draw outside the vocabulary"
    expected = probs.double().cpu() * draws.numel()
    alone = expected >= MIN_EXPECTED_PER_BIN
    pooled = torch.where(alone, 0.0, expected)
    run = max(float(pooled.sum()) / INDEX_BINS, MIN_EXPECTED_PER_BIN)
    runs = max(int(float(pooled.sum()) // run), 1)  # the last, partial run joins the one before it
    run_of_token = ((pooled.cumsum(0) - pooled) / run).long().clamp(max=runs - 1)
    bin_of_token = torch.where(alone, runs + alone.long().cumsum(0) - 1, run_of_token)
    bins = runs + int(alone.sum())
    expected_per_bin = torch.bincount(bin_of_token, weights=expected, minlength=bins)
    observed = torch.bincount(bin_of_token[draws.cpu()], minlength=bins).double()
    used = expected_per_bin > 0
    if bool((observed[~used] > 0).any()):
        return "a draw of a token with no probability"
    statistic = float(((observed - expected_per_bin)[used] ** 2 / expected_per_bin[used]).sum())
    freedom = int(used.sum()) - 1
    # Wilson and Hilferty's normal approximation of the chi-square distribution's quantiles.
    limit = freedom * (1 - 2 / (9 * freedom) + CHI_SQUARE_DEVIATIONS * math.sqrt(2 / (9 * freedom))) ** 3
    if statistic > limit:
        return (f"draws do not follow the softmax: chi-square {statistic:.0f} over {freedom} degrees of freedom "
                f"(limit {limit:.0f})")
    return ""
