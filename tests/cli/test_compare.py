"""`dgprofile compare` through the real CLI."""

from __future__ import annotations

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
    bad.write_text('{"format": "dgprofile-result", "schema_version": 7}', encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(pair[0]), str(bad)])
    assert exit_info.value.code == ExitCode.INPUT_ERROR
    assert capsys.readouterr().err.startswith(f"Error: {bad}: schema version 7 is newer than this dgprofile")
