"""The denoise sampler fused into two Triton kernels, as engines compile theirs (vLLM's is a torch.compile'd step).

Pass 1 reads each row of bf16 logits once and keeps, per lane, an online softmax of the softcapped,
temperature-scaled logits (running max, sum of exponentials, sum of exponential x logit), the argmax and the
Gumbel-max draw; the lanes are merged at the end into the row's entropy, argmax and sample. Pass 2 reads the row
again and writes the probabilities (bf16) that the next step's self-conditioning product reads. That is the
traffic ``dgprofile.passcost`` counts for the sampler: two reads of the logits and one write of probabilities.

Imported only on CUDA with Triton present; ``check_against_torch`` validates it before the benchmark uses it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 2048
NEGATIVE_LARGE = -1.0e30  # finite "minus infinity": keeps the online-softmax rescaling free of inf - inf


@triton.jit
def _row_stats(logits_ptr, stride, vocab, inv_cap, cap_over_t, seed, max_out, sum_out, entropy_out, argmax_out,
               sample_out, BLOCK: tl.constexpr, NEG: tl.constexpr):
    row = tl.program_id(0)
    base = logits_ptr + row.to(tl.int64) * stride
    lanes = tl.arange(0, BLOCK)
    m = tl.full([BLOCK], NEG, tl.float32)
    s = tl.zeros([BLOCK], tl.float32)
    t = tl.zeros([BLOCK], tl.float32)
    best = tl.full([BLOCK], NEG, tl.float32)
    best_idx = tl.zeros([BLOCK], tl.int32)
    g_best = tl.full([BLOCK], NEG, tl.float32)
    g_idx = tl.zeros([BLOCK], tl.int32)
    for start in range(0, vocab, BLOCK):
        offs = start + lanes
        inside = offs < vocab
        x = tl.load(base + offs, mask=inside, other=0.0).to(tl.float32)
        y = x * inv_cap
        z = (1.0 - 2.0 / (tl.exp(2.0 * y) + 1.0)) * cap_over_t  # tanh(x / cap) * cap / T
        z = tl.where(inside, z, NEG)
        m_new = tl.maximum(m, z)
        alpha = tl.exp(m - m_new)
        p = tl.where(inside, tl.exp(z - m_new), 0.0)
        s = s * alpha + p
        t = t * alpha + p * tl.where(inside, z, 0.0)
        m = m_new
        better = z > best
        best_idx = tl.where(better, offs, best_idx)
        best = tl.where(better, z, best)
        u = tl.rand(seed, row * vocab + offs)  # int32 offsets: rows x vocab stays below 2**31 here
        g = tl.where(inside, z - tl.log(-tl.log(u)), NEG)
        g_better = g > g_best
        g_idx = tl.where(g_better, offs, g_idx)
        g_best = tl.where(g_better, g, g_best)
    row_max = tl.max(m, 0)
    scale = tl.exp(m - row_max)
    total = tl.sum(s * scale, 0)
    weighted = tl.sum(t * scale, 0)
    entropy = tl.log(total) + row_max - weighted / total
    best_lane = tl.argmax(best, 0)
    g_lane = tl.argmax(g_best, 0)
    tl.store(max_out + row, row_max)
    tl.store(sum_out + row, total)
    tl.store(entropy_out + row, entropy)
    tl.store(argmax_out + row, tl.sum(tl.where(lanes == best_lane, best_idx, 0), 0).to(tl.int64))
    tl.store(sample_out + row, tl.sum(tl.where(lanes == g_lane, g_idx, 0), 0).to(tl.int64))


@triton.jit
def _row_probs(logits_ptr, stride, probs_ptr, probs_stride, vocab, inv_cap, cap_over_t, max_in, sum_in,
               BLOCK: tl.constexpr):
    row = tl.program_id(0)
    base = logits_ptr + row.to(tl.int64) * stride
    out = probs_ptr + row.to(tl.int64) * probs_stride
    row_max = tl.load(max_in + row)
    inv_total = 1.0 / tl.load(sum_in + row)
    for start in range(0, vocab, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        inside = offs < vocab
        x = tl.load(base + offs, mask=inside, other=0.0).to(tl.float32)
        z = (1.0 - 2.0 / (tl.exp(2.0 * x * inv_cap) + 1.0)) * cap_over_t
        tl.store(out + offs, (tl.exp(z - row_max) * inv_total).to(out.dtype.element_ty), mask=inside)


class TritonSampler:
    """Callable with ``torch_sampler``'s signature; buffers are allocated per call shape inside the graph pool."""

    def __init__(self, seed: int = 1234) -> None:
        self.seed = seed

    def __call__(self, logits: torch.Tensor, probs_out: torch.Tensor, softcap: float,
                 temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows, vocab = logits.shape
        f32 = dict(dtype=torch.float32, device=logits.device)
        row_max, total, entropy = (torch.empty(rows, **f32) for _ in range(3))
        argmax = torch.empty(rows, dtype=torch.long, device=logits.device)
        sample = torch.empty(rows, dtype=torch.long, device=logits.device)
        inv_cap, cap_over_t = 1.0 / softcap, softcap / temperature
        _row_stats[(rows,)](logits, logits.stride(0), vocab, inv_cap, cap_over_t, self.seed, row_max, total,
                            entropy, argmax, sample, BLOCK=BLOCK, NEG=NEGATIVE_LARGE, num_warps=8)
        _row_probs[(rows,)](logits, logits.stride(0), probs_out, probs_out.stride(0), vocab, inv_cap, cap_over_t,
                            row_max, total, BLOCK=BLOCK, num_warps=8)
        return entropy, argmax, sample


def check_against_torch(sampler: TritonSampler, reference, device: str) -> str:
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
    return "; ".join(problems)
