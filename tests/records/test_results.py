"""Result files: versioned format, shipped schema, migrations, atomic writes, one-line errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import result_factory as factory

from dgprofile.errors import ResultFileError
from dgprofile.records import results
from dgprofile.records.results import RunInfo, dump, dumps, load, loads, new_result
from dgprofile.records.values import Unavailable

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").glob("*.json"))


def minimal_result() -> results.ResultFile:
    run = RunInfo(command=("dgprofile", "probe"), origin="measured", label="test", started_at="2026-11-26T20:00:00Z",
                  finished_at="2026-11-26T20:00:01Z", duration_seconds=1.0, status="complete",
                  incomplete_reasons=())
    return new_result(run=run, machine=Unavailable("not probed in this test"))


def test_shipped_schema_is_generated_from_the_dataclasses():
    assert results.shipped_schema() == results.result_schema(), "run scripts/write_schema.py"


def test_round_trip(tmp_path):
    path = tmp_path / "r.json"
    dump(minimal_result(), path)
    assert load(path) == minimal_result()


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_validates_and_loads(sample):
    result = load(sample)
    assert result.schema_version == results.SCHEMA_VERSION


def test_samples_exist():
    assert len(SAMPLES) >= 3, "samples/ must hold real CPU, H100 and H200 results"


def test_newer_schema_version_is_refused_with_advice():
    document = json.loads(dumps(minimal_result()))
    document["schema_version"] = results.SCHEMA_VERSION + 1
    with pytest.raises(ResultFileError, match="newer than this dgprofile understands"):
        loads(json.dumps(document), source="future.json")


def test_older_version_is_upgraded_through_the_migration_chain(monkeypatch):
    document = json.loads(dumps(minimal_result()))
    document["schema_version"] = results.SCHEMA_VERSION - 1
    document["run"]["label"] = "old-label"

    def rename_label(old):
        old["run"]["label"] = old["run"]["label"].replace("old-", "upgraded-")
        return old

    monkeypatch.setitem(results.MIGRATIONS, results.SCHEMA_VERSION - 1, rename_label)
    assert loads(json.dumps(document)).run.label == "upgraded-label"


def test_version_1_passes_load_with_their_roofline_floors_marked_not_recorded():
    document = json.loads(dumps(factory.measured_h100_result()))
    document["schema_version"] = 1
    for measurement in document["passes"]["passes"]:
        del measurement["roofline_floor_seconds"], measurement["fraction_of_roofline_floor"]
    loaded = loads(json.dumps(document), source="v1.json")
    assert loaded.passes.passes
    for measurement in loaded.passes.passes:
        assert measurement.roofline_floor_seconds == results.ROOFLINE_NOT_RECORDED
        assert measurement.fraction_of_roofline_floor == results.ROOFLINE_NOT_RECORDED


def test_version_2_results_load_with_the_setup_the_earlier_model_assumed():
    """The H100 of samples/ was written at version 2: its scenarios get the engine's own launch mode, the released
    sampler and plain AR, its GPU's NVLink topology and its calibration's validation say they were not recorded."""
    path = next(p for p in SAMPLES if p.name.startswith("h100-sxm"))
    assert json.loads(path.read_text())["schema_version"] == 2
    result = load(path)
    headline = result.predictions.headline
    assert (headline.scenario.execution_mode, headline.scenario.ar_baseline.kind) == ("cuda-graphs", "plain")
    assert (headline.scenario.sampler.kind, headline.scenario.sampler.value) == ("entropy-bound", 0.1)
    assert isinstance(headline.scenario.interconnect, Unavailable)
    assert all(isinstance(p.hardware_seconds, Unavailable) for p in headline.diffusion.passes)
    gpu = result.machine.accelerators[0]
    assert isinstance(gpu.nvlink, Unavailable) and "before dgprofile read NVLink topology" in gpu.nvlink.reason
    assert isinstance(result.predictions.calibration.validation, Unavailable)


def test_version_2_transformers_scenarios_were_eager():
    document = json.loads(dumps(factory.measured_h100_result()))
    document["schema_version"] = 2
    scenario = document["predictions"]["headline"]["scenario"]
    scenario["engine"] = "transformers"
    for field in ("execution_mode", "interconnect", "sampler", "thinking", "quantised_logits", "ar_baseline",
                  "weight_format"):
        del scenario[field]
    assert loads(json.dumps(document)).predictions.headline.scenario.execution_mode == "eager"


def test_version_without_migration_is_refused():
    document = json.loads(dumps(minimal_result()))
    document["schema_version"] = 0
    with pytest.raises(ResultFileError, match="cannot be upgraded"):
        loads(json.dumps(document), source="ancient.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": "dgprofile-result", "schema_ver', "not valid JSON"),
        ("[1, 2]", "top level is not an object"),
        ('{"benchmarks": []}', "not a dgprofile result file"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(text, message):
    with pytest.raises(ResultFileError, match=message) as info:
        loads(text, source="bad.json")
    assert str(info.value).startswith("bad.json: ") and "\n" not in str(info.value)


def test_schema_violation_names_the_place():
    document = json.loads(dumps(minimal_result()))
    document["run"]["duration_seconds"] = "fast"
    with pytest.raises(ResultFileError, match="at run/duration_seconds"):
        loads(json.dumps(document), source="x.json")


def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text("previous")

    def explode(*args):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", explode)
    with pytest.raises(OSError):
        dump(minimal_result(), path)
    assert path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_result_files_are_readable_by_others_under_the_usual_umask(tmp_path):
    old = os.umask(0o022)
    try:
        dump(minimal_result(), tmp_path / "r.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644


def test_anonymize_salt_is_a_stable_local_secret_unless_the_fleet_shares_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv(results.SALT_ENVIRONMENT_VARIABLE, raising=False)
    first = results.anonymize_salt()
    assert len(first) == 32 and results.anonymize_salt() == first
    assert stat.S_IMODE((tmp_path / "dgprofile" / "anonymize-salt").stat().st_mode) == 0o600
    monkeypatch.setenv(results.SALT_ENVIRONMENT_VARIABLE, "fleet-secret")
    assert results.anonymize_salt() == "fleet-secret"
