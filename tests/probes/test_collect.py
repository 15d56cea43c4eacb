"""collect_machine: every probe runs, a failing one becomes a warning."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from fakes import amdsmi as fake_amdsmi
from fakes import apple, cpu
from fakes import nvml as fake
from fakes.intel_sysfs import FakeDrmFiles

from dgprofile.probes.collect import ProbeSeams, collect_machine
from dgprofile.probes.host_cpu import HostSeams
from dgprofile.records.machine import AppleGpu, FailedDevice, NvidiaGpu
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import spec_by_id

HOST_MEMINFO = {"MemTotal": 128 << 30, "MemAvailable": 100 << 30}


def seams(tmp_path: Path, scenario=None, **changes) -> ProbeSeams:
    @contextlib.contextmanager
    def open_nvml():
        yield scenario if scenario is not None else Unavailable("NVML init: no NVIDIA driver here")

    base = dict(host=cpu.linux_seams(cpu.linux_tree(tmp_path)), open_nvml=open_nvml,
                read_meminfo=lambda: HOST_MEMINFO, hostname=lambda: "gpu-box-7",
                open_amdsmi=fake_amdsmi.opener(fake_amdsmi.NOT_INSTALLED), drm_files=FakeDrmFiles())
    base.update(changes)
    return ProbeSeams(**base)


def test_h100_machine(tmp_path: Path) -> None:
    machine = collect_machine(seams=seams(tmp_path, fake.healthy_h100()))
    (gpu,) = machine.accelerators
    assert isinstance(gpu, NvidiaGpu) and gpu.spec_id == "h100-sxm"
    assert machine.cpu.model == "Intel(R) Xeon(R) Processor @ 2.50GHz"
    assert machine.identity.hostname == "gpu-box-7"
    assert machine.warnings == ()
    assert machine.probe_notes == (
        "AMD: the amdsmi Python bindings are not installed (No module named 'amdsmi')",
        "Intel: no DRM devices to look at (/sys/class/drm cannot be listed (No such file or directory))",
        "Apple: not macOS (Linux); no Apple GPU probed")
    assert 0 < machine.probe_seconds < 2


def test_no_driver_is_a_note_not_a_warning(tmp_path: Path) -> None:
    machine = collect_machine(seams=seams(tmp_path))
    assert machine.accelerators == ()
    assert machine.warnings == ()
    assert "NVIDIA: NVML init: no NVIDIA driver here" in machine.probe_notes


def test_device_warnings_reach_the_machine(tmp_path: Path) -> None:
    machine = collect_machine(seams=seams(tmp_path, fake.busy_gpu()))
    assert any(w.startswith("GPU 0 (NVIDIA H100 80GB HBM3): the GPU is busy") for w in machine.warnings)


def test_lost_gpu_is_failed_device_and_warning(tmp_path: Path) -> None:
    machine = collect_machine(seams=seams(tmp_path, fake.gpu_lost_mid_query()))
    assert [type(d) for d in machine.accelerators] == [NvidiaGpu, FailedDevice]
    assert any("GPU 1 (nvidia) could not be described" in w for w in machine.warnings)


def test_crashing_probes_never_sink_the_run(tmp_path: Path) -> None:
    @contextlib.contextmanager
    def broken_nvml():
        raise RuntimeError("driver exploded")
        yield  # pragma: no cover

    def broken_counts():
        raise OSError("psutil cannot read /proc")

    host = HostSeams(os_name="Linux", arch="x86_64", root=cpu.linux_tree(tmp_path), counts=broken_counts)
    machine = collect_machine(seams=seams(tmp_path / "unused", open_nvml=broken_nvml, host=host))
    assert "NVIDIA GPU probe failed: RuntimeError: driver exploded" in machine.warnings
    assert "CPU probe failed: OSError: psutil cannot read /proc" in machine.warnings
    assert isinstance(machine.cpu.model, Unavailable)
    assert machine.cpu.architecture == "x86_64"
    assert machine.software.python_version  # the later probes still ran


def test_mac(tmp_path: Path) -> None:
    host = HostSeams(os_name="Darwin", arch="arm64", run=apple.runner(apple.M3_MAX), counts=cpu.counts)
    machine = collect_machine(seams=seams(tmp_path, host=host, apple_working_set=lambda: apple.M3_MAX_WORKING_SET))
    (gpu,) = machine.accelerators
    assert isinstance(gpu, AppleGpu) and gpu.spec_id == "m3-max-40gpu"
    assert machine.cpu.theoretical_bandwidth_bytes_per_s == 409.6e9  # the chip's entry, found by the GPU probe
    assert not any(n.startswith("Apple") for n in machine.probe_notes)


def test_this_machine_under_two_seconds() -> None:
    started = time.perf_counter()
    machine = collect_machine()
    assert time.perf_counter() - started < 2
    assert machine.cpu.architecture


@pytest.mark.gpu
def test_real_nvidia_gpus_match_their_datasheet_entry() -> None:
    machine = collect_machine()
    gpus = [d for d in machine.accelerators if isinstance(d, NvidiaGpu)]
    assert gpus, machine.probe_notes
    for gpu in gpus:
        assert isinstance(gpu.spec_id, str), gpu.spec_id
        assert abs(gpu.nvml_derived_bandwidth_bytes_per_s / gpu.datasheet_bandwidth_bytes_per_s - 1) < 0.02
        assert gpu.memory_class.kind == spec_by_id(gpu.spec_id).memory_class
        assert isinstance(gpu.sm_count, int)
    assert machine.probe_seconds < 2
