"""Time the denoise and AR samplers against the designs they replaced, and check them, on a CUDA GPU.

    python scripts/bench_sampler.py [--device cuda] [--sweep]

A developer script, not shipped in the package. At the denoise head's shapes (c = 1 and 8: [256 x 262,144] and
[2048 x 262,144] bf16 logits) it times the fused Triton sampler, the fused sampler it replaced (a Gumbel-max draw
per element, kept below as the baseline) and the torch ops; at the AR step's (1 and 8 rows) the top-k sampler and
the one it replaced. Each is a CUDA-graph replay timed by the harness, listed with its kernels' device times (torch
profiler) and set against the floor of the bytes the pass-cost model counts for it at the streaming read measured
here. Then the checks on the GPU: the fused sampler's own check (statistics on random logits, a chi-square test of
16,384 draws), the same with a running maximum (T = 0.3), the statistics and a chi-square test at the real width,
and the AR sampler's draws against its top k. ``--sweep`` also times other layouts of the fused kernels.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import defaultdict
from collections.abc import Callable
from functools import partial

import torch
import triton
import triton.language as tl

from dgprofile.probes import bench_bandwidth
from dgprofile.probes.decode.head import Sampler, softcapped_top_k, torch_sampler
from dgprofile.probes.decode.model import AR_TOP_K
from dgprofile.probes.decode.triton_fused import NEGATIVE_LARGE
from dgprofile.probes.decode.triton_sampler import (
    DEFAULT_LAYOUT,
    SamplerLayout,
    TritonSampler,
    check_against_torch,
    check_sampling_distribution,
)
from dgprofile.probes.harness import Budget, graph_or_eager, timer_for
from dgprofile.records.values import Unavailable
from dgprofile.specs.pass_cost import (
    AR_SAMPLER_LOGIT_READS,
    DENOISE_SAMPLER_LOGIT_READS,
    LOGIT_BYTES,
    PROBABILITY_BYTES,
)

VOCAB = 262_144
SOFTCAP = 30.0
TEMPERATURE = 0.8  # DiffusionGemma's first denoising step (t_max), as the benchmark times it
DENOISE_ROWS = {1: 256, 8: 2048}  # concurrency -> canvas rows
PROFILED_CALLS = 5
SWEEP = (SamplerLayout(sub_blocks=2), SamplerLayout(sub_blocks=8), SamplerLayout(num_warps=8),
         SamplerLayout(lanes=2048, num_warps=8), SamplerLayout(probs_block=2048), SamplerLayout(probs_block=1024))


# --- the fused sampler as it was before the inverse-CDF design: the baseline of the README's figures ---------------

@triton.jit
def _previous_softcapped(x, two_inv_cap, cap_over_t):
    return cap_over_t - tl.fdiv(2.0 * cap_over_t, tl.exp(x * two_inv_cap) + 1.0)


@triton.jit
def _previous_update(x, offs, inside, u, m, s, t, m_idx, g_best, g_idx, two_inv_cap, cap_over_t, NEG: tl.constexpr):
    z = tl.where(inside, _previous_softcapped(x, two_inv_cap, cap_over_t), NEG)
    diff = z - m
    d = tl.exp(-tl.abs(diff))
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
def _previous_row_stats(logits_ptr, stride, vocab, span, two_inv_cap, cap_over_t, seed, part_max, part_sum,
                        part_weighted, part_argmax, part_gumbel, part_sample, SPLITS: tl.constexpr,
                        LANES: tl.constexpr, NEG: tl.constexpr):
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
        m, s, t, m_idx, g_best, g_idx = _previous_update(x0, o0, o0 < vocab, u0, m, s, t, m_idx, g_best, g_idx,
                                                         two_inv_cap, cap_over_t, NEG)
        m, s, t, m_idx, g_best, g_idx = _previous_update(x1, o1, o1 < vocab, u1, m, s, t, m_idx, g_best, g_idx,
                                                         two_inv_cap, cap_over_t, NEG)
        m, s, t, m_idx, g_best, g_idx = _previous_update(x2, o2, o2 < vocab, u2, m, s, t, m_idx, g_best, g_idx,
                                                         two_inv_cap, cap_over_t, NEG)
        m, s, t, m_idx, g_best, g_idx = _previous_update(x3, o3, o3 < vocab, u3, m, s, t, m_idx, g_best, g_idx,
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
def _previous_row_probs(logits_ptr, stride, probs_ptr, probs_stride, vocab, span, two_inv_cap, cap_over_t,
                        part_max, part_sum, part_weighted, part_argmax, part_gumbel, part_sample, entropy_out,
                        argmax_out, sample_out, SPLITS: tl.constexpr, BLOCK: tl.constexpr):
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
        z = _previous_softcapped(x, two_inv_cap, cap_over_t)
        tl.store(out + offs, (tl.exp(z - row_max) * inv_total).to(out.dtype.element_ty), mask=inside)


def previous_fused_sampler(logits: torch.Tensor, probs_out: torch.Tensor, softcap: float,
                           temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The replaced design: online softmax, one Philox draw per four elements, Gumbel-max per element."""
    lanes, chunk = 1024, 4096
    rows, vocab = logits.shape
    splits = 1
    while splits < 16 and rows * splits < 2048 and vocab > splits * chunk:
        splits *= 2
    span = triton.cdiv(triton.cdiv(vocab, splits), chunk) * chunk
    floats = [torch.empty(rows * splits, dtype=torch.float32, device=logits.device) for _ in range(4)]
    ints = [torch.empty(rows * splits, dtype=torch.int32, device=logits.device) for _ in range(2)]
    parts = (floats[0], floats[1], floats[2], ints[0], floats[3], ints[1])
    entropy = torch.empty(rows, dtype=torch.float32, device=logits.device)
    argmax, sample = (torch.empty(rows, dtype=torch.long, device=logits.device) for _ in range(2))
    two_inv_cap, cap_over_t = 2.0 / softcap, softcap / temperature
    _previous_row_stats[(rows, splits)](logits, logits.stride(0), vocab, span, two_inv_cap, cap_over_t, 1234, *parts,
                                        SPLITS=splits, LANES=lanes, NEG=NEGATIVE_LARGE, num_warps=4)
    _previous_row_probs[(rows, splits)](logits, logits.stride(0), probs_out, probs_out.stride(0), vocab, span,
                                        two_inv_cap, cap_over_t, *parts, entropy, argmax, sample, SPLITS=splits,
                                        BLOCK=chunk, num_warps=4)
    return entropy, argmax, sample


def previous_top_k(logits: torch.Tensor, softcap: float) -> torch.Tensor:
    """The replaced AR sampler: the softcap over the whole vocabulary in fp32, then top-k and the draw."""
    z = logits.float().mul_(1.0 / softcap).tanh_().mul_(softcap)
    values, indices = z.topk(min(AR_TOP_K, z.shape[-1]), dim=-1)
    choice = (values + torch.rand_like(values).log_().neg_().log_().neg_()).argmax(dim=-1, keepdim=True)
    return indices.gather(-1, choice)


# --- timing ---------------------------------------------------------------------------------------------------

def streaming_read_bytes_per_s(device: str) -> float:
    """The best streaming read of a 1 GiB buffer, as ``dgprofile check`` measures it."""
    properties = torch.cuda.get_device_properties(device)
    result = bench_bandwidth.device_bandwidth(
        device, buffer_bytes=1 << 30, timer=timer_for(device), budget=Budget(),
        theoretical_bytes_per_s=Unavailable("not needed here"), sm_count=properties.multi_processor_count)
    best = bench_bandwidth.best_figure(result.figures, "stream-read")
    if best is None:
        raise SystemExit("no streaming read figure")
    return best.bytes_per_s


def kernel_seconds(fn: Callable[[], object]) -> dict[str, float]:
    """Device seconds per call of each kernel ``fn`` launches (eager calls under the torch profiler)."""
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profiler:
        for _ in range(PROFILED_CALLS):
            fn()
        torch.cuda.synchronize()
    totals: dict[str, float] = defaultdict(float)
    for event in profiler.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            totals[event.name] += event.time_range.elapsed_us() * 1e-6 / PROFILED_CALLS
    return dict(totals)


def show(line: str) -> None:
    print(line, flush=True)  # as it comes: a run cut short keeps what it measured


def timed(name: str, fn: Callable[[], object], floor_seconds: float, device: str) -> None:
    """One sampler's line: graph-replay time, against the floor, and its kernels' times; or why it failed."""
    try:
        prepared = graph_or_eager(fn)
        timing = Budget().measure(prepared.call, timer=timer_for(device), ops_per_call=prepared.ops_per_call)
        kernels = sorted(kernel_seconds(fn).items(), key=lambda item: -item[1])
    except Exception as error:  # one sampler failing here (a compile error, say) leaves the others to time
        show(f"    {name:28s} failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        return
    seconds = timing.median_seconds
    shown = ", ".join(f"{kernel[:40]} {value * 1e6:.1f}" for kernel, value in kernels[:4])
    graph = "" if prepared.fallback_reason is None else f" (eager: {prepared.fallback_reason})"
    show(f"    {name:28s} {seconds * 1e6:8.1f} us = {seconds / floor_seconds:5.2f}x floor  "
         f"(cv {timing.coefficient_of_variation:.1%}){graph}; kernels us: {shown}")


def changes(layout: SamplerLayout) -> str:
    """The fields of ``layout`` that differ from the default one."""
    return ", ".join(f"{field.name}={getattr(layout, field.name)}" for field in dataclasses.fields(layout)
                     if getattr(layout, field.name) != getattr(DEFAULT_LAYOUT, field.name))


def denoise_table(device: str, bandwidth: float, sweep: bool) -> None:
    show("")
    show(f"Denoise sampler, T = {TEMPERATURE}, floor = two reads of the bf16 logits and one write of bf16 "
         f"probabilities at {bandwidth / 1e12:.2f} TB/s")
    generator = torch.Generator(device=device).manual_seed(0)
    for concurrency, rows in DENOISE_ROWS.items():
        logits = (torch.randn(rows, VOCAB, device=device, generator=generator) * 8).to(torch.bfloat16)
        probs = torch.empty_like(logits)
        floor = rows * VOCAB * (DENOISE_SAMPLER_LOGIT_READS * LOGIT_BYTES + PROBABILITY_BYTES) / bandwidth
        show(f"  c={concurrency}: [{rows} x {VOCAB}], floor {floor * 1e6:.1f} us")
        samplers: list[tuple[str, Sampler]] = [("fused (this design)", TritonSampler()),
                                               ("fused (previous: Gumbel-max)", previous_fused_sampler),
                                               ("torch ops", torch_sampler)]
        if sweep:
            samplers += [(f"fused, {changes(layout)}", TritonSampler(layout=layout)) for layout in SWEEP]
        for name, sampler in samplers:
            timed(name, partial(sampler, logits, probs, SOFTCAP, TEMPERATURE), floor, device)
        torch.cuda.empty_cache()


def ar_table(device: str, bandwidth: float) -> None:
    show("")
    show(f"AR sampler (top-{AR_TOP_K}), floor = one read of the bf16 logits")
    generator = torch.Generator(device=device).manual_seed(1)
    for rows in (1, 8):
        logits = (torch.randn(rows, VOCAB, device=device, generator=generator) * 8).to(torch.bfloat16)
        floor = rows * VOCAB * LOGIT_BYTES * AR_SAMPLER_LOGIT_READS / bandwidth
        show(f"  c={rows}: [{rows} x {VOCAB}], floor {floor * 1e6:.2f} us")
        timed("top-k on the logits (this)", partial(softcapped_top_k, logits, SOFTCAP), floor, device)
        timed("softcap first (previous)", partial(previous_top_k, logits, SOFTCAP), floor, device)


# --- checks ---------------------------------------------------------------------------------------------------

def statistics_problems(sampler: Sampler, logits: torch.Tensor, temperature: float) -> str:
    """Entropy, argmax and probabilities against the torch sampler on ``logits``; empty when they agree."""
    probs, reference_probs = torch.empty_like(logits), torch.empty_like(logits)
    entropy, argmax, sample = sampler(logits, probs, SOFTCAP, temperature)
    reference_entropy, reference_argmax, _ = torch_sampler(logits, reference_probs, SOFTCAP, temperature)
    rows = torch.arange(logits.shape[0], device=logits.device)
    problems = []
    if not torch.allclose(entropy, reference_entropy, rtol=1e-3, atol=1e-3):
        problems.append(f"entropy off by {(entropy - reference_entropy).abs().max().item():.2e}")
    if not torch.equal(logits[rows, argmax], logits[rows, reference_argmax]):
        problems.append("argmax differs")
    if not torch.allclose(probs.float(), reference_probs.float(), rtol=2e-2, atol=1e-5):
        problems.append("probabilities differ")
    if not bool(((sample >= 0) & (sample < logits.shape[1])).all()):
        problems.append("sample out of range")
    return "; ".join(problems)


def ar_problems(device: str, generator: torch.Generator) -> str:
    row = (torch.randn(1, VOCAB, device=device, generator=generator) * 8).to(torch.bfloat16).expand(4096, VOCAB)
    top = set(row[0].topk(AR_TOP_K).indices.tolist())
    return "" if set(softcapped_top_k(row, SOFTCAP).view(-1).tolist()) <= top else "a draw outside the top k"


def check(what: str, problems: Callable[[], str]) -> None:
    try:
        problem = problems()
    except Exception as error:  # report it and go on to the next check
        problem = f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    show(f"  {what}: {problem or 'ok'}")


def checks(device: str, sweep: bool) -> None:
    show("")
    show("Checks on the GPU")
    generator = torch.Generator(device=device).manual_seed(5)
    check("check_against_torch (statistics; chi-square of 16,384 draws)",
          partial(check_against_torch, TritonSampler(), torch_sampler, device))
    small = (torch.randn(6, 50_000, device=device, generator=generator) * 8).to(torch.bfloat16)
    check("running maximum, T = 0.3: statistics", partial(statistics_problems, TritonSampler(), small, 0.3))
    check("running maximum, T = 0.3: chi-square of 16,384 draws",
          partial(check_sampling_distribution, TritonSampler(), device, shape=(512, 50_000), calls=32,
                  temperature=0.3))
    wide = (torch.randn(DENOISE_ROWS[1], VOCAB, device=device, generator=generator) * 8).to(torch.bfloat16)
    for layout in (DEFAULT_LAYOUT, *(SWEEP if sweep else ())):
        check(f"[256 x 262,144], {changes(layout) or 'default layout'}: statistics",
              partial(statistics_problems, TritonSampler(layout=layout), wide, TEMPERATURE))
    check("[256 x 262,144]: chi-square of 16,384 draws",
          partial(check_sampling_distribution, TritonSampler(), device, shape=(DENOISE_ROWS[1], VOCAB), calls=64,
                  temperature=TEMPERATURE))
    check(f"AR: 4,096 draws among the top {AR_TOP_K}", partial(ar_problems, device, generator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sweep", action="store_true", help="also time other layouts of the fused kernels")
    args = parser.parse_args()
    show(f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, triton {triton.__version__}")
    bandwidth = streaming_read_bytes_per_s(args.device)
    show(f"streaming read {bandwidth / 1e12:.2f} TB/s")
    checks(args.device, args.sweep)
    denoise_table(args.device, bandwidth, args.sweep)
    ar_table(args.device, bandwidth)


if __name__ == "__main__":
    main()
