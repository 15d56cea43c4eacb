"""`dgprofile report` through the real CLI: fleet page, CSV, JSON, skip reasons, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import result_factory as factory
from click.testing import CliRunner

from dgprofile.cli import cli, main
from dgprofile.exit_codes import ExitCode
from dgprofile.records.results import dumps


@pytest.fixture()
def fleet_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "results"
    directory.mkdir()
    (directory / "h100.json").write_text(dumps(factory.measured_h100_result()), encoding="utf-8")
    (directory / "m3.json").write_text(dumps(factory.predicted_apple_result()), encoding="utf-8")
    (directory / "broken.json").write_text("{", encoding="utf-8")
    return directory


def test_writes_the_page_and_csv_and_lists_skipped_files_on_stderr(fleet_dir: Path, tmp_path: Path) -> None:
    page, table = tmp_path / "fleet.html", tmp_path / "fleet.csv"
    result = CliRunner().invoke(cli, ["report", str(fleet_dir), "-o", str(page), "--csv", str(table)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2 result files, 2 hardware models: 1 applies, 1 does-not-apply", f"wrote {page} and {table}"]
    assert result.stderr.startswith(f"skipped {fleet_dir / 'broken.json'}: not valid JSON, truncated or malformed")
    assert "<table" in page.read_text(encoding="utf-8")
    assert len(list(csv.DictReader(table.read_text(encoding="utf-8").splitlines()))) == 2


def test_one_result_file_is_counted_in_the_singular(fleet_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(fleet_dir / "h100.json"), "-o", str(tmp_path / "f.html")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "1 result file, 1 hardware model: 1 applies"


def test_a_truncated_string_is_reported_without_a_doubled_at(fleet_dir: Path, tmp_path: Path) -> None:
    (fleet_dir / "cut.json").write_text('{"format": "dgprofile-', encoding="utf-8")
    result = CliRunner().invoke(cli, ["report", str(fleet_dir), "-o", str(tmp_path / "f.html")])
    assert "cut.json: not valid JSON, truncated or malformed (Unterminated string starting at line 1, column 12)" \
        in result.stderr
    assert "at at" not in result.stderr


def test_json_summary_on_stdout(fleet_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(fleet_dir / "h100.json"), str(fleet_dir / "broken.json"),
                                      "-o", str(tmp_path / "f.html"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["readable"] == 1 and data["verdict_counts"] == {"applies": 1}
    assert data["skipped"][0]["reason"].startswith("not valid JSON")


def test_no_readable_file_is_an_input_error_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.json").write_text("[]", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path), "-o", str(tmp_path / "f.html")])
    assert exit_info.value.code == ExitCode.INPUT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no readable result file among 1" in err and "top level is not an object" in err
    assert not (tmp_path / "f.html").exists()


def test_a_missing_path_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path / "absent")])
    assert exit_info.value.code == ExitCode.INPUT_ERROR
    assert capsys.readouterr().err == f"Error: {tmp_path / 'absent'}: no such file or directory\n"
