"""Terminal text of measured limits: every section, ridges, unknown theoretical peak, unstable figures flagged."""

from __future__ import annotations

from dgprofile.records.limits import BandwidthFigure, LatencyFigure, Limits, MatmulFigure, TokenRidge
from dgprofile.records.timing import InstabilityFlag, Timing
from dgprofile.records.values import Unavailable
from dgprofile.terminal.format_limits import format_limits

BUSY = InstabilityFlag("high-variation", "samples vary by 9.0% (threshold 5%)", "another process may be using it")


def timing(median: float, *, unstable: tuple[InstabilityFlag, ...] = ()) -> Timing:
    return Timing(median_seconds=median, iqr_seconds=median * 0.01, min_seconds=median, max_seconds=median,
                  coefficient_of_variation=0.01, samples=5, loops=1, warmup_runs=2, timer="cuda-events",
                  unstable=unstable)


def bandwidth(name: str, method: str, rate: float, fraction: float | Unavailable) -> BandwidthFigure:
    return BandwidthFigure(name=name, method=method, buffer_bytes=1 << 30, bytes_moved_per_call=1 << 30,
                           bytes_per_s=rate, timing=timing(1e-3), fraction_of_theoretical=fraction)


def lm_head(dtype: str, tokens: int, seconds: float, *, unstable: tuple[InstabilityFlag, ...] = ()) -> MatmulFigure:
    return MatmulFigure(label=f"{dtype} lm-head M={tokens}", dtype=dtype, m=tokens, n=262144, k=2816,
                        flops_per_s=2 * tokens * 262144 * 2816 / seconds, timing=timing(seconds, unstable=unstable),
                        shape="lm-head", tokens=tokens, weight_copies=1, bytes_moved=1_476_000_000,
                        bytes_per_s=1_476_000_000 / seconds)


def make_limits(**overrides) -> Limits:
    square = MatmulFigure(label="bf16 8192x8192x8192", dtype="bf16", m=8192, n=8192, k=8192, flops_per_s=7.2e14,
                          timing=timing(1.5e-3))
    fp8_square = MatmulFigure(label="fp8 8192x8192x8192", dtype="fp8", m=8192, n=8192, k=8192, flops_per_s=1.3e15,
                              timing=timing(8e-4))
    fields = dict(
        device="cuda:0", device_name="NVIDIA H100 80GB HBM3", stream_read_bytes_per_s=3.09e12,
        copy_bytes_per_s=3.0e12,
        bandwidth=(bandwidth("stream-read", "torch.sum", 2.95e12, 0.88),
                   bandwidth("stream-read", "triton stream-read (block 8192, 16 warps, 16/SM)", 3.09e12, 0.92)),
        host_transfer=(bandwidth("h2d-pinned", "torch copy_", 5.4e10, Unavailable("no link rate")),),
        matmul=(square, fp8_square, lm_head("bf16", 1, 4.8e-4), lm_head("bf16", 256, 6.2e-4, unstable=(BUSY,)),
                lm_head("fp8", 1, 2.7e-4), lm_head("fp8", 256, 3.2e-4)),
        peak_flops_per_s={"bf16": 7.2e14, "fp8": 1.3e15}, ridge_flop_per_byte={"bf16": 233.0, "fp8": 420.7},
        ridge_tokens={"bf16": 256},
        latency=(LatencyFigure("graph-op", 1.19e-6, timing(1.19e-6), "one-element add in a graph"),),
        launch_floor_seconds=1.19e-6, seconds_taken=10.3, notes=("int8: slow path",),
        stream_read_method="triton stream-read (block 8192, 16 warps, 16/SM)", triad_bytes_per_s=3.04e12,
        theoretical_bandwidth_bytes_per_s=3.352e12, last_level_cache_bytes=50 << 20,
        token_ridges=(TokenRidge("bf16", "lm-head", 256, 1, 4.8e-4, 1.25),
                      TokenRidge("fp8", "lm-head", Unavailable("time stayed within 1.25x"), 1, 2.7e-4, 1.25)),
        ridge_tokens_shape="lm-head", torch_version="2.11.0+cu130")
    fields.update(overrides)
    return Limits(**fields)


def test_every_section_with_its_figures() -> None:
    text = format_limits(make_limits())
    assert text.startswith("Limits of cuda:0 (NVIDIA H100 80GB HBM3), measured in 10.3 s with torch 2.11.0+cu130")
    assert "theoretical 3.35 TB/s, last-level cache 50.0 MiB" in text
    assert "streaming read 3.09 TB/s by triton stream-read (block 8192, 16 warps, 16/SM), copy 3.00 TB/s" in text
    assert "92.0%" in text and "88.0%" in text
    assert "h2d-pinned" in text and "54.0 GB/s" in text
    assert "720 TFLOP/s" in text and "233" in text
    assert "launch floor 1.19 us per kernel" in text
    assert "  - int8: slow path" in text


def test_ridge_tokens_column_shows_the_ridge_or_how_far_time_stayed_flat() -> None:
    lines = format_limits(make_limits()).splitlines()
    bf16 = next(line for line in lines if line.strip().startswith("bf16   8192"))
    fp8 = next(line for line in lines if line.strip().startswith("fp8    8192"))
    assert bf16.rstrip().endswith("256")
    assert fp8.rstrip().endswith("> 256")


def test_decode_shapes_table_has_a_column_per_token_count() -> None:
    text = format_limits(make_limits())
    header = next(line for line in text.splitlines() if "M=1 " in line)
    assert "M=256" in header and "at M=1" in header
    assert "480 us" in text and "620 us !" in text


def test_unstable_figures_are_listed_with_their_advice() -> None:
    text = format_limits(make_limits())
    assert "Unstable measurements (marked !)" in text
    assert ("bf16 lm-head M=256: samples vary by 9.0% (threshold 5%); another process may be using the GPU: check "
            "nvidia-smi (amd-smi on AMD), stop other jobs and rerun") in text


def test_unknown_theoretical_peak_shows_a_dash_in_the_table_and_the_reason_once() -> None:
    limits = make_limits(theoretical_bandwidth_bytes_per_s=Unavailable("no SMBIOS tables"),
                         bandwidth=(bandwidth("copy", "torch copy_", 2e10, Unavailable("no SMBIOS tables")),))
    text = format_limits(limits)
    assert text.count("no SMBIOS tables") == 1
    copy_row = next(line for line in text.splitlines() if line.strip().startswith("copy "))
    assert " - " in copy_row


def test_nothing_measured_still_reads_clearly() -> None:
    missing = Unavailable("bandwidth not measured")
    text = format_limits(make_limits(bandwidth=(), host_transfer=(), matmul=(), latency=(), peak_flops_per_s={},
                                     stream_read_bytes_per_s=missing, copy_bytes_per_s=missing,
                                     triad_bytes_per_s=missing, launch_floor_seconds=Unavailable("not measured"),
                                     stream_read_method=""))
    assert "streaming read unavailable (bandwidth not measured)" in text
    assert "Matmul: not measured" in text
    assert "launch floor unavailable (not measured)" in text
