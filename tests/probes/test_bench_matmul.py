"""Matmul bench: FLOP and byte counting, padding, ridge detection, weight rotation, a CPU run; CUDA paths on a GPU."""

from __future__ import annotations

import pytest

from dgprofile.probes import bench_matmul
from dgprofile.probes.bench_matmul import (
    MatmulPlan,
    MatmulShape,
    decode_shapes,
    matmul_bytes,
    matmul_figure,
    matmul_flops,
    padded_rows,
    token_ridge,
    weight_copies_for,
)
from dgprofile.probes.harness import Budget, timer_for
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import load_model_config


def timing(median: float) -> Timing:
    return Timing(median_seconds=median, iqr_seconds=0.0, min_seconds=median, max_seconds=median,
                  coefficient_of_variation=0.0, samples=5, loops=1, warmup_runs=1, timer="cuda-graph-events")


def test_decode_shapes_come_from_the_model_configuration() -> None:
    shapes = {s.name: (s.k, s.n) for s in decode_shapes(load_model_config().backbone)}
    assert shapes == {"dense-mlp": (2816, 2112), "expert-gate-up": (2816, 1408), "lm-head": (2816, 262144)}


def test_flops_and_bytes_of_a_product() -> None:
    assert matmul_flops(8192, 8192, 8192) == 2 * 8192 ** 3
    # bf16 [1 x 2816] @ [2816 x 262144]: the weight dominates; the output is bf16 too.
    assert matmul_bytes("bf16", 1, 262144, 2816) == (2816 + 2816 * 262144) * 2 + 262144 * 2
    # int8 operands produce an int32 output.
    assert matmul_bytes("int8", 32, 64, 128) == (32 * 128 + 128 * 64) + 32 * 64 * 4


def test_rows_are_padded_only_where_the_kernel_needs_it() -> None:
    assert padded_rows("fp8", 1, "cuda:0") == 16
    assert padded_rows("fp8", 64, "cuda:0") == 64
    assert padded_rows("int8", 8, "cuda:0") == 32
    assert padded_rows("int8", 8, "cpu") == 8
    assert padded_rows("bf16", 1, "cuda:0") == 1


def test_figure_rate_uses_rows_computed_and_labels_padding() -> None:
    figure = matmul_figure(dtype="fp8", shape="lm-head", tokens=1, m=16, n=262144, k=2816, weight_copies=1,
                           timing=timing(2e-4))
    assert figure.flops_per_s == pytest.approx(2 * 16 * 262144 * 2816 / 2e-4)
    assert figure.bytes_per_s == pytest.approx(matmul_bytes("fp8", 16, 262144, 2816) / 2e-4)
    assert figure.label == "fp8 lm-head M=1 (padded to 16)"
    square = matmul_figure(dtype="bf16", shape="square", tokens=8192, m=8192, n=8192, k=8192, weight_copies=1,
                           timing=timing(1.4e-3))
    assert square.label == "bf16 8192x8192x8192"


def decode_figures(times: dict[int, float], dtype: str = "bf16", shape: str = "lm-head"):
    return tuple(matmul_figure(dtype=dtype, shape=shape, tokens=t, m=t, n=262144, k=2816, weight_copies=1,
                               timing=timing(seconds)) for t, seconds in times.items())


def test_ridge_is_the_first_token_count_past_the_threshold() -> None:
    figures = decode_figures({1: 5.0e-4, 8: 5.0e-4, 64: 5.1e-4, 256: 6.0e-4, 1024: 2.0e-3, 2048: 4.0e-3})
    ridge = token_ridge(figures, "bf16", "lm-head")
    # 256 tokens take 1.2x the 1-token time (still free); 1024 take 4x.
    assert ridge is not None and ridge.tokens == 1024
    assert ridge.base_tokens == 1 and ridge.base_seconds == 5.0e-4
    just_over = decode_figures({1: 1.0, 8: 1.0 * bench_matmul.RIDGE_TIME_FACTOR + 1e-9})
    assert token_ridge(just_over, "bf16", "lm-head").tokens == 8


def test_ridge_is_unavailable_when_time_never_grows_and_absent_without_data() -> None:
    figures = decode_figures({1: 1.0, 8: 1.0, 64: 1.1})
    ridge = token_ridge(figures, "bf16", "lm-head")
    assert isinstance(ridge.tokens, Unavailable) and "up to 64 tokens" in ridge.tokens.reason
    assert token_ridge(figures, "fp16", "lm-head") is None


def test_weights_rotate_until_they_exceed_the_cache_several_times() -> None:
    assert weight_copies_for(12 << 20, 50 << 20) == 17  # ceil(4 x 50 / 12)
    assert weight_copies_for(1500 << 20, 50 << 20) == 1
    assert weight_copies_for(1 << 10, 50 << 20) == bench_matmul.MAX_WEIGHT_COPIES
    assert weight_copies_for(1 << 20, Unavailable("unknown")) == 1


TINY_PLAN = MatmulPlan(square=64, tokens=(1, 8, 32), shapes=(MatmulShape("tiny", 64, 48, "a test shape"),),
                       square_budget=Budget(0.001, 3, 0.2), decode_budget=Budget(0.001, 3, 0.2))


def test_cpu_run_measures_each_dtype_and_derives_rates_from_its_timings() -> None:
    result = bench_matmul.measure_matmuls("cpu", plan=TINY_PLAN, timer=timer_for("cpu"),
                                          last_level_cache_bytes=64 * 48 * 4 * 3, dtypes=("fp32", "int8"))
    assert {f.dtype for f in result.figures} == {"fp32", "int8"}
    squares = [f for f in result.figures if f.shape == "square"]
    assert len(squares) == 2 and all((f.m, f.n, f.k) == (64, 64, 64) for f in squares)
    tiny = [f for f in result.figures if f.shape == "tiny" and f.dtype == "fp32"]
    assert [f.tokens for f in tiny] == [1, 8, 32]
    for figure in result.figures:
        assert figure.flops_per_s == pytest.approx(2 * figure.m * figure.n * figure.k / figure.timing.median_seconds)
    # fp32 weights of 64 x 48 x 4 bytes, rotated until 4x the given cache: 12 copies; each counted once.
    assert {f.weight_copies for f in tiny} == {12}
    assert all(f.timing.ops_per_call == 12 for f in tiny)
    assert {(r.dtype, r.shape) for r in result.ridges} == {("fp32", "tiny"), ("int8", "tiny")}


def test_a_dtype_whose_kernel_fails_is_noted_and_the_others_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(torch, dtype, device):
        if dtype == "bf16":
            raise RuntimeError("no bf16 kernel on this build\nsecond line")
        return torch.matmul

    monkeypatch.setattr(bench_matmul, "_product", broken)
    result = bench_matmul.measure_matmuls("cpu", plan=TINY_PLAN, timer=timer_for("cpu"),
                                          last_level_cache_bytes=Unavailable("unknown"), dtypes=("fp32", "bf16"))
    assert {f.dtype for f in result.figures} == {"fp32"}
    assert "bf16 matmul not measured: no bf16 kernel on this build" in result.notes


@pytest.mark.gpu
def test_cuda_products_run_in_graphs_for_every_supported_dtype() -> None:
    plan = MatmulPlan(square=1024, tokens=(1, 64), shapes=(MatmulShape("dense", 2816, 2112, "dense"),),
                      square_budget=Budget(0.002, 3, 0.3), decode_budget=Budget(0.002, 3, 0.3))
    result = bench_matmul.measure_matmuls("cuda:0", plan=plan, timer=timer_for("cuda:0"),
                                          last_level_cache_bytes=50 << 20)
    assert {"fp32", "tf32", "bf16", "fp16", "fp8", "int8"} <= {f.dtype for f in result.figures}, result.notes
    decode = [f for f in result.figures if f.shape == "dense"]
    assert all(f.timing.timer == "cuda-graph-events" for f in decode), result.notes
    assert {f.m for f in decode if f.dtype == "fp8"} == {16, 64}


@pytest.mark.gpu
def test_fp8_and_int8_products_compute_the_right_values() -> None:
    import torch

    a, (w,) = bench_matmul._operands(torch, "fp8", "cuda:0", 32, 256, 128, 1)
    got = bench_matmul._product(torch, "fp8", "cuda:0")(a, w).double()
    want = a.float().double() @ w.float().double()
    assert torch.linalg.norm(got - want) / torch.linalg.norm(want) < 1e-2
    a, (w,) = bench_matmul._operands(torch, "int8", "cuda:0", 32, 256, 128, 1)
    got = bench_matmul._product(torch, "int8", "cuda:0")(a, w).cpu().long()
    assert torch.equal(got, a.cpu().long() @ w.cpu().long())
