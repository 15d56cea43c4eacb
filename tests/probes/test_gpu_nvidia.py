"""The NVIDIA probe against named NVML scenarios (tests/fakes/nvml.py)."""

from __future__ import annotations

import pytest
from fakes import nvml as fake

from dgprofile.probes import _nvml
from dgprofile.probes.gpu_nvidia import probe_nvidia
from dgprofile.records.machine import FailedDevice, NvidiaGpu, PeerLink
from dgprofile.records.values import Unavailable

HOST_MEMINFO = {"MemTotal": 128 * 2**30, "MemFree": 9 * 2**30, "MemAvailable": 101 * 2**30}


def probe(scenario: fake.FakeNvml, own_pid: int = 1) -> tuple:
    return probe_nvidia(scenario, read_host_meminfo=lambda: HOST_MEMINFO, own_pid=own_pid).devices


def only_gpu(scenario: fake.FakeNvml) -> NvidiaGpu:
    (gpu,) = probe(scenario)
    assert isinstance(gpu, NvidiaGpu)
    return gpu


def test_healthy_h100_bandwidth_matches_datasheet_and_is_discrete() -> None:
    gpu = only_gpu(fake.healthy_h100())
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.nvml_derived_bandwidth_bytes_per_s == pytest.approx(3352.32e9)
    assert gpu.theoretical_bandwidth_bytes_per_s == gpu.nvml_derived_bandwidth_bytes_per_s
    assert abs(gpu.theoretical_bandwidth_bytes_per_s / 3.35e12 - 1) < 0.02
    assert not gpu.bandwidth_disagrees_with_datasheet
    assert "agrees with datasheet entry 'h100-sxm'" in gpu.theoretical_bandwidth_basis
    assert gpu.spec_id == "h100-sxm"
    assert gpu.memory_total_bytes == 81559 * 2**20
    assert gpu.memory_class.kind == "discrete"
    assert gpu.memory_class.usable_bytes == (81559 - 480) * 2**20
    assert gpu.sm_count == 132
    assert "16896 / 128" in gpu.sm_count_basis
    assert (gpu.driver_version, gpu.cuda_driver_version, gpu.compute_capability) == ("580.159.04", "13.0", "9.0")
    assert gpu.architecture == "Hopper"
    assert gpu.memory_clock_max_hz == 2619e6 and gpu.sm_clock_max_hz == 1980e6
    assert (gpu.power_limit_w, gpu.pcie_generation, gpu.pcie_width) == (700.0, 5, 16)
    assert (gpu.mig_mode, gpu.ecc_mode, gpu.utilization_percent) == ("disabled", "enabled", 0)
    assert gpu.other_processes == ()
    assert gpu.warnings == ()


def test_h200_bandwidth_and_memory() -> None:
    gpu = only_gpu(fake.h200())
    assert gpu.theoretical_bandwidth_bytes_per_s == pytest.approx(4814.304e9)
    assert abs(gpu.theoretical_bandwidth_bytes_per_s / 4.8e12 - 1) < 0.02
    assert gpu.memory_total_bytes == 143771 * 2**20
    assert gpu.spec_id == "h200"
    assert gpu.memory_class.kind == "discrete"


def test_gb10_without_memory_info_is_shared_physical_with_memavailable() -> None:
    gpu = only_gpu(fake.gb10())
    assert gpu.memory_class.kind == "shared-physical"
    assert gpu.memory_class.usable_bytes == HOST_MEMINFO["MemAvailable"]
    assert "MemAvailable" in gpu.memory_class.usable_basis
    assert isinstance(gpu.memory_total_bytes, Unavailable)
    assert "NVML_ERROR_NOT_SUPPORTED" in gpu.memory_total_bytes.reason
    assert isinstance(gpu.nvml_derived_bandwidth_bytes_per_s, Unavailable)
    assert (gpu.spec_id, gpu.theoretical_bandwidth_bytes_per_s) == ("dgx-spark", 273e9)
    assert gpu.theoretical_bandwidth_basis.startswith("datasheet entry 'dgx-spark'")
    assert gpu.sm_count == 48  # 6144 cores / 128 lanes (compute capability 12.1)


def test_old_driver_missing_functions_keeps_what_it_can() -> None:
    gpu = only_gpu(fake.old_driver())
    assert gpu.cuda_driver_version == "11.4"
    for value in (gpu.memory_bus_width_bits, gpu.architecture, gpu.pci_bus_id):
        assert isinstance(value, Unavailable)
        assert "older than the query" in value.reason
    assert gpu.memory_total_bytes == 81559 * 2**20  # from the v1 memory structure
    assert isinstance(gpu.memory_class.usable_bytes, int)
    assert "reserved part" in gpu.memory_class.usable_basis
    # No NVML clock x bus width: the datasheet entry, matched by name, stands in and says so.
    assert gpu.theoretical_bandwidth_bytes_per_s == 3.35e12
    assert gpu.theoretical_bandwidth_basis.startswith("datasheet entry 'h100-sxm'")
    assert isinstance(gpu.sm_count, Unavailable)


def test_gpu_lost_mid_query_fails_only_that_device() -> None:
    first, second = probe(fake.gpu_lost_mid_query())
    assert isinstance(first, NvidiaGpu) and first.index == 0
    assert isinstance(second, FailedDevice)
    assert (second.index, second.vendor) == (1, "nvidia")
    assert "NVML_ERROR_GPU_IS_LOST" in second.reason


def test_mig_enabled_is_flagged() -> None:
    gpu = only_gpu(fake.mig_enabled())
    assert gpu.mig_mode == "enabled"
    assert any("MIG is enabled" in w for w in gpu.warnings)
    assert isinstance(gpu.other_processes, Unavailable)
    assert "NVML_ERROR_NO_PERMISSION" in gpu.other_processes.reason


def test_busy_gpu_lists_other_processes_and_warns() -> None:
    scenario = fake.busy_gpu()
    scenario.gpus[0].answers["nvmlDeviceGetComputeRunningProcesses"].append({"pid": 777, "usedGpuMemory": 1})
    gpu = only_gpu_with_pid(scenario, own_pid=777)
    assert [p.pid for p in gpu.other_processes] == [4242, 5151]
    named, unnamed = gpu.other_processes
    assert named.name == "python3"  # base name only: the path held a user name
    assert named.used_memory_bytes == 70 * 2**30
    assert isinstance(unnamed.name, Unavailable) and isinstance(unnamed.used_memory_bytes, Unavailable)
    assert any("2 other processes use it" in w and "70.0 GiB held" in w and "unreliable" in w for w in gpu.warnings)
    assert any("87% utilised" in w for w in gpu.warnings)


def only_gpu_with_pid(scenario: fake.FakeNvml, own_pid: int) -> NvidiaGpu:
    (gpu,) = probe(scenario, own_pid=own_pid)
    return gpu


def test_bandwidth_disagreeing_with_datasheet_uses_datasheet_and_warns() -> None:
    scenario = fake.healthy_h100()
    scenario.gpus[0].answers["nvmlDeviceGetMemoryBusWidth"] = 2560  # half the bus: NVML says 1676 GB/s
    gpu = only_gpu(scenario)
    assert gpu.bandwidth_disagrees_with_datasheet
    assert gpu.nvml_derived_bandwidth_bytes_per_s == pytest.approx(1676.16e9)
    assert gpu.theoretical_bandwidth_bytes_per_s == 3.35e12
    assert "because 2 x 2619 MHz" in gpu.theoretical_bandwidth_basis
    assert any("dgprofile uses the datasheet figure" in w for w in gpu.warnings)


def test_gpu_missing_from_datasheet_uses_nvml_unchecked() -> None:
    scenario = fake.healthy_h100()
    scenario.gpus[0].answers["nvmlDeviceGetName"] = "NVIDIA Imaginary 9000"
    gpu = only_gpu(scenario)
    assert isinstance(gpu.spec_id, Unavailable)
    assert gpu.theoretical_bandwidth_bytes_per_s == pytest.approx(3352.32e9)
    assert "not checked" in gpu.theoretical_bandwidth_basis


def test_unknown_compute_capability_leaves_sm_count_unavailable() -> None:
    scenario = fake.healthy_h100()
    scenario.gpus[0].answers["nvmlDeviceGetCudaComputeCapability"] = [42, 0]
    gpu = only_gpu(scenario)
    assert isinstance(gpu.sm_count, Unavailable)
    assert "42.0" in gpu.sm_count.reason


def test_mig_attributes_give_sm_count_directly() -> None:
    scenario = fake.healthy_h100()
    scenario.gpus[0].answers["nvmlDeviceGetAttributes"] = {"multiprocessorCount": 16}
    assert only_gpu(scenario).sm_count == 16


def test_handle_failure_becomes_failed_device() -> None:
    scenario = fake.FakeNvml([], system=dict(fake.DRIVER_580))
    scenario.system["nvmlDeviceGetCount"] = 1
    (device,) = probe(scenario)
    assert isinstance(device, FailedDevice)
    assert "NVML_ERROR_INVALID_ARGUMENT" in device.reason


def test_no_gpu_count_gives_a_note_not_a_device() -> None:
    scenario = fake.FakeNvml([], system={"nvmlDeviceGetCount": fake.Fail(_nvml.ERROR_DRIVER_NOT_LOADED)})
    result = probe_nvidia(scenario, read_host_meminfo=lambda: HOST_MEMINFO)
    assert result.devices == ()
    assert result.notes and "cannot count GPUs" in result.notes[0] and "not loaded" in result.notes[0]


@pytest.mark.parametrize("name", sorted(fake.SCENARIOS))
def test_every_scenario_probes_without_raising(name: str) -> None:
    devices = probe(fake.SCENARIOS[name]())
    assert devices
    assert all(isinstance(d, (NvidiaGpu, FailedDevice)) for d in devices)


def test_probe_uses_only_nvml_queries() -> None:
    scenario = fake.healthy_h100()
    probe(scenario)
    assert all(call.startswith(("nvmlDevice", "nvmlSystem")) for call in scenario.calls)


def test_hgx_pair_reports_its_nvlink_links_and_peers() -> None:
    first, second = probe(fake.hgx_h100_pair())
    assert isinstance(first, NvidiaGpu) and isinstance(second, NvidiaGpu)
    assert first.nvlink == second.nvlink
    assert not isinstance(first.nvlink, Unavailable)
    assert (first.nvlink.active_links, first.nvlink.version, first.nvlink.bytes_per_s) == (18, 4, 450e9)
    assert not isinstance(first.peer_links, Unavailable)
    (peer,) = first.peer_links
    assert (peer.peer_index, peer.topology, peer.nvlink, peer.peer_to_peer) == (1, "same NUMA node", True, True)


def test_geforce_pair_has_no_nvlink_and_no_peer_to_peer() -> None:
    first, _ = probe(fake.rtx_3090_pair())
    assert isinstance(first, NvidiaGpu) and first.spec_id == "rtx-3090"
    assert isinstance(first.nvlink, Unavailable) and "no NVLink" in first.nvlink.reason
    assert not isinstance(first.peer_links, Unavailable)
    (peer,) = first.peer_links
    assert (peer.topology, peer.nvlink, peer.peer_to_peer) == ("host bridge", False, False)


def test_one_gpu_has_no_peers_and_says_why_it_has_no_nvlink() -> None:
    gpu = only_gpu(fake.healthy_h100())
    assert isinstance(gpu.peer_links, Unavailable) and "one NVIDIA GPU" in gpu.peer_links.reason
    assert isinstance(gpu.nvlink, Unavailable) and "NVML_ERROR_NOT_SUPPORTED" in gpu.nvlink.reason


def peer_links_of(scenario: fake.FakeNvml) -> dict[tuple[int, int], PeerLink]:
    """Every (GPU, peer) link the probe read, keyed by the two indices."""
    links: dict[tuple[int, int], PeerLink] = {}
    for gpu in probe(scenario):
        assert isinstance(gpu, NvidiaGpu) and not isinstance(gpu.peer_links, Unavailable)
        links.update({(gpu.index, link.peer_index): link for link in gpu.peer_links})
    return links


def test_recorded_h200_pair_is_nvlink_with_the_link_count_unread() -> None:
    """The lent 2x H200 (NV18, common ancestor 30, P2P over NVLink OK): an NVLink path, though NVML was not asked
    where the 18 links lead, so the pair's own link count stays unavailable with that reason."""
    links = peer_links_of(fake.h200_nvlink_pair())
    link = links[(0, 1)]
    assert (link.path, link.common_ancestor_level, link.topology, link.nvlink, link.peer_to_peer) == (
        "nvlink", 30, "host bridge", True, True)
    assert isinstance(link.nvlink_links, Unavailable) and "18 NVLink links" in link.nvlink_links.reason
    assert "NVML_ERROR_NOT_SUPPORTED" in link.nvlink_links.reason


def test_four_gpus_on_nvswitch_reach_each_other_through_all_their_links() -> None:
    links = peer_links_of(fake.hgx_h200_nvswitch_four())
    assert len(links) == 12
    assert {(link.path, link.nvlink_links) for link in links.values()} == {("nvswitch", 18)}
    assert (links[(0, 1)].common_ancestor_level, links[(0, 2)].common_ancestor_level) == (30, 40)


def test_host_bridge_pair_is_a_pcie_path_without_nvlink_links() -> None:
    link = peer_links_of(fake.rtx_3090_pair())[(0, 1)]
    assert (link.path, link.nvlink_links, link.common_ancestor_level, link.peer_to_peer) == (
        "host-bridge", 0, 30, False)


def test_direct_nvlink_bridge_counts_the_links_that_reach_the_peer() -> None:
    """Two GPUs joined by an NVLink bridge: links whose far end is the peer's PCI bus id count, others do not."""
    scenario = fake.h200_nvlink_pair()
    for gpu, peer in ((0, 1), (1, 0)):
        peer_bus = scenario.gpus[peer].answers["nvmlDeviceGetPciInfo"]["busId"]
        for link in range(18):
            scenario.gpus[gpu].answers[f"nvmlDeviceGetNvLinkRemoteDeviceType:{link}"] = 0
            scenario.gpus[gpu].answers[f"nvmlDeviceGetNvLinkRemotePciInfo_v2:{link}"] = {
                "busId": peer_bus.lower() if link < 4 else "00000000:99:00.0"}
    assert peer_links_of(scenario)[(0, 1)].nvlink_links == 4


def test_gpu_whose_topology_call_fails_keeps_its_reason_and_its_peer_still_reads() -> None:
    links = peer_links_of(fake.topology_call_fails())
    broken = links[(1, 0)]
    assert isinstance(broken.path, Unavailable) and "NVML_ERROR_UNKNOWN" in broken.path.reason
    assert isinstance(broken.common_ancestor_level, Unavailable)
    assert isinstance(broken.peer_to_peer, Unavailable)
    healthy = links[(0, 1)]
    assert (healthy.path, healthy.peer_to_peer, healthy.nvlink) == ("host-bridge", True, False)
