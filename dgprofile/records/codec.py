"""Turn result dataclasses into JSON values and back, and derive the JSON Schema from the same classes.

One description of the format (the frozen dataclasses) drives serialisation, parsing and the shipped JSON Schema,
so the three cannot drift apart. Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``,
``enum.Enum`` subclasses with string values, ``tuple[T, ...]``, ``dict[str, T]``, nested dataclasses, and unions of
these. ``Unavailable`` is written as ``{"unavailable": "<reason>"}``. A union of several dataclasses must be
discriminated by a ``kind: Literal[...]`` field on each member.

Numbers follow one rule (``number_bounds``), checked on parsing and stated in the schema: every number is finite
and within ``NUMBER_LIMIT`` of zero; a quantity, whose field name ends in its unit (``_bytes``, ``_seconds``,
``_per_s`` ...) or names a speedup, is never negative and never beyond its unit's bound in ``UNIT_BOUNDS``. The
bounds lie a thousand times or more beyond any real machine or run, so only damaged or edited files reach them.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from dgprofile.records.values import Unavailable

T = TypeVar("T")

NUMBER_LIMIT = 1e18
# unit (the end of a field name) -> the largest value a quantity in it may take.
UNIT_BOUNDS: dict[str, float] = {
    "bytes_per_s": 1e16,  # 10 PB/s: over 1000x the fastest memory (HBM3e, 8 TB/s)
    "flops_per_s": 1e19,  # 10 EFLOP/s: over 1000x the densest accelerator rate
    "tokens_per_s": 1e9,  # over 1000x the aggregate rate of any served model
    "flops": NUMBER_LIMIT,
    "bytes": 2.0**60,  # 1 EiB: over 1000x the memory of any single machine
    "seconds": 1e7,  # 116 days: no run or predicted request takes that long
    "s": 1e7,
    "hz": 1e11,
    "w": 1e6,
    "percent": 100.0,
    "speedup": 1e4,
}


def number_bounds(field: str) -> tuple[float, float]:
    """(minimum, maximum) of a number stored in ``field``: a quantity by the unit its name ends in (or a speedup:
    ``speedup``, ``speedup_low``, ``published_speedup``) is 0..its unit's bound; any other number is within
    ``NUMBER_LIMIT`` of zero."""
    words = field.split("_")
    if "speedup" in words:
        return 0.0, UNIT_BOUNDS["speedup"]
    for unit, maximum in UNIT_BOUNDS.items():
        if field == unit or field.endswith("_" + unit):
            return 0.0, maximum
    return -NUMBER_LIMIT, NUMBER_LIMIT


def _check_number(value: float, field: str, path: str) -> None:
    if not math.isfinite(value):
        raise DecodeError(f"{path}: {value!r} is not a finite number")
    low, high = number_bounds(field)
    if not low <= value <= high:
        what = "negative" if value < 0 <= low else f"beyond {high:g}" if value > high else f"below {low:g}"
        raise DecodeError(f"{path}: {value!r} is {what}, not a possible value here")


class DecodeError(ValueError):
    """A JSON value does not match the dataclass it should become; the message names the path."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def fields_of(cls: type) -> list[tuple[str, Any]]:
    """(name, resolved type) for each dataclass field, in declaration order."""
    hints = _hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]


def to_json(value: Any) -> Any:
    """A JSON-ready value (dicts, lists, str, numbers, bools) for a result object."""
    if isinstance(value, Unavailable):
        return {"unavailable": value.reason}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        raise ValueError("NaN is not a value: use Unavailable with a reason")
    return value


def from_json(cls: type[T], data: Any, path: str = "$") -> T:
    """Build ``cls`` from a JSON value, checking types on the way; raises DecodeError naming the path."""
    return cast(T, _decode(cls, data, path, path.rpartition(".")[2]))  # checked every field against cls


def _is_union(tp: Any) -> bool:
    origin = get_origin(tp)
    return origin is Union or origin is types.UnionType


def _decode(tp: Any, data: Any, path: str, field: str = "") -> Any:
    """``data`` as ``tp``; ``field`` is the name of the dataclass field it is stored in (numbers' bounds)."""
    if tp is Any:
        return data
    if _is_union(tp):
        return _decode_union(tp, data, path, field)
    origin = get_origin(tp)
    if origin is Literal:
        if data not in get_args(tp):
            raise DecodeError(f"{path}: {data!r} is not one of {list(get_args(tp))}")
        return data
    if origin in (tuple, list):
        if not isinstance(data, list):
            raise DecodeError(f"{path}: expected a list, got {type(data).__name__}")
        args = get_args(tp)
        item = args[0] if args else Any
        return tuple(_decode(item, v, f"{path}[{i}]", field) for i, v in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise DecodeError(f"{path}: expected an object, got {type(data).__name__}")
        _, val_tp = get_args(tp)
        return {k: _decode(val_tp, v, f"{path}.{k}", field) for k, v in data.items()}
    if isinstance(tp, type) and issubclass(tp, Unavailable):
        if not (isinstance(data, dict) and set(data) == {"unavailable"} and isinstance(data["unavailable"], str)):
            raise DecodeError(f"{path}: expected {{'unavailable': reason}}")
        return Unavailable(data["unavailable"])
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, data, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError as exc:
            raise DecodeError(f"{path}: {data!r} is not a valid {tp.__name__}") from exc
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise DecodeError(f"{path}: expected a number, got {data!r}")
        _check_number(float(data), field, path)
        return float(data)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(f"{path}: expected an integer, got {data!r}")
        _check_number(data, field, path)
        return data
    if tp is bool or tp is str:
        if not isinstance(data, tp):
            raise DecodeError(f"{path}: expected {tp.__name__}, got {data!r}")
        return data
    raise TypeError(f"codec does not support the type {tp!r} at {path}")


def _decode_dataclass(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise DecodeError(f"{path}: expected an object for {cls.__name__}, got {type(data).__name__}")
    kwargs = {}
    known = set()
    for f in dataclasses.fields(cls):
        known.add(f.name)
        if f.name not in data:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise DecodeError(f"{path}: missing field '{f.name}' of {cls.__name__}")
        kwargs[f.name] = _decode(_hints(cls)[f.name], data[f.name], f"{path}.{f.name}", f.name)
    extra = set(data) - known
    if extra:
        raise DecodeError(f"{path}: unknown field(s) {sorted(extra)} in {cls.__name__}")
    return cls(**kwargs)


def _kind_of(cls: type) -> tuple[str, ...] | None:
    hints = _hints(cls)
    kind = hints.get("kind")
    if kind is not None and get_origin(kind) is Literal:
        return get_args(kind)
    return None


def _decode_union(tp: Any, data: Any, path: str, field: str) -> Any:
    members = get_args(tp)
    if isinstance(data, dict) and set(data) == {"unavailable"} and Unavailable in members:
        return _decode(Unavailable, data, path)
    classes = [m for m in members if isinstance(m, type) and dataclasses.is_dataclass(m) and m is not Unavailable]
    if isinstance(data, dict) and len(classes) > 1:
        for cls in classes:
            kinds = _kind_of(cls)
            if kinds is None:
                raise TypeError(f"{cls.__name__} is in a union of dataclasses without a kind Literal field")
            if data.get("kind") in kinds:
                return _decode(cls, data, path)
        raise DecodeError(f"{path}: unknown kind {data.get('kind')!r}")
    errors = []
    for member in members:
        if member is Unavailable:
            continue
        try:
            return _decode(member, data, path, field)
        except DecodeError as exc:
            errors.append(str(exc))
    raise DecodeError(errors[0] if len(errors) == 1 else f"{path}: matches no alternative ({'; '.join(errors)})")


def json_schema(root: type, *, title: str, schema_id: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``root`` and every dataclass it reaches."""
    defs: dict[str, Any] = {}
    root_ref = _schema_for(root, defs)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": title,
    }
    schema.update(root_ref if "$ref" not in root_ref else defs[root.__name__])
    schema["$defs"] = {k: defs[k] for k in sorted(defs) if k != root.__name__}
    return schema


def _schema_for(tp: Any, defs: dict[str, Any], field: str = "") -> dict[str, Any]:
    if tp is Any:
        return {}
    if _is_union(tp):
        return {"anyOf": [_schema_for(m, defs, field) for m in get_args(tp)]}
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (tuple, list):
        args = get_args(tp)
        return {"type": "array", "items": _schema_for(args[0], defs, field) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_for(get_args(tp)[1], defs, field)}
    if isinstance(tp, type) and issubclass(tp, Unavailable):
        defs.setdefault(
            "Unavailable",
            {
                "type": "object",
                "description": "A value that could not be obtained, with the reason.",
                "properties": {"unavailable": {"type": "string"}},
                "required": ["unavailable"],
                "additionalProperties": False,
            },
        )
        return {"$ref": "#/$defs/Unavailable"}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            props = {}
            required = []
            for fname, ftype in fields_of(tp):
                props[fname] = _schema_for(ftype, defs, fname)
                required.append(fname)
            entry: dict[str, Any] = {"type": "object", "properties": props, "required": required,
                                     "additionalProperties": False}
            doc = (tp.__doc__ or "").strip().split("\n")[0]
            if doc and not doc.startswith(f"{name}("):
                entry["description"] = doc
            defs[name] = entry
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int or tp is float:
        low, high = number_bounds(field)
        return {"type": "integer" if tp is int else "number", "minimum": _schema_number(low),
                "maximum": _schema_number(high)}
    if tp is str:
        return {"type": "string"}
    raise TypeError(f"codec cannot describe the type {tp!r}")


def _schema_number(value: float) -> int | float:
    """Whole bounds written as integers (``1e18`` reads as ``1000000000000000000``, which any JSON reader takes)."""
    return int(value) if value.is_integer() else value


__all__ = ["DecodeError", "fields_of", "from_json", "json_schema", "number_bounds", "to_json"]
