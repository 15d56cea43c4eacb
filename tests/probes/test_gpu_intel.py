"""The Intel probe against fake DRM file trees (tests/fakes/intel_sysfs.py), and the host reader on real files."""

from __future__ import annotations

import os
from pathlib import Path

from fakes import intel_sysfs as fake

from dgprofile.probes._drm_sysfs import HostDrmFiles
from dgprofile.probes.gpu_intel import architecture_of, drm_clients, probe_intel
from dgprofile.records.machine import IntelGpu
from dgprofile.records.values import Unavailable

GIB = 1 << 30
HOST = {"MemTotal": 32 * GIB, "MemAvailable": 21 * GIB}


def only_gpu(tree: fake.FakeDrmFiles) -> IntelGpu:
    (gpu,) = probe_intel(tree, read_host_meminfo=lambda: HOST, own_pid=1).devices
    return gpu


def test_arc_b580_is_named_by_its_pci_id() -> None:
    gpu = only_gpu(fake.arc_b580())
    assert (gpu.name, gpu.spec_id, gpu.pci_device_id) == ("Intel Arc B580 12GB", "arc-b580", "8086:e20b")
    assert (gpu.architecture, gpu.driver, gpu.pci_bus_id) == ("Xe2-HPG (Battlemage)", "xe", "0000:03:00.0")
    assert gpu.memory_total_bytes == 12 * GIB
    assert gpu.memory_class.kind == "discrete" and gpu.memory_class.usable_bytes == 12 * GIB
    assert gpu.theoretical_bandwidth_bytes_per_s == 456e9
    assert "no memory clock or bus width" in gpu.theoretical_bandwidth_basis
    assert (gpu.xe_cores, gpu.gt_clock_max_hz, gpu.power_limit_w) == (20, 2850e6, 190.0)
    assert gpu.other_processes == () and gpu.warnings == ()
    assert gpu.verified_on_hardware is False


def test_arc_pro_b70_is_named_from_pci_ids() -> None:
    gpu = only_gpu(fake.arc_pro_b70())
    assert (gpu.name, gpu.spec_id) == ("Intel Arc Pro B70", "arc-pro-b70")
    assert gpu.memory_class.usable_bytes == 32 * GIB and gpu.theoretical_bandwidth_bytes_per_s == 608e9
    assert gpu.xe_cores == 32 and gpu.power_limit_w == 230.0


def test_integrated_gpu_shares_the_host_pool() -> None:
    gpu = only_gpu(fake.lunar_lake_igpu())
    assert gpu.name == "Intel Arc Graphics 130V / 140V"
    assert gpu.architecture == "Xe2-LPG (Lunar Lake)"
    assert gpu.memory_class.kind == "shared-physical"
    assert gpu.memory_class.usable_bytes == 21 * GIB and "MemAvailable" in gpu.memory_class.usable_basis
    assert isinstance(gpu.memory_total_bytes, Unavailable)
    assert isinstance(gpu.theoretical_bandwidth_bytes_per_s, Unavailable)
    assert "CPU's DRAM bandwidth" in gpu.theoretical_bandwidth_basis
    assert isinstance(gpu.power_limit_w, Unavailable)


def test_processes_holding_the_gpu_are_counted_once_per_client() -> None:
    gpu = only_gpu(fake.busy_b580())
    (process,) = gpu.other_processes
    assert (process.pid, process.name) == (4242, "llama-server")
    assert process.used_memory_bytes == 9 * GIB + 2048 * 1024
    assert any("the GPU is busy" in w for w in gpu.warnings)


def test_own_process_is_left_out() -> None:
    assert drm_clients(fake.busy_b580(), own_pid=4242) == {}


def test_i915_card_reads_its_own_files() -> None:
    tree = fake.FakeDrmFiles(files={"/usr/share/hwdata/pci.ids": fake.PCI_IDS})
    fake.card(tree, 0, device_id="e20b", bus_id="0000:03:00.0", driver="i915", rp0_mhz=2400)
    gpu = only_gpu(tree)
    assert gpu.driver == "i915" and gpu.gt_clock_max_hz == 2400e6
    assert isinstance(gpu.memory_total_bytes, Unavailable) and "i915" in gpu.memory_total_bytes.reason
    assert gpu.memory_class.kind == "discrete"  # from its datasheet entry


def test_machines_without_intel_gpus_are_notes() -> None:
    assert probe_intel(fake.no_intel_gpu(), read_host_meminfo=lambda: HOST).notes == (
        "Intel: no GPU driven by xe or i915",)
    assert probe_intel(fake.FakeDrmFiles(), read_host_meminfo=lambda: HOST).notes[0].startswith(
        "Intel: no DRM devices to look at")


def test_unknown_device_is_named_by_its_pci_id() -> None:
    tree = fake.FakeDrmFiles()
    fake.card(tree, 0, device_id="ab12", bus_id="0000:03:00.0", driver="xe", vram_bytes=8 * GIB)
    gpu = only_gpu(tree)
    assert gpu.name == "Intel GPU 8086:ab12" and isinstance(gpu.spec_id, Unavailable)
    assert isinstance(gpu.architecture, Unavailable)
    assert gpu.memory_class.kind == "discrete"


def test_architecture_by_device_id() -> None:
    assert architecture_of("56a0") == "Xe-HPG (Alchemist)"
    assert architecture_of("7d55") == "Xe-LPG (Meteor Lake / Arrow Lake)"


def test_host_reader_on_real_files(tmp_path: Path) -> None:
    (tmp_path / "device").mkdir()
    (tmp_path / "device" / "vendor").write_text("0x8086\n")
    os.symlink(tmp_path / "device", tmp_path / "link")
    files = HostDrmFiles()
    assert files.read_text(str(tmp_path / "link" / "vendor")) == "0x8086\n"
    assert files.list_dir(str(tmp_path)) == ("device", "link")
    assert files.resolve(str(tmp_path / "link")) == str((tmp_path / "device").resolve())
    for missing in (files.read_text(str(tmp_path / "nope")), files.list_dir(str(tmp_path / "nope")),
                    files.resolve(str(tmp_path / "nope"))):
        assert isinstance(missing, Unavailable) and "nope" in missing.reason
