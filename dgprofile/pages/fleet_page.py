"""Many result files at once: load them, skip the bad ones with a reason, group machines, export CSV and JSON.

A fleet is summarised one row per file. Each file is parsed and upgraded through the migration chain, and every
field the fleet shows (the run, the machine, the streaming bandwidth and ridge, the headline prediction, the
verdict and the memory fit) is decoded strictly through the codec, which checks what the JSON Schema checks for
those fields. The rest of the file (the scenario matrix, the pass tables, the timings) is not checked here: the
fleet never shows it, and validating a whole 150 KB file costs about 0.1 s, twenty times the 5 ms per file that
a 1,000-file fleet in 5 s allows. `dgprofile compare` and the result page load and validate whole files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from dgprofile.errors import ResultFileError, UsageError
from dgprofile.pages import charts
from dgprofile.pages.result_page import (
    VERDICT_LABELS,
    Badge,
    Block,
    Cell,
    ChartView,
    FactsView,
    NoticeView,
    PageView,
    RowView,
    SectionView,
    TableView,
    Tile,
    TilesView,
    band_text,
    hardware_name,
    host_name,
    memory_class_text,
    number_key,
    render_page,
    speedup_text,
    tokens_per_s_text,
    usable_memory,
    verdict_tone,
)
from dgprofile.records.codec import DecodeError, from_json, to_json
from dgprofile.records.machine import Machine
from dgprofile.records.predictions import VerdictClass
from dgprofile.records.results import RunInfo, upgrade
from dgprofile.records.values import Unavailable
from dgprofile.text.units import bandwidth_text, bytes_text

NO_PREDICTION = "no prediction"
# Below this many files the start-up of worker processes costs more than it saves.
PARALLEL_MIN_FILES = 200
CHUNK_FILES = 50


@dataclass(frozen=True)
class FleetRow:
    """One result file of a fleet, summarised (the columns of the fleet table, CSV and JSON)."""

    path: str
    hostname: str
    hardware: str
    memory_class: str
    origin: str
    status: str
    created_at: str
    tool_version: str
    verdict: str
    speedup: float | Unavailable
    speedup_low: float | Unavailable
    speedup_high: float | Unavailable
    workload: str
    precision: str
    engine: str
    diffusion_tokens_per_s: float | Unavailable
    autoregressive_tokens_per_s: float | Unavailable
    stream_read_bytes_per_s: float | Unavailable
    ridge_flop_per_byte: float | Unavailable
    usable_memory_bytes: int | Unavailable
    fitting_precisions: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the fleet, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class HardwareGroup:
    """The machines of one hardware model."""

    hardware: str
    rows: tuple[FleetRow, ...]

    @property
    def verdict_counts(self) -> dict[str, int]:
        """How many machines of the group got each verdict."""
        return dict(Counter(row.verdict for row in self.rows))


@dataclass(frozen=True)
class Fleet:
    """The readable files of a fleet, the skipped ones, and the machines grouped by hardware model."""

    rows: tuple[FleetRow, ...]
    skipped: tuple[SkippedFile, ...]

    @property
    def groups(self) -> tuple[HardwareGroup, ...]:
        """Machines grouped by hardware model, largest group first."""
        by_hardware: dict[str, list[FleetRow]] = {}
        for row in self.rows:
            by_hardware.setdefault(row.hardware, []).append(row)
        return tuple(HardwareGroup(name, tuple(rows))
                     for name, rows in sorted(by_hardware.items(), key=lambda item: (-len(item[1]), item[0])))

    @property
    def verdict_counts(self) -> dict[str, int]:
        """How many files got each verdict (``NO_PREDICTION`` for files without predictions)."""
        return dict(Counter(row.verdict for row in self.rows))


def result_paths(inputs: Sequence[Path]) -> list[Path]:
    """The files named, and every ``*.json`` file under the directories named, sorted within each directory."""
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*.json") if p.is_file())
        elif item.exists():
            paths.append(item)
        else:
            raise UsageError(f"{item}: no such file or directory")
    return paths


def load_fleet(inputs: Sequence[Path], *, workers: int | None = None) -> Fleet:
    """Load every result file under ``inputs``; bad and duplicate files become ``SkippedFile`` with a reason.

    ``workers``: processes to parse with (default: the CPU count when there are many files, else 1).
    """
    paths = result_paths(inputs)
    if workers is None:
        workers = (os.cpu_count() or 1) if len(paths) >= PARALLEL_MIN_FILES else 1
    if workers > 1:
        chunks = [paths[i:i + CHUNK_FILES] for i in range(0, len(paths), CHUNK_FILES)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = [o for chunk in pool.map(_summarise_all, chunks) for o in chunk]
    else:
        outcomes = _summarise_all(paths)
    return _without_duplicates(outcomes)


def _summarise_all(paths: Iterable[Path]) -> list[FleetRow | SkippedFile]:
    return [_summarise_file(path) for path in paths]


def _summarise_file(path: Path) -> FleetRow | SkippedFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return SkippedFile(str(path), f"cannot read ({exc.strerror or exc})")
    try:
        return summarise(data, source=str(path))
    except ResultFileError as exc:
        return SkippedFile(str(path), _without_source(str(exc), str(path)))


def _without_source(message: str, source: str) -> str:
    prefix = f"{source}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def summarise(data: bytes, *, source: str) -> FleetRow:
    """The fleet row of one result file's bytes; ResultFileError (naming ``source``) when it cannot be used."""
    try:
        document = json.loads(data)
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"{source}: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{source}: not valid JSON, truncated or malformed ({exc.msg} at line "
                              f"{exc.lineno})") from exc
    if not isinstance(document, dict):
        raise ResultFileError(f"{source}: not a dgprofile result file (top level is not an object)")
    document = upgrade(document, source=source)
    try:
        return _row(document, source=source)
    except DecodeError as exc:
        raise ResultFileError(f"{source}: does not match the result schema: {exc}") from exc


def _at(document: Any, path: str, tp: Any) -> Any:
    """The value at a dotted ``path`` ("$.a.b") decoded strictly as ``tp``; DecodeError naming the path."""
    value = document
    walked = "$"
    for name in path.split(".")[1:]:
        if not isinstance(value, dict) or name not in value:
            raise DecodeError(f"{walked}: missing field '{name}'")
        value, walked = value[name], f"{walked}.{name}"
    return from_json(tp, value, path)


def _is_unavailable(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"unavailable"}


def _row(document: dict[str, Any], *, source: str) -> FleetRow:
    run = _at(document, "$.run", RunInfo)
    machine = _at(document, "$.machine", Machine | Unavailable)
    stream: float | Unavailable
    ridge: float | Unavailable = Unavailable("no measured limits")
    if _is_unavailable(document.get("limits")):
        stream = _at(document, "$.limits", Unavailable)
    else:
        stream = _at(document, "$.limits.stream_read_bytes_per_s", float | Unavailable)
        ridges = _at(document, "$.limits.ridge_flop_per_byte", dict[str, float])
        if ridges:
            ridge = ridges["bf16"] if "bf16" in ridges else next(iter(ridges.values()))
    missing: Unavailable
    predicted_for = predicted_class = ""
    if _is_unavailable(document.get("predictions")):
        missing = _at(document, "$.predictions", Unavailable)
        verdict, reasons, fitting = NO_PREDICTION, (), ()
        speedups = (missing, missing, missing)
        scenario = {"workload": "", "precision": "", "engine": ""}
        rates = (missing, missing)
    else:
        verdict = _at(document, "$.predictions.verdict", VerdictClass)
        reasons = _at(document, "$.predictions.reasons", tuple[str, ...])
        predicted_for = _at(document, "$.predictions.ceilings.device_name", str)
        predicted_class = _at(document, "$.predictions.ceilings.memory_class", str)
        fitting = _fitting_precisions(document)
        speedups = tuple(_at(document, f"$.predictions.headline.{name}", float | Unavailable)
                         for name in ("speedup", "speedup_low", "speedup_high"))
        scenario = {name: _at(document, f"$.predictions.headline.scenario.{name}", str)
                    for name in ("workload", "precision", "engine")}
        rates = tuple(_mode_rate(document, mode) for mode in ("diffusion", "autoregressive"))
    return FleetRow(
        path=source, hostname=host_name(machine, run.label), hardware=hardware_name(machine, predicted_for),
        memory_class=memory_class_text(machine, predicted_class), origin=run.origin,
        status=run.status, created_at=_at(document, "$.created_at", str),
        tool_version=_at(document, "$.tool_version", str), verdict=verdict, speedup=speedups[0],
        speedup_low=speedups[1], speedup_high=speedups[2], **scenario, diffusion_tokens_per_s=rates[0],
        autoregressive_tokens_per_s=rates[1], stream_read_bytes_per_s=stream, ridge_flop_per_byte=ridge,
        usable_memory_bytes=usable_memory(machine), fitting_precisions=fitting, reasons=reasons)


def _mode_rate(document: dict[str, Any], mode: str) -> float | Unavailable:
    path = f"$.predictions.headline.{mode}"
    if _is_unavailable(document["predictions"]["headline"].get(mode)):
        return _at(document, path, Unavailable)
    return _at(document, f"{path}.tokens_per_s", float)


def _fitting_precisions(document: dict[str, Any]) -> tuple[str, ...]:
    memory = _at(document, "$.predictions.memory", tuple[dict[str, Any], ...])
    return tuple(_at(fit, "$.precision", str) for fit in memory if _at(fit, "$.fits_diffusion", bool))


def _without_duplicates(outcomes: Sequence[FleetRow | SkippedFile]) -> Fleet:
    """Keep the first file of each (host, hardware, created_at); later ones are skipped as duplicates. Identical
    files always share that key, so contents are compared only on a collision, to say which kind of duplicate."""
    rows: list[FleetRow] = []
    skipped: list[SkippedFile] = []
    first_by_identity: dict[tuple[str, str, str], str] = {}
    for outcome in outcomes:
        if isinstance(outcome, SkippedFile):
            skipped.append(outcome)
            continue
        identity = (outcome.hostname, outcome.hardware, outcome.created_at)
        first = first_by_identity.setdefault(identity, outcome.path)
        if first == outcome.path:
            rows.append(outcome)
        elif _same_content(first, outcome.path):
            skipped.append(SkippedFile(outcome.path, f"duplicate: identical content to {first}"))
        else:
            skipped.append(SkippedFile(outcome.path, f"duplicate: same machine ({outcome.hostname}) and created_at "
                                                     f"({outcome.created_at}) as {first}"))
    return Fleet(rows=tuple(rows), skipped=tuple(skipped))


def _same_content(first: str, second: str) -> bool:
    try:
        return hashlib.sha256(Path(first).read_bytes()).digest() == hashlib.sha256(Path(second).read_bytes()).digest()
    except OSError:
        return False


CSV_COLUMNS = ("path", "hostname", "hardware", "memory_class", "origin", "status", "created_at", "verdict",
               "speedup", "speedup_low", "speedup_high", "workload", "precision", "engine", "diffusion_tokens_per_s",
               "autoregressive_tokens_per_s", "stream_read_bytes_per_s", "ridge_flop_per_byte",
               "usable_memory_bytes", "fitting_precisions", "reasons")


def fleet_csv(fleet: Fleet) -> str:
    """One CSV line per readable file; an unavailable number is an empty cell, lists are joined with '; '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in fleet.rows:
        cells = []
        for column in CSV_COLUMNS:
            value = getattr(row, column)
            if isinstance(value, Unavailable):
                value = ""
            elif isinstance(value, tuple):
                value = "; ".join(value)
            cells.append(value)
        writer.writerow(cells)
    return out.getvalue()


def fleet_json(fleet: Fleet) -> dict[str, Any]:
    """The fleet as JSON: counts by verdict, groups, every row and every skipped file with its reason."""
    return {
        "files": len(fleet.rows) + len(fleet.skipped),
        "readable": len(fleet.rows),
        "verdict_counts": fleet.verdict_counts,
        "groups": [{"hardware": g.hardware, "machines": len(g.rows), "verdict_counts": g.verdict_counts}
                   for g in fleet.groups],
        "rows": [to_json(row) for row in fleet.rows],
        "skipped": [to_json(s) for s in fleet.skipped],
    }


# ---------------------------------------------------------------------------------------------------------------
# The fleet page

VERDICT_ORDER = ("applies", "partial", "does-not-apply", "cannot-run", NO_PREDICTION)
# A group's chart shows one bar per machine up to this many machines, and a histogram of speedups beyond.
BARS_PER_MACHINE_MAX = 30
SPEEDUP_BINS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, float("inf"))


def render_fleet_html(fleet: Fleet) -> str:
    """The self-contained fleet page: counts by verdict, the machines table, per-group charts, skipped files."""
    return render_page(fleet_page(fleet))


def fleet_page(fleet: Fleet) -> PageView:
    """The view-model of the fleet page."""
    groups = fleet.groups
    sections = [_summary_section(fleet), _machines_section(fleet), _groups_overview(groups)]
    sections += [_group_section(i, group) for i, group in enumerate(groups, start=1)]
    sections.append(_skipped_section(fleet))
    total = len(fleet.rows) + len(fleet.skipped)
    return PageView(
        title=f"dgprofile fleet: {len(fleet.rows)} machines",
        heading=f"DiffusionGemma vs Gemma 4 across {len(fleet.rows)} result files",
        subtitle=f"{total} files read, {len(fleet.rows)} shown, {len(fleet.skipped)} skipped; "
                 f"{len(groups)} hardware models",
        badges=tuple(Badge(f"{count} {VERDICT_LABELS.get(v, v).lower()}", verdict_tone(v))
                     for v in VERDICT_ORDER if (count := fleet.verdict_counts.get(v, 0))),
        banners=(f"{len(fleet.skipped)} file(s) skipped: see the last section.",) if fleet.skipped else (),
        sections=tuple(sections))


def _summary_section(fleet: Fleet) -> SectionView:
    counts = fleet.verdict_counts
    total = max(1, len(fleet.rows))
    tiles = tuple(Tile(VERDICT_LABELS.get(v, "No prediction"), str(counts.get(v, 0)), verdict_tone(v),
                       f"{counts.get(v, 0) / total * 100:.0f}% of machines")
                  for v in VERDICT_ORDER if v != NO_PREDICTION or counts.get(v))
    measured = sum(row.origin == "measured" for row in fleet.rows)
    return SectionView("summary", "Verdicts", "How many machines get the advertised speedup in their headline "
                       "scenario (concurrency 1, their platform's engine, the best precision that fits).", (
                           TilesView(tiles),
                           FactsView("", (("result files shown", str(len(fleet.rows))),
                                          ("measured / predicted", f"{measured} / {len(fleet.rows) - measured}"),
                                          ("hardware models", str(len(fleet.groups))),
                                          ("skipped files", str(len(fleet.skipped)))))))


def _machines_section(fleet: Fleet) -> SectionView:
    rows = tuple(RowView((
        Cell(row.hostname), Cell(row.hardware), Cell(row.memory_class), Cell(row.origin),
        Cell(VERDICT_LABELS.get(row.verdict, row.verdict), tone=verdict_tone(row.verdict)),
        Cell(speedup_text(row.speedup) if not isinstance(row.speedup, Unavailable) else "",
             number_key(row.speedup), tone=verdict_tone(row.verdict)),
        Cell(band_text(row.speedup_low, row.speedup_high) if not isinstance(row.speedup_low, Unavailable) else "",
             number_key(row.speedup_low)),
        Cell(" ".join(x for x in (row.precision, row.engine) if x)),
        Cell(_rate(row.diffusion_tokens_per_s), number_key(row.diffusion_tokens_per_s)),
        Cell(_rate(row.autoregressive_tokens_per_s), number_key(row.autoregressive_tokens_per_s)),
        Cell(_maybe(bandwidth_text, row.stream_read_bytes_per_s), number_key(row.stream_read_bytes_per_s)),
        Cell(_maybe(bytes_text, row.usable_memory_bytes), number_key(row.usable_memory_bytes)),
        Cell(", ".join(row.fitting_precisions)), Cell(row.created_at), Cell(row.path)),
        filter_text=f"{row.verdict} {row.status}") for row in fleet.rows)
    table = TableView("", ("host", "hardware", "memory class", "origin", "verdict", "speedup", "band",
                           "precision, engine", "DG tok/s", "AR tok/s", "streaming read", "usable memory",
                           "fits", "created", "file"), rows, sortable=True, filterable=True, table_id="fleet-table")
    return SectionView("machines", "Machines", "Every readable result file. Click a heading to sort; type in the "
                       "box to filter (all words must match, e.g. 'H100 partial').", (table,))


def _rate(value: float | Unavailable) -> str:
    return "" if isinstance(value, Unavailable) else tokens_per_s_text(value)


def _maybe(fmt: Any, value: Any) -> str:
    return "" if isinstance(value, Unavailable) else fmt(value)


def _speedups(rows: Iterable[FleetRow]) -> list[float]:
    return [row.speedup for row in rows if not isinstance(row.speedup, Unavailable)]


def _groups_overview(groups: Sequence[HardwareGroup]) -> SectionView:
    intro = "The headline speedup by hardware model: the spread within a model comes from precision, engine and " \
            "each machine's measured limits."
    values = {g.hardware: _speedups(g.rows) for g in groups}
    values = {name: v for name, v in values.items() if v}
    if not values:
        return SectionView("groups", "Hardware models", intro, (NoticeView(
            "Speedup by hardware model unavailable: no file holds a prediction."),))
    svg = charts.box_svg(title="Headline speedup by hardware model", groups=values, y_title="speedup (x)",
                         value_formatter=lambda v: f"{v:.2g}x")
    rows = tuple(RowView((Cell(g.hardware), Cell(str(len(g.rows)), number_key(len(g.rows))),
                          Cell(_median_text(_speedups(g.rows)), _median_key(_speedups(g.rows))),
                          *(Cell(str(g.verdict_counts.get(v, 0)), number_key(g.verdict_counts.get(v, 0)))
                            for v in VERDICT_ORDER)))
                 for g in groups)
    table = TableView("", ("hardware model", "machines", "median speedup",
                           *(VERDICT_LABELS.get(v, "no prediction") for v in VERDICT_ORDER)), rows, sortable=True,
                      table_id="groups-table")
    return SectionView("groups", "Hardware models", intro, (ChartView(Markup(svg), "Box: quartiles of the "
                       "headline speedup; whiskers: lowest and highest machine."), table))


def _median_text(values: list[float]) -> str:
    return speedup_text(statistics.median(values)) if values else "no prediction"


def _median_key(values: list[float]) -> str:
    return number_key(statistics.median(values)) if values else ""


def _group_section(index: int, group: HardwareGroup) -> SectionView:
    speedups = _speedups(group.rows)
    bandwidths = [r.stream_read_bytes_per_s for r in group.rows
                  if not isinstance(r.stream_read_bytes_per_s, Unavailable)]
    facts = FactsView("", (
        ("machines", str(len(group.rows))),
        ("memory class", ", ".join(sorted({r.memory_class for r in group.rows}))),
        ("verdicts", ", ".join(f"{n} {VERDICT_LABELS.get(v, v).lower()}"
                               for v in VERDICT_ORDER if (n := group.verdict_counts.get(v, 0)))),
        ("median headline speedup", _median_text(speedups)),
        ("median measured streaming read", bandwidth_text(statistics.median(bandwidths)) if bandwidths
         else "not measured on any machine of this model"),
    ))
    blocks: list[Block] = [facts, _group_chart(group)]
    return SectionView(f"group-{index}", group.hardware, "", tuple(blocks))


def _group_chart(group: HardwareGroup) -> Block:
    rows = [r for r in group.rows if not isinstance(r.speedup, Unavailable)]
    if not rows:
        return NoticeView("Speedup chart unavailable: no file of this hardware model holds a prediction.")
    if len(rows) <= BARS_PER_MACHINE_MAX:
        rows.sort(key=lambda r: r.speedup)
        svg = charts.bar_svg(title=f"Headline speedup per machine: {group.hardware}",
                             categories=[r.hostname for r in rows],
                             series={"headline speedup": [r.speedup for r in rows]},
                             value_title="speedup (x)", value_formatter=lambda v: f"{v:.2g}x", horizontal=True)
        return ChartView(Markup(svg), "Each machine's headline speedup, lowest first.")
    counts = [0] * (len(SPEEDUP_BINS) - 1)
    for r in rows:
        counts[next(i for i in range(len(counts)) if r.speedup < SPEEDUP_BINS[i + 1])] += 1
    labels = [f"{lo:g}x-{hi:g}x" if hi != float("inf") else f">= {lo:g}x"
              for lo, hi in zip(SPEEDUP_BINS, SPEEDUP_BINS[1:], strict=False)]
    svg = charts.bar_svg(title=f"Machines by headline speedup: {group.hardware}", categories=labels,
                         series={"machines": counts}, value_title="machines",
                         value_formatter=lambda v: f"{v:.0f}")
    return ChartView(Markup(svg), f"{len(rows)} machines binned by headline speedup.")


def _skipped_section(fleet: Fleet) -> SectionView:
    intro = "Files left out, and why. Every other file is shown above."
    if not fleet.skipped:
        return SectionView("skipped", "Skipped files", intro, (NoticeView("No file was skipped."),))
    rows = tuple(RowView((Cell(s.path), Cell(s.reason)), tone="warning") for s in fleet.skipped)
    return SectionView("skipped", "Skipped files", intro, (TableView("", ("file", "reason"), rows,
                                                                     table_id="skipped-table"),))
