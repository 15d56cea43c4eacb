"""`dgprofile hardware list|show` through the real CLI entry points."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dgprofile.cli import cli, main
from dgprofile.exit_codes import ExitCode
from dgprofile.specs.hardware import spec_ids


def test_list_prints_a_row_per_entry_with_its_figures() -> None:
    result = CliRunner().invoke(cli, ["hardware", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["id", "name"] and "bf16 TFLOP/s" in lines[0]
    rows = {line.split()[0]: line for line in lines[1:] if line and line.split()[0] in spec_ids()}
    assert set(rows) == set(spec_ids())
    assert "3.35 TB/s" in rows["h100-sxm"] and "989.4" in rows["h100-sxm"] and "discrete" in rows["h100-sxm"]
    assert "shared-physical" in rows["dgx-spark"]


def test_list_json_gives_each_entry_with_id_and_every_field() -> None:
    result = CliRunner().invoke(cli, ["hardware", "list", "--json"])
    assert result.exit_code == 0
    entries = json.loads(result.output)
    assert [e["id"] for e in entries] == list(spec_ids())
    h100 = next(e for e in entries if e["id"] == "h100-sxm")
    assert h100["memory_bandwidth_bytes_per_s"] == 3.35e12
    assert h100["peak_flops_per_s"]["bf16"] == 989.4e12
    assert {"memory_class", "native_precisions", "interconnect_bytes_per_s", "sources", "notes"} <= set(h100)


def test_show_prints_sources_and_notes() -> None:
    result = CliRunner().invoke(cli, ["hardware", "show", "rtx-4090"])
    assert result.exit_code == 0
    assert "NVIDIA GeForce RTX 4090" in result.output and "source:" in result.output
    assert "fp8 330 TFLOP/s" in result.output


def test_show_json_round_trips_one_entry() -> None:
    result = CliRunner().invoke(cli, ["hardware", "show", "NVIDIA H200", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["id"] == "h200"


def test_show_unknown_id_exits_with_input_error_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["hardware", "show", "h100x"])
    assert exit_info.value.code == ExitCode.INPUT_ERROR == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown hardware 'h100x'" in err and "h100-sxm" in err
