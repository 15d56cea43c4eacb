"""Result files: versioned format, shipped schema, migrations, atomic writes, one-line errors."""

from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import result_factory as factory

from dgprofile.errors import ResultFileError
from dgprofile.records import results
from dgprofile.records.predictions import NO_PASS_FACTORS
from dgprofile.records.results import RunInfo, dump, dumps, load, loads, new_result
from dgprofile.records.values import Unavailable

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").rglob("*.json"))  # the fleet sample's files too
VERSION_2_H100 = Path(__file__).resolve().parent / "data" / "h100-sxm_schema-2.dgprofile.json.gz"


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


@pytest.mark.parametrize("version", [2, 3])
def test_version_2_and_3_needs_gain_the_headroom_they_kept_apart_and_lose_the_old_first_draft(version):
    """Versions 2 and 3 stored the need without the headroom and the headroom as 15% of the usable memory (vLLM)."""
    document = json.loads(dumps(factory.measured_h100_result()))
    document["schema_version"] = version
    for fit in document["predictions"]["memory"]:
        fit["diffusion_needed_bytes"], fit["autoregressive_needed_bytes"] = 30 << 30, 27 << 30
        fit["activation_headroom_bytes"] = int(fit["usable_bytes"] * 0.15)
    headline = document["predictions"]["headline"]
    headline["diffusion"]["memory_bytes"], headline["diffusion"]["first_draft_s"] = 30 << 30, 0.5
    loaded = loads(json.dumps(document), source="v2.json")
    for fit in loaded.predictions.memory:
        assert fit.diffusion_needed_bytes == pytest.approx((30 << 30) / 0.85, abs=2)
        assert fit.activation_headroom_bytes == fit.diffusion_needed_bytes - (30 << 30)
        assert fit.autoregressive_needed_bytes == pytest.approx((27 << 30) / 0.85, abs=2)
    assert loaded.predictions.headline.diffusion.memory_bytes == loaded.predictions.memory[0].diffusion_needed_bytes
    assert loaded.predictions.headline.diffusion.first_draft_s == results.FIRST_DRAFT_REDEFINED


def test_version_4_files_load_with_no_measured_runs_and_version_5_runs_with_no_server_reports():
    run = factory.measured_run()
    document = json.loads(dumps(factory.measured_h100_result(measured_runs=(run,))))
    document["schema_version"] = 5
    for measured in document["measured_runs"]:
        del measured["servers"]
    assert loads(json.dumps(document), source="v5.json").measured_runs[0].servers == ()
    del document["measured_runs"]
    document["schema_version"] = 4
    assert loads(json.dumps(document), source="v4.json").measured_runs == ()


def test_version_7_multi_gpu_runs_load_with_their_graph_all_reduces_marked_not_measured():
    sample = Path(__file__).resolve().parents[2] / "samples" / "h200x2-multigpu_20261129.dgprofile.json"
    document = json.loads(sample.read_text())
    document["schema_version"] = 7
    del document["multi_gpu"]["all_reduce_in_graphs"]
    result = loads(json.dumps(document))
    assert result.multi_gpu.all_reduce_in_graphs == results.NOT_MEASURED_IN_GRAPHS  # type: ignore[union-attr]
    assert result.multi_gpu.all_reduce.launch_mode == "eager"  # type: ignore[union-attr]


def test_version_8_runs_load_with_their_fused_layer_precisions_read_from_the_methods_text():
    """The H200 pair's run fused its bf16 layers and ran fp16 in torch ops, which its methods said in words."""
    sample = Path(__file__).resolve().parents[2] / "samples" / "h200x2-multigpu_20261129.dgprofile.json"
    document = json.loads(sample.read_text())
    assert document["schema_version"] == 8
    result = loads(json.dumps(document))
    assert result.passes.fused_layers == ("bf16",)  # type: ignore[union-attr]
    assert result.predictions.ceilings.pass_factors_basis == NO_PASS_FACTORS  # type: ignore[union-attr]
    cpu = Path(__file__).resolve().parents[2] / "samples" / "cpu-xeon-2core_20261126.dgprofile.json"
    assert loads(cpu.read_text()).passes.fused_layers == ()  # type: ignore[union-attr]


def test_a_truncated_string_is_reported_at_its_place_without_a_doubled_at():
    with pytest.raises(ResultFileError) as info:
        loads('{"format": "dgprofile-', source="cut.json")
    assert str(info.value) == "cut.json: not valid JSON, truncated or malformed (Unterminated string starting at line 1, column 12)"
def test_version_2_results_load_with_the_setup_the_earlier_model_assumed(tmp_path):
    """The H100 of samples/ as it was written at version 2 (kept here compressed): its scenarios get the engine's own
    launch mode, the released sampler and plain AR, its GPU's NVLink topology and its calibration's validation say
    they were not recorded; then its needs gain their headroom and its old first draft is not recorded."""
    path = tmp_path / "h100-sxm.dgprofile.json"
    path.write_bytes(gzip.decompress(VERSION_2_H100.read_bytes()))
    document = json.loads(path.read_text())
    assert document["schema_version"] == 2
    result = load(path)
    headline = result.predictions.headline
    fit = result.predictions.memory[0]
    old_fit = document["predictions"]["memory"][0]
    assert fit.diffusion_needed_bytes - fit.activation_headroom_bytes == old_fit["diffusion_needed_bytes"]
    assert headline.diffusion.first_draft_s == results.FIRST_DRAFT_REDEFINED
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


def _repredict_samples_script() -> tuple[Any, Path]:
    """scripts/repredict_samples.py loaded as a module, and its path."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "repredict_samples.py"
    spec = importlib.util.spec_from_file_location("repredict_samples", script)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool, script


def test_repredicting_the_multi_gpu_sample_keeps_its_two_gpus_and_measured_link():
    # The script turned `check --gpus all` into an error and predicted one GPU without the measured link.
    tool, script = _repredict_samples_script()
    result = load(script.parents[1] / "samples" / "h200x2-multigpu_20261129.dgprofile.json")
    scenario = tool.repredicted(result).headline.scenario
    assert scenario.gpus == 2
    assert scenario.interconnect.source == "measured-all-reduce"  # type: ignore[union-attr]


def test_repredicting_a_sample_reprices_its_fp8_passes_floors_with_the_bf16_lm_head():
    # The verified H200 sample recorded its fp8 denoise roofline (7.06 ms) with every FLOP at the fp8 rate.
    tool, script = _repredict_samples_script()
    result = load(script.parents[1] / "samples" / "h200-verified_20261129.dgprofile.json")

    def fp8_denoise(passes):
        return next(m for m in passes.passes if m.precision == "fp8" and m.pass_kind == "dg-denoise"
                    and m.concurrency == 1 and m.measured)

    before, after = fp8_denoise(result.passes), fp8_denoise(tool.refloored(result))
    assert before.roofline_floor_seconds == pytest.approx(7.06e-3, rel=1e-3)
    assert after.roofline_floor_seconds > before.roofline_floor_seconds * 1.05
    assert after.fraction_of_roofline_floor == pytest.approx(after.roofline_floor_seconds / after.seconds)
    assert after.seconds == before.seconds

