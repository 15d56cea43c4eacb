"""Two benchmark runs on one device: the second waits, then refuses clearly."""

from __future__ import annotations

import multiprocessing
import tempfile
import time

import pytest
from fakes.users import FailedAsNobody, as_nobody, directory_every_user_reaches, needs_root

from dgprofile.errors import BenchmarkBusyError
from dgprofile.probes.device_lock import exclusive_device, exclusive_devices, lock_path


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


def test_lock_file_is_writable_by_every_user():
    key = f"test-mode-{time.monotonic_ns()}"
    with exclusive_device(key, wait_seconds=0):
        assert lock_path(key).stat().st_mode & 0o777 == 0o666


def test_a_link_planted_at_the_lock_path_is_refused_not_followed(tmp_path):
    key = f"test-link-{time.monotonic_ns()}"
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    lock_path(key).symlink_to(victim)
    with pytest.raises(BenchmarkBusyError, match="cannot open the benchmark lock"):
        with exclusive_device(key, wait_seconds=0):
            pass
    assert victim.read_text() == "keep me"


@pytest.fixture()
def lock_dir_every_user_reaches(monkeypatch):
    with directory_every_user_reaches() as directory:
        monkeypatch.setattr(tempfile, "tempdir", str(directory))
        yield directory


def lock_as_nobody(key: str) -> str:
    """Take the lock as another user: "locked", or the reason it was refused."""
    def take() -> str:
        with exclusive_device(key, wait_seconds=0):
            return "locked"
    try:
        return as_nobody(take)
    except FailedAsNobody as exc:
        return str(exc)


@needs_root
def test_second_user_can_check_after_the_first_user_has(lock_dir_every_user_reaches):
    key = f"test-users-{time.monotonic_ns()}"
    with exclusive_device(key, wait_seconds=0):
        pass
    assert lock_path(key).stat().st_uid == 0
    assert lock_as_nobody(key) == "locked"


@needs_root
def test_read_only_lock_file_left_by_an_older_version_still_locks_for_another_user(lock_dir_every_user_reaches):
    key = f"test-old-file-{time.monotonic_ns()}"
    lock_path(key).write_text("pid 1")
    lock_path(key).chmod(0o644)
    assert lock_as_nobody(key) == "locked"
    with exclusive_device(key, wait_seconds=0):
        assert lock_as_nobody(key).startswith("BenchmarkBusyError: another dgprofile benchmark (pid ")


def test_a_gpu_is_locked_as_the_driver_numbers_it(monkeypatch):
    from dgprofile.probes.device_lock import device_lock_key, requested_lock_keys

    monkeypatch.delenv("HIP_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("ZE_AFFINITY_MASK", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert device_lock_key("cuda:0") == device_lock_key("cuda") == "cuda-gpu-3"
    assert device_lock_key("cuda:1") == "cuda-gpu-1"
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "2")  # ROCm's own variable comes first
    assert device_lock_key("cuda:0") == "cuda-gpu-2"
    monkeypatch.delenv("HIP_VISIBLE_DEVICES")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert requested_lock_keys("cuda:1") == ("cuda-gpu-1",)
    monkeypatch.setenv("ZE_AFFINITY_MASK", "1.0,0")  # an Intel tile, then a whole card
    assert device_lock_key("xpu:0") == "xpu-gpu-1.0" and device_lock_key("xpu:1") == "xpu-gpu-0"
    assert requested_lock_keys("cpu") == ("cpu",)


def test_several_devices_are_taken_all_at_once_or_not_at_all(other_process_holding):
    key, _ = other_process_holding
    free = f"test-free-{time.monotonic_ns()}"
    with pytest.raises(BenchmarkBusyError, match=f"is measuring {key}"):
        with exclusive_devices((free, key), wait_seconds=0):
            pass
    with exclusive_device(free, wait_seconds=0):  # the free one was let go when the other was busy
        pass
    lock_path(free).unlink(missing_ok=True)
