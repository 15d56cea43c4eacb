"""The denoise sampler fused into two Triton kernels, as engines compile theirs (vLLM's is a torch.compile'd step).

Pass 1 reads the bf16 logits once and keeps, per lane, an online softmax of the softcapped, temperature-scaled
logits (running max, sum of exponentials, sum of exponential x logit), the argmax and the Gumbel-max draw. Each
row is cut into ``splits`` spans, one program each, so that a few hundred rows still fill every SM; the programs
leave their span's partial statistics. Pass 2 merges a row's partials (entropy, argmax, sample), reads the row
again and writes the probabilities (bf16) that the next step's self-conditioning product reads. That is the
traffic ``dgprofile.specs.pass_cost`` counts for the sampler: two reads of the logits and one write of probabilities.

Pass 1 is arithmetic-bound unless kept lean: one exponential per element in the online update, an approximate
division in the softcap's tanh, and one Philox draw per four elements (``tl.rand4x``) rather than per element.

Imported only on CUDA with Triton present; ``check_against_torch`` validates it before the benchmark uses it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from dgprofile.probes.decode.head import Sampler
from dgprofile.probes.decode.triton_fused import NEGATIVE_LARGE

LANES = 1024  # elements per sub-block; a pass-1 iteration reads four sub-blocks (one Philox draw each 4 elements)
CHUNK = 4 * LANES
NUM_WARPS = 4  # 8 contiguous bf16 per thread per sub-block: 16-byte loads
TARGET_PROGRAMS = 2048  # enough programs per kernel for every SM of a large GPU to hold several
MAX_SPLITS = 16


@triton.jit
def _softcapped(x, two_inv_cap, cap_over_t):
    """tanh(x / cap) * cap / T, written as cap/T - 2 cap/T / (exp(2x / cap) + 1) (exact at both infinities)."""
    return cap_over_t - tl.fdiv(2.0 * cap_over_t, tl.exp(x * two_inv_cap) + 1.0)


@triton.jit
def _update(x, offs, inside, u, m, s, t, m_idx, g_best, g_idx, two_inv_cap, cap_over_t, NEG: tl.constexpr):
    z = tl.where(inside, _softcapped(x, two_inv_cap, cap_over_t), NEG)
    diff = z - m
    d = tl.exp(-tl.abs(diff))  # exp(m - z) when z is the new maximum, else exp(z - m): one exponential
    up = diff > 0
    s = tl.where(up, s * d + 1.0, s + d)
    t = tl.where(up, t * d + z, t + d * z)
    m_idx = tl.where(up, offs, m_idx)
    m = tl.maximum(m, z)
    g = tl.where(inside, z - tl.log(-tl.log(u)), NEG)
    g_up = g > g_best
    g_idx = tl.where(g_up, offs, g_idx)
    g_best = tl.maximum(g_best, g)
    return m, s, t, m_idx, g_best, g_idx


@triton.jit
def _row_stats(logits_ptr, stride, vocab, span, two_inv_cap, cap_over_t, seed, part_max, part_sum, part_weighted,
               part_argmax, part_gumbel, part_sample, SPLITS: tl.constexpr, LANES: tl.constexpr,
               NEG: tl.constexpr):
    row = tl.program_id(0)
    split = tl.program_id(1)
    base = logits_ptr + row.to(tl.int64) * stride
    lanes = tl.arange(0, LANES)
    m = tl.full([LANES], NEG, tl.float32)
    s = tl.zeros([LANES], tl.float32)
    t = tl.zeros([LANES], tl.float32)
    m_idx = tl.zeros([LANES], tl.int32)
    g_best = tl.full([LANES], NEG, tl.float32)
    g_idx = tl.zeros([LANES], tl.int32)
    first = split * span
    # Philox counters, unique per (row, four elements): int32, fine below 2**31 / (span x SPLITS / 4) rows.
    counter_base = row * (span * SPLITS // 4) + first // 4
    for start in range(first, first + span, 4 * LANES):
        u0, u1, u2, u3 = tl.rand4x(seed, counter_base + (start - first) // 4 + lanes)
        o0 = start + lanes
        o1 = o0 + LANES
        o2 = o1 + LANES
        o3 = o2 + LANES
        x0 = tl.load(base + o0, mask=o0 < vocab, other=0.0).to(tl.float32)
        x1 = tl.load(base + o1, mask=o1 < vocab, other=0.0).to(tl.float32)
        x2 = tl.load(base + o2, mask=o2 < vocab, other=0.0).to(tl.float32)
        x3 = tl.load(base + o3, mask=o3 < vocab, other=0.0).to(tl.float32)
        m, s, t, m_idx, g_best, g_idx = _update(x0, o0, o0 < vocab, u0, m, s, t, m_idx, g_best, g_idx,
                                                two_inv_cap, cap_over_t, NEG)
        m, s, t, m_idx, g_best, g_idx = _update(x1, o1, o1 < vocab, u1, m, s, t, m_idx, g_best, g_idx,
                                                two_inv_cap, cap_over_t, NEG)
        m, s, t, m_idx, g_best, g_idx = _update(x2, o2, o2 < vocab, u2, m, s, t, m_idx, g_best, g_idx,
                                                two_inv_cap, cap_over_t, NEG)
        m, s, t, m_idx, g_best, g_idx = _update(x3, o3, o3 < vocab, u3, m, s, t, m_idx, g_best, g_idx,
                                                two_inv_cap, cap_over_t, NEG)
    span_max = tl.max(m, 0)
    scale = tl.exp(m - span_max)
    best_lane = tl.argmax(m, 0)
    g_lane = tl.argmax(g_best, 0)
    out = row * SPLITS + split
    tl.store(part_max + out, span_max)
    tl.store(part_sum + out, tl.sum(s * scale, 0))
    tl.store(part_weighted + out, tl.sum(t * scale, 0))
    tl.store(part_argmax + out, tl.sum(tl.where(lanes == best_lane, m_idx, 0), 0))
    tl.store(part_gumbel + out, tl.max(g_best, 0))
    tl.store(part_sample + out, tl.sum(tl.where(lanes == g_lane, g_idx, 0), 0))


@triton.jit
def _row_probs(logits_ptr, stride, probs_ptr, probs_stride, vocab, span, two_inv_cap, cap_over_t, part_max,
               part_sum, part_weighted, part_argmax, part_gumbel, part_sample, entropy_out, argmax_out, sample_out,
               SPLITS: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    split = tl.program_id(1)
    parts = row * SPLITS + tl.arange(0, SPLITS)
    span_max = tl.load(part_max + parts)
    row_max = tl.max(span_max, 0)
    scale = tl.exp(span_max - row_max)
    total = tl.sum(tl.load(part_sum + parts) * scale, 0)
    if split == 0:
        weighted = tl.sum(tl.load(part_weighted + parts) * scale, 0)
        tl.store(entropy_out + row, tl.log(total) + row_max - weighted / total)
        best = tl.argmax(span_max, 0)
        tl.store(argmax_out + row, tl.sum(tl.where(parts == row * SPLITS + best,
                                                   tl.load(part_argmax + parts), 0), 0).to(tl.int64))
        drawn = tl.argmax(tl.load(part_gumbel + parts), 0)
        tl.store(sample_out + row, tl.sum(tl.where(parts == row * SPLITS + drawn,
                                                   tl.load(part_sample + parts), 0), 0).to(tl.int64))
    base = logits_ptr + row.to(tl.int64) * stride
    out = probs_ptr + row.to(tl.int64) * probs_stride
    inv_total = 1.0 / total
    first = split * span
    for start in range(first, first + span, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        inside = offs < vocab
        x = tl.load(base + offs, mask=inside, other=0.0).to(tl.float32)
        z = _softcapped(x, two_inv_cap, cap_over_t)
        tl.store(out + offs, (tl.exp(z - row_max) * inv_total).to(out.dtype.element_ty), mask=inside)


def row_splits(rows: int, vocab: int) -> int:
    """Programs per row (a power of two): enough for ``TARGET_PROGRAMS`` in all, never a span below one chunk."""
    splits = 1
    while splits < MAX_SPLITS and rows * splits < TARGET_PROGRAMS and vocab > splits * CHUNK:
        splits *= 2
    return splits


class TritonSampler:
    """Callable with ``torch_sampler``'s signature; buffers are allocated per call shape inside the graph pool."""

    def __init__(self, seed: int = 1234) -> None:
        self.seed = seed

    def __call__(self, logits: torch.Tensor, probs_out: torch.Tensor, softcap: float,
                 temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows, vocab = logits.shape
        splits = row_splits(rows, vocab)
        span = triton.cdiv(triton.cdiv(vocab, splits), CHUNK) * CHUNK
        device = logits.device
        part_max, part_sum, part_weighted, part_gumbel = (
            torch.empty(rows * splits, dtype=torch.float32, device=device) for _ in range(4))
        part_argmax, part_sample = (torch.empty(rows * splits, dtype=torch.int32, device=device) for _ in range(2))
        entropy = torch.empty(rows, dtype=torch.float32, device=device)
        argmax, sample = (torch.empty(rows, dtype=torch.long, device=device) for _ in range(2))
        two_inv_cap, cap_over_t = 2.0 / softcap, softcap / temperature
        parts = (part_max, part_sum, part_weighted, part_argmax, part_gumbel, part_sample)
        _row_stats[(rows, splits)](logits, logits.stride(0), vocab, span, two_inv_cap, cap_over_t, self.seed, *parts,
                                   SPLITS=splits, LANES=LANES, NEG=NEGATIVE_LARGE, num_warps=NUM_WARPS)
        _row_probs[(rows, splits)](logits, logits.stride(0), probs_out, probs_out.stride(0), vocab, span,
                                   two_inv_cap, cap_over_t, *parts, entropy, argmax, sample, SPLITS=splits,
                                   BLOCK=CHUNK, num_warps=NUM_WARPS)
        return entropy, argmax, sample


def check_against_torch(sampler: TritonSampler, reference: Sampler, device: str) -> str:
    """Empty when the fused sampler agrees with the torch one on random logits; else what disagreed."""
    generator = torch.Generator(device=device).manual_seed(7)
    logits = (torch.randn(6, 50_000, device=device, generator=generator) * 8).to(torch.bfloat16)
    fused_probs, torch_probs = (torch.empty_like(logits) for _ in range(2))
    entropy, argmax, sample = sampler(logits, fused_probs, 30.0, 0.8)
    ref_entropy, ref_argmax, _ = reference(logits, torch_probs, 30.0, 0.8)
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
    problems.extend(_check_sampling_frequency(sampler, reference, device))
    return "; ".join(problems)


def _check_sampling_frequency(sampler: TritonSampler, reference: Sampler, device: str) -> list[str]:
    """The Gumbel-max draw picks each row's most likely token about as often as its probability says (a wrong
    merge of the per-lane or per-span draws shifts this by far more than five standard deviations)."""
    generator = torch.Generator(device=device).manual_seed(11)
    logits = (torch.randn(1024, 8192, device=device, generator=generator) * 8).to(torch.bfloat16)
    probs = torch.empty_like(logits)
    _, _, sample = sampler(logits, probs, 30.0, 0.8)
    _, ref_argmax, _ = reference(logits, torch.empty_like(logits), 30.0, 0.8)
    top = torch.softmax(torch.tanh(logits.float() / 30.0) * (30.0 / 0.8), dim=-1).gather(
        -1, ref_argmax.view(-1, 1)).view(-1)
    expected = float(top.mean())
    observed = float((sample == ref_argmax).float().mean())
    sigma = float((top * (1 - top)).sum().sqrt()) / top.numel()
    if abs(observed - expected) > 5 * sigma + 0.01:
        return [f"sample picks the top token {observed:.1%} of the time, expected {expected:.1%}"]
    return []
