"""Turn result dataclasses into JSON values and back, and derive the JSON Schema from the same classes.

One description of the format (the frozen dataclasses) drives serialisation, parsing and the shipped JSON Schema,
so the three cannot drift apart. Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``,
``enum.Enum`` subclasses with string values, ``tuple[T, ...]``, ``dict[str, T]``, nested dataclasses, and unions of
these. ``Unavailable`` is written as ``{"unavailable": "<reason>"}``. A union of several dataclasses must be
discriminated by a ``kind: Literal[...]`` field on each member.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from dgprofile.records.values import Unavailable

T = TypeVar("T")


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
    return cast(T, _decode(cls, data, path))  # _decode checked every field against cls on the way


def _is_union(tp: Any) -> bool:
    origin = get_origin(tp)
    return origin is Union or origin is types.UnionType


def _decode(tp: Any, data: Any, path: str) -> Any:
    if tp is Any:
        return data
    if _is_union(tp):
        return _decode_union(tp, data, path)
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
        return tuple(_decode(item, v, f"{path}[{i}]") for i, v in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise DecodeError(f"{path}: expected an object, got {type(data).__name__}")
        _, val_tp = get_args(tp)
        return {k: _decode(val_tp, v, f"{path}.{k}") for k, v in data.items()}
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
        return float(data)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(f"{path}: expected an integer, got {data!r}")
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
        kwargs[f.name] = _decode(_hints(cls)[f.name], data[f.name], f"{path}.{f.name}")
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


def _decode_union(tp: Any, data: Any, path: str) -> Any:
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
            return _decode(member, data, path)
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


def _schema_for(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if tp is Any:
        return {}
    if _is_union(tp):
        return {"anyOf": [_schema_for(m, defs) for m in get_args(tp)]}
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (tuple, list):
        args = get_args(tp)
        return {"type": "array", "items": _schema_for(args[0], defs) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_for(get_args(tp)[1], defs)}
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
                props[fname] = _schema_for(ftype, defs)
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
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    raise TypeError(f"codec cannot describe the type {tp!r}")


__all__ = ["DecodeError", "fields_of", "from_json", "json_schema", "to_json"]
