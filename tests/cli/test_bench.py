"""`dgprofile bench --limits-only` through the real CLI, measuring this CPU with small sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes.small_limits import use_small_limits

from dgprofile.cli import cli, main
from dgprofile.exit_codes import ExitCode
from dgprofile.records import results


@pytest.fixture(autouse=True)
def small_sizes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_small_limits(monkeypatch, tmp_path)


def test_limits_only_text_shows_each_section_and_progress_goes_to_stderr() -> None:
    result = CliRunner().invoke(cli, ["bench", "--limits-only", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Limits of cpu (")
    for section in ("Memory bandwidth", "Matmul peak", "Decode shapes", "Latency floor"):
        assert section in out
    assert "streaming read" in out and "launch floor" in out
    assert "bandwidth: stream-read (torch.sum)" in result.stderr
    assert "Decode passes" not in out


def test_json_and_output_file_hold_the_same_measured_result(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--limits-only", "--device", "cpu", "--json", "-o", str(path)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    loaded = results.load(path)
    assert printed["limits"]["stream_read_bytes_per_s"] == loaded.limits.stream_read_bytes_per_s > 0
    assert loaded.run.command == ("dgprofile", "bench", "--limits-only", "--device", "cpu", "--json", "--output", str(path))
    assert loaded.passes.reason == "not measured: --limits-only"
    assert f"wrote {path}" in result.stderr


def test_failing_decode_benchmark_still_writes_the_limits_marked_incomplete(monkeypatch, tmp_path) -> None:
    import dgprofile.probes.decode as decode

    def broken(**kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(decode, "run_decode_bench", broken)
    path = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--device", "cpu", "-o", str(path)])
    assert result.exit_code == 0, result.output
    loaded = results.load(path)
    assert loaded.run.status == "incomplete"
    assert loaded.run.incomplete_reasons == (
        "timing decode passes failed: RuntimeError: CUDA error: an illegal memory access was encountered",)
    assert loaded.limits.stream_read_bytes_per_s > 0
    assert "incomplete: timing decode passes failed" in result.stderr


def test_ctrl_c_during_decode_passes_writes_what_was_measured_and_exits_130(monkeypatch, tmp_path) -> None:
    import dgprofile.probes.decode as decode

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(decode, "run_decode_bench", interrupted)
    path = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--device", "cpu", "-o", str(path)])
    assert result.exit_code == 130
    loaded = results.load(path)
    assert loaded.run.incomplete_reasons == ("interrupted (Ctrl-C) while timing decode passes",)
    assert loaded.passes.reason == "not measured: the run ended before this step"
    assert loaded.limits.copy_bytes_per_s > 0


def test_a_cpu_without_bf16_arithmetic_skips_the_bf16_passes_and_matmul(monkeypatch, tmp_path) -> None:
    # An AMD EPYC VM without AVX512 multiplied bf16 at 0.45 GFLOP/s in torch 2.13: the passes would take hours.
    use_small_limits(monkeypatch, tmp_path, bf16_arithmetic=False)
    path = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--device", "cpu", "-o", str(path)])
    assert result.exit_code == 0, result.output
    loaded = results.load(path)
    assert loaded.run.status == "complete"
    assert loaded.passes.reason.startswith("not measured: this CPU has no bf16 arithmetic")
    assert set(loaded.limits.peak_flops_per_s) == {"fp32"}
    assert "decode passes not timed: not measured: this CPU has no bf16 arithmetic" in result.stderr


def test_unknown_device_is_refused_when_parsing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--limits-only", "--device", "tpu"])
    assert exit_info.value.code == ExitCode.USAGE_ERROR
    assert "'tpu' is not one of auto, cpu, mps, cuda, cuda:N, xpu or xpu:N" in capsys.readouterr().err


def test_missing_cuda_device_is_refused_before_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = CliRunner().invoke(cli, ["bench", "--limits-only", "--device", "cuda:0"])
    assert result.exit_code == ExitCode.USAGE_ERROR
    assert "this torch sees no CUDA device" in result.stderr and "bandwidth:" not in result.stderr


def test_unwritable_output_is_refused_before_measuring(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--limits-only", "--device", "cpu", "-o", "/proc/dgprofile-bench.json"])
    assert exit_info.value.code == ExitCode.OUTPUT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("Error: -o/--output /proc/dgprofile-bench.json: cannot write there: ")
    assert err.count("\n") == 1 and "bandwidth:" not in err
