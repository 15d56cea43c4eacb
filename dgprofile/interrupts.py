"""Ctrl-C and SIGTERM end a measuring run the same way: it stops, and keeps every measurement that finished.

SIGTERM (what `timeout`, `kill` and job schedulers send) becomes ``Terminated``, a KeyboardInterrupt, while a run
measures, so one path handles both signals. A benchmark that finishes its figures one by one and is interrupted
raises ``Interrupted`` carrying the figures it finished, so the run can keep them.
"""

from __future__ import annotations

import contextlib
import enum
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Generic, TypeVar

from dgprofile.exit_codes import ExitCode

T = TypeVar("T")


class Interruption(enum.Enum):
    """What ended a run early."""

    CTRL_C = "Ctrl-C"
    SIGTERM = "SIGTERM"

    @property
    def exit_code(self) -> ExitCode:
        """The shell's convention: 128 + the signal's number."""
        return ExitCode.INTERRUPTED if self is Interruption.CTRL_C else ExitCode.TERMINATED


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while measuring."""


class Interrupted(KeyboardInterrupt, Generic[T]):
    """A benchmark was interrupted; ``kept`` holds what it had finished, ``interruption`` what stopped it."""

    def __init__(self, kept: T, cause: KeyboardInterrupt) -> None:
        super().__init__(str(cause))
        self.kept = kept
        self.interruption = interruption_of(cause)


def interruption_of(exc: KeyboardInterrupt) -> Interruption:
    """Ctrl-C or SIGTERM, for an interrupt as it reached the run (through any benchmark that kept figures)."""
    if isinstance(exc, Interrupted):
        return exc.interruption
    return Interruption.SIGTERM if isinstance(exc, Terminated) else Interruption.CTRL_C


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM raises ``Terminated`` as Ctrl-C raises KeyboardInterrupt (main thread only: Python
    delivers signals there); the previous handler comes back on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signal_number: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
