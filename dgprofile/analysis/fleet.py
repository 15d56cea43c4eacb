"""Many result files at once: load them, skip the bad ones with a reason, group machines, export CSV and JSON.

A fleet is summarised one row per file. Each file is parsed and upgraded through the migration chain, and every
field the fleet shows (the run, the machine, the measured limits and the ceilings its figures read, the headline
prediction, the verdict and the memory fit) is decoded strictly through the codec, which checks what the JSON Schema checks for
those fields. The rest of the file (the scenario matrix, the pass tables, the timings) is not checked here: the
fleet never shows it, and validating a whole 150 KB file costs about 0.1 s, twenty times the 5 ms per file that
a 1,000-file fleet in 5 s allows. `dgprofile compare` and the result page load and validate whole files.

What is skipped, always with the reason, while the rest still loads: what cannot be read (a missing name, a
dangling link, a link loop, a directory that cannot be listed, a file without read permission), what is not a
usable result file (malformed, another format, a newer schema, a shown field the schema refuses, such as a NaN
or negative speedup), and duplicates: a file with the same bytes as one read before it. The same file named
twice is read once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgprofile.analysis.figures import (
    Evidence,
    MeasuredCeilings,
    hardware_name,
    host_name,
    memory_class_text,
    ridge,
    stream_bandwidth,
    usable_accelerator_memory,
)
from dgprofile.errors import ResultFileError
from dgprofile.records.codec import DecodeError, from_json, to_json
from dgprofile.records.machine import Machine
from dgprofile.records.predictions import Ceilings, Verdict
from dgprofile.records.results import RunInfo, parse_json, read_bytes, unreadable_reason, upgrade
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable

NO_PREDICTION = "no prediction"
# The order verdicts are counted and listed in; a file without predictions comes last.
VERDICT_ORDER: tuple[Verdict | str, ...] = (*Verdict, NO_PREDICTION)
# Below this many files the start-up of worker processes costs more than it saves.
PARALLEL_MIN_FILES = 200
CHUNK_FILES = 50


@dataclass(frozen=True)
class FleetRow:
    """One result file of a fleet, summarised (the columns of the fleet table, CSV and JSON). ``verdict`` is
    ``NO_PREDICTION`` for a file without predictions; the machine figures are those of
    ``dgprofile.analysis.figures``, each with its basis."""

    path: str
    hostname: str
    hardware: str
    memory_class: str
    origin: str
    status: str
    created_at: str
    tool_version: str
    verdict: Verdict | str
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
    usable_memory_bytes: float | Unavailable
    fitting_precisions: tuple[str, ...]
    reasons: tuple[str, ...]
    stream_read_basis: str
    ridge_basis: str
    usable_memory_basis: str


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
    def verdict_counts(self) -> dict[Verdict | str, int]:
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
    def verdict_counts(self) -> dict[Verdict | str, int]:
        """How many files got each verdict (``NO_PREDICTION`` for files without predictions)."""
        return dict(Counter(row.verdict for row in self.rows))


def result_paths(inputs: Sequence[Path]) -> tuple[list[Path], list[SkippedFile]]:
    """The files named, and every ``*.json`` file under the directories named (sorted within each), each file once
    however often it is named (directly, through its directory, or through a link); and what cannot be read, with
    the reason: a name that does not exist, a dangling link or link loop, a directory that cannot be listed.
    Links to directories are not followed, so a link back up the tree cannot loop."""
    paths: list[Path] = []
    skipped: list[SkippedFile] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found: list[Path] = []
            for directory, _, names in os.walk(item, onerror=lambda exc: skipped.append(_unlistable(exc))):
                found += [Path(directory, name) for name in names if name.endswith(".json")]
            candidates = sorted(found)
        else:
            candidates = [item]
        for path in candidates:
            try:
                path.stat()
            except OSError as exc:
                skipped.append(SkippedFile(str(path), f"cannot read: {unreadable_reason(path, exc)}"))
                continue
            paths.append(path)
    by_real_path: dict[str, Path] = {}
    for path in paths:
        by_real_path.setdefault(os.path.realpath(path), path)
    return list(by_real_path.values()), skipped


def _unlistable(exc: OSError) -> SkippedFile:
    directory = Path(exc.filename)
    return SkippedFile(str(directory), f"cannot list this directory: {unreadable_reason(directory, exc)}")


def load_fleet(inputs: Sequence[Path], *, workers: int | None = None) -> Fleet:
    """Load every result file under ``inputs``; unreadable, bad and duplicate files become ``SkippedFile`` with a
    reason.

    ``workers``: processes to parse with (default: the CPU count when there are many files, else 1).
    """
    paths, unreadable = result_paths(inputs)
    if workers is None:
        workers = (os.cpu_count() or 1) if len(paths) >= PARALLEL_MIN_FILES else 1
    if workers > 1:
        chunks = [paths[i:i + CHUNK_FILES] for i in range(0, len(paths), CHUNK_FILES)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = [o for chunk in pool.map(_summarise_all, chunks) for o in chunk]
    else:
        outcomes = _summarise_all(paths)
    fleet = _without_duplicates(outcomes)
    return Fleet(rows=fleet.rows, skipped=(*unreadable, *fleet.skipped))


def _summarise_all(paths: Iterable[Path]) -> list[tuple[FleetRow | SkippedFile, bytes]]:
    return [_summarise_file(path) for path in paths]


def _summarise_file(path: Path) -> tuple[FleetRow | SkippedFile, bytes]:
    """The file's row (or why it was skipped) and the digest of its bytes (duplicates are found by it)."""
    try:
        data = read_bytes(path)
        return summarise(data, source=str(path)), hashlib.sha256(data).digest()
    except ResultFileError as exc:
        return SkippedFile(str(path), _without_source(str(exc), str(path))), b""


def _without_source(message: str, source: str) -> str:
    prefix = f"{source}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def summarise(data: bytes, *, source: str) -> FleetRow:
    """The fleet row of one result file's bytes; ResultFileError (naming ``source``) when it cannot be used."""
    document = upgrade(parse_json(data, source=source), source=source)
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


def _measured(document: dict[str, Any]) -> MeasuredCeilings | Unavailable:
    if _is_unavailable(document.get("limits")):
        missing: Unavailable = _at(document, "$.limits", Unavailable)
        return missing
    bandwidth = _at(document, "$.limits.bandwidth", tuple[dict[str, Any], ...])
    stream = next((f for f in bandwidth if f.get("name") == "stream-read"), None)
    spread = 0.0 if stream is None else _at(stream, "$.timing", Timing).relative_spread
    return MeasuredCeilings(_at(document, "$.limits.stream_read_bytes_per_s", float | Unavailable), spread,
                            _at(document, "$.limits.peak_flops_per_s", dict[str, float]))


def _row(document: dict[str, Any], *, source: str) -> FleetRow:
    run = _at(document, "$.run", RunInfo)
    machine = _at(document, "$.machine", Machine | Unavailable)
    ceilings: Ceilings | Unavailable
    speedups: tuple[float | Unavailable, ...]
    rates: tuple[float | Unavailable, ...]
    if _is_unavailable(document.get("predictions")):
        missing = ceilings = _at(document, "$.predictions", Unavailable)
        verdict: Verdict | str = NO_PREDICTION
        reasons: tuple[str, ...] = ()
        fitting: tuple[str, ...] = ()
        speedups = (missing, missing, missing)
        scenario = {"workload": "", "precision": "", "engine": ""}
        rates = (missing, missing)
    else:
        verdict = _at(document, "$.predictions.verdict", Verdict)
        reasons = _at(document, "$.predictions.reasons", tuple[str, ...])
        ceilings = _at(document, "$.predictions.ceilings", Ceilings)
        fitting = _fitting_precisions(document)
        speedups = tuple(_at(document, f"$.predictions.headline.{name}", float | Unavailable)
                         for name in ("speedup", "speedup_low", "speedup_high"))
        scenario = {name: _at(document, f"$.predictions.headline.scenario.{name}", str)
                    for name in ("workload", "precision", "engine")}
        rates = tuple(_mode_rate(document, mode) for mode in ("diffusion", "autoregressive"))
    e = Evidence(machine=machine, measured=_measured(document), ceilings=ceilings)
    bandwidth, machine_ridge, usable = stream_bandwidth(e), ridge(e), usable_accelerator_memory(e)
    return FleetRow(
        path=source, hostname=host_name(machine, run.label), hardware=hardware_name(e),
        memory_class=memory_class_text(e), origin=run.origin,
        status=run.status, created_at=_at(document, "$.created_at", str),
        tool_version=_at(document, "$.tool_version", str), verdict=verdict, speedup=speedups[0],
        speedup_low=speedups[1], speedup_high=speedups[2], **scenario, diffusion_tokens_per_s=rates[0],
        autoregressive_tokens_per_s=rates[1], stream_read_bytes_per_s=bandwidth.value,
        ridge_flop_per_byte=machine_ridge.value, usable_memory_bytes=usable.value, fitting_precisions=fitting,
        reasons=reasons, stream_read_basis=bandwidth.basis, ridge_basis=machine_ridge.basis,
        usable_memory_basis=usable.basis)


def _mode_rate(document: dict[str, Any], mode: str) -> float | Unavailable:
    path = f"$.predictions.headline.{mode}"
    rate: float | Unavailable = (_at(document, path, Unavailable)
                                 if _is_unavailable(document["predictions"]["headline"].get(mode))
                                 else _at(document, f"{path}.tokens_per_s", float))
    return rate


def _fitting_precisions(document: dict[str, Any]) -> tuple[str, ...]:
    memory = _at(document, "$.predictions.memory", tuple[dict[str, Any], ...])
    return tuple(_at(fit, "$.precision", str) for fit in memory if _at(fit, "$.fits_diffusion", bool))


def _without_duplicates(outcomes: Sequence[tuple[FleetRow | SkippedFile, bytes]]) -> Fleet:
    """Keep the first of files with the same bytes; later copies are skipped as duplicates. Only the same content
    makes a duplicate: two results of one machine made in the same second (four `predict` runs for different
    workloads, say) are different results, and both count."""
    rows: list[FleetRow] = []
    skipped: list[SkippedFile] = []
    first_with_content: dict[bytes, str] = {}
    for outcome, digest in outcomes:
        if isinstance(outcome, SkippedFile):
            skipped.append(outcome)
        elif digest in first_with_content:
            skipped.append(SkippedFile(outcome.path, f"duplicate: same content as {first_with_content[digest]}"))
        else:
            first_with_content[digest] = outcome.path
            rows.append(outcome)
    return Fleet(rows=tuple(rows), skipped=tuple(skipped))


CSV_COLUMNS = ("path", "hostname", "hardware", "memory_class", "origin", "status", "created_at", "verdict",
               "speedup", "speedup_low", "speedup_high", "workload", "precision", "engine", "diffusion_tokens_per_s",
               "autoregressive_tokens_per_s", "stream_read_bytes_per_s", "ridge_flop_per_byte",
               "usable_memory_bytes", "fitting_precisions", "reasons", "stream_read_basis", "ridge_basis",
               "usable_memory_basis")


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
        "verdict_counts": to_json(fleet.verdict_counts),
        "groups": [{"hardware": g.hardware, "machines": len(g.rows), "verdict_counts": to_json(g.verdict_counts)}
                   for g in fleet.groups],
        "rows": [to_json(row) for row in fleet.rows],
        "skipped": [to_json(s) for s in fleet.skipped],
    }


