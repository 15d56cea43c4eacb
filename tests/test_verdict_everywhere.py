"""Every verdict class is handled everywhere it shows: words, exit code, fleet order, CSS tone, chart colour."""

from __future__ import annotations

from pathlib import Path

import pytest

from dgprofile.analysis.fleet import VERDICT_ORDER
from dgprofile.exit_codes import ExitCode
from dgprofile.pages.charts import TONE_COLOURS
from dgprofile.records.codec import json_schema
from dgprofile.records.predictions import Predictions, Verdict

CSS = (Path(__file__).resolve().parents[1] / "templates" / "report.css").read_text()


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_is_handled_everywhere(verdict: Verdict) -> None:
    assert verdict.label and verdict.meaning
    assert isinstance(verdict.exit_code, ExitCode)
    assert verdict in VERDICT_ORDER
    assert f".tone-{verdict.tone}" in CSS
    assert verdict.tone in TONE_COLOURS


def test_verdicts_differ_in_words_and_exit_codes() -> None:
    assert len({v.label for v in Verdict}) == len({v.exit_code for v in Verdict}) == len(Verdict)
    assert [int(v.exit_code) for v in Verdict] == [0, 10, 11, 12]


def test_the_schema_keeps_the_verdict_strings() -> None:
    schema = json_schema(Predictions, title="", schema_id="")
    assert schema["properties"]["verdict"] == {"enum": ["applies", "partial", "does-not-apply", "cannot-run"]}
