"""The measured run's order: the device lock is taken before probing, so the run started first measures."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import result_factory as factory

import dgprofile.app.runner as runner
from dgprofile.errors import BenchmarkBusyError

OPTIONS = runner.MeasureOptions(device="cpu", limits_only=True)


def probe_taking(seconds: float):
    def slow_probe():
        time.sleep(seconds)
        return factory.machine()
    return slow_probe


def holding_the_device(*args, **kwargs):
    """Stands in for the limits step (no torch work: a forked child must not touch torch's thread pools)."""
    time.sleep(2.0)
    raise RuntimeError("not measured in this test")


def measure_with_slow_probe(seconds: float, outcome) -> None:
    runner.probe_machine = probe_taking(seconds)
    try:
        runner.run_bench(OPTIONS, command=("dgprofile", "bench"), progress=lambda message: None)
        outcome.put("measured")
    except BenchmarkBusyError:
        outcome.put("refused")


def test_of_two_runs_started_0_3_s_apart_the_earlier_measures_though_its_probe_is_slower(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dgprofile.probes.measure_limits.measure_limits", holding_the_device)
    context = multiprocessing.get_context("fork")
    outcome = context.Queue()
    earlier = context.Process(target=measure_with_slow_probe, args=(1.5, outcome))
    earlier.start()
    try:
        time.sleep(0.3)
        monkeypatch.setattr(runner, "probe_machine", probe_taking(0.0))
        with pytest.raises(BenchmarkBusyError, match="another dgprofile benchmark .* is measuring cpu"):
            runner.run_bench(OPTIONS, command=("dgprofile", "bench"), progress=lambda message: None)
        assert outcome.get(timeout=30) == "measured"
    finally:
        earlier.join(30)
        if earlier.is_alive():
            earlier.kill()


def test_auto_holds_every_device_it_may_pick_only_until_it_has_picked_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from dgprofile.probes import device_lock

    held: list[tuple[str, ...]] = []
    real_keep_only = device_lock.HeldLocks.keep_only

    def keep_only(self, key):
        held.append(self.keys)
        real_keep_only(self, key)
        held.append(self.keys)

    def not_measured_here(*args, **kwargs):
        raise RuntimeError("not measured in this test")

    monkeypatch.setattr(device_lock.HeldLocks, "keep_only", keep_only)
    monkeypatch.setattr(device_lock.sys, "platform", "linux")
    for variable in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(runner, "probe_machine", probe_taking(0.0))
    monkeypatch.setattr("dgprofile.probes.torch_devices.resolve_device", lambda machine, requested: "cpu")
    monkeypatch.setattr("dgprofile.probes.measure_limits.measure_limits", not_measured_here)
    runner.run_bench(runner.MeasureOptions(device="auto", limits_only=True), command=("dgprofile", "bench"),
                     progress=lambda message: None)
    assert held == [("cuda-gpu-0", "xpu-gpu-0", "cpu"), ("cpu",)]


def test_a_card_another_container_measures_under_another_number_is_refused_by_its_uuid(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two containers sharing /tmp may both call one card cuda:0 (or call two cards cuda:0): once probed, the run
    also locks the card's UUID, so the card is measured by one run at a time whatever it is numbered."""
    from dgprofile.probes.device_lock import exclusive_device

    machine = factory.machine()
    (gpu,) = machine.accelerators
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("HIP_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(runner, "probe_machine", lambda: machine)
    monkeypatch.setattr("dgprofile.probes.torch_devices.resolve_device", lambda machine, requested: "cuda:0")
    monkeypatch.setattr("dgprofile.probes.measure_limits.measure_limits", holding_the_device)
    with exclusive_device(gpu.uuid, wait_seconds=0), \
            pytest.raises(BenchmarkBusyError, match=f"is measuring {gpu.uuid}"):
        runner.run_bench(runner.MeasureOptions(device="cuda:0", limits_only=True), command=("dgprofile", "bench"),
                         progress=lambda message: None)


def test_verify_and_check_hold_the_same_locks_for_a_gpu_with_or_without_a_uuid(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # verify once locked a GPU without a UUID as "cuda:0" while check held "cuda-gpu-0": both could measure at once.
    import dataclasses

    from dgprofile.records.values import Unavailable

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("HIP_VISIBLE_DEVICES", raising=False)
    gpu = factory.nvidia_gpu()
    with_uuid = factory.machine(accelerators=(gpu,))
    without = factory.machine(accelerators=(dataclasses.replace(gpu, uuid=Unavailable("MIG hides it")),))
    assert runner.device_lock_keys(with_uuid, "cuda:0") == ("cuda-gpu-0", gpu.uuid)
    assert runner.device_lock_keys(without, "cuda:0") == ("cuda-gpu-0",)
    assert runner.device_lock_keys(with_uuid, "cpu") == ("cpu",)


@pytest.mark.parametrize(("options", "driver", "spawned"), [
    (runner.MeasureOptions(device="auto", quick=True), True, True),
    (runner.MeasureOptions(device="cuda:1"), True, True),
    (runner.MeasureOptions(device="auto"), False, False),  # no NVIDIA driver: nothing to compile for
    (runner.MeasureOptions(device="cpu"), True, False),
    (runner.MeasureOptions(device="mps"), True, False),
    (runner.MeasureOptions(device="auto", limits_only=True), True, False),  # no decode passes
])
def test_compile_workers_start_before_the_probe_only_where_decode_passes_may_run_on_an_nvidia_gpu(
        monkeypatch, tmp_path, options, driver, spawned):
    pytest.importorskip("torch")
    from dgprofile.probes.decode import precompile

    driver_file = tmp_path / "version"
    if driver:
        driver_file.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04\n")
    monkeypatch.setattr(runner, "NVIDIA_DRIVER_FILE", driver_file)
    calls: list[bool] = []
    monkeypatch.setattr(precompile, "spawn", lambda *, quick: calls.append(quick) or "workers")
    assert (runner._spawn_compile_workers(options) == "workers") == spawned
    assert calls == ([options.quick] if spawned else [])
