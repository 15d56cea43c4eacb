"""One benchmark per device at a time: two `check` runs on one GPU would spoil each other's timings.

An advisory ``flock`` on a per-device file in the system temp directory; the lock is released by the kernel when
the process exits, so a crashed run never leaves a stale lock behind. The file is kept (removing a flock file races
with a run waiting on it) and is writable by every user, since the device is shared by every user of the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dgprofile.errors import BenchmarkBusyError

POLL_SECONDS = 0.5
HOLDER_CHARS = 80  # the file is writable by every user: show no more of it than a short note


def lock_path(device_key: str) -> Path:
    """The lock file for one device (a GPU UUID, "cuda:0", "mps" or "cpu")."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", device_key)
    return Path(tempfile.gettempdir()) / f"dgprofile-bench-{safe}.lock"


def _open_lock_file(path: Path) -> int:
    """A descriptor on the lock file, created readable and writable by every user.

    A file left by another user that this one may not write (an older dgprofile made them 0644) is opened read-only:
    ``flock`` works on any descriptor, only the holder note is then not written. Links are never followed, so a
    link planted in the shared temp directory cannot redirect the write to another file.
    """
    while True:
        try:
            try:
                return os.open(path, os.O_RDWR | os.O_NOFOLLOW)
            except FileNotFoundError:
                pass
            except PermissionError:
                return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
            except FileExistsError:
                continue  # another run created it between the two opens
        except OSError as exc:
            raise BenchmarkBusyError(f"cannot open the benchmark lock {path}: {exc.strerror}; if it is a link or "
                                     "not a plain file, remove it") from None
        os.fchmod(descriptor, 0o666)  # open's mode is narrowed by the umask
        return descriptor


def _holder(descriptor: int) -> str:
    note = os.pread(descriptor, HOLDER_CHARS, 0).decode("utf-8", "replace")
    return "".join(c for c in note if c.isprintable()).strip() or "another process"


@contextlib.contextmanager
def exclusive_device(device_key: str, *, wait_seconds: float,
                     on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the device's benchmark lock; wait up to ``wait_seconds`` for another run, then refuse clearly."""
    descriptor = _open_lock_file(lock_path(device_key))
    try:
        deadline = time.monotonic() + wait_seconds
        announced = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(descriptor)
                if time.monotonic() >= deadline:
                    raise BenchmarkBusyError(
                        f"another dgprofile benchmark ({holder}) is measuring {device_key}; two at once would "
                        f"spoil each other's timings. Wait for it, or pass --wait SECONDS") from None
                if on_wait and not announced:
                    on_wait(f"waiting for another dgprofile benchmark ({holder}) on {device_key}")
                    announced = True
                time.sleep(POLL_SECONDS)
        with contextlib.suppress(OSError):  # a read-only descriptor: the lock holds, the note is not written
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(descriptor)
