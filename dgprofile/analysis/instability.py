"""Unstable measurements of a run, grouped by what went wrong, with advice for the platform they ran on.

A busy machine can flag most measurements of a run for the same reason; one line per reason, naming the
measurements, says it once instead of once per measurement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dgprofile.records.limits import Limits
from dgprofile.records.timing import Timing, flag_advice
from dgprofile.text.units import plural

NAMED_MEASUREMENTS = 3  # a group names this many measurements, then counts the rest


@dataclass(frozen=True)
class UnstableGroup:
    """The measurements one instability flag was raised on, what it said about each, and what to do."""

    code: str
    measurements: tuple[str, ...]
    messages: tuple[str, ...]
    advice: str

    def text(self) -> str:
        """One line: 'stream-read: samples vary by 9.0%, threshold 5.0%; <advice>' for one measurement,
        '3 measurements flagged high-variation (a, b, c): <advice>' for several."""
        if len(self.measurements) == 1:
            return f"{self.measurements[0]}: {self.messages[0]}; {self.advice}"
        named = ", ".join(self.measurements[:NAMED_MEASUREMENTS])
        rest = len(self.measurements) - NAMED_MEASUREMENTS
        return (f"{plural(len(self.measurements), 'measurement')} flagged {self.code} ({named}"
                f"{f' and {rest} more' if rest > 0 else ''}): {self.advice}")


def unstable_groups(timings: Iterable[tuple[str, Timing]]) -> tuple[UnstableGroup, ...]:
    """The flags of named timings, one group per flag code in the order first raised."""
    found: dict[str, tuple[list[str], list[str], str]] = {}
    for name, timing in timings:
        for flag in timing.unstable:
            names, messages, _ = found.setdefault(flag.code, ([], [], flag_advice(flag.code, timing.timer,
                                                                                  flag.advice)))
            names.append(name)
            messages.append(flag.message)
    return tuple(UnstableGroup(code, tuple(names), tuple(messages), advice)
                 for code, (names, messages, advice) in found.items())


def limits_timings(limits: Limits) -> list[tuple[str, Timing]]:
    """Every timing of a limits step, named as its tables name it."""
    return [*((f.name, f.timing) for f in (*limits.bandwidth, *limits.host_transfer)),
            *((m.label, m.timing) for m in limits.matmul), *((x.name, x.timing) for x in limits.latency)]
