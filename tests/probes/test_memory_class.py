"""Memory classes from NVML signals and Apple facts; usable memory and its basis."""

from __future__ import annotations

from pathlib import Path

import pytest

from dgprofile.probes import _nvml
from dgprofile.probes.memory_class import NvidiaMemorySignals, classify_apple, classify_nvidia, read_meminfo
from dgprofile.records.values import Unavailable

GIB = 2**30
NOT_SUPPORTED = _nvml.unavailable_for(_nvml.ERROR_NOT_SUPPORTED, "nvmlDeviceGetMemoryInfo")
NO_NUMA = Unavailable("nvmlDeviceGetNumaNodeId: not supported")
HOST = {"MemTotal": 128 * GIB, "MemFree": 3 * GIB, "MemAvailable": 100 * GIB}


def signals(name: str = "NVIDIA H100 80GB HBM3", *, total=80 * GIB, reserved=GIB // 2, mode=0, c2c=False,
            numa=NO_NUMA) -> NvidiaMemorySignals:
    return NvidiaMemorySignals(name=name, memory_total_bytes=total, memory_reserved_bytes=reserved,
                               addressing_mode=mode, c2c_enabled=c2c, numa_node=numa)


@pytest.mark.parametrize(("case", "given", "kind"), [
    ("discrete H100", signals(), "discrete"),
    ("HMM on x86 is still discrete", signals(mode=1), "discrete"),
    ("GB10: no memory info", signals("NVIDIA GB10", total=NOT_SUPPORTED, reserved=NOT_SUPPORTED, mode=2, c2c=True),
     "shared-physical"),
    ("GH200: HBM plus ATS and C2C", signals("NVIDIA GH200 480GB", total=96 * GIB, mode=2, c2c=True, numa=1),
     "coherent-split"),
    ("Thor: ATS with a carve-out and a shared-memory name", signals("NVIDIA Jetson AGX Thor", mode=2),
     "shared-physical"),
    ("Jetson Orin: addressing mode N/A, name decides",
     signals("Orin (nvgpu)", total=8 * GIB, mode=NOT_SUPPORTED, c2c=NOT_SUPPORTED), "shared-physical"),
    ("GH200 on a driver without addressing mode: name decides",
     signals("NVIDIA GH200 480GB", mode=NOT_SUPPORTED, c2c=NOT_SUPPORTED), "coherent-split"),
])
def test_classification(case: str, given: NvidiaMemorySignals, kind: str) -> None:
    result = classify_nvidia(given, lambda: HOST)
    assert result.kind == kind, case
    assert any(s.startswith("decided by") for s in result.signals)


def test_name_only_decisions_say_so() -> None:
    result = classify_nvidia(signals("Orin (nvgpu)", mode=NOT_SUPPORTED), lambda: HOST)
    assert "decided by name only (last resort): 'Orin'" in result.signals
    assert "addressing mode unknown" in result.signals[1]


def test_shared_physical_uses_memavailable_not_memfree() -> None:
    result = classify_nvidia(signals("NVIDIA GB10", total=NOT_SUPPORTED, reserved=NOT_SUPPORTED), lambda: HOST)
    assert result.usable_bytes == 100 * GIB
    assert "MemAvailable" in result.usable_basis and "MemFree" in result.usable_basis


def test_shared_physical_without_meminfo_is_unavailable() -> None:
    result = classify_nvidia(signals("NVIDIA GB10", total=NOT_SUPPORTED), lambda: Unavailable("not Linux"))
    assert result.usable_bytes == Unavailable("not Linux")


def test_discrete_usable_is_total_minus_reserved() -> None:
    result = classify_nvidia(signals(), lambda: HOST)
    assert result.usable_bytes == 80 * GIB - GIB // 2
    assert "reserved by the driver" in result.usable_basis


def test_coherent_split_counts_only_hbm() -> None:
    result = classify_nvidia(signals("NVIDIA GH200 480GB", total=96 * GIB, reserved=0, mode=2, c2c=True), lambda: HOST)
    assert result.usable_bytes == 96 * GIB
    assert "NVLink-C2C" in result.usable_basis


def test_read_meminfo_parses_kilobytes(tmp_path: Path) -> None:
    path = tmp_path / "meminfo"
    path.write_text("MemTotal:       24684096 kB\nMemFree:        21654616 kB\nMemAvailable:   24256452 kB\n"
                    "HugePages_Total:       0\nHugepagesize:       2048 kB\n")
    info = read_meminfo(path)
    assert info["MemAvailable"] == 24256452 * 1024
    assert info["HugePages_Total"] == 0


def test_read_meminfo_missing_file_is_unavailable(tmp_path: Path) -> None:
    assert isinstance(read_meminfo(tmp_path / "absent"), Unavailable)


def test_apple_uses_recommended_working_set() -> None:
    result = classify_apple(recommended_working_set_bytes=48 * GIB, wired_limit_bytes=0,
                            unified_memory_bytes=64 * GIB)
    assert (result.kind, result.usable_bytes) == ("shared-physical", 48 * GIB)
    assert "recommendedMaxWorkingSetSize" in result.usable_basis


def test_apple_without_torch_falls_back_to_a_hand_set_wired_limit_only() -> None:
    missing = Unavailable("torch is not installed")
    assert classify_apple(recommended_working_set_bytes=missing, wired_limit_bytes=0,
                          unified_memory_bytes=64 * GIB).usable_bytes == missing
    raised = classify_apple(recommended_working_set_bytes=missing, wired_limit_bytes=56 * GIB,
                            unified_memory_bytes=64 * GIB)
    assert raised.usable_bytes == 56 * GIB and "wired_limit_mb" in raised.usable_basis
