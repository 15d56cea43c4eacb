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
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from dgprofile.errors import BenchmarkBusyError

POLL_SECONDS = 0.5
HOLDER_CHARS = 80  # the file is writable by every user: show no more of it than a short note


def lock_path(device_key: str) -> Path:
    """The lock file for one device (a ``device_lock_key``)."""
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


def requested_lock_keys(requested: str) -> tuple[str, ...]:
    """The locks a run on ``requested`` (as given to --device) takes before it probes anything, so that of two runs
    the one started first gets the device. A GPU is named as the driver numbers it (through the visible-devices
    variable, so cuda:0 under ``CUDA_VISIBLE_DEVICES=3`` and cuda:3 are one device); ``auto`` holds every device it
    may pick, until ``HeldLocks.keep_only`` narrows the hold to the one it picked."""
    if requested == "auto":
        if sys.platform == "darwin":
            return ("mps", "cpu")
        return (device_lock_key("cuda:0"), device_lock_key("xpu:0"), "cpu")
    return (device_lock_key(requested),)


# Which variables renumber a torch device kind's GPUs, first found wins. ROCm's HIP reads HIP_VISIBLE_DEVICES and
# CUDA_VISIBLE_DEVICES alike (https://rocm.docs.amd.com/en/latest/conceptual/gpu-isolation.html); Intel's Level
# Zero reads ZE_AFFINITY_MASK (its programming guide, https://spec.oneapi.io/level-zero/latest/core/PROG.html).
# The card's UUID or bus id is locked too once probed, so a numbering missed here still collides.
_VISIBLE_DEVICES = {"cuda": ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"), "xpu": ("ZE_AFFINITY_MASK",)}


def device_lock_key(device: str) -> str:
    """The lock key of one torch device: "cpu", "mps", or "<cuda|xpu>-gpu-<index or id as the driver knows it>"
    ("cuda" covers NVIDIA GPUs and, in ROCm builds of torch, AMD ones)."""
    kind, _, index = device.partition(":")
    if kind not in _VISIBLE_DEVICES:
        return device
    position = int(index) if index else 0  # torch's bare "cuda"/"xpu" is its current device, 0 unless changed
    visible: list[str] = []
    for variable in _VISIBLE_DEVICES[kind]:
        visible = [entry.strip() for entry in os.environ.get(variable, "").split(",") if entry.strip()]
        if visible:
            break
    return f"{kind}-gpu-{visible[position] if position < len(visible) else position}"


class HeldLocks:
    """The benchmark lock files of one run, and which of them it holds; closing a file releases its lock."""

    def __init__(self) -> None:
        self._descriptors: dict[str, int] = {}

    def open(self, key: str) -> None:
        """Open (creating it if needed) the lock file of device ``key``."""
        self._descriptors[key] = _open_lock_file(lock_path(key))

    def lock_every(self) -> tuple[str, str] | None:
        """Take every lock or none: (the busy device, its holder) when one is taken, after undoing the rest."""
        taken: list[int] = []
        for key, descriptor in self._descriptors.items():
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                for done in taken:
                    fcntl.flock(done, fcntl.LOCK_UN)
                return key, _holder(descriptor)
            taken.append(descriptor)
        for descriptor in taken:
            with contextlib.suppress(OSError):  # a read-only descriptor: the lock holds, the note is not written
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"pid {os.getpid()}".encode(), 0)
        return None

    @property
    def keys(self) -> tuple[str, ...]:
        """The devices held."""
        return tuple(self._descriptors)

    def keep_only(self, key: str) -> None:
        """Release every lock but ``key``'s. A key not held (a device "auto" was not expected to pick) is left for
        the caller to take."""
        for other in [k for k in self._descriptors if k != key]:
            os.close(self._descriptors.pop(other))

    def release_all(self) -> None:
        """Release every lock still held."""
        while self._descriptors:
            os.close(self._descriptors.popitem()[1])


@contextlib.contextmanager
def exclusive_devices(device_keys: Sequence[str], *, wait_seconds: float,
                      on_wait: Callable[[str], None] | None = None) -> Iterator[HeldLocks]:
    """Hold the benchmark locks of every device in ``device_keys``; wait up to ``wait_seconds`` for other runs,
    then refuse clearly. All are taken at once (never some while waiting for the rest), so runs cannot deadlock."""
    held = HeldLocks()
    try:
        for key in dict.fromkeys(device_keys):
            held.open(key)
        deadline = time.monotonic() + wait_seconds
        announced = False
        while (busy := held.lock_every()) is not None:
            key, holder = busy
            if time.monotonic() >= deadline:
                raise BenchmarkBusyError(
                    f"another dgprofile benchmark ({holder}) is measuring {key}; two at once would spoil each "
                    f"other's timings. Wait for it, or pass --wait SECONDS")
            if on_wait and not announced:
                on_wait(f"waiting for another dgprofile benchmark ({holder}) on {key}")
                announced = True
            time.sleep(POLL_SECONDS)
        yield held
    finally:
        held.release_all()


@contextlib.contextmanager
def exclusive_device(device_key: str, *, wait_seconds: float,
                     on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold one device's benchmark lock (see ``exclusive_devices``)."""
    with exclusive_devices((device_key,), wait_seconds=wait_seconds, on_wait=on_wait):
        yield
