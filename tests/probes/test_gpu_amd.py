"""The AMD probe against the fake amdsmi scenarios (tests/fakes/amdsmi.py)."""

from __future__ import annotations

import pytest
from fakes import amdsmi as fake

from dgprofile.probes.gpu_amd import architecture_of, probe_amd
from dgprofile.records.machine import AmdGpu, FailedDevice
from dgprofile.records.values import Unavailable

GIB = 1 << 30
MIB = 1 << 20
HOST = {"MemTotal": 124 * GIB, "MemAvailable": 118 * GIB}


def only_gpu(scenario: fake.FakeAmdSmi, meminfo=HOST) -> AmdGpu:
    (gpu,) = probe_amd(scenario, read_host_meminfo=lambda: meminfo, own_pid=1).devices
    assert isinstance(gpu, AmdGpu)
    return gpu


def test_healthy_mi300x() -> None:
    gpu = only_gpu(fake.healthy_mi300x())
    assert (gpu.name, gpu.gfx_target, gpu.architecture) == ("AMD Instinct MI300X", "gfx942", "CDNA 3")
    assert gpu.spec_id == "mi300x" and gpu.compute_units == 304
    assert gpu.memory_class.kind == "discrete"
    assert gpu.memory_class.usable_bytes == (196592 - 283) * MIB
    assert gpu.memory_total_bytes == 196592 * MIB and gpu.memory_free_bytes == (196592 - 283) * MIB
    assert gpu.memory_type == "HBM3" and gpu.memory_bus_width_bits == 8192
    assert gpu.memory_clock_max_hz == 1300e6 and gpu.gfx_clock_max_hz == 2100e6
    assert gpu.theoretical_bandwidth_bytes_per_s == 5.3e12
    assert "amdsmi's peak VRAM bandwidth" in gpu.theoretical_bandwidth_basis
    assert not gpu.bandwidth_disagrees_with_datasheet
    assert (gpu.power_limit_w, gpu.pcie_generation, gpu.pcie_width) == (750, 5, 16)
    assert (gpu.compute_partition, gpu.memory_partition) == ("SPX", "NPS1")
    assert (gpu.driver_version, gpu.amdsmi_version, gpu.rocm_version) == ("6.12.12", "26.0.0", "7.0.0")
    assert gpu.utilization_percent == 0 and gpu.other_processes == ()
    assert gpu.verified_on_hardware is False
    assert gpu.warnings == ()


def test_strix_halo_apu_uses_carve_out_plus_the_gtt_the_host_can_back() -> None:
    gpu = only_gpu(fake.strix_halo())
    assert gpu.name == "AMD Radeon Graphics"  # what ROCm reports on this APU
    assert gpu.spec_id == "strix-halo-395"  # found by gfx1151 and its 40 compute units
    assert gpu.architecture == "RDNA 3.5"
    assert gpu.memory_class.kind == "shared-physical"
    assert "gfx1151 is an APU target" in gpu.memory_class.signals[-1]
    assert gpu.memory_class.usable_bytes == (512 - 90) * MIB + 115 * GIB - 300 * MIB
    assert "GTT limits it" in gpu.memory_class.usable_basis
    assert gpu.theoretical_bandwidth_bytes_per_s == 256e9
    assert "datasheet entry 'strix-halo-395'" in gpu.theoretical_bandwidth_basis
    assert isinstance(gpu.memory_type, Unavailable) and isinstance(gpu.power_limit_w, Unavailable)
    assert any("APU shares the host's DRAM" in w for w in gpu.warnings)


def test_strix_halo_gtt_beyond_free_host_memory_is_capped_by_mem_available() -> None:
    gpu = only_gpu(fake.strix_halo(carve_out=96 * GIB, gtt_total=16 * GIB),
                   meminfo={"MemTotal": 28 * GIB, "MemAvailable": 10 * GIB})
    assert gpu.memory_class.usable_bytes == 96 * GIB - 90 * MIB + 10 * GIB
    assert "MemAvailable limits it" in gpu.memory_class.usable_basis


def test_binned_strix_halo_is_the_8050s_entry() -> None:
    scenario = fake.strix_halo()
    scenario.gpus[0].answers["amdsmi_get_gpu_asic_info"]["num_compute_units"] = 32
    assert only_gpu(scenario).spec_id == "strix-halo-8050s"


def test_unknown_strix_halo_bin_is_not_matched_to_a_wrong_entry() -> None:
    scenario = fake.strix_halo()
    scenario.gpus[0].answers["amdsmi_get_gpu_asic_info"]["num_compute_units"] = 16
    gpu = only_gpu(scenario)
    assert isinstance(gpu.spec_id, Unavailable) and "16 compute units" in gpu.spec_id.reason
    assert isinstance(gpu.theoretical_bandwidth_bytes_per_s, Unavailable)


def test_radeon_without_a_reported_bandwidth_takes_the_datasheet_not_the_controller_clock() -> None:
    gpu = only_gpu(fake.radeon_7900_xtx())
    assert gpu.spec_id == "rx-7900-xtx" and gpu.architecture == "RDNA 3"
    assert gpu.memory_type == "GDDR6" and gpu.memory_clock_max_hz == 1249e6
    assert gpu.theoretical_bandwidth_bytes_per_s == 960e9
    assert isinstance(gpu.library_bandwidth_bytes_per_s, Unavailable)
    assert gpu.memory_class.kind == "discrete"
    (process,) = gpu.other_processes
    assert (process.name, process.pid, process.used_memory_bytes) == ("Xorg", 1850, 180 * MIB)
    assert any("the GPU is busy" in w for w in gpu.warnings)


def test_reported_bandwidth_far_from_the_datasheet_is_replaced_and_flagged() -> None:
    scenario = fake.healthy_mi300x()
    scenario.gpus[0].answers["amdsmi_get_gpu_vram_info"]["vram_max_bandwidth"] = 2662
    gpu = only_gpu(scenario)
    assert gpu.bandwidth_disagrees_with_datasheet and gpu.theoretical_bandwidth_bytes_per_s == 5.3e12
    assert any("disagrees with the datasheet" in w for w in gpu.warnings)


def test_compute_partitions_are_flagged() -> None:
    gpu = only_gpu(fake.mi300x_cpx())
    assert gpu.compute_partition == "CPX" and gpu.compute_units == 38
    assert any("CPX compute partition mode" in w for w in gpu.warnings)


def test_lost_device_is_failed_and_the_other_still_described() -> None:
    first, second = probe_amd(fake.device_lost(), read_host_meminfo=lambda: HOST, own_pid=1).devices
    assert isinstance(first, AmdGpu) and isinstance(second, FailedDevice)
    assert second.vendor == "amd" and "AMDSMI_STATUS_NOT_FOUND" in second.reason


def test_no_gpu_is_a_note() -> None:
    result = probe_amd(fake.FakeAmdSmi([], system=dict(fake.ROCM_7)), read_host_meminfo=lambda: HOST)
    assert result.devices == () and result.notes == ("AMD: amdsmi works but sees no AMD GPU",)


def test_own_process_is_not_another_process() -> None:
    scenario = fake.radeon_7900_xtx()
    assert only_gpu(scenario).other_processes != ()
    (gpu,) = probe_amd(scenario, read_host_meminfo=lambda: HOST, own_pid=1850).devices
    assert isinstance(gpu, AmdGpu) and gpu.other_processes == ()


@pytest.mark.parametrize(("target", "family"), [("gfx942", "CDNA 3"), ("gfx950", "CDNA 4"), ("gfx90a", "CDNA 2"),
                                                 ("gfx1100", "RDNA 3"), ("gfx1151", "RDNA 3.5"),
                                                 ("gfx1201", "RDNA 4"), ("gfx1030", "RDNA 2")])
def test_architecture_families(target: str, family: str) -> None:
    assert architecture_of(target) == family


def test_unknown_architecture_is_unavailable() -> None:
    assert isinstance(architecture_of("gfx7"), Unavailable)


def test_apu_without_gtt_figures_falls_back_to_the_free_carve_out() -> None:
    scenario = fake.strix_halo(carve_out=96 * GIB)
    del scenario.gpus[0].answers["amdsmi_get_gpu_memory_total:GTT"]
    gpu = only_gpu(scenario)
    assert gpu.memory_class.usable_bytes == 96 * GIB - 90 * MIB
    assert gpu.memory_class.usable_basis.startswith("the free BIOS carve-out only")
