"""Per-backend device facts (CUDA, ROCm, XPU) against stand-ins for those torch builds (tests/fakes/torch_builds.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fakes import amdsmi as fake_amdsmi
from fakes import intel_sysfs, machines, torch_builds

from dgprofile.errors import UsageError
from dgprofile.probes import gpu_backends
from dgprofile.probes.bench_matmul import supported_dtypes
from dgprofile.probes.collect import collect_machine
from dgprofile.probes.harness import XpuEventTimer, timer_for
from dgprofile.probes.measure_limits import device_facts
from dgprofile.probes.torch_devices import resolve_device, undrivable_accelerator
from dgprofile.records.values import Unavailable


@pytest.mark.parametrize(("arch", "capability", "fp8", "dtype"), [
    ("gfx942:sramecc+:xnack-", (9, 4), True, "float8_e4m3fnuz"), ("gfx950", (9, 5), True, "float8_e4m3fn"),
    ("gfx1201", (12, 0), True, "float8_e4m3fn"), ("gfx1100", (11, 0), False, "float8_e4m3fn"),
    ("gfx1151", (11, 5), False, "float8_e4m3fn")])
def test_rocm_fp8_follows_the_llvm_target_not_the_capability(arch, capability, fp8, dtype) -> None:
    torch = torch_builds.rocm_torch(gcn_arch=arch, capability=capability)
    assert gpu_backends.is_rocm(torch) and gpu_backends.backend_name(torch, "cuda:0") == "HIP (ROCm)"
    native, reason = gpu_backends.native_fp8(torch, "cuda:0")
    assert native is fp8 and (native or "no fp8 matrix units" in reason)
    assert gpu_backends.fp8_dtype(torch, "cuda:0") == dtype


def test_cuda_fp8_follows_the_compute_capability() -> None:
    assert gpu_backends.native_fp8(torch_builds.cuda_torch(capability=(9, 0)), "cuda:0") == (True, "")
    native, reason = gpu_backends.native_fp8(torch_builds.cuda_torch(capability=(8, 0)), "cuda:0")
    assert not native and "8.0" in reason
    assert gpu_backends.gfx_target(torch_builds.cuda_torch(), "cuda:0") is None


def test_matmul_dtypes_per_backend() -> None:
    assert supported_dtypes(torch_builds.rocm_torch(), "cuda:0")[0] == ("fp32", "bf16", "fp16", "fp8", "int8")
    radeon, notes = supported_dtypes(torch_builds.rocm_torch(gcn_arch="gfx1100", capability=(11, 0)), "cuda:0")
    assert "fp8" not in radeon and any("gfx1100 has no fp8" in n for n in notes)
    assert supported_dtypes(torch_builds.cuda_torch(), "cuda:0")[0] == ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")
    assert supported_dtypes(torch_builds.xpu_torch(), "xpu:0")[0] == ("fp32", "bf16", "fp16")


def test_xpu_timer_uses_xpu_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", torch_builds.xpu_torch())
    timer = timer_for("xpu:0")
    assert isinstance(timer, XpuEventTimer) and timer.name == "xpu-events"
    calls = []
    assert timer.elapsed_seconds(lambda: calls.append(1), 3) == pytest.approx(2.5e-3)
    assert calls == [1, 1, 1]


def test_auto_device_on_rocm_and_xpu_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    amd = collect_machine(seams=machines.seams(tmp_path, amd=fake_amdsmi.healthy_mi300x()))
    monkeypatch.setitem(sys.modules, "torch", torch_builds.rocm_torch())
    assert resolve_device(amd, "auto") == "cuda:0"
    intel = collect_machine(seams=machines.seams(tmp_path, intel=intel_sysfs.arc_b580()))
    monkeypatch.setitem(sys.modules, "torch", torch_builds.xpu_torch())
    assert resolve_device(intel, "auto") == "xpu:0"
    assert resolve_device(intel, "xpu") == "xpu"
    with pytest.raises(UsageError, match="torch sees 1 XPU device"):
        resolve_device(intel, "xpu:3")
    with pytest.raises(UsageError, match="no CUDA device"):
        resolve_device(intel, "cuda")


def test_a_gpu_this_torch_cannot_drive_is_not_replaced_by_the_cpu(tmp_path: Path) -> None:
    amd = collect_machine(seams=machines.seams(tmp_path, amd=fake_amdsmi.strix_halo()))
    reason = undrivable_accelerator(amd, "cpu")
    assert reason is not None and "ROCm build of torch" in reason and "AMD Radeon Graphics" in reason
    intel = collect_machine(seams=machines.seams(tmp_path, intel=intel_sysfs.arc_b580()))
    assert "XPU build of torch" in (undrivable_accelerator(intel, "cpu") or "")
    assert undrivable_accelerator(amd, "cuda:0") is None
    assert undrivable_accelerator(collect_machine(seams=machines.seams(tmp_path)), "cpu") is None


def test_device_facts_come_from_the_amd_record_on_rocm(tmp_path: Path) -> None:
    amd = collect_machine(seams=machines.seams(tmp_path, amd=fake_amdsmi.healthy_mi300x()))
    facts = device_facts(torch_builds.rocm_torch(), "cuda:0", amd)
    assert facts.theoretical_bandwidth_bytes_per_s == 5.3e12 and facts.discrete and facts.sm_count == 304
    # Without the probe's record, HIP's memory clock would undercount HBM3 by 2x: no figure rather than a wrong one.
    bare = device_facts(torch_builds.rocm_torch(), "cuda:0", None)
    assert isinstance(bare.theoretical_bandwidth_bytes_per_s, Unavailable)
    assert "memory controller's clock" in bare.theoretical_bandwidth_bytes_per_s.reason


def test_device_facts_come_from_the_intel_record_on_xpu(tmp_path: Path) -> None:
    intel = collect_machine(seams=machines.seams(tmp_path, intel=intel_sysfs.arc_b580()))
    facts = device_facts(torch_builds.xpu_torch(), "xpu:0", intel)
    assert (facts.name, facts.theoretical_bandwidth_bytes_per_s) == ("Intel(R) Arc(TM) B580 Graphics", 456e9)
    assert facts.sm_count == 20 and facts.free_bytes == 11 << 30 and facts.discrete
    assert isinstance(facts.last_level_cache_bytes, Unavailable)
