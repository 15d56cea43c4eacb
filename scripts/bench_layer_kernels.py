"""Time the small kernels around a decoder layer's GEMMs against the ones they replaced, and check them, on a GPU.

    python scripts/bench_layer_kernels.py [--device cuda] [--sweep]

A developer script, not shipped in the package. At the real width (hidden 2816, 128 experts, top 8) and at 1, 8,
256 and 2048 tokens (the AR step at c = 1 and 8, the denoise pass at c = 1 and 8) it times:

* the layer's input norm: torch's ``F.rms_norm`` (what the fused bf16 layer ran before) against the Triton
  ``rms_norm``;
* the expert combine with its output norms: the kernel as it was before (top-k by k rounds of max and argmax,
  then one expert row after another, kept below as the baseline) against ``moe_combine_output`` with the layout
  ``combine_layout`` picks; ``--sweep`` adds other layouts.

Each is a CUDA-graph replay timed by the harness, set against the floor of its bytes at the streaming read
measured here, with its kernels' device times (torch profiler). First, each new kernel against a torch reference
at those shapes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from bench_sampler import kernel_seconds, show, streaming_read_bytes_per_s

from dgprofile.probes.decode.model import RMS_EPS, rms_norm
from dgprofile.probes.decode.triton_fused import (
    NEGATIVE_LARGE,
    CombineLayout,
    combine_layout,
    moe_combine_output,
    moe_output_row,
)
from dgprofile.probes.decode.triton_fused import rms_norm as fused_rms_norm
from dgprofile.probes.harness import Budget, graph_or_eager, timer_for

HIDDEN = 2816
EXPERTS = 128
TOP_K = 8
TOKENS = (1, 8, 256, 2048)  # AR c=1, AR c=8, denoise c=1, denoise c=8
SWEEP = (CombineLayout(rows_at_once=8, num_warps=16), CombineLayout(rows_at_once=8, num_warps=8),
         CombineLayout(rows_at_once=4, num_warps=8), CombineLayout(rows_at_once=4, num_warps=4),
         CombineLayout(rows_at_once=2, num_warps=8), CombineLayout(rows_at_once=2, num_warps=4),
         CombineLayout(rows_at_once=1, num_warps=8), CombineLayout(rows_at_once=1, num_warps=4))
BF16_BYTES = 2


# --- the combine as it was before: the baseline --------------------------------------------------------------------

@triton.jit
def _previous_combine(router_ptr, ids_ptr, expert_scale_ptr, y_ptr, pos_ptr, dense_ptr, r_ptr, w1_ptr, w2_ptr,
                      wff_ptr, scalar_ptr, out_ptr, hidden, num_experts, eps, TOP_K: tl.constexpr,
                      BLOCK: tl.constexpr, BLOCK_E: tl.constexpr, NEG: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    inside = offs < hidden
    dense = tl.load(dense_ptr + row * hidden + offs, mask=inside, other=0.0).to(tl.float32)
    experts = tl.arange(0, BLOCK_E)
    logits = tl.load(router_ptr + row * num_experts + experts, mask=experts < num_experts, other=NEG).to(tl.float32)
    top = tl.max(logits, axis=0)
    moe = tl.zeros([BLOCK], dtype=tl.float32)
    total = 0.0
    for i in tl.static_range(TOP_K):
        value = tl.max(logits, axis=0)
        logits = tl.where(experts == tl.argmax(logits, axis=0), NEG, logits)
        weight = tl.exp(value - top)
        total += weight
        expert = tl.load(ids_ptr + row * TOP_K + i)
        gate = weight * tl.load(expert_scale_ptr + expert).to(tl.float32)
        position = tl.load(pos_ptr + row * TOP_K + i)
        y = tl.load(y_ptr + position * hidden + offs, mask=inside, other=0.0).to(tl.float32)
        moe += gate * y
    moe = moe / total
    # The output norms are the current kernel's: the baseline differs in its top-k and its row loads alone.
    out = moe_output_row(dense, moe, r_ptr, w1_ptr, w2_ptr, wff_ptr, scalar_ptr, row, hidden, offs, inside, eps)
    tl.store(out_ptr + row * hidden + offs, out.to(out_ptr.dtype.element_ty), mask=inside)


def previous_combine(logits: torch.Tensor, ids: torch.Tensor, scale: torch.Tensor, rows: torch.Tensor,
                     positions: torch.Tensor, dense: torch.Tensor, r: torch.Tensor,
                     norms: tuple[torch.Tensor, torch.Tensor, torch.Tensor], scalar: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(r)
    block = triton.next_power_of_2(HIDDEN)
    _previous_combine[(r.shape[0],)](logits, ids, scale, rows, positions, dense, r, *norms, scalar, out, HIDDEN,
                                     EXPERTS, RMS_EPS, TOP_K=TOP_K, BLOCK=block, BLOCK_E=EXPERTS,
                                     NEG=NEGATIVE_LARGE, num_warps=8)
    return out


# --- inputs and references -----------------------------------------------------------------------------------------

def combine_inputs(tokens: int, device: str) -> tuple[torch.Tensor, ...]:
    """A combine's inputs at the real width: router logits, expert ids and scales, expert rows and where each
    assignment's row is, dense output, residual, three norm weights and the layer scalar."""
    generator = torch.Generator(device=device).manual_seed(tokens)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device, generator=generator).to(torch.bfloat16)

    ids = torch.rand(tokens, EXPERTS, device=device, generator=generator).argsort(dim=1)[:, :TOP_K].contiguous()
    positions = torch.randperm(tokens * TOP_K, device=device, generator=generator)
    return (normal(tokens, EXPERTS), ids, normal(EXPERTS).abs() + 0.5, normal(tokens * TOP_K, HIDDEN), positions,
            normal(tokens, HIDDEN), normal(tokens, HIDDEN), normal(HIDDEN).abs() + 0.5, normal(HIDDEN).abs() + 0.5,
            normal(HIDDEN).abs() + 0.5, normal(1).abs() + 0.5)


def torch_combine(logits: torch.Tensor, ids: torch.Tensor, scale: torch.Tensor, rows: torch.Tensor,
                  positions: torch.Tensor, dense: torch.Tensor, r: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
                  wff: torch.Tensor, scalar: torch.Tensor) -> torch.Tensor:
    """The torch layer's combine and output norms (``model.mixture_of_experts``, ``model.decoder_layer``) in fp32."""
    gates = logits.float().topk(TOP_K, dim=-1).values.softmax(dim=-1) * scale.float()[ids]
    moe = torch.bmm(gates.unsqueeze(1), rows.float()[positions].view(-1, TOP_K, HIDDEN)).squeeze(1)
    h = rms_norm(dense.float(), w1.float()) + rms_norm(moe, w2.float())
    return (r.float() + rms_norm(h, wff.float())) * scalar.float()


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected).norm() / expected.norm())


# --- timing --------------------------------------------------------------------------------------------------------

def timed(name: str, fn: Callable[[], object], floor_seconds: float, device: str) -> None:
    """One kernel's line: graph-replay time against its floor, and its kernels' device times; or why it failed."""
    try:
        prepared = graph_or_eager(fn)
        timing = Budget().measure(prepared.call, timer=timer_for(device), ops_per_call=prepared.ops_per_call)
        kernels = sorted(kernel_seconds(fn).items(), key=lambda item: -item[1])
    except Exception as error:  # one variant failing (a compile error, say) leaves the others to time
        show(f"    {name:34s} failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        return
    seconds = timing.median_seconds
    shown = ", ".join(f"{kernel[:36]} {value * 1e6:.1f}" for kernel, value in kernels[:3])
    graph = "" if prepared.fallback_reason is None else f" (eager: {prepared.fallback_reason})"
    show(f"    {name:34s} {seconds * 1e6:8.1f} us = {seconds / floor_seconds:6.2f}x floor "
         f"(cv {timing.coefficient_of_variation:.1%}){graph}; kernels us: {shown}")


def norm_table(device: str, bandwidth: float) -> None:
    show("")
    show("Input norm (rows of 2816 bf16, weighted), floor = one read and one write of the rows")
    for tokens in TOKENS:
        x = torch.randn(tokens, HIDDEN, device=device).to(torch.bfloat16)
        w = (torch.rand(HIDDEN, device=device) + 0.5).to(torch.bfloat16)
        floor = 2 * tokens * HIDDEN * BF16_BYTES / bandwidth
        show(f"  {tokens} tokens: floor {floor * 1e6:.2f} us; Triton against torch: relative error "
             f"{relative_error(fused_rms_norm(x, w, RMS_EPS), rms_norm(x.float(), w.float())):.1e}")
        timed("torch F.rms_norm (previous)", partial(F.rms_norm, x, (HIDDEN,), w, RMS_EPS), floor, device)
        timed("Triton rms_norm (this)", partial(fused_rms_norm, x, w, RMS_EPS), floor, device)


def combine_table(device: str, bandwidth: float, sweep: bool) -> None:
    show("")
    show(f"Expert combine + output norms (top {TOP_K} of {EXPERTS}, hidden {HIDDEN}), floor = the expert rows, "
         "dense output and residual read, the output written")
    for tokens in TOKENS:
        inputs = combine_inputs(tokens, device)
        logits, ids, scale, rows, positions, dense, r, w1, w2, wff, scalar = inputs
        norms = (w1, w2, wff)
        floor = tokens * HIDDEN * BF16_BYTES * (TOP_K + 3) / bandwidth
        expected = torch_combine(*inputs)
        chosen = combine_layout(tokens, TOP_K)
        this = partial(moe_combine_output, logits, ids, scale, rows, positions, dense, r, norms, scalar, RMS_EPS)
        previous = partial(previous_combine, logits, ids, scale, rows, positions, dense, r, norms, scalar)
        show(f"  {tokens} tokens: floor {floor * 1e6:.2f} us; layout {chosen}; relative error against torch: "
             f"this {relative_error(this(), expected):.1e}, previous {relative_error(previous(), expected):.1e}")
        timed("previous (k rounds of max/argmax)", previous, floor, device)
        timed("this", this, floor, device)
        for layout in SWEEP if sweep else ():
            timed(f"rows {layout.rows_at_once}, warps {layout.num_warps}",
                  partial(moe_combine_output, logits, ids, scale, rows, positions, dense, r, norms, scalar, RMS_EPS,
                          layout), floor, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sweep", action="store_true", help="also time other layouts of the combine")
    args = parser.parse_args()
    show(f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, triton {triton.__version__}")
    bandwidth = streaming_read_bytes_per_s(args.device)
    show(f"streaming read {bandwidth / 1e12:.2f} TB/s")
    norm_table(args.device, bandwidth)
    combine_table(args.device, bandwidth, args.sweep)


if __name__ == "__main__":
    main()
