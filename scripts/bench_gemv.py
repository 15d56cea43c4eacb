"""Time the Triton GEMV against torch's projections at the AR step's real shapes, and check it, on a CUDA GPU.

    python scripts/bench_gemv.py [--device cuda] [--sweep]

A developer script, not shipped in the package. Per precision (bf16; fp8 where the GPU has it), rows (1 and 8) and
projection of the model (sliding and global q/k/v, the output projections, the dense gate_up and down, the router)
it prints torch's time (bf16: ``F.linear``; fp8: ``torch._scaled_mm`` on an activation quantised beforehand, its
quantisation not timed) and the GEMV's, each with the weight bytes per second it reached and its share of the
streaming read measured here, then the GEMV with its fused prologue or epilogue (q/k/v with the input norm, gate_up
with the GeGLU) and its error against torch. Each is a CUDA-graph replay timed by the harness over enough copies
of the weight that they do not stay in L2 (as in a layer, where the other weights pass through it in between).
``--sweep`` also times other tiles than the launch rule's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
import triton
from bench_sampler import show, streaming_read_bytes_per_s

from dgprofile.probes.decode.model import FP8_MAX, RMS_EPS, geglu, quantize_rows, rms_norm
from dgprofile.probes.decode.triton_gemv import (
    BLOCK_K_DOT,
    BLOCK_K_ONE_ROW,
    GemvLaunch,
    gemv,
    gemv_launch,
    multiprocessors,
)
from dgprofile.probes.harness import Budget, graph_or_eager, timer_for
from dgprofile.specs.model_config import load_model_config

L2_FLUSH_BYTES = 256 * 2**20  # weight copies cycled per timed call: several times an H200's 50 MB L2
MAX_COPIES = 64
WEIGHT_STD = 0.02


@dataclass(frozen=True)
class Shape:
    name: str
    out_features: int
    in_features: int
    fused: str  # "norm", "geglu" or "" (what the fused layer adds to this projection)
    router: bool = False  # the router's weight stays bf16 in fp8 layers


def shapes() -> list[Shape]:
    """The AR step's projections, from the model's configuration."""
    b = load_model_config().backbone
    hidden = b.hidden_size
    found = []
    for layer_type in ("sliding", "global"):
        attn = b.attention(layer_type)
        q_width = b.num_attention_heads * attn.head_dim
        kv_width = attn.num_kv_heads * attn.head_dim * (1 if attn.k_eq_v else 2)
        found += [Shape(f"{layer_type} qkv", q_width + kv_width, hidden, "norm"),
                  Shape(f"{layer_type} out", hidden, q_width, "")]
    return found + [Shape("dense gate_up", 2 * b.intermediate_size, hidden, "geglu"),
                    Shape("dense down", hidden, b.intermediate_size, ""),
                    Shape("router", b.num_experts, hidden, "", router=True)]


def seconds_per_call(calls: list[Callable[[], object]], device: str) -> float:
    """Median seconds of one call, the calls (one per weight copy) captured together in a CUDA graph."""

    def all_copies() -> None:
        for call in calls:
            call()

    prepared = graph_or_eager(all_copies)
    if prepared.fallback_reason:
        raise RuntimeError(f"no CUDA graph: {prepared.fallback_reason}")
    timing = Budget().measure(prepared.call, timer=timer_for(device), ops_per_call=prepared.ops_per_call)
    return timing.median_seconds / len(calls)


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.double() - expected.double()).norm() / expected.double().norm())


def bench_shape(shape: Shape, fp8: bool, rows: int, device: str, bandwidth: float, sweep: bool) -> None:
    weight_fp8 = fp8 and not shape.router
    dtype = torch.float8_e4m3fn if weight_fp8 else torch.bfloat16
    weight_bytes = shape.out_features * shape.in_features * (1 if weight_fp8 else 2)
    copies = max(1, min(MAX_COPIES, -(-L2_FLUSH_BYTES // weight_bytes)))
    weights = [(torch.randn(shape.out_features, shape.in_features, device=device) * WEIGHT_STD).to(dtype)
               for _ in range(copies)]
    scale = (torch.full((1, shape.out_features), WEIGHT_STD * 4 / FP8_MAX, device=device) if weight_fp8
             else None)
    x = torch.randn(rows, shape.in_features, device=device, dtype=torch.bfloat16)
    norm = (torch.rand(shape.in_features, device=device) + 0.5).to(torch.bfloat16)

    def rate(seconds: float) -> str:
        return (f"{seconds * 1e6:7.1f} us {weight_bytes / seconds / 1e12:5.2f} TB/s "
                f"({weight_bytes / seconds / bandwidth:4.0%})")

    def line(what: str, calls: list[Callable[[], object]]) -> None:
        try:
            show(f"    {shape.name:14s} {what:22s} {rate(seconds_per_call(calls, device))}")
        except Exception as error:  # one variant failing (a compile error, say) leaves the others to time
            show(f"    {shape.name:14s} {what:22s} failed: {type(error).__name__}: "
                 f"{str(error).splitlines()[0] if str(error) else ''}")

    if weight_fp8:
        quantised = quantize_rows(x)
        assert scale is not None

        def torch_call(w: torch.Tensor) -> torch.Tensor:
            return torch._scaled_mm(quantised.values, w.t(), scale_a=quantised.scales, scale_b=scale,
                                    out_dtype=torch.bfloat16)
    else:
        def torch_call(w: torch.Tensor) -> torch.Tensor:
            return F.linear(x, w)

    line("torch", [partial(torch_call, w) for w in weights])
    line("gemv", [partial(gemv, x, w, scale) for w in weights])
    expected = (x.double() @ (weights[0].double() * (scale.double().T if scale is not None else 1.0)).T)
    problems = [f"plain {relative_error(gemv(x, weights[0], scale), expected):.1e}"]
    if shape.fused == "norm":
        line("gemv + input norm", [partial(gemv, x, w, scale, norm_weight=norm, eps=RMS_EPS) for w in weights])
        normed = rms_norm(x.double(), norm.double())
        reference = normed @ (weights[0].double() * (scale.double().T if scale is not None else 1.0)).T
        got = gemv(x, weights[0], scale, norm_weight=norm, eps=RMS_EPS)
        problems.append(f"norm {relative_error(got, reference):.1e}")
    if shape.fused == "geglu":
        line("gemv + GeGLU", [partial(gemv, x, w, scale, geglu=True) for w in weights])
        problems.append(f"GeGLU {relative_error(gemv(x, weights[0], scale, geglu=True), geglu(expected)):.1e}")
    if sweep:
        rule = gemv_launch(rows, shape.out_features, multiprocessors(x.device))
        for block_n in (16, 32, 64):
            for use_dot in (False, True) if rows == 1 else (True,):
                tile = GemvLaunch(block_n=block_n, block_k=BLOCK_K_DOT if use_dot else BLOCK_K_ONE_ROW,
                                  use_dot=use_dot)
                if tile == rule:
                    continue
                programs = triton.cdiv(shape.out_features, block_n)
                line(f"  {block_n} cols {'dot' if use_dot else 'fma'} x{programs}",
                     [partial(gemv, x, w, scale, launch=tile) for w in weights])
    show(f"    {shape.name:14s} {'error against torch':22s} {', '.join(problems)}")
    del weights
    if x.is_cuda:
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sweep", action="store_true", help="also time other tiles than the launch rule's")
    args = parser.parse_args()
    device = args.device
    show(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, triton {triton.__version__}, "
         f"{multiprocessors(torch.device(device))} multiprocessors")
    bandwidth = streaming_read_bytes_per_s(device)
    show(f"streaming read {bandwidth / 1e12:.2f} TB/s; per line: time, weight bytes per second, share of it")
    fp8 = torch.cuda.get_device_capability(device) >= (8, 9)
    for precision in ("bf16", "fp8") if fp8 else ("bf16",):
        for rows in (1, 8):
            show("")
            show(f"  {precision}, {rows} row(s)")
            for shape in shapes():
                bench_shape(shape, precision == "fp8", rows, device, bandwidth, args.sweep)


if __name__ == "__main__":
    main()
