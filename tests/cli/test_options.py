"""Every numeric and device option is checked when the command line is parsed, with the real range in its help:
nothing is measured or predicted first, and the exit code is the usage error's (2)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes.small_limits import use_small_limits

from dgprofile.cli import cli, main
from dgprofile.exit_codes import ExitCode


@pytest.fixture(autouse=True)
def small_sizes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_small_limits(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("args", "message"), [
    (["predict", "--hardware", "m3-max-40gpu", "--memory-gb", "inf"], "inf is not in the range 0<x<=1073741824"),
    (["predict", "--hardware", "m3-max-40gpu", "--memory-gb", "nan"], "'nan' is not a finite number"),
    (["predict", "--hardware", "m3-max-40gpu", "--memory-gb", "0"], "0<x<=1073741824"),
    (["predict", "--hardware", "h100-sxm", "--steps", "1"], "1.0 is not in the range 2<=x<=48"),
    (["predict", "--hardware", "h100-sxm", "--steps", "49"], "49.0 is not in the range 2<=x<=48"),
    (["predict", "--hardware", "h100-sxm", "--gpus", "1000"], "'1000' is not one of 1, 2, 4, 8, 16 or all"),
    (["predict", "--hardware", "h100-sxm", "--gpus", "3"], "'3' is not one of 1, 2, 4, 8, 16 or all"),
    (["predict", "--hardware", "h100-sxm", "--fail-under", "nan"], "'nan' is not a finite number"),
    (["predict", "--hardware", "h100-sxm", "--fail-under", "-1"], "-1.0 is not in the range 0<=x<=10000"),
    (["predict", "--hardware", "h100-sxm", "--prompt-tokens", "262144"], "262144 is not in the range 1<=x<=262143"),
    (["predict", "--hardware", "h100-sxm", "--prompt-tokens", "262000"], "exceed the model's 262,144-token context"),
    (["predict", "--hardware", "h100-sxm", "--engine", "mlx", "--precision", "fp8"], "mlx does not run fp8"),
    (["check", "--device", "cpu", "--steps", "1"], "1.0 is not in the range 2<=x<=48"),
    (["check", "--device", "cpu", "--memory-gb", "nan"], "'nan' is not a finite number"),
    (["check", "--device", "cpu", "--wait", "inf"], "'inf' is not a finite number"),
    (["check", "--device", "cpu", "--fail-under", "nan"], "'nan' is not a finite number"),
    (["check", "--device", "cpu", "--wait", "nan"], "'nan' is not a finite number"),
    (["bench", "--device", "cuda:x"], "'cuda:x' is not one of auto, cpu, mps, cuda, cuda:N, xpu or xpu:N"),
    (["predict", "--hardware", "h100-sxm", "--interconnect", "nvlink"], "--interconnect needs --gpus 2 or more"),
    (["check", "--device", "cpu", "--gpus", "3"], "'3' is not one of 1, 2, 4, 8, 16 or all"),
    (["check", "--device", "cpu", "--sampler-value", "nan"], "'nan' is not a finite number"),
    (["check", "--device", "cpu", "--sampler-value", "inf"], "'inf' is not a finite number"),
    (["check", "--device", "cpu", "--mtp-acceptance", "nan"], "'nan' is not a finite number"),
    (["fleet", "run", "--timeout", "inf"], "'inf' is not a finite number"),
    (["fleet", "run", "--timeout", "nan"], "'nan' is not a finite number"),
])
def test_an_out_of_range_option_is_a_usage_error_before_any_work(args: list[str], message: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    assert exit_info.value.code == ExitCode.USAGE_ERROR, err
    assert message in err and out == ""
    # Nothing was probed or measured: no progress line ("... probing the machine"), and no time spent.
    assert not any(line.startswith("...") for line in err.splitlines()) and time.monotonic() - started < 2


def test_check_with_an_engine_this_machine_cannot_run_is_refused_before_measuring() -> None:
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "--engine", "mlx"])
    assert result.exit_code == ExitCode.USAGE_ERROR
    assert "mlx does not run on cpu accelerators" in result.stderr
    assert "measuring limits" not in result.stderr and not Path("dgprofile-results").exists()


@pytest.mark.parametrize(("command", "shown"), [
    ("predict", ("--gpus [1|2|4|8|16|all]", "[2<=x<=48]", "[0<=x<=10000]", "[1<=x<=262143]")),
    ("check", ("[2<=x<=48]", "[default: 0.0; x>=0]")),
])
def test_help_states_the_real_range(command: str, shown: tuple[str, ...]) -> None:
    help_text = " ".join(CliRunner().invoke(cli, [command, "--help"], terminal_width=200).stdout.split())
    for text in shown:
        assert text in help_text


@pytest.mark.parametrize(("args", "message"), [
    (["--mtp-draft-tokens", "3"], "--mtp-draft-tokens and --mtp-acceptance need --ar-baseline mtp"),
    (["--mtp-acceptance", "0.5"], "--mtp-draft-tokens and --mtp-acceptance need --ar-baseline mtp"),
    (["--interconnect", "pcie4x16"], "--interconnect needs --gpus 2 or more"),
    (["--gpus", "2", "--interconnect", "infiniband"], "unknown interconnect 'infiniband'"),
    (["--sampler", "confidence-threshold", "--sampler-value", "1.5"],
     "a confidence threshold (--sampler-value) must be below 1"),
    (["--engine", "llama.cpp", "--ar-baseline", "mtp"], "llama.cpp does not serve Gemma 4 with its MTP drafter"),
    (["--engine", "transformers", "--execution-mode", "cuda-graphs"], "transformers runs eager, not cuda-graphs"),
])
def test_setup_knobs_that_do_not_go_together_are_refused_before_check_measures(
        args: list[str], message: str) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", *args])
    assert result.exit_code == ExitCode.USAGE_ERROR, result.output
    assert message in result.stderr
    assert "probing" not in result.stderr and not Path("dgprofile-results").exists()
    assert time.monotonic() - started < 2


def test_check_asking_for_cuda_graphs_on_a_cpu_is_refused_after_probing_before_measuring() -> None:
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "--execution-mode", "cuda-graphs"])
    assert result.exit_code == ExitCode.USAGE_ERROR
    assert "cpu devices have no CUDA graphs: use --execution-mode eager" in result.stderr
    assert "measuring limits" not in result.stderr and not Path("dgprofile-results").exists()
