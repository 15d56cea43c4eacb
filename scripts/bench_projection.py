"""Time a fused layer's dense projections in cuBLAS (torch) and in the Triton expert GEMM with one weight, on a GPU.

    python scripts/bench_projection.py [--device cuda] [--precisions bf16,fp8] [--tokens 256,2048]
        [--rows 32,64,128] [--columns 64,128] [--inner 64,128] [--warps 4] [--stages 4]

A developer script, not shipped in the package. For each precision and token count (256: the denoise pass at
c = 1; 2048: at c = 8) it times every dense projection of a sliding and a global layer (q/k/v, output, the dense
MLP's gate/up and down) as the fused layer runs them in torch (``Linear``: ``F.linear``, or ``torch._scaled_mm``
on activations quantised per row by their producer), and in ``triton_moe.dense_projection`` at every launch of
the sweep, each checked against torch's output first. The dense gate/up is also timed with its GeGLU: torch's
GEMM and the fused GeGLU kernel (quantising, in fp8) against the Triton GEMM's GeGLU epilogue (then one
quantising kernel, in fp8). Each line is a CUDA-graph replay timed by the harness and set against the larger of
its two floors: the weight bytes at the streaming read measured here, and its FLOPs at the matmul rate measured
here (fp8's at fp8's).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from functools import partial

import torch
import triton
from bench_expert_gemm import time_launch
from bench_sampler import show, streaming_read_bytes_per_s

from dgprofile.probes.decode.model import Activation, Linear, quantize
from dgprofile.probes.decode.triton_fused import geglu as fused_geglu
from dgprofile.probes.decode.triton_fused import geglu_quantized
from dgprofile.probes.decode.triton_moe import DenseTiles, dense_projection
from dgprofile.specs.model_config import load_model_config


def matmul_rate(device: str, dtype: torch.dtype) -> float:
    """FLOP/s of an 8192^3 GEMM in ``dtype`` (fp8: ``torch._scaled_mm``), best of a few replays."""
    from dgprofile.probes.harness import Budget, graph_or_eager, timer_for

    size = 8192
    a = torch.randn(size, size, device=device).to(torch.bfloat16)
    if dtype == torch.float8_e4m3fn:
        a8, b8 = a.to(dtype), a.to(dtype).t()
        one = torch.ones((), device=device)
        fn: Callable[[], object] = partial(torch._scaled_mm, a8, b8, scale_a=one, scale_b=one,
                                           out_dtype=torch.bfloat16)
    else:
        fn = partial(torch.matmul, a, a)
    prepared = graph_or_eager(fn)
    timing = Budget().measure(prepared.call, timer=timer_for(device), ops_per_call=prepared.ops_per_call)
    return 2 * size**3 / timing.median_seconds


def projections(device: str, fp8: bool) -> list[tuple[str, Linear]]:
    config = load_model_config().backbone
    hidden = config.hidden_size
    cases = []
    for layer_type in ("sliding", "global"):
        attention = config.attention(layer_type)
        q_width = config.num_attention_heads * attention.head_dim
        kv_width = attention.num_kv_heads * attention.head_dim * (1 if attention.k_eq_v else 2)
        cases += [(f"{layer_type} q/k/v", Linear(q_width + kv_width, hidden, dtype=torch.bfloat16, fp8=fp8,
                                                  device=device)),
                  (f"{layer_type} output", Linear(hidden, q_width, dtype=torch.bfloat16, fp8=fp8, device=device))]
    width = config.intermediate_size
    return [*cases,
            ("dense gate/up", Linear(2 * width, hidden, dtype=torch.bfloat16, fp8=fp8, device=device)),
            ("dense down", Linear(hidden, width, dtype=torch.bfloat16, fp8=fp8, device=device))]


def table(device: str, bandwidth: float, rates: dict[bool, float], fp8: bool, tokens: int,
          launches: list[DenseTiles]) -> None:
    show("")
    show(f"{'fp8' if fp8 else 'bf16'}, {tokens} tokens")
    for label, layer in projections(device, fp8):
        out_features, in_features = layer.weight.shape
        x = torch.randn(tokens, in_features, device=device).to(torch.bfloat16)
        activation = quantize(x, fused=True) if fp8 else x  # as its producer leaves it
        floor = max(layer.weight.numel() * layer.weight.element_size() / bandwidth,
                    2 * tokens * in_features * out_features / rates[fp8])
        show(f"  {label} [{out_features} x {in_features}]: floor {floor * 1e6:.1f} us")
        expected = layer(activation)
        results = [(time_launch("torch", partial(layer, activation), None, floor, device), "torch")]
        for tiles in launches:
            if tokens % tiles.block_m:
                continue
            run = partial(dense_projection, activation, layer.weight, layer.scale, tiles)
            results.append((time_launch(_text(tiles), run, expected, floor, device), _text(tiles)))
        _fastest(results, floor)
        if label == "dense gate/up":
            geglu_lines(device, layer, activation, floor, [t for t in launches if tokens % t.block_m == 0])


def torch_geglu(layer: Linear, activation: Activation) -> torch.Tensor:
    h = layer(activation)
    return geglu_quantized(h).values if layer.fp8 else fused_geglu(h)


def triton_geglu(layer: Linear, activation: Activation, tiles: DenseTiles) -> torch.Tensor:
    h = dense_projection(activation, layer.weight, layer.scale, tiles, fuse_geglu=True)
    return quantize(h, fused=True).values if layer.fp8 else h


def geglu_lines(device: str, layer: Linear, activation: Activation, floor: float,
                launches: list[DenseTiles]) -> None:
    """The dense gate/up with its GeGLU (and, in fp8, the quantisation of its output), both ways."""
    show("  dense gate/up + GeGLU" + (" (quantised)" if layer.fp8 else ""))
    expected = torch_geglu(layer, activation)
    results = [(time_launch("torch + GeGLU kernel", partial(torch_geglu, layer, activation), None, floor, device),
                "torch")]
    for tiles in launches:
        results.append((time_launch(f"epilogue {_text(tiles)}", partial(triton_geglu, layer, activation, tiles),
                                    expected, floor, device), _text(tiles)))
    _fastest(results, floor)


def _fastest(results: list[tuple[float | None, str]], floor: float) -> None:
    timed = [(seconds, name) for seconds, name in results if seconds is not None]
    if len(timed) > 1:
        seconds, name = min(timed)
        show(f"    fastest: {name} {seconds * 1e6:.1f} us = {seconds / floor:.2f}x floor")


def _text(tiles: DenseTiles) -> str:
    return (f"m {tiles.block_m} n {tiles.block_n} k {tiles.block_k} warps {tiles.num_warps} "
            f"stages {tiles.num_stages or 'auto'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precisions", default="bf16,fp8")
    parser.add_argument("--tokens", default="256,2048")
    parser.add_argument("--rows", default="32,64,128")
    parser.add_argument("--columns", default="64,128")
    parser.add_argument("--inner", default="64,128")
    parser.add_argument("--warps", default="4")
    parser.add_argument("--stages", default="4")
    args = parser.parse_args()

    def numbers(text: str) -> list[int]:
        return [int(n) for n in text.split(",")]

    launches = [DenseTiles(block_m=m, block_n=n, block_k=k, num_warps=w, num_stages=s)
                for m, n, k, w, s in itertools.product(numbers(args.rows), numbers(args.columns),
                                                       numbers(args.inner), numbers(args.warps),
                                                       numbers(args.stages))]
    show(f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, triton {triton.__version__}")
    bandwidth = streaming_read_bytes_per_s(args.device)
    rates = {False: matmul_rate(args.device, torch.bfloat16), True: matmul_rate(args.device, torch.float8_e4m3fn)}
    show(f"streaming read {bandwidth / 1e12:.2f} TB/s, bf16 {rates[False] / 1e12:.0f} TFLOP/s, "
         f"fp8 {rates[True] / 1e12:.0f} TFLOP/s")
    for precision in args.precisions.split(","):
        for tokens in numbers(args.tokens):
            table(args.device, bandwidth, rates, precision == "fp8", tokens, launches)


if __name__ == "__main__":
    main()
