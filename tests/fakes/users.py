"""Run a piece of a test as the unprivileged user `nobody`, for behaviour that differs for root (CI runs as root).

The test forks, the child drops to `nobody` and runs the function, and its pickled result (or the exception's
type and text) comes back through a pipe. Only root can switch users, so tests using this skip elsewhere; where
they are run without root, root-only behaviour is what the process already sees.
"""

from __future__ import annotations

import os
import pickle
import pwd
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

try:
    NOBODY: pwd.struct_passwd | None = pwd.getpwnam("nobody")
except KeyError:
    NOBODY = None

needs_root = pytest.mark.skipif(os.geteuid() != 0 or NOBODY is None,
                                reason="switching to an unprivileged user needs root and a `nobody` user")


class FailedAsNobody(Exception):
    """The function raised in the child: its type name and message."""


def as_nobody(function: Callable[[], T]) -> T:
    """``function()`` run as `nobody` in a forked child; its exception is raised here as ``FailedAsNobody``."""
    assert NOBODY is not None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        try:
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            outcome: tuple[str, object] = ("value", function())
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            outcome = ("error", f"{type(exc).__name__}: {exc}")
        with os.fdopen(write_end, "wb") as pipe:
            pickle.dump(outcome, pipe)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        kind, value = pickle.load(pipe)
    os.waitpid(pid, 0)
    if kind == "error":
        raise FailedAsNobody(value)
    return value  # type: ignore[return-value]


@contextmanager
def directory_every_user_reaches() -> Iterator[Path]:
    """A sticky, world-writable directory like /tmp; pytest's own temp dirs are private to the user running it."""
    directory = Path(tempfile.mkdtemp(prefix="dgprofile-test-", dir="/tmp"))
    directory.chmod(0o1777)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def open_tree_to_everyone(root: Path) -> None:
    """Make a fake file tree readable by every user (directories traversable), as /proc and /sys are."""
    for path in [root, *root.rglob("*")]:
        extra = stat.S_IRGRP | stat.S_IROTH | (stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0)
        path.chmod(path.stat().st_mode | extra)
