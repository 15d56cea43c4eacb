"""The terminal table of a Machine: every section, aligned, unavailable values with reasons, no raw escapes."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from fakes import amdsmi as fake_amdsmi
from fakes import apple, cpu
from fakes import nvml as fake
from fakes.intel_sysfs import FakeDrmFiles

from dgprofile.probes.collect import ProbeSeams, collect_machine
from dgprofile.probes.host_cpu import HostSeams
from dgprofile.records.machine import Machine
from dgprofile.records.values import Unavailable
from dgprofile.terminal.format_machine import format_machine


def machine_from(tmp_path: Path, scenario: fake.FakeNvml | None = None, host: HostSeams | None = None) -> Machine:
    @contextlib.contextmanager
    def open_nvml():
        yield scenario if scenario is not None else Unavailable("NVML init: no NVIDIA driver here")

    return collect_machine(seams=ProbeSeams(
        host=host or cpu.linux_seams(cpu.linux_tree(tmp_path)), open_nvml=open_nvml,
        read_meminfo=lambda: {"MemAvailable": 100 << 30}, hostname=lambda: "gpu-box-7",
        apple_working_set=lambda: apple.M3_MAX_WORKING_SET, open_amdsmi=fake_amdsmi.opener(fake_amdsmi.NOT_INSTALLED),
        drm_files=FakeDrmFiles()))


def rows(text: str) -> dict[str, str]:
    """'key  value' rows of the indented blocks (the first row wins when a key repeats)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("  ") and not line.startswith("  - "):
            key, _, value = line.strip().partition("  ")
            found.setdefault(key, value.strip())
    return found


def test_h100_table(tmp_path: Path) -> None:
    text = format_machine(machine_from(tmp_path, fake.healthy_h100()))
    assert text.startswith("Machine gpu-box-7, probed in ")
    assert "\nGPU 0: NVIDIA H100 80GB HBM3\n" in text and "\nCPU\n" in text and "\nSoftware\n" in text
    table = rows(text)
    assert table["bandwidth"].startswith("3.35 TB/s (2 x 2619 MHz")
    assert table["memory class"] == "discrete"
    assert table["SMs"].startswith("132 (")
    assert table["power limit"] == "700 W"
    assert table["PCIe"] == "gen 5 x16 (link maximum)"
    assert table["other processes"] == "none"
    assert table["L3 cache"] == "35.8 MiB"
    assert "Warnings" not in text


def test_values_line_up(tmp_path: Path) -> None:
    text = format_machine(machine_from(tmp_path, fake.healthy_h100()))
    block = [line for line in text.splitlines() if line.startswith("  ") and not line.startswith("  - ")]
    starts = {len(line) - len(line.strip().partition("  ")[2].lstrip()) for line in block}
    assert len(starts) == 1


def test_unavailable_values_show_reasons(tmp_path: Path) -> None:
    table = rows(format_machine(machine_from(tmp_path, fake.gb10())))
    assert table["memory"].startswith("unavailable (nvmlDeviceGetMemoryInfo: not supported")
    assert table["memory class"] == "shared-physical"
    assert table["usable memory"].startswith("100 GiB (MemAvailable")
    assert table["DRAM bandwidth"].startswith("unavailable (no SMBIOS")


def test_busy_gpu_warnings_and_processes(tmp_path: Path) -> None:
    text = format_machine(machine_from(tmp_path, fake.busy_gpu()))
    assert rows(text)["other processes"] == "python3 (pid 4242, 70.0 GiB), unnamed (pid 5151, memory unknown)"
    warnings = text.split("\nWarnings\n", 1)[1]
    assert "  - GPU 0 (NVIDIA H100 80GB HBM3): the GPU is busy" in warnings


def test_failed_device_section(tmp_path: Path) -> None:
    text = format_machine(machine_from(tmp_path, fake.gpu_lost_mid_query()))
    assert "GPU 1: nvidia device that could not be described" in text
    assert "NVML_ERROR_GPU_IS_LOST" in text


def test_mac_table(tmp_path: Path) -> None:
    host = HostSeams(os_name="Darwin", arch="arm64", run=apple.runner(apple.M3_MAX), counts=cpu.counts)
    text = format_machine(machine_from(tmp_path, host=host))
    assert "GPU 0: Apple M3 Max (40-core GPU)" in text
    table = rows(text)
    assert table["bandwidth"].startswith("410 GB/s (datasheet entry 'm3-max-40gpu'")
    assert table["verified on hardware"] == "no"
    assert table["GPU working set"] == "48.0 GiB"


def test_no_accelerators_says_so_and_shows_notes(tmp_path: Path) -> None:
    text = format_machine(machine_from(tmp_path))
    assert rows(text)["found"] == "none (see notes)"
    assert "  - NVIDIA: NVML init: no NVIDIA driver here" in text.split("\nNotes\n", 1)[1]


def test_hostile_names_cannot_reach_the_terminal(tmp_path: Path) -> None:
    scenario = fake.healthy_h100()
    scenario.gpus[0].answers["nvmlDeviceGetName"] = "NVIDIA \x1b[2J\x1b]0;pwned\x07H100"
    machine = machine_from(tmp_path, scenario)
    machine = dataclasses.replace(machine, identity=dataclasses.replace(machine.identity, hostname="box\x1b[31m"))
    text = format_machine(machine)
    assert "\x1b" not in text and "\x07" not in text
    assert "GPU 0: NVIDIA ?[2J?]0;pwned?H100" in text


def test_nvlink_pair_shows_its_links_and_peers(tmp_path: Path) -> None:
    text = format_machine(machine_from(tmp_path, fake.hgx_h100_pair()))
    assert "18 links, NVLink 4, 450 GB/s per direction" in text
    assert "GPU 1: same NUMA node, NVLink, peer-to-peer" in text


def test_geforce_pair_shows_no_peer_to_peer(tmp_path: Path) -> None:
    text = format_machine(machine_from(tmp_path, fake.rtx_3090_pair()))
    assert "GPU 1: host bridge, no NVLink, no peer-to-peer" in text
