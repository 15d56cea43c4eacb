"""`dgprofile check` through the real CLI on this CPU, with small benchmark sizes and named failure scenarios."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes.small_limits import use_small_limits
from html_soup import page_soup

from dgprofile.cli import cli
from dgprofile.exit_codes import ExitCode
from dgprofile.probes.device_lock import exclusive_device
from dgprofile.records import results


@pytest.fixture(autouse=True)
def small_sizes_and_no_decode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tiny limits; the decode step fails fast (its own tests cover it), so check predicts from the limits."""
    import dgprofile.probes.decode as decode

    def decode_not_run_here(**kwargs):
        raise RuntimeError("decode benchmark replaced in this test")

    use_small_limits(monkeypatch, tmp_path)
    monkeypatch.setattr(decode, "run_decode_bench", decode_not_run_here)


def test_check_writes_result_and_page_and_exits_with_the_verdict_code(tmp_path):
    path = tmp_path / "out" / "cpu.dgprofile.json"
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "-o", str(path)])
    loaded = results.load(path)
    assert result.exit_code == loaded.predictions.verdict.exit_code, result.output
    assert loaded.run.origin == "measured" and loaded.limits.device == "cpu"
    assert loaded.run.incomplete_reasons == (
        "timing decode passes failed: RuntimeError: decode benchmark replaced in this test",)
    assert f"verdict: {loaded.predictions.verdict}" in result.stdout
    page = page_soup((tmp_path / "out" / "cpu.dgprofile.html").read_text())
    assert loaded.predictions.verdict.label in page.get_text()
    assert "... measuring limits on cpu" in result.stderr


def test_check_json_prints_the_headline_summary(tmp_path):
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "--json", "--no-html",
                                      "-o", str(tmp_path / "r.json")])
    summary = json.loads(result.stdout)
    assert {"hardware", "engine", "precision", "speedup", "speedup_low", "verdict", "reasons"} <= set(summary)
    assert summary["engine"] == "llama.cpp"  # what CPU users run
    assert not (tmp_path / "r.html").exists()


def test_fail_under_exits_5_when_the_lower_band_is_below_it(tmp_path):
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "--no-html", "--fail-under", "1000",
                                      "-o", str(tmp_path / "r.json")])
    assert result.exit_code == ExitCode.BELOW_FAIL_UNDER
    assert "below --fail-under 1000" in result.stderr


def _hold(key: str, ready, release) -> None:
    with exclusive_device(key, wait_seconds=0):
        ready.set()
        release.wait(20)


def test_second_check_on_the_same_device_refuses_clearly(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=("cpu", ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        result = CliRunner().invoke(cli, ["check", "--device", "cpu", "-o", str(tmp_path / "r.json")])
    finally:
        release.set()
        holder.join(10)
    assert "another dgprofile benchmark" in str(result.exception)
    assert not (tmp_path / "r.json").exists()


def test_check_without_torch_says_why_there_is_no_verdict(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    path = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["check", "-o", str(path)])
    assert result.exit_code == ExitCode.ENVIRONMENT_ERROR
    assert "torch is not installed" in result.stderr
    loaded = results.load(path)
    assert loaded.run.status == "incomplete"
    assert "pip install 'dgprofile[bench]'" in loaded.limits.reason
