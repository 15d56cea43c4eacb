"""`dgprofile compare` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import result_factory as factory
from click.testing import CliRunner

from dgprofile.cli import cli, main
from dgprofile.exit_codes import ExitCode
from dgprofile.records.results import dumps


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "h100.json", tmp_path / "m3.json"
    a.write_text(dumps(factory.measured_h100_result()), encoding="utf-8")
    b.write_text(dumps(factory.predicted_apple_result()), encoding="utf-8")
    return a, b


def test_prints_the_text_comparison(pair: tuple[Path, Path]) -> None:
    result = CliRunner().invoke(cli, ["compare", *map(str, pair)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("A: gpu-node-01 - NVIDIA H100 80GB HBM3")
    assert "Why they differ:" in result.stdout and "Predicted speedups:" in result.stdout
    assert result.stderr == ""


def test_writes_the_page_with_o(pair: tuple[Path, Path], tmp_path: Path) -> None:
    page = tmp_path / "compare.html"
    result = CliRunner().invoke(cli, ["compare", *map(str, pair), "-o", str(page), "--all-scenarios"])
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"wrote {page}\n") and "concurrency 8" in result.stdout
    assert "Why they differ" in page.read_text(encoding="utf-8")


def test_a_bad_file_is_an_input_error_naming_it(pair: tuple[Path, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "dgprofile-result", "schema_version": 99}', encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(pair[0]), str(bad)])
    assert exit_info.value.code == ExitCode.INPUT_ERROR
    assert capsys.readouterr().err.startswith(f"Error: {bad}: schema version 99 is newer than this dgprofile")


def _compare_error(a: Path, b: Path, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(a), str(b)])
    assert exit_info.value.code == ExitCode.INPUT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err.strip()


def test_a_nan_speedup_is_refused_naming_the_field_not_dumping_the_dict(
        pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(pair[0].read_text(encoding="utf-8"))
    document["predictions"]["headline"]["speedup"] = float("nan")
    bad = tmp_path / "nan.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    assert _compare_error(pair[0], bad, capsys) == f"Error: {bad}: $.predictions.headline.speedup: nan is not a finite number"


def test_a_negative_rate_is_refused_naming_the_field_not_dumping_the_dict(
        pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(pair[0].read_text(encoding="utf-8"))
    document["limits"]["stream_read_bytes_per_s"] = -3.0e12
    bad = tmp_path / "negative.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    assert _compare_error(pair[0], bad, capsys) == (
        f"Error: {bad}: does not match the result schema at limits/stream_read_bytes_per_s: -3000000000000.0 is "
        "less than the minimum of 0")


def test_deeply_nested_input_is_refused_without_recursion_error(
        pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 400_000, encoding="utf-8")
    assert _compare_error(pair[0], deep, capsys) == f"Error: {deep}: not a result file (nested far deeper than one is)"


def test_compare_and_report_word_a_link_loop_the_same_way(
        pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    compared = _compare_error(pair[0], loop, capsys)
    result = CliRunner().invoke(cli, ["report", str(pair[0]), str(loop), "-o", str(tmp_path / "fleet.html")])
    assert result.exit_code == 0, result.output
    reported = next(line for line in result.stderr.splitlines() if line.startswith("skipped "))
    assert compared == f"Error: {loop}: cannot read: symbolic link loop"
    assert reported == f"skipped {loop}: cannot read: symbolic link loop"
