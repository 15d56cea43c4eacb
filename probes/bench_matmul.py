"""Matmul rates per dtype: a large square product (the compute ceiling) and the model's decode shapes.

Decode shapes multiply ``M`` tokens by a weight of the model's width (``[M x hidden] @ [hidden x N]`` for the
dense MLP, one expert's gate and up projections, and the LM head), for M = 1 ... 2048. Small weights are used in
rotation (``weight_copies`` distinct matrices, together several times the last-level cache) so each product
reads its weight from memory as a layer stack does, and on CUDA they run as CUDA-graph replays so launch
overhead does not hide the kernel. The ridge in tokens is where time starts growing with M: extra tokens are
free below it. Operands are random, never zeros (zeros run measurably faster on some GPUs).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dgprofile.probes import gpu_backends
from dgprofile.probes.harness import Budget, Timer, graph_or_eager
from dgprofile.records.limits import MatmulFigure, TokenRidge
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import Backbone

DECODE_TOKENS = (1, 8, 64, 256, 1024, 2048)
# On a CPU the ridge sits at a few tokens, and 256-token bf16 products take ~1 s per weight rotation on two cores.
CPU_DECODE_TOKENS = (1, 8, 64)
GPU_SQUARE = 8192
CPU_SQUARE = 2048
# A token count is past the ridge once its product takes this many times the 1-token time.
RIDGE_TIME_FACTOR = 1.25
# Rotate among weights totalling at least this many last-level caches, so they come from memory.
COLD_WEIGHT_CACHE_MULTIPLE = 4
MAX_WEIGHT_COPIES = 32
# The shape whose ridge stands for the device in ``Limits.ridge_tokens``, in order of preference: the LM head is
# the largest weight-streaming product, so its ridge is the least disturbed by kernel tiling.
RIDGE_SHAPE_PREFERENCE = ("lm-head", "dense-mlp", "expert-gate-up")
# Shapes skipped on the CPU to keep the step short: the fp32 LM head alone is 3 GB and ~0.3 s per 1-token
# product on two cores; the expert shape has the dense shape's K and a similar N, so it adds little there.
CPU_SKIPPED_SHAPES = ("expert-gate-up", "lm-head")

# Bytes per element of each dtype's operands and output.
OPERAND_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
OUTPUT_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 2, "int8": 4}


@dataclass(frozen=True)
class MatmulShape:
    """``[M x k] @ [k x n]`` for a part of the model."""

    name: str
    k: int
    n: int
    description: str


def decode_shapes(backbone: Backbone) -> tuple[MatmulShape, ...]:
    """The weight products of one decode pass, from the model's configuration."""
    hidden = backbone.hidden_size
    return (
        MatmulShape("dense-mlp", hidden, backbone.intermediate_size, "dense MLP projection"),
        MatmulShape("expert-gate-up", hidden, 2 * backbone.moe_intermediate_size, "one expert's gate and up"),
        MatmulShape("lm-head", hidden, backbone.vocab_size, "tied LM head"),
    )


def matmul_flops(m: int, n: int, k: int) -> int:
    """Multiply-adds of ``[m x k] @ [k x n]``, two FLOPs each."""
    return 2 * m * n * k


def matmul_bytes(dtype: str, m: int, n: int, k: int) -> int:
    """Bytes a product moves at least: both operands read once, the output written once."""
    return (m * k + k * n) * OPERAND_BYTES[dtype] + m * n * OUTPUT_BYTES[dtype]


def padded_rows(dtype: str, m: int, device: str) -> int:
    """Rows a kernel needs: fp8 scaled matmul wants multiples of 16, CUDA int8 matmul more than 16 (multiples of 8)."""
    if dtype == "fp8":
        return max(16, math.ceil(m / 16) * 16)
    if dtype == "int8" and device.startswith("cuda"):
        return max(32, math.ceil(m / 8) * 8)
    return m


def matmul_figure(*, dtype: str, shape: str, tokens: int, m: int, n: int, k: int, weight_copies: int,
                  timing: Timing) -> MatmulFigure:
    """A figure from the median time of one product: FLOP rate over the rows computed, bytes over the same time."""
    flops = matmul_flops(m, n, k)
    moved = matmul_bytes(dtype, m, n, k)
    padded = f" (padded to {m})" if m != tokens else ""
    label = f"{dtype} {shape} M={tokens}{padded}" if shape != "square" else f"{dtype} {m}x{k}x{n}"
    return MatmulFigure(label=label, dtype=dtype, m=m, n=n, k=k, flops_per_s=flops / timing.median_seconds,
                        timing=timing, shape=shape, tokens=tokens, weight_copies=weight_copies,
                        bytes_moved=moved, bytes_per_s=moved / timing.median_seconds)


def token_ridge(figures: tuple[MatmulFigure, ...], dtype: str, shape: str) -> TokenRidge | None:
    """The smallest token count whose product takes more than ``RIDGE_TIME_FACTOR`` x the fewest-token time."""
    rows = sorted((f for f in figures if f.dtype == dtype and f.shape == shape), key=lambda f: f.tokens)
    if len(rows) < 2:
        return None
    base = rows[0]
    crossing = next((f.tokens for f in rows[1:]
                     if f.timing.median_seconds > RIDGE_TIME_FACTOR * base.timing.median_seconds), None)
    tokens: int | Unavailable = crossing if crossing is not None else Unavailable(
        f"time stayed within {RIDGE_TIME_FACTOR}x of {base.tokens} token(s) up to {rows[-1].tokens} tokens")
    return TokenRidge(dtype=dtype, shape=shape, tokens=tokens, base_tokens=base.tokens,
                      base_seconds=base.timing.median_seconds, threshold_factor=RIDGE_TIME_FACTOR)


def supported_dtypes(torch: Any, device: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Dtypes to measure on ``device``, and notes on those left out and why."""
    if device == "cpu":
        return ("fp32", "bf16", "int8"), ("CPU: fp16 and fp8 matmuls are left out (no native support on most CPUs)",)
    if device == "mps":
        return ("fp32", "fp16", "bf16"), ("MPS: tf32, fp8 and int8 matmuls are not available",)
    if device.startswith("xpu"):
        return ("fp32", "bf16", "fp16"), ("XPU: tf32, fp8 and int8 matmuls are not measured (Arc's XMX engines run "
                                          "int8, but torch offers no int8 matmul there)",)
    fp8, fp8_reason = gpu_backends.native_fp8(torch, device)
    dtypes, notes = ["fp32"], []
    if gpu_backends.is_rocm(torch):
        dtypes.append("bf16")
        notes.append("ROCm: tf32 is not measured (AMD's xf32 is not what torch's tf32 setting selects everywhere)")
    else:
        major, minor = torch.cuda.get_device_capability(device)
        if major >= 8:
            dtypes += ["tf32", "bf16"]
        else:
            notes.append(f"tf32 and bf16 need compute capability 8.0; this GPU is {major}.{minor}")
    dtypes.append("fp16")
    if fp8:
        dtypes.append("fp8")
    else:
        notes.append(f"fp8 not measured: {fp8_reason}")
    if hasattr(torch, "_int_mm"):
        dtypes.append("int8")
    else:
        notes.append("int8: this torch has no torch._int_mm")
    return tuple(dtypes), tuple(notes)


@contextlib.contextmanager
def _fp32_precision(torch: Any, dtype: str) -> Iterator[None]:
    """fp32 products in full precision, tf32 ones on tensor cores; restores the previous setting."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if dtype == "tf32" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _operands(torch: Any, dtype: str, device: str, m: int, k: int, n: int, copies: int
              ) -> tuple[Any, list[Any]]:
    """Random activations ``[m x k]`` and ``copies`` random weights ``[k x n]`` in the layout each kernel needs."""
    if dtype == "int8":
        activation = torch.randint(-127, 128, (m, k), dtype=torch.int8, device=device)
        return activation, [torch.randint(-127, 128, (k, n), dtype=torch.int8, device=device) for _ in range(copies)]
    if dtype == "fp8":
        fp8 = gpu_backends.fp8_dtype(torch, device)
        activation = torch.randn(m, k, device=device, dtype=torch.bfloat16).to(fp8)
        # torch._scaled_mm wants its second operand column-major: the transpose of a row-major [n x k].
        weights = [torch.randn(n, k, device=device, dtype=torch.bfloat16).to(fp8).t()
                   for _ in range(copies)]
        return activation, weights
    torch_dtype = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    activation = torch.randn(m, k, device=device, dtype=torch_dtype)
    return activation, [torch.randn(k, n, device=device, dtype=torch_dtype) for _ in range(copies)]


def _product(torch: Any, dtype: str, device: str) -> Callable[[Any, Any], Any]:
    if dtype == "fp8":
        one = torch.ones((), device=device, dtype=torch.float32)
        return lambda a, w: torch._scaled_mm(a, w, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    # torch comes in as Any (imported lazily by the caller), so its functions are Any too.
    product: Callable[[Any, Any], Any] = torch._int_mm if dtype == "int8" else torch.matmul
    return product


def weight_copies_for(weight_bytes: int, last_level_cache_bytes: int | Unavailable) -> int:
    """How many distinct weights to rotate through so that together they exceed the cache several times."""
    if isinstance(last_level_cache_bytes, Unavailable):
        return 1
    needed = math.ceil(COLD_WEIGHT_CACHE_MULTIPLE * last_level_cache_bytes / weight_bytes)
    return max(1, min(MAX_WEIGHT_COPIES, needed))


@dataclass(frozen=True)
class MatmulPlan:
    """What to measure: square size, token counts, shapes, and the budgets for each kind of product."""

    square: int
    tokens: tuple[int, ...]
    shapes: tuple[MatmulShape, ...]
    square_budget: Budget
    decode_budget: Budget


@dataclass(frozen=True)
class MatmulResult:
    """Every product measured, the ridges derived from them, and notes on what was left out."""

    figures: tuple[MatmulFigure, ...]
    ridges: tuple[TokenRidge, ...]
    notes: tuple[str, ...]


def measure_matmuls(device: str, *, plan: MatmulPlan, timer: Timer, last_level_cache_bytes: int | Unavailable,
                    dtypes: tuple[str, ...] | None = None,
                    progress: Callable[[str], None] = lambda _: None) -> MatmulResult:
    """The square product and every decode shape, per dtype; a dtype whose kernel fails is noted, not fatal."""
    import torch

    available, notes_list = supported_dtypes(torch, device)
    notes = list(notes_list)
    chosen = tuple(d for d in available if dtypes is None or d in dtypes)
    use_graph = device.startswith("cuda")
    figures: list[MatmulFigure] = []
    for dtype in chosen:
        with _fp32_precision(torch, dtype):
            try:
                figures.extend(_measure_dtype(torch, device, dtype, plan=plan, timer=timer, use_graph=use_graph,
                                              last_level_cache_bytes=last_level_cache_bytes, notes=notes,
                                              progress=progress))
            except (RuntimeError, TypeError) as exc:  # a kernel this build or device lacks
                notes.append(f"{dtype} matmul not measured: {exc}".splitlines()[0])
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        elif device.startswith("xpu"):
            torch.xpu.empty_cache()
    ridges = tuple(ridge for dtype in chosen for shape in plan.shapes
                   if (ridge := token_ridge(tuple(figures), dtype, shape.name)) is not None)
    return MatmulResult(tuple(figures), ridges, tuple(notes))


def _measure_dtype(torch: Any, device: str, dtype: str, *, plan: MatmulPlan, timer: Timer, use_graph: bool,
                   last_level_cache_bytes: int | Unavailable, notes: list[str],
                   progress: Callable[[str], None]) -> Iterator[MatmulFigure]:
    progress(f"matmul: {dtype} {plan.square}^3")
    yield _square_figure(torch, device, dtype, plan=plan, timer=timer)
    for shape in plan.shapes:
        progress(f"matmul: {dtype} {shape.name} ({shape.description}), M = {', '.join(map(str, plan.tokens))}")
        yield from _shape_figures(torch, device, dtype, shape, plan=plan, timer=timer, use_graph=use_graph,
                                  last_level_cache_bytes=last_level_cache_bytes, notes=notes)


def _square_figure(torch: Any, device: str, dtype: str, *, plan: MatmulPlan, timer: Timer) -> MatmulFigure:
    product = _product(torch, dtype, device)
    a, (w,) = _operands(torch, dtype, device, plan.square, plan.square, plan.square, 1)
    timing = plan.square_budget.measure(lambda: product(a, w), timer=timer)
    return matmul_figure(dtype=dtype, shape="square", tokens=plan.square, m=plan.square, n=plan.square,
                         k=plan.square, weight_copies=1, timing=timing)


def _shape_figures(torch: Any, device: str, dtype: str, shape: MatmulShape, *, plan: MatmulPlan, timer: Timer,
                   use_graph: bool, last_level_cache_bytes: int | Unavailable, notes: list[str]) -> list[MatmulFigure]:
    """One decode shape at every token count, rotating through cold weights (operands freed on return)."""
    product = _product(torch, dtype, device)
    copies = weight_copies_for(shape.k * shape.n * OPERAND_BYTES[dtype], last_level_cache_bytes)
    activation, weights = _operands(torch, dtype, device, padded_rows(dtype, max(plan.tokens), device),
                                    shape.k, shape.n, copies)
    figures = []
    for tokens in plan.tokens:
        m = padded_rows(dtype, tokens, device)
        rows = activation[:m]

        def rotate(rows: Any = rows) -> None:
            for weight in weights:
                product(rows, weight)

        prepared = graph_or_eager(rotate, use_graph=use_graph)
        if prepared.fallback_reason:
            notes.append(f"{dtype} {shape.name} M={tokens} ran eagerly: {prepared.fallback_reason}")
        timing = plan.decode_budget.measure(prepared.call, timer=timer, ops_per_call=copies)
        figures.append(matmul_figure(dtype=dtype, shape=shape.name, tokens=tokens, m=m, n=shape.n, k=shape.k,
                                     weight_copies=copies, timing=timing))
    return figures
