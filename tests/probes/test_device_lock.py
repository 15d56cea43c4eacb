"""Two benchmark runs on one device: the second waits, then refuses clearly."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from dgprofile.errors import BenchmarkBusyError
from dgprofile.probes.device_lock import exclusive_device, lock_path


def hold_lock(key: str, ready, release) -> None:
    with exclusive_device(key, wait_seconds=0):
        ready.set()
        release.wait(10)


@pytest.fixture()
def other_process_holding(request):
    key = f"test-{request.node.name}-{time.monotonic_ns()}"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    process = ctx.Process(target=hold_lock, args=(key, ready, release))
    process.start()
    assert ready.wait(10)
    yield key, release
    release.set()
    process.join(10)
    lock_path(key).unlink(missing_ok=True)


def test_second_check_on_the_same_device_refuses_after_waiting(other_process_holding):
    key, _ = other_process_holding
    messages = []
    started = time.monotonic()
    with pytest.raises(BenchmarkBusyError, match=r"another dgprofile benchmark \(pid \d+\) is measuring"):
        with exclusive_device(key, wait_seconds=0.6, on_wait=messages.append):
            pass
    assert time.monotonic() - started >= 0.5
    assert messages and "waiting for another dgprofile benchmark" in messages[0]


def test_second_check_proceeds_once_the_first_finishes(other_process_holding):
    key, release = other_process_holding
    release.set()
    with exclusive_device(key, wait_seconds=10):
        assert lock_path(key).read_text().startswith("pid ")


def test_lock_is_free_again_after_the_block(tmp_path):
    key = f"test-free-{time.monotonic_ns()}"
    with exclusive_device(key, wait_seconds=0):
        pass
    with exclusive_device(key, wait_seconds=0):
        pass
    lock_path(key).unlink(missing_ok=True)
