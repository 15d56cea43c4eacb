"""The fleet: loading many result files, skip reasons, duplicates, groups, CSV and JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import result_factory as factory
from fakes.users import as_nobody, directory_every_user_reaches, needs_root, open_tree_to_everyone

from dgprofile.analysis.fleet import (
    CSV_COLUMNS,
    NO_PREDICTION,
    NO_RESULT,
    NOT_A_FLEET_RUN,
    FailedMachine,
    Fleet,
    FleetRunInfo,
    SkippedFile,
    _row,
    _shown_sections,
    fleet_csv,
    fleet_json,
    load_fleet,
    result_paths,
    summarise,
)
from dgprofile.app.predictor import predict_for_spec, predicted_result
from dgprofile.errors import ResultFileError
from dgprofile.records.results import SCHEMA_VERSION, dumps, load
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import spec_by_id


@pytest.fixture()
def mixed_dir(tmp_path: Path) -> Path:
    return factory.write_mixed_fleet(tmp_path)


def test_bad_files_are_skipped_with_three_clear_reasons_and_the_rest_load(mixed_dir: Path) -> None:
    fleet = load_fleet([mixed_dir])
    assert sorted(Path(r.path).name for r in fleet.rows) == ["cpu.json", "h100.json", "m3.json"]
    reasons = {Path(s.path).name: s.reason for s in fleet.skipped}
    assert set(reasons) == {"truncated.json", "other-schema.json", "newer.json"}
    assert reasons["truncated.json"].startswith("not valid JSON, truncated or malformed")
    assert reasons["other-schema.json"] == 'not a dgprofile result file (no "format": "dgprofile-result")'
    assert reasons["newer.json"].startswith(
        f"schema version {SCHEMA_VERSION + 1} is newer than this dgprofile understands ({SCHEMA_VERSION})")


def test_a_file_whose_shown_fields_break_the_schema_is_skipped_with_the_path(tmp_path: Path) -> None:
    document = json.loads(dumps(factory.measured_h100_result()))
    document["predictions"]["headline"]["speedup"] = "fast"
    (tmp_path / "bad.json").write_text(json.dumps(document), encoding="utf-8")
    (skipped,) = load_fleet([tmp_path]).skipped
    assert skipped.reason.startswith("does not match the result schema: $.predictions.headline.speedup")


def test_a_copy_is_a_duplicate_but_another_run_in_the_same_second_is_not(tmp_path: Path) -> None:
    base = factory.measured_h100_result()
    factory.write_result(tmp_path / "a.json", base)
    factory.write_result(tmp_path / "b-copy.json", base)
    other_run = factory.result(predictions_=factory.predictions(speedup=4.0))
    factory.write_result(tmp_path / "c-same-host-and-time.json", other_run)
    fleet = load_fleet([tmp_path])
    assert [Path(r.path).name for r in fleet.rows] == ["a.json", "c-same-host-and-time.json"]
    (copy,) = fleet.skipped
    assert (copy.path, copy.reason) == (str(tmp_path / "b-copy.json"), f"duplicate: same content as {tmp_path / 'a.json'}")


def test_four_predict_files_for_different_workloads_made_within_a_second_are_all_kept(tmp_path: Path) -> None:
    for workload in ("short-completion", "structured-rewrite", "code-infill", "long-form-drafting"):
        predicted = factory.predicted_apple_result()
        scenario = dataclasses.replace(predicted.predictions.headline.scenario, workload=workload)
        headline = dataclasses.replace(predicted.predictions.headline, scenario=scenario)
        factory.write_result(tmp_path / f"{workload}.json", dataclasses.replace(
            predicted, predictions=dataclasses.replace(predicted.predictions, headline=headline)))
    fleet = load_fleet([tmp_path])
    assert sorted(r.workload for r in fleet.rows) == ["code-infill", "long-form-drafting", "short-completion",
                                                      "structured-rewrite"]
    assert fleet.skipped == () and len({r.created_at for r in fleet.rows}) == 1


def test_the_same_file_named_twice_or_through_its_directory_counts_once(tmp_path: Path) -> None:
    factory.write_result(tmp_path / "h100.json", factory.measured_h100_result())
    (tmp_path / "link.json").symlink_to(tmp_path / "h100.json")
    fleet = load_fleet([tmp_path / "h100.json", tmp_path / "h100.json", tmp_path])
    assert [r.path for r in fleet.rows] == [str(tmp_path / "h100.json")]
    assert fleet.skipped == ()


def test_rows_summarise_the_headline_and_keep_unavailable_reasons(mixed_dir: Path) -> None:
    rows = {Path(r.path).name: r for r in load_fleet([mixed_dir]).rows}
    h100 = rows["h100.json"]
    assert (h100.verdict, h100.speedup, h100.precision, h100.engine) == ("applies", 5.1, "fp8", "vllm")
    assert h100.stream_read_bytes_per_s == 3.07e12 and h100.fitting_precisions == ("bf16", "fp8", "int4")
    assert rows["m3.json"].memory_class == "shared-physical"
    # Nothing was measured on the Mac: its figures are the datasheet's, and say so.
    assert (rows["m3.json"].stream_read_bytes_per_s, rows["m3.json"].stream_read_basis) == (400e9, "datasheet")
    assert (h100.stream_read_basis, h100.usable_memory_basis) == ("measured", "probed")
    assert (rows["m3.json"].hostname, rows["m3.json"].hardware) == ("predicted: m3-max-40", "Apple M3 Max (40-core GPU)")
    cpu = rows["cpu.json"]
    assert cpu.verdict == NO_PREDICTION and cpu.hardware.startswith("CPU only: Intel")
    assert cpu.speedup == Unavailable("probe only: nothing was predicted")


def test_groups_by_hardware_model_largest_first(tmp_path: Path) -> None:
    for i in range(3):
        factory.write_result(tmp_path / f"h{i}.json", factory.with_identity(factory.measured_h100_result(), hostname=f"h{i}",
                                                             created_at=f"2026-11-2{i}T00:00:00Z"))
    factory.write_result(tmp_path / "m3.json", factory.predicted_apple_result())
    groups = load_fleet([tmp_path]).groups
    assert [(g.hardware, len(g.rows)) for g in groups] == [("NVIDIA H100 SXM5 80GB", 3),
                                                           ("Apple M3 Max (40-core GPU)", 1)]
    assert groups[0].verdict_counts == {"applies": 3}


def test_measured_and_predicted_files_for_the_same_card_share_one_group(tmp_path: Path) -> None:
    """NVML names the card 'NVIDIA H100 80GB HBM3', the datasheet table 'NVIDIA H100 SXM5 80GB': one entry."""
    spec = spec_by_id("h100-sxm")
    now = datetime(2026, 11, 27, tzinfo=timezone.utc)
    predicted = predicted_result(spec, predict_for_spec(spec), command=("dgprofile", "predict"), started_at=now,
                                 finished_at=now)
    factory.write_result(tmp_path / "predicted.json", predicted)
    factory.write_result(tmp_path / "measured.json", factory.measured_h100_result())
    fleet = load_fleet([tmp_path])
    assert {row.hardware for row in fleet.rows} == {"NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB"}
    assert [(g.hardware, len(g.rows)) for g in fleet.groups] == [("NVIDIA H100 SXM5 80GB", 2)]


def test_csv_has_one_line_per_file_and_empty_cells_for_unavailable(mixed_dir: Path) -> None:
    fleet = load_fleet([mixed_dir])
    rows = list(csv.DictReader(io.StringIO(fleet_csv(fleet))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 3
    cpu = next(r for r in rows if r["path"].endswith("cpu.json"))
    assert cpu["speedup"] == "" and cpu["verdict"] == NO_PREDICTION
    h100 = next(r for r in rows if r["path"].endswith("h100.json"))
    assert float(h100["speedup"]) == 5.1 and h100["fitting_precisions"] == "bf16; fp8; int4"


def test_json_has_counts_groups_rows_and_skipped(mixed_dir: Path) -> None:
    data = fleet_json(load_fleet([mixed_dir]))
    assert data["files"] == 6 and data["readable"] == 3
    assert data["verdict_counts"] == {"applies": 1, "does-not-apply": 1, NO_PREDICTION: 1}
    assert len(data["skipped"]) == 3
    cpu = next(r for r in data["rows"] if r["path"].endswith("cpu.json"))
    assert cpu["speedup"] == {"unavailable": "probe only: nothing was predicted"}


def test_missing_input_is_skipped_with_the_reason(tmp_path: Path) -> None:
    assert result_paths([tmp_path / "nope"]) == ([], [SkippedFile(str(tmp_path / "nope"), "cannot read: no such file")])


def test_parallel_loading_gives_the_serial_result(tmp_path: Path) -> None:
    factory.generate_fleet(tmp_path, 12)
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert load_fleet([tmp_path], workers=2) == load_fleet([tmp_path], workers=1)



def test_a_measured_run_adds_its_speedup_to_the_fleet_row_and_csv(tmp_path):
    run = factory.measured_run(dg_factor=2.0, ar_factor=1.0)
    factory.write_result(tmp_path / "measured.json", factory.measured_h100_result(measured_runs=(run,)))
    factory.write_result(tmp_path / "plain.json", factory.with_identity(
        factory.measured_h100_result(), hostname="other", created_at="2026-11-21T10:00:00Z"))
    fleet = load_fleet([tmp_path])
    rows = {row.hostname: row for row in fleet.rows}
    assert rows["gpu-node-01"].measured_speedup == run.workloads[0].speedup.median
    assert rows["gpu-node-01"].measured_scenario == "long-form-drafting, vllm (openai-server)"
    assert isinstance(rows["other"].measured_speedup, Unavailable)
    assert "measured_speedup" in fleet_csv(fleet).splitlines()[0]
def test_link_loops_and_dangling_links_are_listed_as_skipped_not_dropped(tmp_path: Path) -> None:
    factory.write_result(tmp_path / "h100.json", factory.measured_h100_result())
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "gone.json")
    (tmp_path / "up").symlink_to(tmp_path)  # a link back up the tree is not followed, so it cannot loop
    fleet = load_fleet([tmp_path])
    assert [Path(r.path).name for r in fleet.rows] == ["h100.json"]
    assert {Path(s.path).name: s.reason for s in fleet.skipped} == {
        "loop.json": "cannot read: symbolic link loop",
        "dangling.json": f"cannot read: dangling symbolic link (to {tmp_path / 'gone.json'}, which does not exist)"}


@needs_root
def test_unreadable_subdirectory_and_unreadable_file_named_directly_are_skipped_for_another_user() -> None:
    with directory_every_user_reaches() as root:
        factory.write_result(root / "h100.json", factory.measured_h100_result())
        (root / "private").mkdir(mode=0o700)
        factory.write_result(root / "private" / "m3.json", factory.predicted_apple_result())
        secret = factory.write_result(root / "secret.json", factory.apple_laptop_result())
        secret.chmod(0o600)
        open_tree_to_everyone(root / "h100.json")

        def as_listed() -> tuple[list[str], dict[str, str]]:
            fleet = load_fleet([root, secret])
            return [r.path for r in fleet.rows], {s.path: s.reason for s in fleet.skipped}

        rows, skipped = as_nobody(as_listed)
    assert rows == [str(root / "h100.json")]
    assert skipped == {str(root / "private"): "cannot list this directory: permission denied",
                       str(secret): "cannot read: permission denied"}


@pytest.mark.parametrize(("field", "value", "message"), [
    (("predictions", "headline", "speedup"), float("nan"), "$.predictions.headline.speedup: nan is not a finite number"),
    (("predictions", "headline", "speedup_low"), float("inf"), "$.predictions.headline.speedup_low: inf is not a finite"),
    (("limits", "stream_read_bytes_per_s"), -3.0e12, "$.limits.stream_read_bytes_per_s: -3000000000000.0 is negative"),
    (("limits", "stream_read_bytes_per_s"), 1e300, "$.limits.stream_read_bytes_per_s: 1e+300 is beyond 1e+16"),
])
def test_one_file_with_an_impossible_number_is_skipped_naming_the_field_and_the_page_still_renders(
        tmp_path: Path, field: tuple[str, ...], value: float, message: str) -> None:
    from dgprofile.pages.fleet_page import render_fleet_html

    factory.write_result(tmp_path / "h100.json", factory.measured_h100_result())
    document = json.loads(dumps(factory.with_identity(factory.measured_h100_result(), hostname="gpu-node-02",
                                                      created_at="2026-11-21T09:00:00Z")))
    parent = document
    for name in field[:-1]:
        parent = parent[name]
    parent[field[-1]] = value
    (tmp_path / "bad.json").write_text(json.dumps(document), encoding="utf-8")
    fleet = load_fleet([tmp_path])
    (skipped,) = fleet.skipped
    assert skipped.reason.startswith(f"does not match the result schema: {message}")
    assert "gpu-node-01" in render_fleet_html(fleet)


def test_a_file_of_deeply_nested_brackets_is_skipped_without_recursion_error(tmp_path: Path) -> None:
    factory.write_result(tmp_path / "h100.json", factory.measured_h100_result())
    (tmp_path / "deep.json").write_text("[" * 400_000, encoding="utf-8")
    (tmp_path / "deep-object.json").write_text('{"a": ' * 500 + "1" + "}" * 500, encoding="utf-8")
    fleet = load_fleet([tmp_path])
    assert len(fleet.rows) == 1
    reasons = {Path(s.path).name: s.reason for s in fleet.skipped}
    assert reasons["deep.json"] == "not a result file (nested far deeper than one is)"
    assert reasons["deep-object.json"] == 'not a dgprofile result file (no "format": "dgprofile-result")'


def test_per_gpu_results_of_one_host_made_in_the_same_second_are_not_duplicates(tmp_path: Path) -> None:
    base = factory.measured_h100_result()
    for index in range(2):
        gpu = dataclasses.replace(base, limits=dataclasses.replace(base.limits, device=f"cuda:{index}"))
        factory.write_result(tmp_path / f"gpu{index}.json", gpu)
    fleet = load_fleet([tmp_path])
    assert [row.device for row in fleet.rows] == ["cuda:0", "cuda:1"] and not fleet.skipped


SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").rglob("*.json"))  # the fleet sample's files too


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_reading_only_the_shown_sections_gives_the_row_of_the_whole_file(path: Path) -> None:
    data = dumps(load(path)).encode()  # as this version writes it (a sample may be of an older format)
    assert _shown_sections(data) is not None  # dgprofile wrote it: the fast path applies
    whole = json.loads(data)
    assert summarise(data, source="x") == _row(whole, source="x")
    # Re-indented, minified or reordered, the same file is parsed whole, with the same row.
    reindented, minified = json.dumps(whole, indent=4).encode(), json.dumps(whole).encode()
    assert _shown_sections(reindented) is None and _shown_sections(minified) is None
    for text in (reindented, minified, json.dumps(dict(reversed(whole.items())), indent=2).encode()):
        assert summarise(text, source="x") == _row(whole, source="x")


def test_a_damaged_shown_section_gives_the_message_of_the_whole_file(tmp_path: Path) -> None:
    text = dumps(factory.measured_h100_result())
    broken = text.replace('"verdict": "applies"', '"verdict": "fast"')
    assert _shown_sections(broken.encode()) is not None
    with pytest.raises(ResultFileError, match=r"does not match the result schema: \$\.predictions\.verdict: 'fast'"):
        summarise(broken.encode(), source="broken.json")
    with pytest.raises(ResultFileError, match="not valid JSON, truncated or malformed"):
        summarise(text[:len(text) // 2].encode(), source="half.json")


def test_failed_machines_and_the_run_go_into_csv_and_json() -> None:
    run = FleetRunInfo(label="test cluster", cluster="127.0.0.1:6379", command="dgprofile check", machines=2,
                       started_at="2026-11-29T10:00:00Z", wall_seconds=42.0)
    fleet = Fleet(rows=(), skipped=(), failed=(FailedMachine("gpu-7 (10.0.0.7, Ray node 1234abcd)", "node lost"),),
                  run=run)
    (line,) = list(csv.DictReader(io.StringIO(fleet_csv(fleet))))
    assert (line["hostname"], line["status"], line["reasons"], line["verdict"]) == (
        "gpu-7 (10.0.0.7, Ray node 1234abcd)", NO_RESULT, "node lost", "")
    data = fleet_json(fleet)
    assert data["failed"] == [{"machine": "gpu-7 (10.0.0.7, Ray node 1234abcd)", "reason": "node lost"}]
    assert data["run"]["cluster"] == "127.0.0.1:6379"
    assert fleet_json(Fleet(rows=(), skipped=()))["run"] == {"unavailable": NOT_A_FLEET_RUN.reason}


def test_only_the_last_measured_runs_shown_fields_are_cut_out_and_give_the_row_of_the_whole_file() -> None:
    older = factory.measured_run(dg_factor=2.0, ar_factor=1.0, engine="transformers", backend="transformers")
    latest = factory.measured_run(dg_factor=1.0, ar_factor=1.0, started_at="2026-11-21T11:00:00Z")
    text = dumps(factory.measured_h100_result(measured_runs=(older, latest))).encode()
    shown = _shown_sections(text)
    assert shown is not None
    (run,) = shown["measured_runs"]
    assert set(run) == {"backend", "engine", "workloads"} and run["engine"] == "vllm"
    assert all(set(workload) == {"concurrency", "speedup", "workload"} for workload in run["workloads"])
    row = summarise(text, source="x")
    assert row == _row(json.loads(text), source="x")
    assert (row.measured_speedup, row.measured_scenario) == (latest.workloads[0].speedup.median,
                                                             "long-form-drafting, vllm (openai-server)")


def test_an_earlier_measured_run_that_is_not_an_object_does_not_hide_the_row_whoever_wrote_the_file(
        tmp_path: Path) -> None:
    """The fleet shows the latest run only, and checks only what it shows: the same file, as dgprofile writes it
    or minified, gives the same row (a whole-file check is the result page's and `compare`'s)."""
    document = json.loads(dumps(factory.measured_h100_result(measured_runs=(factory.measured_run(),))))
    document["measured_runs"].insert(0, "a damaged earlier run")
    written = json.dumps(document, indent=2, sort_keys=True).encode()
    assert _shown_sections(written) is not None
    for text in (written, json.dumps(document).encode()):
        assert summarise(text, source="x").measured_scenario == "long-form-drafting, vllm (openai-server)"


@pytest.mark.parametrize(("damage", "message"), [
    (lambda run: run.__setitem__("engine", 7), "$.measured_runs[1].engine: expected str, got 7"),
    (lambda run: run.pop("backend"), "$.measured_runs[1]: missing field 'backend'"),
    (lambda run: run["workloads"][0]["speedup"].__setitem__("median", -1.0),
     "$.measured_runs[1].workloads[0].speedup.median: -1.0 is negative, not a possible value here"),
])
def test_a_damaged_latest_measured_run_is_skipped_naming_its_place_in_the_file(
        tmp_path: Path, damage: Any, message: str) -> None:
    runs = (factory.measured_run(), factory.measured_run(started_at="2026-11-21T11:00:00Z"))
    document = json.loads(dumps(factory.measured_h100_result(measured_runs=runs)))
    damage(document["measured_runs"][1])
    (tmp_path / "bad.json").write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
    (skipped,) = load_fleet([tmp_path]).skipped
    assert skipped.reason == f"does not match the result schema: {message}"


def test_a_file_without_predictions_says_why_in_its_row_and_its_csv_line(mixed_dir: Path) -> None:
    fleet = load_fleet([mixed_dir])
    cpu = next(r for r in fleet.rows if r.path.endswith("cpu.json"))
    assert cpu.reasons == ("probe only: nothing was predicted",)
    line = next(r for r in csv.DictReader(io.StringIO(fleet_csv(fleet))) if r["path"].endswith("cpu.json"))
    assert line["reasons"] == "probe only: nothing was predicted"
