"""The result file: one versioned, schema-validated JSON document per run.

``schema_version`` is separate from the tool version and changes only when the format does. Older files are
upgraded through ``MIGRATIONS`` (version n -> n + 1) when loaded; newer files are refused with a clear message.
Writes are atomic (temporary file + rename), so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, get_origin

from dgprofile import __version__
from dgprofile.errors import ResultFileError
from dgprofile.records.codec import DecodeError, fields_of, from_json, json_schema, to_json
from dgprofile.records.limits import Limits
from dgprofile.records.machine import (
    NOT_PROBED_LINKS,
    NOT_PROBED_PATH,
    Accelerator,
    AmdGpu,
    GpuProcess,
    IntelGpu,
    Machine,
    NvidiaGpu,
)
from dgprofile.records.multi_gpu import ONE_GPU_MEASURED, MultiGpuRun
from dgprofile.records.passes import ROOFLINE_NOT_RECORDED, PassTimes
from dgprofile.records.predictions import NO_PASS_FACTORS, Predictions
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import MeasuredRun

SCHEMA_VERSION = 9
FORMAT_NAME: Final = "dgprofile-result"
SCHEMA_ID = "https://dgprofile.invalid/schema/result.schema.json"
SCHEMA_RESOURCE = "result.schema.json"

Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _add_roofline_floors(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2 records each pass's roofline floor; version 1 passes say it was not recorded."""
    passes = document.get("passes")
    if isinstance(passes, dict) and isinstance(passes.get("passes"), list):
        for measurement in passes["passes"]:
            for field in ("roofline_floor_seconds", "fraction_of_roofline_floor"):
                measurement.setdefault(field, {"unavailable": ROOFLINE_NOT_RECORDED.reason})
    return document


_NOT_RECORDED_SETUP = "not recorded: the result was written before dgprofile modelled setup knobs"
# What the model before version 3 assumed for every scenario: the engine's own launch mode, the released
# entropy-bound sampler, thinking off, full-precision logits, plain AR.
_EAGER_ENGINES = ("transformers", "mlx")
# Values of the engine parameters version 3 added, as the model stated them as priors (dgprofile.model.engines);
# the earlier model did not use them.
_ADDED_ENGINE_PARAMETERS = {"mtp_draft_step_fraction": 0.2, "mtp_acceptance": 0.7, "eager_host_factor": 1.0}


def _scenario_setup(scenario: dict[str, Any]) -> None:
    engine = scenario.get("engine")
    scenario.setdefault("execution_mode", "eager" if engine in _EAGER_ENGINES else "cuda-graphs")
    scenario.setdefault("interconnect", {"unavailable": "one GPU: no tensor parallelism"
                                         if scenario.get("gpus", 1) == 1 else _NOT_RECORDED_SETUP})
    scenario.setdefault("sampler", {"kind": "entropy-bound", "value": 0.1})
    scenario.setdefault("thinking", False)
    scenario.setdefault("quantised_logits", False)
    scenario.setdefault("ar_baseline", {"kind": "plain", "draft_tokens": {"unavailable": "plain decoding: no drafter"},
                                        "acceptance": {"unavailable": "plain decoding: no drafter"}})
    scenario.setdefault("weight_format", _NOT_RECORDED_SETUP)


def _pass_estimates(mode: Any) -> None:
    if isinstance(mode, dict):
        for estimate in mode.get("passes", []):
            estimate.setdefault("hardware_seconds", {"unavailable": _NOT_RECORDED_SETUP})
            estimate.setdefault("hardware_basis", _NOT_RECORDED_SETUP)
            estimate.setdefault("engine_added_seconds", {})


def _add_setup_knobs(document: dict[str, Any]) -> dict[str, Any]:
    """Version 3 records the setup of every scenario (execution mode, interconnect, sampler, thinking, logits, AR
    baseline, how the weight format runs), the hardware side of every pass, NVLink topology, the engines'
    MTP and eager parameters and the transfer validation; older files get what the earlier model assumed."""
    machine = document.get("machine")
    if isinstance(machine, dict):
        for device in machine.get("accelerators", []):
            if device.get("kind") == "nvidia-gpu":
                device.setdefault("nvlink", {"unavailable": NOT_PROBED_LINKS.reason})
                device.setdefault("peer_links", {"unavailable": NOT_PROBED_LINKS.reason})
    predictions = document.get("predictions")
    if not isinstance(predictions, dict) or "headline" not in predictions:
        return document
    cells = [predictions["headline"], *predictions.get("matrix", [])]
    for cell in cells:
        _scenario_setup(cell["scenario"])
        _pass_estimates(cell.get("diffusion"))
        _pass_estimates(cell.get("autoregressive"))
    for curve in predictions.get("curves", []):
        _scenario_setup(curve["scenario"])
    ceilings = predictions.get("ceilings")
    if isinstance(ceilings, dict):
        ceilings.setdefault("architecture", {"unavailable": _NOT_RECORDED_SETUP})
        ceilings.setdefault("floor_scale", 1.0)
        ceilings.setdefault("floor_scale_basis", _NOT_RECORDED_SETUP)
        ceilings.setdefault("eager_launch_seconds", {"unavailable": _NOT_RECORDED_SETUP})
        ceilings.setdefault("pass_factors", [])
        ceilings.setdefault("peer_to_peer", True)
        ceilings.setdefault("approximate", {})
    calibration = predictions.get("calibration")
    if isinstance(calibration, dict):
        for engine in calibration.get("engines", []):
            for name, value in _ADDED_ENGINE_PARAMETERS.items():
                engine.setdefault(name, value)
            engine.setdefault("calibrated_mode", "eager" if engine.get("engine") in _EAGER_ENGINES
                              else "cuda-graphs")
        for run in calibration.get("runs", []):
            run.setdefault("ar_baseline", "plain")
        calibration.setdefault("validation", {"unavailable": "not recorded: the result was written before "
                                                             "dgprofile validated transfer"})
    return document


FIRST_DRAFT_REDEFINED = Unavailable(
    "not recorded: the result was written before dgprofile defined the first useful draft by edit distance")


def _needs_with_headroom(document: dict[str, Any]) -> dict[str, Any]:
    """Version 4 counts the engine's activation headroom in every memory need (a need is weights, KV cache and
    buffers divided by the share of memory the engine lets them take), and redefines ``first_draft_s``.

    Versions 2 and 3 kept the headroom apart as usable x (1 - share), so the share is recovered from it exactly; its
    ``first_draft_s`` measured something else (half a canvas accepted) and becomes unavailable."""
    predictions = document.get("predictions")
    if not isinstance(predictions, dict) or not isinstance(predictions.get("memory"), list):
        return document
    share = 1.0
    for fit in predictions["memory"]:
        usable = fit["usable_bytes"]
        share = (usable - fit["activation_headroom_bytes"]) / usable if usable > 0 else 1.0
        without_headroom = fit["diffusion_needed_bytes"]
        fit["diffusion_needed_bytes"] = int(without_headroom / share)
        fit["activation_headroom_bytes"] = fit["diffusion_needed_bytes"] - without_headroom
        fit["autoregressive_needed_bytes"] = int(fit["autoregressive_needed_bytes"] / share)
    for prediction in [predictions.get("headline"), *predictions.get("matrix", ())]:
        for mode in (prediction.get(name) for name in ("diffusion", "autoregressive")):
            if isinstance(mode, dict) and "memory_bytes" in mode:
                mode["memory_bytes"] = int(mode["memory_bytes"] / share)
                mode["first_draft_s"] = {"unavailable": FIRST_DRAFT_REDEFINED.reason}
    return document


def _add_measured_runs(document: dict[str, Any]) -> dict[str, Any]:
    """Version 5 holds the measured runs of `dgprofile verify`; older files have none."""
    document.setdefault("measured_runs", [])
    return document


def _add_server_observations(document: dict[str, Any]) -> dict[str, Any]:
    """Version 6 records what each server of a measured run reported about itself (its own timing, its GPU
    memory); runs of version 5 were made without that, so they load with none."""
    for run in document.get("measured_runs", []):
        if isinstance(run, dict):
            run.setdefault("servers", [])
    return document


_TOPOLOGY_NOT_PROBED = {"unavailable": NOT_PROBED_PATH.reason}
_INTERCONNECT_SOURCES = (("detected", "nvml-topology"), ("datasheet", "datasheet"), ("given", "command-line"))


def _add_multi_gpu(document: dict[str, Any]) -> dict[str, Any]:
    """Version 7 measures several GPUs (``multi_gpu``), tells NVLink paths apart between each pair of GPUs, and
    names where a scenario's link figures come from; version-6 files measured one GPU, read no NVLink paths, and
    took their links from NVML's topology, the datasheet or the command line, as their basis says."""
    document.setdefault("multi_gpu", {"unavailable": ONE_GPU_MEASURED.reason})
    machine = document.get("machine")
    if isinstance(machine, dict):
        for device in machine.get("accelerators", []):
            links = device.get("peer_links") if isinstance(device, dict) else None
            for link in links if isinstance(links, list) else []:
                for field in ("common_ancestor_level", "nvlink_links", "path"):
                    link.setdefault(field, dict(_TOPOLOGY_NOT_PROBED))
    predictions = document.get("predictions")
    if isinstance(predictions, dict):
        scenarios = [cell.get("scenario") for cell in [predictions.get("headline"), *predictions.get("matrix", []),
                                                         *predictions.get("curves", [])] if isinstance(cell, dict)]
        for scenario in scenarios:
            link = scenario.get("interconnect") if isinstance(scenario, dict) else None
            if isinstance(link, dict) and "basis" in link:
                link.setdefault("source", next((source for prefix, source in _INTERCONNECT_SOURCES
                                                if str(link["basis"]).startswith(prefix)), "datasheet"))
    return document


NOT_MEASURED_IN_GRAPHS = Unavailable("not measured: the result was written before dgprofile replayed all-reduces "
                                     "from CUDA graphs")


def _add_graph_all_reduces(document: dict[str, Any]) -> dict[str, Any]:
    """Version 8 also times the all-reduce sweep replayed from CUDA graphs; version-7 runs timed it eagerly only."""
    multi_gpu = document.get("multi_gpu")
    if isinstance(multi_gpu, dict) and "unavailable" not in multi_gpu:
        multi_gpu.setdefault("all_reduce_in_graphs", {"unavailable": NOT_MEASURED_IN_GRAPHS.reason})
    return document


# How version-8 runs named each layer precision's kernels in their methods ("layer elementwise work: bfloat16:
# fused Triton kernels (...); float16: torch ops").
_LAYER_KERNELS_TEXT = re.compile(r"(bfloat16|float16|fp8): (fused|torch ops)")
_PRECISION_OF_LAYER_KEY = {"bfloat16": "bf16", "float16": "fp16", "fp8": "fp8"}


def _add_fused_layers(document: dict[str, Any]) -> dict[str, Any]:
    """Version 9 lists the precisions whose layers ran the fused Triton kernels; earlier runs said it in their
    methods' text, read here."""
    passes = document.get("passes")
    if isinstance(passes, dict) and "unavailable" not in passes:
        text = next((m for m in passes.get("methods", []) if str(m).startswith("layer elementwise work: ")), "")
        passes.setdefault("fused_layers", [_PRECISION_OF_LAYER_KEY[key]
                                           for key, kernels in _LAYER_KERNELS_TEXT.findall(text)
                                           if kernels == "fused"])
    predictions = document.get("predictions")
    ceilings = predictions.get("ceilings") if isinstance(predictions, dict) else None
    if isinstance(ceilings, dict):
        ceilings.setdefault("pass_factors_basis", NO_PASS_FACTORS)
    return document


# MIGRATIONS[n] upgrades a version-n document to version n + 1.
MIGRATIONS: dict[int, Migration] = {1: _add_roofline_floors, 2: _add_setup_knobs, 3: _needs_with_headroom,
                                     4: _add_measured_runs, 5: _add_server_observations, 6: _add_multi_gpu,
                                     7: _add_graph_all_reduces, 8: _add_fused_layers}


def json_error_text(error: json.JSONDecodeError) -> str:
    """Where and why a text is not JSON: 'Expecting value at line 1, column 5'; json's messages that end in
    'starting at' read on into the place ('Unterminated string starting at line 1, column 13')."""
    return f"{error.msg}{' ' if error.msg.endswith(' at') else ' at '}line {error.lineno}, column {error.colno}"


@dataclass(frozen=True)
class RunInfo:
    """How the result came to be: the command, when, and whether it finished."""

    command: tuple[str, ...]
    origin: Literal["measured", "predicted"]
    label: str
    started_at: str
    finished_at: str
    duration_seconds: float
    status: Literal["complete", "incomplete"]
    incomplete_reasons: tuple[str, ...]


@dataclass(frozen=True)
class ResultFile:
    """The whole result file."""

    format: Literal["dgprofile-result"]
    schema_version: int
    tool_version: str
    created_at: str
    run: RunInfo
    machine: Machine | Unavailable
    limits: Limits | Unavailable
    passes: PassTimes | Unavailable
    predictions: Predictions | Unavailable
    measured_runs: tuple[MeasuredRun, ...] = ()
    multi_gpu: MultiGpuRun | Unavailable = ONE_GPU_MEASURED


NOT_MEASURED = Unavailable("not measured in this run")
NOT_PREDICTED = Unavailable("not predicted in this run")


def new_result(*, run: RunInfo, machine: Machine | Unavailable, limits: Limits | Unavailable = NOT_MEASURED,
               passes: PassTimes | Unavailable = NOT_MEASURED,
               predictions: Predictions | Unavailable = NOT_PREDICTED,
               measured_runs: tuple[MeasuredRun, ...] = (),
               multi_gpu: MultiGpuRun | Unavailable = ONE_GPU_MEASURED) -> ResultFile:
    """A result stamped with the current format and tool versions."""
    return ResultFile(format=FORMAT_NAME, schema_version=SCHEMA_VERSION, tool_version=__version__,
                      created_at=run.finished_at, run=run, machine=machine, limits=limits, passes=passes,
                      predictions=predictions, measured_runs=measured_runs, multi_gpu=multi_gpu)


def result_schema() -> dict[str, Any]:
    """The JSON Schema of the current format, derived from the dataclasses."""
    schema = json_schema(ResultFile, title="dgprofile result file", schema_id=SCHEMA_ID)
    schema["properties"]["format"] = {"const": FORMAT_NAME}
    schema["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    return schema


@cache
def shipped_schema() -> dict[str, Any]:
    """The JSON Schema shipped in the package (kept equal to ``result_schema()`` by a test)."""
    text = resources.files("dgprofile.records.schema").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(shipped_schema())


def dumps(result: ResultFile) -> str:
    """The JSON text of a result (sorted keys, indented, for readable diffs)."""
    return json.dumps(to_json(result), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())  # mkstemp makes 0600; result files are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def validated_text(result: ResultFile, *, source: str) -> str:
    """The JSON text of a result, checked against the schema (ResultFileError naming ``source`` otherwise)."""
    text = dumps(result)
    validate_document(json.loads(text), source=source)
    return text


def dump(result: ResultFile, path: Path) -> None:
    """Validate and write a result file atomically."""
    write_atomic(path, validated_text(result, source=str(path)))


def validate_document(document: Any, *, source: str) -> None:
    """Raise ResultFileError with the first schema violation, naming the file and the field.

    Of a value that matches none of a field's alternatives (figures, or unavailable), the alternative that got
    furthest into it speaks (its deepest error: a negative rate, not "not an unavailable value"), and an object or
    list is called "the value", not printed whole.
    """
    error = next(iter(sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))), None)
    if error is None:
        return
    found, nested = [error], list(error.context or ())
    while nested:
        found.append(nested.pop(0))
        nested += found[-1].context or ()
    # Deepest first; at one depth, a broken rule (a minimum) says more than a wrong type or no alternative.
    error = max(found, key=lambda e: (len(e.absolute_path), e.validator not in ("anyOf", "type")))
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    message = error.message
    if isinstance(error.instance, (dict, list)):
        message = message.replace(repr(error.instance), "the value")
    raise ResultFileError(f"{source}: does not match the result schema at {where}: {message[:200]}")


def parse_json(data: str | bytes, *, source: str) -> dict[str, Any]:
    """The top-level object of a result file's text; ResultFileError (naming ``source``) when it is not one.

    Numbers are kept as written (NaN included): the codec refuses non-finite and impossible values by field.
    """
    try:
        document = json.loads(data)
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"{source}: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{source}: not valid JSON, truncated or malformed ({json_error_text(exc)})") from exc
    except RecursionError:  # the parser recurses per level: a file of a million "[" exhausts the stack
        raise ResultFileError(f"{source}: not a result file (nested far deeper than one is)") from None
    if not isinstance(document, dict):
        raise ResultFileError(f"{source}: not a dgprofile result file (top level is not an object)")
    return document


def upgrade(document: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Bring a parsed document to the current schema version through the migration chain."""
    if document.get("format") != FORMAT_NAME:
        raise ResultFileError(f"{source}: not a dgprofile result file (no \"format\": \"{FORMAT_NAME}\")")
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ResultFileError(f"{source}: schema_version is missing or not an integer")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"{source}: schema version {version} is newer than this dgprofile understands ({SCHEMA_VERSION}); "
            "upgrade dgprofile to read it")
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ResultFileError(f"{source}: schema version {version} cannot be upgraded (no migration)")
        document = MIGRATIONS[version](document)
        version += 1
        document["schema_version"] = version
    return document


def loads(text: str | bytes, *, source: str = "<string>") -> ResultFile:
    """Parse, upgrade, validate and decode a result file's text."""
    document = upgrade(parse_json(text, source=source), source=source)
    validate_document(document, source=source)
    try:
        return from_json(ResultFile, document)
    except DecodeError as exc:
        raise ResultFileError(f"{source}: {exc}") from exc


def read_bytes(path: Path) -> bytes:
    """The bytes of an input file; ResultFileError in the one wording every command uses when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read: {unreadable_reason(Path(path), exc)}") from None


def unreadable_reason(path: Path, exc: OSError) -> str:
    """Why ``path`` cannot be read, in words (a link's own problems named as such)."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if isinstance(exc, FileNotFoundError) and path.is_symlink():
        return f"dangling symbolic link (to {os.readlink(path)}, which does not exist)"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "a directory, not a file"
    return exc.strerror or type(exc).__name__


def load(path: Path) -> ResultFile:
    """Read a result file; every problem becomes a one-line ResultFileError naming the file."""
    return loads(read_bytes(path), source=str(path))


SALT_ENVIRONMENT_VARIABLE = "DGPROFILE_ANONYMIZE_SALT"


def anonymize_salt() -> str:
    """The salt for ``--anonymize``: $DGPROFILE_ANONYMIZE_SALT (share it across a fleet so one machine keeps one
    hash), else a random secret kept in the user's config directory, so hashes cannot be reversed by guessing
    common hostnames yet stay stable between runs on this machine."""
    shared = os.environ.get(SALT_ENVIRONMENT_VARIABLE)
    if shared:
        return shared
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "dgprofile"
    path = config / "anonymize-salt"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        salt = secrets.token_hex(16)
        config.mkdir(parents=True, exist_ok=True)
        write_atomic(path, salt + "\n")
        path.chmod(0o600)
        return salt


def salted_hash(value: str, salt: str) -> str:
    """What ``--anonymize`` writes instead of an identifier: the same for one value and one salt."""
    return "anon-" + hashlib.sha256((salt + value).encode()).hexdigest()[:12]


def anonymize(machine: Machine, *, salt: str) -> Machine:
    """The machine with hostname, UUIDs and PCI bus ids replaced by salted hashes (stable for one salt), and other
    processes on its GPUs named by their program alone (their paths can hold a user's name)."""
    accelerators: list[Accelerator] = []

    def hashed(value: str | Unavailable) -> str | Unavailable:
        return salted_hash(value, salt) if isinstance(value, str) else value

    def programs_only(processes: tuple[GpuProcess, ...] | Unavailable) -> tuple[GpuProcess, ...] | Unavailable:
        if isinstance(processes, Unavailable):
            return processes
        return tuple(dataclasses.replace(p, name=Path(p.name).name if isinstance(p.name, str) else p.name)
                     for p in processes)

    for device in machine.accelerators:
        if isinstance(device, (NvidiaGpu, AmdGpu)):
            device = dataclasses.replace(device, uuid=hashed(device.uuid), pci_bus_id=hashed(device.pci_bus_id),
                                         other_processes=programs_only(device.other_processes))
        elif isinstance(device, IntelGpu):  # the xe/i915 drivers expose no UUID
            device = dataclasses.replace(device, pci_bus_id=hashed(device.pci_bus_id),
                                         other_processes=programs_only(device.other_processes))
        accelerators.append(device)
    identity = dataclasses.replace(machine.identity, hostname=salted_hash(machine.identity.hostname, salt),
                                   anonymized=True)
    return dataclasses.replace(machine, identity=identity, accelerators=tuple(accelerators))


def anonymize_result(result: ResultFile, *, salt: str, home_directory: str) -> ResultFile:
    """The result with nothing identifying left: the machine anonymized, and wherever else its hostname, a GPU's
    UUID or PCI bus id, or the user's home directory appears in the text (a note, a failure's message, the
    command line), the hash (or ``~``) in its place."""
    replacements: dict[str, str] = {home_directory: "~"} if len(home_directory) > 1 else {}
    machine = result.machine
    if isinstance(machine, Machine):
        identities = [machine.identity.hostname] + [value for device in machine.accelerators
                                                    if isinstance(device, (NvidiaGpu, AmdGpu, IntelGpu))
                                                    for value in (getattr(device, "uuid", None), device.pci_bus_id)
                                                    if isinstance(value, str)]
        replacements |= {value: salted_hash(value, salt) for value in identities if value}
        result = dataclasses.replace(result, machine=anonymize(machine, salt=salt))
    if not replacements:
        return result
    # Whole words only: a hostname "gpu1" leaves "gpu12" alone.
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(value)}(?![\w-])"
                                  for value in sorted(replacements, key=len, reverse=True)))
    scrubbed: ResultFile = _map_text(result, lambda text: pattern.sub(lambda m: replacements[m.group(0)], text))
    return scrubbed


def _map_text(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to every free-text string in it; closed vocabularies (enums, Literal
    fields) are left as they are."""
    if isinstance(value, enum.Enum):
        return value
    if isinstance(value, str):
        return change(value)
    if isinstance(value, tuple):
        return tuple(_map_text(item, change) for item in value)
    if isinstance(value, dict):
        return {key: _map_text(item, change) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{name: _map_text(getattr(value, name), change)
                                             for name, kind in fields_of(type(value))
                                             if get_origin(kind) is not Literal})
    return value
