"""Time the denoise pass's attention methods per shape, and the key-split SDPA kernels per span count, on a CUDA GPU.

    python scripts/bench_attention.py [--device cuda] [--concurrency 1 2 4 8]

A developer script, not shipped in the package. For each denoise shape (sliding layers at every concurrency asked,
global layers at concurrency 1), first every attention method that works here (its check on small shapes) and
that the benchmark offers at that shape, timed as the benchmark's autotuner times it: the whole attention step of
a fused layer (q/k/v projection, norms and cache writes, attention, output projection). Then the attention core
alone, from the folded queries to the output projection's layout: SDPA plus its layout copy, and the key-split
kernels (cuDNN's and FlashAttention's) at the span count of the split rule and at others, merged in Triton or in
torch ops, with the TFLOP/s each reaches. Each figure is a CUDA-graph replay timed by the harness, listed with its
kernels' device times (torch profiler).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from dgprofile.probes.decode.bench import _attention_applies
from dgprofile.probes.decode.checks import check_attention, check_config, check_layers
from dgprofile.probes.decode.key_split_attention import (
    MAX_HEAD_DIM,
    KeySplitBackend,
    key_split_attention,
    key_splits,
    processors,
)
from dgprofile.probes.decode.model import AttentionMethod, attention, build_layer, layer_state, random_tensor
from dgprofile.probes.decode.precompile import ATTENTION_METHODS
from dgprofile.probes.harness import Budget, graph_or_eager, make_current, timer_for
from dgprofile.specs.model_config import LayerType, load_model_config

CONTEXT = 4096
PROFILED_CALLS = 5
SPAN_COUNTS = (2, 4, 5, 8)


def show(line: str) -> None:
    print(line, flush=True)  # as it comes: a run cut short keeps what it measured


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


def timed(name: str, fn: Callable[[], object], device: str, flops: float) -> None:
    """One line: graph-replay time, the TFLOP/s of ``flops`` in it, and its kernels' times; or why it failed."""
    try:
        prepared = graph_or_eager(fn)
        timing = Budget().measure(prepared.call, timer=timer_for(device), ops_per_call=prepared.ops_per_call)
        kernels = sorted(kernel_seconds(fn).items(), key=lambda item: -item[1])
    except Exception as error:  # one method failing here leaves the others to time
        show(f"    {name:36s} failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        return
    seconds = timing.median_seconds
    shown = ", ".join(f"{kernel[:48]} {value * 1e6:.1f}" for kernel, value in kernels[:5])
    graph = "" if prepared.fallback_reason is None else f" (eager: {prepared.fallback_reason})"
    show(f"    {name:36s} {seconds * 1e6:8.1f} us  {flops / seconds / 1e12:6.1f} TFLOP/s  "
         f"(cv {timing.coefficient_of_variation:.1%}){graph}; kernels us: {shown}")


def working_methods(device: str) -> list[AttentionMethod]:
    """The attention methods whose check passes here (in bf16), SDPA first."""
    small = check_config(load_model_config())
    layers = check_layers(small, torch.bfloat16, device)
    working: list[AttentionMethod] = ["sdpa"]
    for method in ATTENTION_METHODS[1:]:
        problem = check_attention(device, torch.bfloat16, method, small, layers)
        show(f"  check {method}: {problem or 'ok'}")
        if not problem:
            working.append(method)
    return working


def shape_table(device: str, layer_type: LayerType, concurrency: int, methods: list[AttentionMethod]) -> None:
    config = load_model_config()
    b = config.backbone
    attn = b.attention(layer_type)
    new = config.diffusion.canvas_length
    group = b.num_attention_heads // attn.num_kv_heads
    cached = min(CONTEXT, b.sliding_window) if layer_type == "sliding" else CONTEXT
    keys, rows = cached + new, group * new
    flops = 4.0 * concurrency * b.num_attention_heads * new * keys * attn.head_dim
    parallel = processors(torch.device(device))
    rule = key_splits(batches=concurrency * attn.num_kv_heads, rows=rows, keys=keys, processors=parallel)
    show("")
    split = (f"; split rule on {parallel} SMs: {rule} span(s)" if attn.head_dim <= MAX_HEAD_DIM
             else "; no flash kernel at this head dimension")
    show(f"{layer_type} dg-denoise c={concurrency}: {b.num_attention_heads} heads x {new} queries over {keys} keys, "
         f"head dim {attn.head_dim}; {flops / 1e9:.2f} GFLOP{split}")
    generator = torch.Generator().manual_seed(0)
    layer = build_layer(config, layer_type, dtype=torch.bfloat16, fp8=False, device=device)
    h = random_tensor((concurrency * new, b.hidden_size), torch.bfloat16, device, std=1.0)
    show("  the attention step as the benchmark's autotuner times it (projections included):")
    for method in methods:
        if not _attention_applies(config, method, layer_type, "dg-denoise", concurrency, new, CONTEXT, parallel):
            continue
        state = layer_state(config, layer_type, kind="dg-denoise", concurrency=concurrency, new=new, context=CONTEXT,
                            dtype=torch.bfloat16, device=device, generator=generator, attention_method=method,
                            fused=True)
        timed(method, partial(attention, config, h, layer, state, concurrency), device, flops)
    if attn.head_dim > MAX_HEAD_DIM:
        return
    show("  the attention core, folded queries to the output projection's layout:")
    q = random_tensor((concurrency, attn.num_kv_heads, rows, attn.head_dim), torch.bfloat16, device, std=1.0)
    k, v = (random_tensor((concurrency, attn.num_kv_heads, keys, attn.head_dim), torch.bfloat16, device, std=1.0)
            for _ in range(2))

    def sdpa() -> torch.Tensor:
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        return out.view(concurrency, attn.num_kv_heads, group, new, -1).permute(0, 3, 1, 2, 4).reshape(
            concurrency * new, -1)

    timed("sdpa + layout copy", sdpa, device, flops)
    backends: tuple[KeySplitBackend, ...] = ("cudnn", "flash")
    for backend in backends:
        for splits in sorted({1, rule, *SPAN_COUNTS}):
            if keys % splits:
                continue
            for triton_merge in (True, False):
                name = (f"{backend}, {splits} span(s){' (rule)' if splits == rule else ''}, "
                        f"{'Triton' if triton_merge else 'torch'} merge")
                timed(name, partial(key_split_attention, q, k, v, group=group, backend=backend, splits=splits,
                                    triton_merge=triton_merge), device, flops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    make_current(args.device)
    show(f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, "
         f"cuDNN {torch.backends.cudnn.version()}")
    methods = working_methods(args.device)
    for concurrency in args.concurrency:
        shape_table(args.device, "sliding", concurrency, methods)
        torch.cuda.empty_cache()
    shape_table(args.device, "global", 1, methods)


if __name__ == "__main__":
    main()
