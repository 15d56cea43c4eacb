"""Many result files at once: load them, skip the bad ones with a reason, group machines, export CSV and JSON.

A fleet is summarised one row per file. Each file is parsed and upgraded through the migration chain, and every
field the fleet shows (the run, the machine, the measured limits and the ceilings its figures read, the headline
prediction, the verdict and the memory fit, the latest measured run's speedup) is decoded strictly through the
codec, which checks what the JSON Schema checks for those fields; earlier measured runs are not read. The rest of the file (the scenario matrix, the pass tables, the timings) is not checked here: the
fleet never shows it, and validating a whole 150 KB file costs about 0.1 s, a hundred times the 1 ms per file that
a 10,000-file fleet in 10 s allows. For the same reason a file that dgprofile wrote in the current format is not
parsed whole: only the parts the fleet shows are (``_shown_sections``), which cuts the JSON parsed from 400 KB to
about 12 KB for a measured GPU; a file damaged only in the other parts is therefore still shown. `dgprofile
compare` and the result page load and validate whole files.

What is skipped, always with the reason, while the rest still loads: what cannot be read (a missing name, a
dangling link, a link loop, a directory that cannot be listed, a file without read permission), what is not a
usable result file (malformed, another format, a newer schema, a shown field the schema refuses, such as a NaN
or negative speedup), and duplicates: a file with the same bytes as one read before it. The same file named
twice is read once.
"""

from __future__ import annotations

import csv
import dataclasses
import filecmp
import functools
import io
import json
import mmap
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from dgprofile.analysis.figures import (
    Evidence,
    MeasuredCeilings,
    hardware_model,
    hardware_name,
    host_name,
    memory_class_text,
    ridge,
    stream_bandwidth,
    usable_accelerator_memory,
)
from dgprofile.errors import ResultFileError
from dgprofile.records.codec import DecodeError, Decoder, decoder, fields_of, to_json
from dgprofile.records.limits import Limits
from dgprofile.records.machine import Machine
from dgprofile.records.predictions import Ceilings, ModeEstimate, Prediction, Predictions, Verdict
from dgprofile.records.results import (
    SCHEMA_VERSION,
    ResultFile,
    RunInfo,
    parse_json,
    unreadable_reason,
    upgrade,
)
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import MeasuredRun, WorkloadStatistics

NO_PREDICTION = "no prediction"
NO_MEASURED_RUN = Unavailable("no measured run (`dgprofile verify`) in this file")
# A result file as bytes, or mapped into memory (then only the parts that are read are copied out).
Buffer = bytes | mmap.mmap
# The order verdicts are counted and listed in; a file without predictions comes last.
VERDICT_ORDER: tuple[Verdict | str, ...] = (*Verdict, NO_PREDICTION)
# Below this many files the start-up of worker processes costs more than it saves.
PARALLEL_MIN_FILES = 200
CHUNK_FILES = 50


@dataclass(frozen=True)
class FleetRow:
    """One result file of a fleet, summarised (the columns of the fleet table, CSV and JSON). ``verdict`` is
    ``NO_PREDICTION`` for a file without predictions; ``device`` is the device the limits were measured on
    ('cuda:3', 'cpu'; empty when nothing was measured), which tells apart the GPUs of one host; the machine
    figures are those of ``dgprofile.analysis.figures``, each with its basis. ``hardware`` is the device as probed
    (or predicted for), ``hardware_model`` the datasheet entry it matched, which groups the fleet."""

    path: str
    hostname: str
    device: str
    hardware: str
    hardware_model: str
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
    measured_speedup: float | Unavailable = NO_MEASURED_RUN
    measured_scenario: str = ""


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the fleet, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class HardwareGroup:
    """The machines of one hardware model (one datasheet entry, or one device name that matched none)."""

    hardware: str
    rows: tuple[FleetRow, ...]

    @property
    def verdict_counts(self) -> dict[Verdict | str, int]:
        """How many machines of the group got each verdict."""
        return dict(Counter(row.verdict for row in self.rows))


@dataclass(frozen=True)
class FailedMachine:
    """A machine (or one GPU of it) that a fleet run asked for a result and got none from, and why."""

    machine: str
    reason: str


@dataclass(frozen=True)
class FleetRunInfo:
    """How a fleet run gathered its files: the cluster, the command run on every machine, how long it took."""

    label: str
    cluster: str
    command: str
    machines: int
    started_at: str
    wall_seconds: float
    notes: tuple[str, ...] = ()


NOT_A_FLEET_RUN = Unavailable("read from result files by `dgprofile report`")


@dataclass(frozen=True)
class Fleet:
    """The readable files of a fleet, the skipped ones, the machines a fleet run got no file from, and the
    machines grouped by hardware model."""

    rows: tuple[FleetRow, ...]
    skipped: tuple[SkippedFile, ...]
    failed: tuple[FailedMachine, ...] = ()
    run: FleetRunInfo | Unavailable = NOT_A_FLEET_RUN

    @property
    def groups(self) -> tuple[HardwareGroup, ...]:
        """Machines grouped by hardware model, largest group first."""
        by_hardware: dict[str, list[FleetRow]] = {}
        for row in self.rows:
            by_hardware.setdefault(row.hardware_model, []).append(row)
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
    by_identity: dict[tuple[int, int], Path] = {}  # (device, inode): the same file however it is reached
    skipped: list[SkippedFile] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found: list[str] = []
            for directory, _, names in os.walk(item, onerror=lambda exc: skipped.append(_unlistable(exc))):
                found += [os.path.join(directory, name) for name in names if name.endswith(".json")]
            candidates = [Path(name) for name in sorted(found)]
        else:
            candidates = [item]
        for path in candidates:
            try:
                status = path.stat()
            except OSError as exc:
                skipped.append(SkippedFile(str(path), f"cannot read: {unreadable_reason(path, exc)}"))
                continue
            by_identity.setdefault((status.st_dev, status.st_ino), path)
    return list(by_identity.values()), skipped


def _unlistable(exc: OSError) -> SkippedFile:
    directory = Path(exc.filename)
    return SkippedFile(str(directory), f"cannot list this directory: {unreadable_reason(directory, exc)}")


def load_fleet(inputs: Sequence[Path], *, workers: int | None = None) -> Fleet:
    """Load every result file under ``inputs``; unreadable, bad and duplicate files become ``SkippedFile`` with a
    reason.

    ``workers``: processes to parse with (default: the CPUs this process may use when there are many files,
    else 1).
    """
    return load_listed_fleet(*result_paths(inputs), workers=workers)


def load_listed_fleet(paths: Sequence[Path], unreadable: Sequence[SkippedFile], *,
                      workers: int | None = None) -> Fleet:
    """``load_fleet`` over the files ``result_paths`` listed (and what it could not read), for a caller that
    listed them already: listing 10,000 files costs 0.2 s."""
    if workers is None:
        workers = _usable_cpus() if len(paths) >= PARALLEL_MIN_FILES else 1
    if workers > 1:
        chunks = [paths[i:i + CHUNK_FILES] for i in range(0, len(paths), CHUNK_FILES)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = [o for chunk in pool.map(_summarise_all, chunks) for o in chunk]
    else:
        outcomes = _summarise_all(paths)
    fleet = _without_duplicates(outcomes)
    return Fleet(rows=fleet.rows, skipped=(*unreadable, *fleet.skipped))


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which taskset and container CPU sets narrow), not all the
    machine has: more workers than that only take turns."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _summarise_all(paths: Iterable[Path]) -> list[tuple[FleetRow | SkippedFile, int]]:
    return [_summarise_file(path) for path in paths]


def _summarise_file(path: Path) -> tuple[FleetRow | SkippedFile, int]:
    """The file's row (or why it was skipped) and its size in bytes (duplicates are looked for among the files
    of one size and row)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)  # not a Python file object: 10 us a file less
        try:
            # Mapped rather than read: only the parts the fleet shows are copied out (a tenth of a GPU's file).
            data: Buffer = (mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
                            if os.fstat(descriptor).st_size else b"")
        finally:
            os.close(descriptor)
    except OSError as exc:
        return SkippedFile(str(path), f"cannot read: {unreadable_reason(path, exc)}"), 0
    except ValueError as exc:  # a file that cannot be mapped
        return SkippedFile(str(path), f"cannot read: {exc}"), 0
    try:
        return summarise(data, source=str(path)), len(data)
    except ResultFileError as exc:
        return SkippedFile(str(path), _without_source(str(exc), str(path))), 0
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _without_source(message: str, source: str) -> str:
    prefix = f"{source}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def summarise(data: Buffer, *, source: str) -> FleetRow:
    """The fleet row of one result file's bytes; ResultFileError (naming ``source``) when it cannot be used."""
    shown = _shown_sections(data)
    if shown is not None:
        try:
            return _row(upgrade(shown, source=source), source=source)
        except (DecodeError, ResultFileError):
            pass  # parsed whole below, so that the message is the one any reader of the file gets
    document = upgrade(parse_json(data if isinstance(data, bytes) else data[:], source=source), source=source)
    try:
        return _row(document, source=source)
    except DecodeError as exc:
        raise ResultFileError(f"{source}: does not match the result schema: {exc}") from exc


# A file dgprofile wrote (records.results.dumps: keys sorted, two spaces of indent per level) starts each member of
# an object at depth d on a new line with exactly 2d spaces before its quoted name. JSON strings cannot hold a raw
# newline, so these bytes mark members and nothing else, and the fleet can cut out what it shows (a tenth of a
# measured GPU's file) and parse only that.
_Shown = Mapping[str, "_Shown | _Items | None"]  # member -> what of it is shown (None: all of it)


@dataclass(frozen=True)
class _Items:
    """A list of objects of which the fleet shows some members: of each item, or of the last item only (then the
    others are neither parsed nor checked)."""

    shown: _Shown
    last_only: bool = False


_SHOWN: _Shown = {
    "created_at": None, "format": None, "schema_version": None, "tool_version": None, "run": None, "machine": None,
    # The row shows the latest measured run's speedup: a `verify` run is tens of KB of per-request figures.
    "measured_runs": _Items({"backend": None, "engine": None, "workloads": _Items(
        {"concurrency": None, "speedup": None, "workload": None})}, last_only=True),
    "limits": {"bandwidth": None, "device": None, "peak_flops_per_s": None, "stream_read_bytes_per_s": None},
    "predictions": {"verdict": None, "reasons": None, "ceilings": None, "memory": None, "headline": {
        "scenario": None, "speedup": None, "speedup_low": None, "speedup_high": None,
        "diffusion": {"tokens_per_s": None}, "autoregressive": {"tokens_per_s": None}}},
}
# The largest member of each object (the fleet shows little or none of it; a measured run's requests grow with its
# prompts): it is never scanned for the markers of its object, because the members before it are looked for from
# the start and the members after it from the end (a scan for a marker costs about 50 us per 100 KB).
_LARGEST = {ResultFile: "predictions", Limits: "matmul", Predictions: "matrix", Prediction: "diffusion",
            ModeEstimate: "passes", MeasuredRun: "requests", WorkloadStatistics: "diffusion"}


@dataclass(frozen=True)
class _Layout:
    """How dgprofile writes one object: the object's first bytes and the marker of its closing line, the members
    it shows (with the layouts of those only partly shown), and the markers to look for: each shown member's and
    the one of the member after it, where its value ends; those up to the largest member are looked for from the
    start, the others from the end."""

    opening: bytes
    closing: bytes
    shown: Mapping[str, _Layout | _ListLayout | None]
    forward: tuple[tuple[str, bytes], ...]
    backward: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, record: type, shown: _Shown, *, depth: int) -> _Layout:
        types = dict(fields_of(record))
        names = sorted(types)
        head = b"\n" + b"  " * depth + b'"'
        inner = {name: _inner_layout(types[name], part, depth=depth) for name, part in shown.items()}
        wanted = sorted({i for name in shown for i in (names.index(name), names.index(name) + 1) if i < len(names)})
        largest = _LARGEST.get(record)
        split = names.index(largest) if largest else len(names) - 1
        markers = {i: (names[i], head + names[i].encode() + b'": ') for i in wanted}
        return cls(b"{" + head, b"\n" + b"  " * (depth - 1) + b"}", inner,
                   tuple(markers[i] for i in wanted if i <= split),
                   tuple(markers[i] for i in reversed(wanted) if i > split))


@dataclass(frozen=True)
class _ListLayout:
    """How dgprofile writes a list of objects held by a member at some depth: each item opens on a line of its
    own, one level deeper than the member, and the list closes on a line at the member's depth."""

    item_start: bytes
    closing: bytes
    item: _Layout
    last_only: bool


def _inner_layout(tp: Any, part: _Shown | _Items | None, *, depth: int) -> _Layout | _ListLayout | None:
    """The layout of the shown part of a member typed ``tp`` whose name sits at ``depth`` (None: all of it)."""
    if part is None:
        return None
    if isinstance(part, _Items):
        (item_type, _) = get_args(tp)  # tuple[Item, ...]
        return _ListLayout(b"\n" + b"  " * (depth + 1) + b"{", b"\n" + b"  " * depth + b"]",
                           _Layout.of(item_type, part.shown, depth=depth + 2), part.last_only)
    return _Layout.of(_record_type(tp), part, depth=depth + 1)


def _record_type(tp: Any) -> type:
    """The dataclass of a member typed ``SomeRecord`` or ``SomeRecord | Unavailable``."""
    members = get_args(tp) or (tp,)
    return next(m for m in members if isinstance(m, type) and m is not Unavailable)


_RESULT_LAYOUT = _Layout.of(ResultFile, _SHOWN, depth=1)
_CURRENT_VERSION = str(SCHEMA_VERSION).encode()


def _shown_sections(data: Buffer) -> dict[str, Any] | None:
    """The parts of a current-format file written by dgprofile that the fleet shows, parsed (in one go) without
    parsing the rest; None when the file is anything else (older, hand-formatted, damaged), which is then parsed
    whole."""
    members = _member_spans(data, _RESULT_LAYOUT, 0, len(data))
    if members is None or "schema_version" not in members or \
            _text(data, members["schema_version"]) != _CURRENT_VERSION:
        return None
    shown = _shown_text(data, _RESULT_LAYOUT, members)
    if shown is None:
        return None
    try:
        document = json.loads(shown)
    except (ValueError, RecursionError):  # json.JSONDecodeError and UnicodeDecodeError; nesting past the stack
        return None
    return document if isinstance(document, dict) else None


def _shown_text(data: Buffer, layout: _Layout, members: Mapping[str, tuple[int, int]]) -> bytes | None:
    """The JSON text of the shown parts of an object (None when a shown member is missing)."""
    parts = []
    for name, inner in layout.shown.items():
        if name not in members:
            return None
        value: bytes | None
        if isinstance(inner, _ListLayout):
            value = _items_text(data, inner, members[name])
        elif inner is not None and (spans := _member_spans(data, inner, *members[name])) is not None:
            value = _shown_text(data, inner, spans)
        else:  # the whole value: {"unavailable": ...}, say
            value = _text(data, members[name])
        if value is None:
            return None
        parts.append(b'"%s":%s' % (name.encode(), value))
    return b"{" + b",".join(parts) + b"}"


def _items_text(data: Buffer, layout: _ListLayout, span: tuple[int, int]) -> bytes | None:
    """The JSON text of the shown parts of a list's items (of its last item only, with ``last_only``); a value
    not laid out as such a list (``[]``, ``{"unavailable": ...}``) is taken whole, for the decoder to judge."""
    low, high = span
    end = data.rfind(layout.closing, low, high)
    if layout.last_only:
        starts = [data.rfind(layout.item_start, low, end)] if end != -1 else []
    else:
        starts = []
        start = data.find(layout.item_start, low, end)
        while start != -1:
            starts.append(start)
            start = data.find(layout.item_start, start + len(layout.item_start), end)
    if not starts or starts[0] == -1:
        return _text(data, span)
    items = []
    for start, stop in zip(starts, [*starts[1:], end], strict=True):
        item = (start + len(layout.item_start) - 1, stop)  # from the item's "{"
        spans = _member_spans(data, layout.item, *item)
        text = _text(data, item) if spans is None else _shown_text(data, layout.item, spans)
        if text is None:
            return None
        items.append(text)
    return b"[" + b",".join(items) + b"]"


def _text(data: Buffer, span: tuple[int, int]) -> bytes:
    """A member's value: its span without the comma that separates it from the next member."""
    return data[span[0]:span[1]].rstrip().removesuffix(b",")


def _member_spans(data: Buffer, layout: _Layout, low: int, high: int) -> dict[str, tuple[int, int]] | None:
    """Where the values of the members that ``layout`` looks for lie in the object ``data[low:high]``, each up to
    the next member found; None when the object is not laid out as ``layout`` (an unavailable section, say), which
    is then parsed whole. A member missing or out of order leaves its neighbour's span holding more than a value,
    so parsing it fails: such files end up parsed whole."""
    if data[low:low + len(layout.opening)] != layout.opening:
        return None
    starts: dict[str, tuple[int, int]] = {}  # name -> (start of the member's line, start of its value)
    position = low
    for name, marker in layout.forward:
        start = data.find(marker, position, high)
        if start != -1:
            position = start + len(marker)
            starts[name] = (start, position)
    closing = end = data.rfind(layout.closing, position, high)
    for name, marker in layout.backward:
        start = data.rfind(marker, position, end)
        if start != -1:
            starts[name] = (start, start + len(marker))
            end = start
    if not starts or closing == -1:
        return None
    ordered = sorted(starts.items(), key=lambda item: item[1][0])
    ends = [line for _, (line, _) in ordered[1:]] + [closing]
    return {name: (value, stop) for (name, (_, value)), stop in zip(ordered, ends, strict=True)}


def _at(document: Any, path: str, decode: Decoder, *, within: str = "$") -> Any:
    """The value at a dotted ``path`` ("$.a.b") decoded strictly; DecodeError naming the path, as seen from the
    file's root when ``document`` lies ``within`` it."""
    value = document
    names = _names(path)
    for depth, name in enumerate(names):
        if not isinstance(value, dict) or name not in value:
            raise DecodeError(f"{'.'.join((within, *names[:depth]))}: missing field '{name}'")
        value = value[name]
    return decode(value, within + path[1:])


@functools.cache
def _names(path: str) -> tuple[str, ...]:
    return tuple(path.split(".")[1:])


# The decoders of the fields the fleet reads, looked up once (see codec.decoder).
_UNAVAILABLE = decoder(Unavailable)
_OBJECTS = decoder(tuple[dict[str, Any], ...])
_OBJECT = decoder(dict[str, Any])
_ITEMS = decoder(tuple[Any, ...])
_TIMING = decoder(Timing)
# Numbers by the field they are read from, whose unit bounds them (codec.number_bounds): no NaN speedup reaches a chart.
_RATE = decoder(float, "tokens_per_s")
_SPEEDUP = decoder(float | Unavailable, "speedup")
_BANDWIDTH = decoder(float | Unavailable, "stream_read_bytes_per_s")
_FLOP_RATES = decoder(dict[str, float], "peak_flops_per_s")
_RUN = decoder(RunInfo)
_MACHINE = decoder(Machine | Unavailable)
_VERDICT = decoder(Verdict)
_TEXT = decoder(str)
_TEXTS = decoder(tuple[str, ...])
_FLAG = decoder(bool)
_CEILINGS = decoder(Ceilings)


def _is_unavailable(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"unavailable"}


def _measured(document: dict[str, Any]) -> MeasuredCeilings | Unavailable:
    if _is_unavailable(document.get("limits")):
        missing: Unavailable = _at(document, "$.limits", _UNAVAILABLE)
        return missing
    bandwidth = _at(document, "$.limits.bandwidth", _OBJECTS)
    stream = next((i for i, f in enumerate(bandwidth) if f.get("name") == "stream-read"), None)
    spread = 0.0 if stream is None else _at(bandwidth[stream], "$.timing", _TIMING,
                                            within=f"$.limits.bandwidth[{stream}]").relative_spread
    return MeasuredCeilings(_at(document, "$.limits.stream_read_bytes_per_s", _BANDWIDTH), spread,
                            _at(document, "$.limits.peak_flops_per_s", _FLOP_RATES))


def _row(document: dict[str, Any], *, source: str) -> FleetRow:
    run = _at(document, "$.run", _RUN)
    machine = _at(document, "$.machine", _MACHINE)
    ceilings: Ceilings | Unavailable
    speedups: tuple[float | Unavailable, ...]
    rates: tuple[float | Unavailable, ...]
    if _is_unavailable(document.get("predictions")):
        missing = ceilings = _at(document, "$.predictions", _UNAVAILABLE)
        verdict: Verdict | str = NO_PREDICTION
        reasons: tuple[str, ...] = (missing.reason,)  # why there is none, beside the row (and in the CSV)
        fitting: tuple[str, ...] = ()
        speedups = (missing, missing, missing)
        scenario = {"workload": "", "precision": "", "engine": ""}
        rates = (missing, missing)
    else:
        verdict = _at(document, "$.predictions.verdict", _VERDICT)
        reasons = _at(document, "$.predictions.reasons", _TEXTS)
        ceilings = _at(document, "$.predictions.ceilings", _CEILINGS)
        fitting = _fitting_precisions(document)
        speedups = tuple(_at(document, f"$.predictions.headline.{name}", _SPEEDUP)
                         for name in ("speedup", "speedup_low", "speedup_high"))
        scenario = {name: _at(document, f"$.predictions.headline.scenario.{name}", _TEXT)
                    for name in ("workload", "precision", "engine")}
        rates = tuple(_mode_rate(document, mode) for mode in ("diffusion", "autoregressive"))
    measured_speedup, measured_scenario = _measured_speedup(document, scenario["workload"])
    e = Evidence(machine=machine, measured=_measured(document), ceilings=ceilings)
    bandwidth, machine_ridge, usable = stream_bandwidth(e), ridge(e), usable_accelerator_memory(e)
    device = "" if _is_unavailable(document.get("limits")) else _at(document, "$.limits.device", _TEXT)
    return FleetRow(
        path=source, hostname=host_name(machine, run.label), device=device, hardware=hardware_name(e),
        hardware_model=hardware_model(e), memory_class=memory_class_text(e), origin=run.origin,
        status=run.status, created_at=_at(document, "$.created_at", _TEXT),
        tool_version=_at(document, "$.tool_version", _TEXT), verdict=verdict, speedup=speedups[0],
        speedup_low=speedups[1], speedup_high=speedups[2], **scenario, diffusion_tokens_per_s=rates[0],
        autoregressive_tokens_per_s=rates[1], stream_read_bytes_per_s=bandwidth.value,
        ridge_flop_per_byte=machine_ridge.value, usable_memory_bytes=usable.value, fitting_precisions=fitting,
        reasons=reasons, stream_read_basis=bandwidth.basis, ridge_basis=machine_ridge.basis,
        usable_memory_basis=usable.basis, measured_speedup=measured_speedup, measured_scenario=measured_scenario)


def _measured_speedup(document: dict[str, Any], headline_workload: str) -> tuple[float | Unavailable, str]:
    """The latest measured run's speedup at concurrency 1 for the headline workload (else its first workload at
    concurrency 1), and what it measured. Only the latest run is read and checked: the fleet shows nothing of
    the earlier ones (the result page and `dgprofile compare` check them)."""
    runs = _at(document, "$.measured_runs", _ITEMS)
    if not runs:
        return NO_MEASURED_RUN, ""
    at = f"$.measured_runs[{len(runs) - 1}]"
    run = _OBJECT(runs[-1], at)
    workloads = [(f"{at}.workloads[{i}]", w) for i, w in enumerate(_at(run, "$.workloads", _OBJECTS, within=at))
                 if w.get("concurrency") == 1]
    chosen = next((pair for pair in workloads if pair[1].get("workload") == headline_workload),
                  workloads[0] if workloads else None)
    if chosen is None:
        return Unavailable("the measured run has no workload at concurrency 1"), ""
    within, workload = chosen
    value: float | Unavailable = (_at(workload, "$.speedup", _UNAVAILABLE, within=within)
                                  if _is_unavailable(workload.get("speedup"))
                                  else _at(workload, "$.speedup.median", _SPEEDUP, within=within))
    return value, (f"{_at(workload, '$.workload', _TEXT, within=within)}, {_at(run, '$.engine', _TEXT, within=at)} "
                   f"({_at(run, '$.backend', _TEXT, within=at)})")


def _mode_rate(document: dict[str, Any], mode: str) -> float | Unavailable:
    path = f"$.predictions.headline.{mode}"
    rate: float | Unavailable = (_at(document, path, _UNAVAILABLE)
                                 if _is_unavailable(document["predictions"]["headline"].get(mode))
                                 else _at(document, f"{path}.tokens_per_s", _RATE))
    return rate


def _fitting_precisions(document: dict[str, Any]) -> tuple[str, ...]:
    memory = _at(document, "$.predictions.memory", _OBJECTS)
    return tuple(_at(fit, "$.precision", _TEXT, within=f"$.predictions.memory[{i}]") for i, fit in enumerate(memory)
                 if _at(fit, "$.fits_diffusion", _FLAG, within=f"$.predictions.memory[{i}]"))


_ROW_BUT_PATH = tuple(field.name for field in dataclasses.fields(FleetRow) if field.name != "path")


def _without_duplicates(outcomes: Sequence[tuple[FleetRow | SkippedFile, int]]) -> Fleet:
    """Keep the first of files with the same bytes; later copies are skipped as duplicates. Only the same content
    makes a duplicate: two results of one machine made in the same second (four `predict` runs for different
    workloads, say) are different results, and both count. Files with the same bytes have the same size and the
    same row, so only files that share both are compared, byte by byte: hashing every file would read all of it,
    where the fleet reads a tenth of a GPU's file."""
    rows: list[FleetRow] = []
    skipped: list[SkippedFile] = []
    alike: dict[tuple[Any, ...], list[str]] = {}
    for outcome, size in outcomes:
        if isinstance(outcome, SkippedFile):
            skipped.append(outcome)
            continue
        earlier = alike.setdefault((size, *(getattr(outcome, name) for name in _ROW_BUT_PATH)), [])
        same = next((path for path in earlier if filecmp.cmp(path, outcome.path, shallow=False)), None)
        if same is not None:
            skipped.append(SkippedFile(outcome.path, f"duplicate: same content as {same}"))
        else:
            earlier.append(outcome.path)
            rows.append(outcome)
    return Fleet(rows=tuple(rows), skipped=tuple(skipped))


CSV_COLUMNS = ("path", "hostname", "device", "hardware", "hardware_model", "memory_class", "origin", "status", "created_at", "verdict",
               "speedup", "speedup_low", "speedup_high", "workload", "precision", "engine", "diffusion_tokens_per_s",
               "autoregressive_tokens_per_s", "stream_read_bytes_per_s", "ridge_flop_per_byte",
               "usable_memory_bytes", "fitting_precisions", "reasons", "stream_read_basis", "ridge_basis",
               "usable_memory_basis", "measured_speedup", "measured_scenario")


NO_RESULT = "no result"


def fleet_csv(fleet: Fleet) -> str:
    """One CSV line per readable file; an unavailable number is an empty cell, lists are joined with '; '. A machine
    a fleet run got no result from gets a line too: its name as hostname, status 'no result', the reason."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in fleet.rows:
        writer.writerow(["" if isinstance(value, Unavailable) else "; ".join(value) if isinstance(value, tuple)
                         else value for value in map(row.__getattribute__, CSV_COLUMNS)])
    for failed in fleet.failed:
        writer.writerow([{"hostname": failed.machine, "status": NO_RESULT, "reasons": failed.reason}.get(column, "")
                         for column in CSV_COLUMNS])
    return out.getvalue()


def fleet_json(fleet: Fleet) -> dict[str, Any]:
    """The fleet as JSON: counts by verdict, groups, every row, every skipped file and every machine without a
    result with its reason, and how a fleet run gathered the files."""
    return {
        "files": len(fleet.rows) + len(fleet.skipped),
        "readable": len(fleet.rows),
        "verdict_counts": to_json(fleet.verdict_counts),
        "groups": [{"hardware": g.hardware, "machines": len(g.rows), "verdict_counts": to_json(g.verdict_counts)}
                   for g in fleet.groups],
        "rows": [to_json(row) for row in fleet.rows],
        "skipped": [to_json(s) for s in fleet.skipped],
        "failed": [to_json(f) for f in fleet.failed],
        "run": to_json(fleet.run),
    }


