"""Time the Triton expert GEMM's launch tiles at the real expert shapes, on a GPU.

    python scripts/bench_expert_gemm.py [--device cuda] [--precisions bf16,fp8] [--tokens 256,2048] [--sweep]
        [--columns 64,128,256] [--geglu-columns 32,64,128] [--inner 64,128,256] [--warps 4,8] [--stages 0,2,3]

A developer script, not shipped in the package. For each precision and token count (256: the denoise pass at
c = 1, 2048: at c = 8; 8: the AR step at c = 8), with 128 experts of width 704 over hidden 2816, top 8, routed
uniformly as the benchmark routes them, it times the two projections of ``triton_moe.expert_projection``: gate/up
with the GeGLU epilogue (the method bf16 keeps) and down, each from activations already in the form their producer
leaves them (fp8: quantised per row). Each launch is a CUDA-graph replay timed by the harness and set against the
floor of the weight bytes its touched experts hold at the streaming read measured here. The launch the benchmark
uses (``expert_tiles``) comes first; ``--sweep`` adds other column widths, inner steps and warps (pipelines as
deep as shared memory allows; ``--columns``, ``--geglu-columns``, ``--inner`` and ``--warps`` narrow the sets),
and ``--stages`` times each launch at these pipeline depths too. Each is checked against the first launch's
output before it is timed.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass, replace
from functools import partial

import torch
import triton
from bench_sampler import show, streaming_read_bytes_per_s

from dgprofile.probes.decode.model import Experts, quantize, uniform_routing
from dgprofile.probes.decode.triton_moe import ExpertTiles, expert_projection, expert_tiles
from dgprofile.probes.harness import Budget, graph_or_eager, timer_for

HIDDEN = 2816
WIDTH = 704
EXPERTS = 128
TOP_K = 8
SWEEP_COLUMNS = {True: (32, 64, 128), False: (64, 128, 256)}  # per half with the GeGLU epilogue, else in all
SWEEP_INNER = (64, 128, 256)
SWEEP_WARPS = (4, 8)


@dataclass(frozen=True)
class Sweep:
    """The launches a case times beside the benchmark's: column widths (per half with the GeGLU epilogue), inner
    steps and warps (none: the benchmark's launch alone), each at every pipeline depth in ``stages`` (0: as deep
    as shared memory allows), or at its own (the benchmark's depth, the deepest for the others) without them."""

    columns: dict[bool, tuple[int, ...]]
    inner: tuple[int, ...]
    warps: tuple[int, ...]
    stages: tuple[int, ...] | None

    def launches(self, chosen: ExpertTiles, geglu: bool) -> list[ExpertTiles]:
        tiles = [chosen] + [ExpertTiles(block_n=n, block_k=k, num_warps=w)
                            for n, k, w in itertools.product(self.columns[geglu], self.inner, self.warps)]
        if self.stages is None:
            return list(dict.fromkeys(tiles))
        return list(dict.fromkeys(replace(t, num_stages=depth) for t in tiles for depth in self.stages))
AGREEMENT = 2e-2  # relative error a launch may show against the benchmark's, from accumulation order alone


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected.float()).norm() / expected.float().norm())


def time_launch(name: str, fn: partial[torch.Tensor], expected: torch.Tensor | None, floor_seconds: float,
                device: str) -> float | None:
    """One launch's line (replay time against the floor); its median seconds, or None where it failed."""
    try:
        out = fn()
        error = 0.0 if expected is None else relative_error(out, expected)
        if error > AGREEMENT:
            show(f"    {name:36s} disagrees with the benchmark's launch: relative error {error:.1e}")
            return None
        prepared = graph_or_eager(fn)
        timing = Budget().measure(prepared.call, timer=timer_for(device), ops_per_call=prepared.ops_per_call)
    except Exception as failure:  # one launch failing (shared memory, a compile error) leaves the others to time
        show(f"    {name:36s} failed: {type(failure).__name__}: {str(failure).splitlines()[0] if str(failure) else ''}")
        return None
    seconds: float = timing.median_seconds
    show(f"    {name:36s} {seconds * 1e6:8.1f} us = {seconds / floor_seconds:5.2f}x floor "
         f"(cv {timing.coefficient_of_variation:.1%})")
    return seconds


def projection_table(device: str, bandwidth: float, precision: str, tokens: int, sweep: Sweep) -> None:
    fp8 = precision == "fp8"
    experts = Experts(EXPERTS, HIDDEN, WIDTH, dtype=torch.bfloat16, fp8=fp8, device=device)
    routing = uniform_routing(tokens, EXPERTS, TOP_K, device, torch.Generator().manual_seed(tokens))
    layout_rows = routing.block_token.numel()
    x = torch.randn(tokens, HIDDEN, device=device).to(torch.bfloat16)
    gate_up_input = quantize(x, fused=True) if fp8 else x
    h = expert_projection(gate_up_input, routing.block_token, experts.gate_up, experts.gate_up_scale, routing,
                          layout_rows, fuse_geglu=True)
    down_input = quantize(h, fused=True) if fp8 else h
    weight_bytes = experts.gate_up.element_size() * routing.distinct_experts * WIDTH * HIDDEN
    show("")
    show(f"{precision}, {tokens} tokens ({routing.distinct_experts} experts touched, {routing.block_rows} rows a "
         f"block, {routing.block_expert.numel()} blocks)")
    cases = (("gate/up + GeGLU", True, gate_up_input, routing.block_token, experts.gate_up, experts.gate_up_scale,
              2 * weight_bytes),
             ("down", False, down_input, None, experts.down, experts.down_scale, weight_bytes))
    for label, geglu, activation, rows, weight, scale, bytes_moved in cases:
        floor = bytes_moved / bandwidth
        chosen = expert_tiles(block_m=routing.block_rows, k_dim=weight.shape[2], fuse_geglu=geglu, fp8=fp8)
        show(f"  {label}: floor {floor * 1e6:.1f} us ({bytes_moved / 1e6:.0f} MB of weights)")
        run = partial(expert_projection, activation, rows, weight, scale, routing, layout_rows, geglu)
        expected = run()
        results: list[tuple[float, ExpertTiles]] = []
        for tiles in sweep.launches(chosen, geglu):
            name = f"benchmark's {_tiles_text(tiles)}" if tiles == chosen else _tiles_text(tiles)
            seconds = time_launch(name, partial(run, tiles), None if tiles == chosen else expected, floor, device)
            if seconds is not None:
                results.append((seconds, tiles))
        if len(results) < 2:
            continue
        best_seconds, best = min(results, key=lambda item: item[0])
        show(f"    fastest: {_tiles_text(best)} {best_seconds * 1e6:.1f} us = {best_seconds / floor:.2f}x floor")


def _tiles_text(tiles: ExpertTiles) -> str:
    stages = "auto" if tiles.num_stages == 0 else str(tiles.num_stages)
    return f"n {tiles.block_n} k {tiles.block_k} warps {tiles.num_warps} stages {stages}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precisions", default="bf16,fp8")
    parser.add_argument("--tokens", default="256,2048")
    parser.add_argument("--sweep", action="store_true", help="also time other launch tiles")
    parser.add_argument("--columns", help="column widths to sweep without the GeGLU epilogue")
    parser.add_argument("--geglu-columns", help="column widths per half to sweep with the GeGLU epilogue")
    parser.add_argument("--inner", help="inner steps to sweep")
    parser.add_argument("--warps", help="warps to sweep")
    parser.add_argument("--stages", help="pipeline depths to time each launch at (0: the deepest that fits)")
    args = parser.parse_args()

    def numbers(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
        return default if text is None else tuple(int(n) for n in text.split(","))

    stages = None if args.stages is None else numbers(args.stages, ())

    columns = {True: numbers(args.geglu_columns, SWEEP_COLUMNS[True]),
               False: numbers(args.columns, SWEEP_COLUMNS[False])}
    sweep = (Sweep(columns=columns, inner=numbers(args.inner, SWEEP_INNER), warps=numbers(args.warps, SWEEP_WARPS),
                   stages=stages) if args.sweep
             else Sweep(columns={True: (), False: ()}, inner=(), warps=(), stages=stages))
    show(f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, triton {triton.__version__}")
    bandwidth = streaming_read_bytes_per_s(args.device)
    show(f"streaming read {bandwidth / 1e12:.2f} TB/s")
    for precision in args.precisions.split(","):
        for tokens in (int(t) for t in args.tokens.split(",")):
            projection_table(args.device, bandwidth, precision, tokens, sweep)


if __name__ == "__main__":
    main()
