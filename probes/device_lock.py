"""One benchmark per device at a time: two `check` runs on one GPU would spoil each other's timings.

An advisory ``flock`` on a per-device file in the system temp directory; the lock is released by the kernel when
the process exits, so a crashed run never leaves a stale lock behind.
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


def lock_path(device_key: str) -> Path:
    """The lock file for one device (a GPU UUID, "cuda:0", "mps" or "cpu")."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", device_key)
    return Path(tempfile.gettempdir()) / f"dgprofile-bench-{safe}.lock"


@contextlib.contextmanager
def exclusive_device(device_key: str, *, wait_seconds: float,
                     on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the device's benchmark lock; wait up to ``wait_seconds`` for another run, then refuse clearly."""
    path = lock_path(device_key)
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole block
    try:
        deadline = time.monotonic() + wait_seconds
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = path.read_text().strip() or "another process"
                if time.monotonic() >= deadline:
                    raise BenchmarkBusyError(
                        f"another dgprofile benchmark ({holder}) is measuring {device_key}; two at once would "
                        f"spoil each other's timings. Wait for it, or pass --wait SECONDS") from None
                if on_wait and not announced:
                    on_wait(f"waiting for another dgprofile benchmark ({holder}) on {device_key}")
                    announced = True
                time.sleep(POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
