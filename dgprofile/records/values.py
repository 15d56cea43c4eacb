"""Small value types shared by every result section.

Absence is a value: a field that could not be read holds ``Unavailable(reason)``, never ``None``, ``-1`` or
an "N/A" string, so the reason travels with the result file and reaches the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn


@dataclass(frozen=True)
class Unavailable:
    """A value that could not be obtained on this machine, with the reason in words a user can act on."""

    reason: str


def is_available(value: object) -> bool:
    """True when ``value`` is a real value rather than ``Unavailable``."""
    return not isinstance(value, Unavailable)


def unreachable(value: NoReturn) -> NoReturn:
    """The last case of an exhaustive ``match``: the type checker fails wherever a member is left unhandled
    (``typing.assert_never``, which this supports on Python 3.10 too)."""
    raise AssertionError(f"unhandled case: {value!r}")
