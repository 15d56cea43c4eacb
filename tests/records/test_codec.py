"""The generic dataclass <-> JSON codec and the schema derived from the same classes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema
import pytest

from dgprofile.records.codec import DecodeError, from_json, json_schema, to_json
from dgprofile.records.values import Unavailable


class Colour(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Cat:
    kind: Literal["cat"]
    lives: int


@dataclass(frozen=True)
class Dog:
    kind: Literal["dog"]
    good: bool


@dataclass(frozen=True)
class Sample:
    name: str
    rate_bytes_per_s: float | Unavailable
    tags: tuple[str, ...]
    counts: dict[str, int]
    colour: Colour
    pet: Cat | Dog | Unavailable


def sample() -> Sample:
    return Sample(name="x", rate_bytes_per_s=Unavailable("no NVML"), tags=("a", "b"), counts={"k": 3},
                  colour=Colour.BLUE, pet=Dog(kind="dog", good=True))


def test_round_trip_keeps_every_value_and_type():
    data = to_json(sample())
    assert data["rate_bytes_per_s"] == {"unavailable": "no NVML"}
    assert data["pet"] == {"kind": "dog", "good": True}
    assert from_json(Sample, data) == sample()


def test_union_of_dataclasses_is_resolved_by_kind():
    data = to_json(sample()) | {"pet": {"kind": "cat", "lives": 9}}
    assert from_json(Sample, data).pet == Cat(kind="cat", lives=9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tags": "a"}, "$.tags: expected a list"),
        ({"counts": {"k": 1.5}}, "$.counts.k: expected an integer"),
        ({"colour": "green"}, "$.colour: 'green' is not a valid Colour"),
        ({"pet": {"kind": "fish"}}, "$.pet: unknown kind 'fish'"),
        ({"surprise": 1}, "unknown field(s) ['surprise']"),
    ],
)
def test_bad_values_name_the_path(change, message):
    with pytest.raises(DecodeError, match=message.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        from_json(Sample, to_json(sample()) | change)


def test_missing_field_is_an_error():
    data = to_json(sample())
    del data["name"]
    with pytest.raises(DecodeError, match="missing field 'name'"):
        from_json(Sample, data)


def test_nan_is_refused_because_absence_needs_a_reason():
    with pytest.raises(ValueError, match="Unavailable"):
        to_json(Sample(name="x", rate_bytes_per_s=float("nan"), tags=(), counts={}, colour=Colour.RED,
                       pet=Unavailable("none")))


def test_schema_accepts_what_the_codec_writes_and_rejects_strays():
    schema = json_schema(Sample, title="t", schema_id="urn:t")
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(to_json(sample())))
    assert list(validator.iter_errors(to_json(sample()) | {"surprise": 1}))
    assert list(validator.iter_errors(to_json(sample()) | {"rate_bytes_per_s": "N/A"}))


def test_objects_of_any_values_are_taken_as_they_are_and_a_non_object_names_its_path():
    objects = [{"name": "stream-read", "timing": {"median_seconds": 0.5}, "flags": [1, "x"]}]
    decoded = from_json(tuple[dict[str, Any], ...], objects)
    assert decoded == tuple(objects) and decoded[0] is not objects[0]
    with pytest.raises(DecodeError, match=r"^\$\[1\]: expected an object, got list"):
        from_json(tuple[dict[str, Any], ...], [{}, []])


@dataclass(frozen=True)
class Plain:
    label: str
    note: str | Unavailable
    ready: bool
    runs: int
    size_bytes: float
    added_seconds: float | Unavailable
    ratio: float


def plain() -> dict[str, Any]:
    return {"label": "a", "note": "b", "ready": True, "runs": 3, "size_bytes": 1.5, "added_seconds": -2.0, "ratio": -1.0}


def test_plain_fields_checked_in_place_decode_as_their_decoders_do():
    """str, bool and numbers (alone or beside Unavailable) are checked without calling their decoders; what they
    return, and an int where a float belongs, is what the decoders return."""
    assert from_json(Plain, plain()) == Plain("a", "b", True, 3, 1.5, -2.0, -1.0)
    decoded = from_json(Plain, plain() | {"size_bytes": 2, "note": {"unavailable": "none"}})
    assert (decoded.size_bytes, type(decoded.size_bytes), decoded.note) == (2.0, float, Unavailable("none"))


@pytest.mark.parametrize(("change", "message"), [
    ({"label": 1}, "$.label: expected str, got 1"),
    ({"note": 1}, "$.note: expected str, got 1"),
    ({"ready": 1}, "$.ready: expected bool, got 1"),
    ({"runs": True}, "$.runs: expected an integer, got True"),
    ({"runs": 10**19}, "$.runs: 10000000000000000000 is beyond"),
    ({"runs": 1.0}, "$.runs: expected an integer, got 1.0"),
    ({"size_bytes": -1.0}, "$.size_bytes: -1.0 is negative"),
    ({"size_bytes": float("nan")}, "$.size_bytes: nan is not a finite number"),
    ({"size_bytes": float("inf")}, "$.size_bytes: inf is not a finite number"),
    ({"size_bytes": 2.0**61}, "$.size_bytes: 2.305843009213694e+18 is beyond"),
    ({"added_seconds": -1e8}, "$.added_seconds: -100000000.0 is below"),
    ({"ratio": 1e19}, "$.ratio: 1e+19 is beyond 1e+18"),
])
def test_plain_fields_checked_in_place_refuse_what_their_decoders_refuse(change, message):
    with pytest.raises(DecodeError) as raised:
        from_json(Plain, plain() | change)
    assert str(raised.value).startswith(message)
