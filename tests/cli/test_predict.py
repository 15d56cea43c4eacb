"""`dgprofile predict` through the real CLI entry points."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dgprofile.cli import cli, main
from dgprofile.exit_codes import ExitCode
from dgprofile.records.results import load

BLOG = ["--precision", "fp8", "--prompt-tokens", "1024", "--output-tokens", "1024", "--steps", "16"]
REQUIRED_KEYS = {"hardware", "engine", "precision", "concurrency", "steps_per_canvas", "speedup", "speedup_low",
                 "speedup_high", "verdict", "reasons"}
MODE_KEYS = {"tokens_per_s", "ttft_s", "memory_bytes"}


def test_json_prints_the_documented_keys() -> None:
    result = CliRunner().invoke(cli, ["predict", "--hardware", "h100-sxm", "--json", *BLOG])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert REQUIRED_KEYS <= set(summary)
    assert MODE_KEYS <= set(summary["diffusion"]) and MODE_KEYS <= set(summary["autoregressive"])
    assert (summary["engine"], summary["precision"], summary["steps_per_canvas"]) == ("vllm", "fp8", 16)
    assert summary["speedup_low"] <= summary["speedup"] <= summary["speedup_high"]
    assert summary["verdict"] == "applies" and summary["reasons"]


def test_json_of_a_machine_that_cannot_run_says_why_in_every_field() -> None:
    result = CliRunner().invoke(cli, ["predict", "--hardware", "m4-10gpu", "--memory-gb", "16", "--json"])
    summary = json.loads(result.output)
    assert summary["verdict"] == "cannot-run"
    assert "does not fit" in summary["diffusion"]["tokens_per_s"]["unavailable"]


def test_text_output_shows_headline_verdict_matrix_and_basis() -> None:
    result = CliRunner().invoke(cli, ["predict", "--hardware", "rtx-4090"])
    assert result.exit_code == 0
    for part in ("DiffusionGemma vs autoregressive Gemma 4 on NVIDIA GeForce RTX 4090", "verdict:", "why:",
                 "advice:", "memory fit", "matrix", "basis:", "fits only at 4-bit"):
        assert part in result.output


def test_overrides_reach_the_headline() -> None:
    result = CliRunner().invoke(cli, ["predict", "--hardware", "h200", "--json", "--workload", "code-infill",
                                      "--concurrency", "4", "--engine", "ideal", "--gpus", "2"])
    summary = json.loads(result.output)
    assert (summary["workload"], summary["concurrency"], summary["engine"], summary["gpus"]) == (
        "code-infill", 4, "ideal", 2)


def test_output_file_is_a_predicted_result(tmp_path: Path) -> None:
    target = tmp_path / "h200.json"
    result = CliRunner().invoke(cli, ["predict", "--hardware", "h200", "-o", str(target)])
    assert result.exit_code == 0
    loaded = load(target)
    assert loaded.run.origin == "predicted" and loaded.run.label == "h200"
    assert "predicted from the datasheet of NVIDIA H200" in loaded.machine.reason


def test_fail_under_exits_with_its_code() -> None:
    below = CliRunner().invoke(cli, ["predict", "--hardware", "m3-max-40gpu", "--fail-under", "1"])
    above = CliRunner().invoke(cli, ["predict", "--hardware", "h100-sxm", "--fail-under", "1", *BLOG])
    assert below.exit_code == ExitCode.BELOW_FAIL_UNDER and "below --fail-under" in below.stderr
    assert above.exit_code == 0


def test_unknown_hardware_exits_with_input_error_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--hardware", "h100x"])
    assert exit_info.value.code == ExitCode.INPUT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown hardware 'h100x'" in err


def test_engine_that_does_not_run_there_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--hardware", "m3-max-40gpu", "--engine", "vllm"])
    assert exit_info.value.code == ExitCode.INPUT_ERROR


def test_predict_answers_in_under_a_second() -> None:
    """Whole process: interpreter start, imports, stored engine fit, every scenario. Counted in CPU seconds of the
    child (best of two), so that other work on a busy test machine does not count against it."""
    command = [sys.executable, "-m", "dgprofile", "predict", "--hardware", "h200", "--json"]
    durations = []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        durations.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    assert min(durations) < 1.0, durations
