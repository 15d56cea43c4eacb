"""The CPU probe on fake Linux trees, a fake Mac and the py-cpuinfo fallback."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fakes import apple, cpu
from fakes.users import as_nobody, directory_every_user_reaches, needs_root, open_tree_to_everyone

from dgprofile.probes.host_cpu import HostSeams, parse_memory_device, probe_cpu, run_command
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import spec_by_id


def test_xeon_model_flags_l3_numa(tmp_path: Path) -> None:
    info = probe_cpu(cpu.linux_seams(cpu.linux_tree(tmp_path)))
    assert info.model == "Intel(R) Xeon(R) Processor @ 2.50GHz"
    assert info.inference_flags == ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni")
    assert info.l3_cache_bytes == 36608 * 1024
    assert (info.numa_nodes, info.physical_cores, info.logical_cores) == (1, 2, 2)
    assert info.ram_available_bytes == 23 << 30


def test_amx_flags_are_reported(tmp_path: Path) -> None:
    cpuinfo = f"processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: {cpu.SAPPHIRE_RAPIDS_FLAGS}\n"
    info = probe_cpu(cpu.linux_seams(cpu.linux_tree(tmp_path, cpuinfo=cpuinfo)))
    assert {"amx_bf16", "amx_tile", "amx_int8", "avx512_bf16"} <= set(info.inference_flags)


def test_two_socket_l3_is_summed_over_instances(tmp_path: Path) -> None:
    root = cpu.linux_tree(tmp_path, l3=(("0", "105M"), ("1", "105M")), cpus=4, numa_nodes=2)
    info = probe_cpu(cpu.linux_seams(root))
    assert info.l3_cache_bytes == 2 * 105 * 2**20
    assert info.numa_nodes == 2


def test_arm_server_without_model_name(tmp_path: Path) -> None:
    info = probe_cpu(cpu.linux_seams(cpu.linux_tree(tmp_path, cpuinfo=cpu.GRACE_CPUINFO), arch="aarch64"))
    assert info.model == "Arm CPU (implementer 0x41, part 0xd4f)"
    assert info.inference_flags == ("asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2")
    assert info.architecture == "aarch64"


def test_device_tree_model_names_a_board(tmp_path: Path) -> None:
    root = cpu.linux_tree(tmp_path, cpuinfo=cpu.GRACE_CPUINFO)
    (root / "proc/device-tree").mkdir()
    (root / "proc/device-tree/model").write_text("NVIDIA Jetson AGX Orin Developer Kit\x00")
    assert probe_cpu(cpu.linux_seams(root)).model == "NVIDIA Jetson AGX Orin Developer Kit"


def test_no_l3_and_no_smbios_are_unavailable_with_reasons(tmp_path: Path) -> None:
    info = probe_cpu(cpu.linux_seams(cpu.linux_tree(tmp_path, l3=())))
    assert isinstance(info.l3_cache_bytes, Unavailable)
    assert isinstance(info.theoretical_bandwidth_bytes_per_s, Unavailable)
    assert "virtual machines" in info.theoretical_bandwidth_bytes_per_s.reason


def test_smbios_ddr5_modules_give_bandwidth(tmp_path: Path) -> None:
    dimm = cpu.smbios_memory_device(size_mb=32768, width_bits=64, speed=5600, configured=4800)
    empty = cpu.smbios_memory_device(size_mb=0, width_bits=64, speed=0, configured=0)
    root = cpu.linux_tree(tmp_path, memory_devices=(dimm,) * 8 + (empty,) * 8)
    info = probe_cpu(cpu.linux_seams(root))
    assert info.theoretical_bandwidth_bytes_per_s == 8 * 4800e6 * 64 / 8  # 307.2 GB/s, configured speed wins
    assert "8 module(s) x 4800 MT/s x 64-bit" in info.theoretical_bandwidth_basis
    assert "upper bound" in info.theoretical_bandwidth_basis


def test_smbios_extended_speed() -> None:
    dimm = cpu.smbios_memory_device(size_mb=16384, width_bits=64, speed=0xFFFF, configured=0xFFFF,
                                    extended_speed=70000, extended_configured=68000)
    assert parse_memory_device(dimm) == (68000, 64)


def test_smbios_unknown_width_is_skipped() -> None:
    assert parse_memory_device(cpu.smbios_memory_device(size_mb=1024, width_bits=0xFFFF, speed=3200,
                                                        configured=3200)) is None
    assert parse_memory_device(b"\x11\x05") is None


@needs_root
def test_smbios_root_only_tables_read_by_an_unprivileged_user() -> None:
    with directory_every_user_reaches() as shared:
        root = cpu.linux_tree(shared / "machine", memory_devices=(cpu.smbios_memory_device(
            size_mb=1024, width_bits=64, speed=3200, configured=3200),))
        open_tree_to_everyone(root)
        (root / "sys/firmware/dmi/entries/17-0/raw").chmod(0o400)  # as the kernel ships them: root only
        as_user = as_nobody(lambda: probe_cpu(cpu.linux_seams(root)).theoretical_bandwidth_bytes_per_s)
        as_root = probe_cpu(cpu.linux_seams(root)).theoretical_bandwidth_bytes_per_s
    assert isinstance(as_user, Unavailable) and "root" in as_user.reason
    assert as_root == 3200e6 * 8  # root reads the same table


def test_mac_cpu_uses_sysctl_and_the_chip_table() -> None:
    seams = HostSeams(os_name="Darwin", arch="arm64", run=apple.runner(apple.M3_MAX), counts=cpu.counts)
    info = probe_cpu(seams, soc_spec=spec_by_id("m3-max-40gpu"))
    assert info.model == "Apple M3 Max"
    assert info.inference_flags == ("asimd", "asimdhp", "asimddp", "i8mm", "bf16")
    assert info.theoretical_bandwidth_bytes_per_s == 409.6e9
    assert "m3-max-40gpu" in info.theoretical_bandwidth_basis
    assert isinstance(info.l3_cache_bytes, Unavailable) and isinstance(info.numa_nodes, Unavailable)


def test_other_systems_fall_back_to_py_cpuinfo() -> None:
    library = {"brand_raw": "AMD Ryzen 9 7950X 16-Core Processor", "l3_cache_size": 64 << 20,
               "flags": ["avx2", "avx512f", "avx512_bf16", "sse4_2"]}
    seams = HostSeams(os_name="Windows", arch="AMD64", counts=cpu.counts, cpuinfo_library=lambda: library)
    info = probe_cpu(seams)
    assert (info.model, info.l3_cache_bytes) == ("AMD Ryzen 9 7950X 16-Core Processor", 64 << 20)
    assert info.inference_flags == ("avx2", "avx512f", "avx512_bf16")


def test_py_cpuinfo_failure_is_unavailable() -> None:
    def broken():
        raise RuntimeError("cpuid unavailable")

    info = probe_cpu(HostSeams(os_name="FreeBSD", arch="amd64", counts=cpu.counts, cpuinfo_library=broken))
    assert isinstance(info.model, Unavailable) and "cpuid unavailable" in info.model.reason


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="the fast path is Linux's /proc and /sys")
def test_this_machine_is_fast() -> None:
    started = time.perf_counter()
    probe_cpu(HostSeams(os_name=os.uname().sysname, arch=os.uname().machine))
    assert time.perf_counter() - started < 0.5


def test_run_command_reports_failures() -> None:
    assert run_command(["echo", "hi"]) == "hi\n"
    assert isinstance(run_command(["false"]), Unavailable)
    assert "could not run" in run_command(["/nonexistent/tool"]).reason
