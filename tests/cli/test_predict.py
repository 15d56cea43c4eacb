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
from dgprofile.records.results import SCHEMA_VERSION, load

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


SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_from_result_repredicts_a_measured_file_with_this_model(tmp_path: Path) -> None:
    """The H100 of samples/ re-predicted from its measured limits and passes still reproduces the vLLM blog's
    published FP8 run (1008 DiffusionGemma and 197 AR tok/s) within 10%."""
    output = tmp_path / "again.dgprofile.json"
    result = CliRunner().invoke(cli, ["predict", "--from-result", str(SAMPLES / "h100-sxm_20261126.dgprofile.json"),
                                      "--engine", "vllm", "--json", "-o", str(output), *BLOG])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["origin"] == "measured"
    assert summary["diffusion"]["tokens_per_s"] == pytest.approx(1008, rel=0.1)
    assert summary["autoregressive"]["tokens_per_s"] == pytest.approx(197, rel=0.1)
    rewritten = load(output)
    assert rewritten.run.origin == "measured" and rewritten.schema_version == SCHEMA_VERSION
    assert rewritten.passes == load(SAMPLES / "h100-sxm_20261126.dgprofile.json").passes


def exit_code_and_error(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    code = exit_info.value.code
    return (code if isinstance(code, int) else -1), capsys.readouterr().err


def test_from_result_refuses_a_predicted_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = exit_code_and_error(
        ["predict", "--from-result", str(SAMPLES / "predicted-rtx-4090_20261126.dgprofile.json")], capsys)
    assert code == ExitCode.INPUT_ERROR and "no measured machine" in err


def test_hardware_or_from_result_is_required_but_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = exit_code_and_error(["predict"], capsys)
    assert code == ExitCode.USAGE_ERROR and "give --hardware NAME" in err
    code, err = exit_code_and_error(["predict", "--hardware", "h100-sxm", "--from-result", "x.json"], capsys)
    assert code == ExitCode.USAGE_ERROR and "not both" in err


def test_setup_knobs_reach_the_scenario() -> None:
    result = CliRunner().invoke(cli, [
        "predict", "--hardware", "rtx-3090", "--gpus", "2", "--interconnect", "pcie4x16-no-p2p",
        "--execution-mode", "eager", "--sampler", "confidence-threshold", "--sampler-value", "0.7", "--thinking",
        "--logits", "quantised", "--ar-baseline", "mtp", "--mtp-draft-tokens", "3", "--mtp-acceptance", "0.6",
        "--json"])
    assert result.exit_code in (0, ExitCode.VERDICT_PARTIAL, ExitCode.VERDICT_DOES_NOT_APPLY), result.output
    setup = json.loads(result.output)["setup"]
    assert setup["execution_mode"] == "eager"
    assert setup["interconnect"]["description"] == "PCIe 4.0 x16 without peer-to-peer"
    assert setup["sampler"] == {"kind": "confidence-threshold", "value": 0.7}
    assert setup["thinking"] is True and setup["quantised_logits"] is True
    assert setup["ar_baseline"] == {"kind": "mtp", "draft_tokens": 3, "acceptance": 0.6}


def test_a_knob_the_engine_cannot_take_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = exit_code_and_error(["predict", "--hardware", "m3-max-40gpu", "--ar-baseline", "mtp"], capsys)
    assert code == ExitCode.INPUT_ERROR and "MTP drafter" in err
    code, err = exit_code_and_error(["predict", "--hardware", "h100-sxm", "--interconnect", "nvlink"], capsys)
    assert code == ExitCode.INPUT_ERROR and "--gpus 2" in err
