"""Bandwidth bench: byte counting, rate arithmetic, buffer sizing, a real CPU run; the Triton kernel on a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from dgprofile.probes import bench_bandwidth, triton_stream
from dgprofile.probes.bench_bandwidth import (
    bandwidth_figure,
    best_figure,
    buffer_bytes_for,
    pattern_bytes,
    sysfs_last_level_cache_bytes,
)
from dgprofile.probes.harness import Budget, PerfCounterTimer, timer_for
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable

MIB = 1 << 20


def timing(median: float) -> Timing:
    return Timing(median_seconds=median, iqr_seconds=0.0, min_seconds=median, max_seconds=median,
                  coefficient_of_variation=0.0, samples=5, loops=1, warmup_runs=1, timer="perf-counter")


def test_each_pattern_counts_every_array_read_and_written() -> None:
    assert pattern_bytes("stream-read", 100) == 100
    assert pattern_bytes("copy", 100) == 200
    assert pattern_bytes("triad", 100) == 300


def test_rate_is_bytes_over_median_and_fraction_is_over_theoretical() -> None:
    figure = bandwidth_figure("copy", "torch copy_", buffer_bytes=512 * MIB, bytes_per_call=1024 * MIB,
                              timing=timing(0.5e-3), theoretical_bytes_per_s=3.35e12)
    assert figure.bytes_per_s == pytest.approx(1024 * MIB / 0.5e-3)
    assert figure.fraction_of_theoretical == pytest.approx(1024 * MIB / 0.5e-3 / 3.35e12)
    unknown = bandwidth_figure("copy", "torch copy_", buffer_bytes=1, bytes_per_call=2, timing=timing(1.0),
                               theoretical_bytes_per_s=Unavailable("no SMBIOS"))
    assert unknown.fraction_of_theoretical == Unavailable("no SMBIOS")


def test_best_figure_picks_the_fastest_method_of_a_pattern() -> None:
    slow = bandwidth_figure("stream-read", "torch.sum", buffer_bytes=1, bytes_per_call=100, timing=timing(2.0),
                            theoretical_bytes_per_s=Unavailable("x"))
    fast = bandwidth_figure("stream-read", "triton", buffer_bytes=1, bytes_per_call=100, timing=timing(1.0),
                            theoretical_bytes_per_s=Unavailable("x"))
    copy = bandwidth_figure("copy", "torch copy_", buffer_bytes=1, bytes_per_call=1000, timing=timing(1.0),
                            theoretical_bytes_per_s=Unavailable("x"))
    assert best_figure((slow, fast, copy), "stream-read") is fast
    assert best_figure((slow,), "triad") is None


def test_buffers_are_eight_times_the_cache_or_the_minimum_whichever_is_larger() -> None:
    alignment = bench_bandwidth.ELEMENT_ALIGNMENT * bench_bandwidth.FP32_BYTES
    size, note = buffer_bytes_for(50 * MIB, minimum_bytes=512 * MIB, free_bytes=80 << 30)
    assert size == 512 * MIB and note == ""
    size, _ = buffer_bytes_for(100 * MIB, minimum_bytes=64 * MIB, free_bytes=Unavailable("unknown"))
    assert size == 800 * MIB // alignment * alignment
    size, _ = buffer_bytes_for(Unavailable("unknown"), minimum_bytes=64 * MIB, free_bytes=Unavailable("unknown"))
    assert size == 64 * MIB


def test_buffers_shrink_to_fit_free_memory_and_say_so() -> None:
    size, note = buffer_bytes_for(50 * MIB, minimum_bytes=512 * MIB, free_bytes=600 * MIB)
    assert size * 3 <= bench_bandwidth.FREE_MEMORY_SHARE * 600 * MIB
    assert "shrunk" in note and "x the last-level cache" in note


def test_sysfs_cache_reader_takes_the_highest_level(tmp_path: Path) -> None:
    for name, level, size in (("index0", 1, "48K"), ("index2", 2, "2048K"), ("index3", 3, "36864K")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "level").write_text(f"{level}\n")
        (tmp_path / name / "size").write_text(f"{size}\n")
    assert sysfs_last_level_cache_bytes(tmp_path) == 36864 * 1024
    assert isinstance(sysfs_last_level_cache_bytes(tmp_path / "missing"), Unavailable)


def test_cpu_run_counts_bytes_and_derives_rates_from_its_timings() -> None:
    buffer = 4 * MIB
    result = bench_bandwidth.device_bandwidth("cpu", buffer_bytes=buffer, timer=timer_for("cpu"),
                                              budget=Budget(0.002, 3, 0.5), theoretical_bytes_per_s=1e12,
                                              sm_count=Unavailable("cpu"))
    by_name = {figure.name: figure for figure in result.figures}
    assert set(by_name) == {"stream-read", "copy", "triad"}
    assert by_name["stream-read"].bytes_moved_per_call == buffer + 4  # the buffer plus torch.sum's fp32 result
    assert by_name["copy"].bytes_moved_per_call == 2 * buffer
    assert by_name["triad"].bytes_moved_per_call == 3 * buffer
    for figure in result.figures:
        assert figure.buffer_bytes == buffer
        assert figure.bytes_per_s == pytest.approx(figure.bytes_moved_per_call / figure.timing.median_seconds)
        assert figure.fraction_of_theoretical == pytest.approx(figure.bytes_per_s / 1e12)
    assert any("threads" in note for note in result.notes)


def test_triton_kernel_is_refused_off_gpus() -> None:
    assert triton_stream.triton_unavailable_reason("cpu") == "the Triton kernel runs on CUDA, ROCm and XPU devices only"


def test_triton_kernel_that_does_not_compile_on_a_backend_is_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Triton's Intel and AMD backends may reject a launch configuration: torch's figures then stand alone."""
    import torch

    def no_such_backend(*args, **kwargs):
        raise TritonCompileError("cache_modifier '.cs' is not supported by this backend")

    class TritonCompileError(Exception):  # Triton's errors share no base class usable here
        pass

    monkeypatch.setattr(triton_stream, "triton_unavailable_reason", lambda device: None)
    monkeypatch.setattr(triton_stream, "stream_read", no_such_backend)
    monkeypatch.setattr(triton_stream, "stream_copy", no_such_backend)
    source, destination = torch.rand(1 << 14), torch.zeros(1 << 14)
    notes: list[str] = []
    figures = list(bench_bandwidth._triton_kernels(
        "xpu:0", source, destination, sm_count=20, timer=PerfCounterTimer(), budget=Budget(0.0, 3, 0.1),
        theoretical_bytes_per_s=Unavailable("none"), notes=notes, progress=lambda _: None))
    assert figures == []
    assert len(notes) == 2 * len(triton_stream.STREAM_CONFIGS)
    assert all("not run on this backend: TritonCompileError" in note for note in notes)


@pytest.mark.gpu
def test_triton_stream_read_sum_equals_torch_sum_on_fresh_random_data() -> None:
    import torch

    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    for config in triton_stream.STREAM_CONFIGS:
        buffer = torch.rand(config.block * 1000, device="cuda")
        got = triton_stream.stream_read_sum(buffer, sm_count=sm_count, config=config)
        assert got == pytest.approx(float(buffer.double().sum()), rel=1e-5)


@pytest.mark.gpu
def test_triton_copy_writes_every_element_of_the_destination() -> None:
    import torch

    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    for config in triton_stream.STREAM_CONFIGS:
        source = torch.rand(config.block * 999, device="cuda")
        destination = torch.full_like(source, float("nan"))
        run, bytes_per_call = triton_stream.stream_copy(source, destination, sm_count=sm_count, config=config)
        assert torch.equal(run(), source)
        assert bytes_per_call == 2 * source.numel() * 4


@pytest.mark.gpu
def test_cuda_run_reaches_most_of_the_theoretical_bandwidth_with_both_methods() -> None:
    import torch

    props = torch.cuda.get_device_properties(0)
    theoretical = 2 * props.memory_clock_rate * 1e3 * props.memory_bus_width / 8
    result = bench_bandwidth.device_bandwidth("cuda:0", buffer_bytes=512 * MIB, timer=timer_for("cuda:0"),
                                              budget=Budget(0.01, 5, 1.0), theoretical_bytes_per_s=theoretical,
                                              sm_count=props.multi_processor_count)
    methods = {(figure.name, figure.method.split(" (")[0]) for figure in result.figures}
    assert methods == {("stream-read", "torch.sum"), ("stream-read", "triton stream-read"), ("copy", "torch copy_"),
                       ("copy", "triton copy"), ("triad", "torch.add(out=, alpha=)")}
    for figure in result.figures:
        assert 0.5 < figure.fraction_of_theoretical < 1.0, figure


@pytest.mark.gpu
def test_host_transfers_cover_both_directions_and_both_memories() -> None:
    figures = bench_bandwidth.host_transfer("cuda:0", buffer_bytes=64 * MIB, timer=timer_for("cuda:0"),
                                            budget=Budget(0.005, 3, 0.5))
    assert [f.name for f in figures] == ["h2d-pinned", "d2h-pinned", "h2d-pageable", "d2h-pageable"]
    for figure in figures:
        assert figure.bytes_moved_per_call == 64 * MIB
        assert 1e9 < figure.bytes_per_s < 1e12
