"""Turn result dataclasses into JSON values and back, and derive the JSON Schema from the same classes.

One description of the format (the frozen dataclasses) drives serialisation, parsing and the shipped JSON Schema,
so the three cannot drift apart. Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``,
``enum.Enum`` subclasses with string values, ``tuple[T, ...]``, ``dict[str, T]``, nested dataclasses, and unions of
these. ``Unavailable`` is written as ``{"unavailable": "<reason>"}``. A union of several dataclasses must be
discriminated by a ``kind: Literal[...]`` field on each member.

Numbers follow one rule (``number_bounds``), checked on parsing and stated in the schema: every number is finite
and within ``NUMBER_LIMIT`` of zero; a quantity, whose field name ends in its unit (``_bytes``, ``_seconds``,
``_per_s`` ...) or names a speedup, is never negative and never beyond its unit's bound in ``UNIT_BOUNDS``; one
that is added to another (``engine_added_seconds``: an engine faster than the modelled hardware adds less than
nothing) lies within that bound either side of zero. The bounds lie a thousand times or more beyond any real
machine or run, so only damaged or edited files reach them.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from dgprofile.records.values import Unavailable

T = TypeVar("T")
Decoder = Callable[[Any, str], Any]

NUMBER_LIMIT = 1e18
ANY_NUMBER = (-NUMBER_LIMIT, NUMBER_LIMIT)  # the bounds of a number that is not a quantity
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
    ``speedup``, ``speedup_low``, ``published_speedup``) is 0..its unit's bound, or -bound..bound when its name
    says it is ``added`` to another; any other number is within ``NUMBER_LIMIT`` of zero."""
    words = field.split("_")
    if "speedup" in words:
        return 0.0, UNIT_BOUNDS["speedup"]
    for unit, maximum in UNIT_BOUNDS.items():
        if field == unit or field.endswith("_" + unit):
            return (-maximum if "added" in words else 0.0), maximum
    return ANY_NUMBER


def _check_number(value: float, bounds: tuple[float, float], path: str) -> None:
    if not math.isfinite(value):
        raise DecodeError(f"{path}: {value!r} is not a finite number")
    low, high = bounds
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
    decode: Decoder = _decoder(cast(Any, cls), number_bounds(path.rpartition(".")[2]))
    return cast(T, decode(data, path))  # the decoder checked every field against cls on the way


def decoder(tp: Any, field: str = "") -> Decoder:
    """The function ``from_json`` decodes values of ``tp`` stored in a field named ``field`` with (a JSON value and
    its path in, the object out; the field's name bounds its numbers). Looking it up costs more than decoding a
    number with it: to decode many values of one type, look it up once."""
    return _decoder(tp, number_bounds(field))


def _is_union(tp: Any) -> bool:
    origin = get_origin(tp)
    return origin is Union or origin is types.UnionType


@functools.cache
def _decoder(tp: Any, bounds: tuple[float, float]) -> Decoder:
    """The function that decodes JSON values of type ``tp``, whose numbers lie within ``bounds`` (those of the
    field they are stored in: ``number_bounds``), built once per type and bounds: working out what a type is
    costs more than checking a value against it, and a fleet report decodes thousands of files."""
    if tp is Any:
        return _any
    if _is_union(tp):
        return _union_decoder(tp, bounds)
    origin = get_origin(tp)
    if origin is Literal:
        return _literal_decoder(get_args(tp))
    if origin in (tuple, list):
        args = get_args(tp)
        return _sequence_decoder(args[0] if args else Any, bounds)
    if origin is dict:
        return _mapping_decoder(get_args(tp)[1], bounds)
    if isinstance(tp, type) and issubclass(tp, Unavailable):
        return _unavailable
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_decoder(tp)
    if tp is float:
        return _float_decoder(bounds)
    if tp is int:
        return _int_decoder(bounds)
    if tp is bool or tp is str:
        return _instance_decoder(tp)
    raise TypeError(f"codec does not support the type {tp!r}")


class _Lazy:
    """The decoder of a type, built on first use: a dataclass may refer to itself, so the decoders of its fields
    cannot all be built before its own."""

    __slots__ = ("_bounds", "_decoder", "_type")

    def __init__(self, tp: Any, bounds: tuple[float, float]) -> None:
        self._type = tp
        self._bounds = bounds
        self._decoder: Decoder | None = None

    @property
    def decoder(self) -> Decoder:
        if self._decoder is None:
            self._decoder = _decoder(self._type, self._bounds)
        return self._decoder


def _any(data: Any, path: str) -> Any:
    return data


def _float_decoder(bounds: tuple[float, float]) -> Decoder:
    def decode(data: Any, path: str) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise DecodeError(f"{path}: expected a number, got {data!r}")
        number = float(data)
        _check_number(number, bounds, path)
        return number
    return decode


def _int_decoder(bounds: tuple[float, float]) -> Decoder:
    def decode(data: Any, path: str) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(f"{path}: expected an integer, got {data!r}")
        _check_number(data, bounds, path)
        return data
    return decode


def _unavailable(data: Any, path: str) -> Unavailable:
    if not (isinstance(data, dict) and set(data) == {"unavailable"} and isinstance(data["unavailable"], str)):
        raise DecodeError(f"{path}: expected {{'unavailable': reason}}")
    return Unavailable(data["unavailable"])


def _instance_decoder(tp: type) -> Decoder:
    def decode(data: Any, path: str) -> Any:
        if not isinstance(data, tp):
            raise DecodeError(f"{path}: expected {tp.__name__}, got {data!r}")
        return data
    return decode


def _literal_decoder(allowed: tuple[Any, ...]) -> Decoder:
    def decode(data: Any, path: str) -> Any:
        if data not in allowed:
            raise DecodeError(f"{path}: {data!r} is not one of {list(allowed)}")
        return data
    return decode


def _sequence_decoder(item_type: Any, bounds: tuple[float, float]) -> Decoder:
    item = _Lazy(item_type, bounds)

    def decode(data: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(data, list):
            raise DecodeError(f"{path}: expected a list, got {type(data).__name__}")
        decode_item = item.decoder
        return tuple([decode_item(v, f"{path}[{i}]") for i, v in enumerate(data)])
    return decode


def _mapping_decoder(value_type: Any, bounds: tuple[float, float]) -> Decoder:
    value = _Lazy(value_type, bounds)

    def decode(data: Any, path: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise DecodeError(f"{path}: expected an object, got {type(data).__name__}")
        decode_value = value.decoder
        return {k: decode_value(v, f"{path}.{k}") for k, v in data.items()}

    def decode_any(data: Any, path: str) -> dict[str, Any]:
        # Values of any type are taken as they are: no path to build per value (the fleet reads lists of such
        # objects from 10,000 files).
        if not isinstance(data, dict):
            raise DecodeError(f"{path}: expected an object, got {type(data).__name__}")
        return dict(data)
    return decode_any if value_type is Any else decode


def _enum_decoder(tp: type[enum.Enum]) -> Decoder:
    def decode(data: Any, path: str) -> enum.Enum:
        try:
            return tp(data)
        except ValueError as exc:
            raise DecodeError(f"{path}: {data!r} is not a valid {tp.__name__}") from exc
    return decode


def _dataclass_decoder(cls: type) -> Decoder:
    hints = _hints(cls)
    layout = [(f.name, f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
               _Lazy(hints[f.name], number_bounds(f.name))) for f in dataclasses.fields(cls)]
    known = frozenset(name for name, _, _ in layout)
    # The fields' decoders, looked up on the first value decoded (not before: the class may refer to itself),
    # each with the type of the JSON values it returns unchanged (str, bool, or a number within its bounds).
    fields: list[tuple[str, bool, Decoder, type | None, tuple[float, float] | None]] = []

    def decode(data: Any, path: str) -> Any:
        if not isinstance(data, dict):
            raise DecodeError(f"{path}: expected an object for {cls.__name__}, got {type(data).__name__}")
        if not fields:
            fields.extend((name, has_default, field.decoder, *_plain(hints[name], number_bounds(name)))
                          for name, has_default, field in layout)
        kwargs = {}
        for name, has_default, decode_field, plain, bounds in fields:
            if name in data:
                value = data[name]
                # A plain value is checked here, without a call or a path (most fields of a file are plain);
                # anything else, a value that fails the check too, goes through the field's decoder.
                if type(value) is plain and (bounds is None or bounds[0] <= data[name] <= bounds[1]):
                    kwargs[name] = value
                else:
                    kwargs[name] = decode_field(value, f"{path}.{name}")
            elif not has_default:
                raise DecodeError(f"{path}: missing field '{name}' of {cls.__name__}")
        if len(kwargs) != len(data):
            extra = set(data) - known
            if extra:
                raise DecodeError(f"{path}: unknown field(s) {sorted(extra)} in {cls.__name__}")
        return cls(**kwargs)
    return decode


def _plain(tp: Any, bounds: tuple[float, float]) -> tuple[type | None, tuple[float, float] | None]:
    """The JSON type whose values the decoder of ``tp`` returns unchanged, and for a number the bounds it must lie
    within (what that decoder checks: a NaN or an infinity fails them); None for any other type. ``T |
    Unavailable`` returns a plain T unchanged too."""
    if _is_union(tp):
        others = [m for m in get_args(tp) if m is not Unavailable]
        return _plain(others[0], bounds) if len(others) == 1 else (None, None)
    if tp is float or tp is int:
        return tp, bounds
    return (tp, None) if tp is str or tp is bool else (None, None)


def _kind_of(cls: type) -> tuple[str, ...] | None:
    hints = _hints(cls)
    kind = hints.get("kind")
    if kind is not None and get_origin(kind) is Literal:
        return get_args(kind)
    return None


def _union_decoder(tp: Any, bounds: tuple[float, float]) -> Decoder:
    members = get_args(tp)
    may_be_unavailable = Unavailable in members
    alternatives = tuple(_Lazy(m, bounds) for m in members if m is not Unavailable)
    classes = [m for m in members if isinstance(m, type) and dataclasses.is_dataclass(m) and m is not Unavailable]
    kinds: list[tuple[tuple[str, ...], _Lazy]] = []
    if len(classes) > 1:
        for cls in classes:
            cls_kinds = _kind_of(cls)
            if cls_kinds is None:
                raise TypeError(f"{cls.__name__} is in a union of dataclasses without a kind Literal field")
            kinds.append((cls_kinds, _Lazy(cls, bounds)))

    def decode(data: Any, path: str) -> Any:
        if may_be_unavailable and isinstance(data, dict) and len(data) == 1 and "unavailable" in data:
            return _unavailable(data, path)
        if isinstance(data, dict) and kinds:
            kind = data.get("kind")
            member = next((c for values, c in kinds if kind in values), None)
            if member is None:
                raise DecodeError(f"{path}: unknown kind {kind!r}")
            return member.decoder(data, path)
        if len(alternatives) == 1:  # T | Unavailable: T's own message
            return alternatives[0].decoder(data, path)
        errors = []
        for alternative in alternatives:
            try:
                return alternative.decoder(data, path)
            except DecodeError as exc:
                errors.append(str(exc))
        raise DecodeError(errors[0] if len(errors) == 1 else f"{path}: matches no alternative ({'; '.join(errors)})")
    return decode


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


__all__ = ["DecodeError", "Decoder", "decoder", "fields_of", "from_json", "json_schema", "number_bounds", "to_json"]
