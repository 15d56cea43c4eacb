"""`predict` and `check` as terminal text: the matrix with its bands, counts people can read, the first useful draft
defined where it is shown, and no sentence three parentheses deep."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dgprofile.analysis.compare import compare
from dgprofile.app.predictor import PredictOptions, predict_for_spec
from dgprofile.records.results import load
from dgprofile.specs.hardware import spec_by_id
from dgprofile.terminal.format_comparison import format_comparison
from dgprofile.terminal.format_predictions import format_predictions

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def matrix_rows(text: str) -> dict[tuple[str, str, str], list[str]]:
    lines = text.split("matrix (speedup, band and verdict per scenario):\n")[1].split("\n\n")[0].splitlines()
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[1:] if not line.strip().startswith("verdict:")]
    return {(row[0], row[1], row[2]): row[3:] for row in rows}


def test_a_partial_4_6x_beside_an_applies_3_9x_shows_the_bands_that_explain_them() -> None:
    rows = matrix_rows(format_predictions(predict_for_spec(spec_by_id("h100-nvl"))))
    assert rows[("long-form-drafting", "int8", "2")] == ["4.6x", "2.9x to 7.2x", "partial"]
    assert rows[("code-infill", "bf16", "1")] == ["3.9x", "3.0x to 5.1x", "applies"]


def test_the_verdict_rule_is_printed_under_the_matrix() -> None:
    text = format_predictions(predict_for_spec(spec_by_id("h100-sxm")))
    assert "verdict: applies when the band's low end is at least 3.0x" in text


def test_pass_counts_read_as_people_count_them() -> None:
    text = format_predictions(load(SAMPLES / "cpu-xeon-2core_20261126.dgprofile.json").predictions)
    counts = re.findall(r" x (\S+)  bound by", text)
    assert counts and all(re.fullmatch(r"\d[\d,]*(\.\d)?", c) for c in counts), counts
    assert "x 63.0  bound by" in text


def test_the_first_useful_draft_is_defined_where_it_is_shown() -> None:
    text = format_predictions(predict_for_spec(spec_by_id("h100-sxm")))
    assert "first useful draft      " in text
    assert "normalised edit distance 0.1 of the final output" in " ".join(text.split())


def paren_depth(line: str) -> int:
    depth = deepest = 0
    for char in line:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    return deepest


@pytest.mark.parametrize("hardware, options", [
    ("m3-max-40gpu", {"memory_bytes": 64 << 30}), ("m4-10gpu", {"memory_bytes": 16 << 30}), ("h100-sxm", {}),
    ("rtx-4090", {"concurrency": 8}), ("strix-halo-395", {})])
def test_no_line_nests_parentheses_three_deep(hardware: str, options: dict[str, int]) -> None:
    text = format_predictions(predict_for_spec(spec_by_id(hardware), options=PredictOptions(**options)))
    assert max(paren_depth(line) for line in text.splitlines()) < 3


def test_no_comparison_line_nests_parentheses_three_deep() -> None:
    text = format_comparison(compare(load(SAMPLES / "h100-sxm_20261126.dgprofile.json"),
                                     load(SAMPLES / "predicted-m3-max-40gpu-64gb_20261126.dgprofile.json")),
                             all_scenarios=True)
    assert max(paren_depth(line) for line in text.splitlines()) < 3
