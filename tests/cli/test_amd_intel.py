"""AMD and Intel machines end to end through the CLI, with fakes at the hardware seams (amdsmi, DRM sysfs).

`probe` must show the right device, memory class, usable memory and bandwidth for each named scenario; `check`
must pick the platform's engine and give the GPU's verdict, never the CPU's, on a machine with a supported GPU.
This machine's torch has no ROCm or XPU backend, so `check` predicts from the GPU's datasheet entry and says why
it measured nothing (the path of a user whose torch build does not match their GPU).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from fakes import amdsmi as fake_amdsmi
from fakes import intel_sysfs, machines

from dgprofile.cli import cli
from dgprofile.probes import collect
from dgprofile.records import results
from dgprofile.records.machine import AmdGpu, FailedDevice, IntelGpu
from dgprofile.records.predictions import Predictions
from dgprofile.records.values import Unavailable
from dgprofile.text.units import bytes_text

GIB = 1 << 30
MIB = 1 << 20


@dataclass(frozen=True)
class Scenario:
    name: str
    amd: object = None
    intel: object = None
    device: str = ""
    memory_class: str = ""
    usable_bytes: int = 0
    bandwidth: str = ""
    engine: str = ""
    spec_id: str = ""


SCENARIOS = [
    Scenario("healthy-mi300x", amd=fake_amdsmi.healthy_mi300x, device="AMD Instinct MI300X",
             memory_class="discrete", usable_bytes=(196592 - 283) * MIB, bandwidth="5.30 TB/s", engine="vllm",
             spec_id="mi300x"),
    Scenario("strix-halo", amd=fake_amdsmi.strix_halo, device="AMD Radeon Graphics", memory_class="shared-physical",
             usable_bytes=(512 - 90) * MIB + 115 * GIB - 300 * MIB, bandwidth="256 GB/s", engine="llama.cpp",
             spec_id="strix-halo-395"),
    Scenario("radeon-7900-xtx", amd=fake_amdsmi.radeon_7900_xtx, device="AMD Radeon RX 7900 XTX",
             memory_class="discrete", usable_bytes=(24560 - 1120) * MIB, bandwidth="960 GB/s", engine="llama.cpp",
             spec_id="rx-7900-xtx"),
    Scenario("arc-b580", intel=intel_sysfs.arc_b580, device="Intel Arc B580 12GB", memory_class="discrete",
             usable_bytes=12 * GIB, bandwidth="456 GB/s", engine="llama.cpp", spec_id="arc-b580"),
    Scenario("arc-pro-b70", intel=intel_sysfs.arc_pro_b70, device="Intel Arc Pro B70", memory_class="discrete",
             usable_bytes=32 * GIB, bandwidth="608 GB/s", engine="llama.cpp", spec_id="arc-pro-b70"),
    Scenario("device-lost", amd=fake_amdsmi.device_lost, device="AMD Instinct MI300X", memory_class="discrete",
             usable_bytes=(196592 - 283) * MIB, bandwidth="5.30 TB/s", engine="vllm", spec_id="mi300x"),
]


def section_rows(output: str, title: str) -> dict[str, str]:
    """The "key  value" rows of one titled block of `probe`'s table."""
    lines = output.splitlines()
    start = lines.index(title) + 1
    rows: dict[str, str] = {}
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        key, value = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        rows.setdefault(key, value)
    return rows


def use_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scenario: Scenario) -> None:
    seams = machines.seams(tmp_path, amd=scenario.amd() if scenario.amd else None,
                           intel=scenario.intel() if scenario.intel else None)
    monkeypatch.setattr(collect, "default_seams", lambda: seams)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_probe_shows_device_memory_class_usable_memory_and_bandwidth(
        scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_machine(monkeypatch, tmp_path, scenario)
    text = CliRunner().invoke(cli, ["probe"])
    assert text.exit_code == 0, text.output
    rows = section_rows(text.output, f"GPU 0: {scenario.device}")
    assert rows["memory class"] == scenario.memory_class
    assert rows["usable memory"].startswith(f"{bytes_text(scenario.usable_bytes)} (")
    assert rows["bandwidth"].startswith(f"{scenario.bandwidth} (")
    assert rows["verified on hardware"] == "no"

    document = json.loads(CliRunner().invoke(cli, ["probe", "--json"]).output)
    gpu = document["accelerators"][0]
    assert gpu["memory_class"]["kind"] == scenario.memory_class
    assert gpu["memory_class"]["usable_bytes"] == scenario.usable_bytes
    assert gpu["spec_id"] == scenario.spec_id and gpu["verified_on_hardware"] is False


def test_a_lost_second_gpu_is_reported_and_the_first_still_described(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_machine(monkeypatch, tmp_path, SCENARIOS[-1])
    path = tmp_path / "probe.json"
    result = CliRunner().invoke(cli, ["probe", "-o", str(path)])
    assert "GPU 1: amd device that could not be described" in result.output
    first, second = results.load(path).machine.accelerators
    assert isinstance(first, AmdGpu) and isinstance(second, FailedDevice)


def test_driver_missing_is_a_note_and_the_machine_is_cpu_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seams = machines.seams(tmp_path, amd=fake_amdsmi.DRIVER_MISSING)
    monkeypatch.setattr(collect, "default_seams", lambda: seams)
    result = CliRunner().invoke(cli, ["probe"])
    assert section_rows(result.output, "Accelerators") == {"found": "none (see notes)"}
    assert "AMD: amdsmi init: the amdgpu kernel driver is not loaded (AMDSMI_STATUS_DRIVER_NOT_LOADED)" in result.output


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_check_gives_the_gpus_verdict_with_the_platforms_engine(
        scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_machine(monkeypatch, tmp_path, scenario)
    path = tmp_path / "check.json"
    html = scenario.name == "healthy-mi300x"  # one page is enough to see the AMD facts render
    result = CliRunner().invoke(cli, ["check", "-o", str(path), *(() if html else ("--no-html",))])
    loaded = results.load(path)
    assert isinstance(loaded.predictions, Predictions), result.output
    ceilings = loaded.predictions.ceilings
    assert ceilings.vendor != "cpu" and ceilings.device_name == scenario.device
    assert ceilings.source == "datasheet" and ceilings.hardware_id == scenario.spec_id
    assert loaded.predictions.headline.scenario.engine == scenario.engine
    assert result.exit_code == loaded.predictions.verdict.exit_code
    assert isinstance(loaded.limits, Unavailable) and "cannot drive the" in loaded.limits.reason
    assert loaded.run.status == "incomplete" and "build of torch" in loaded.run.incomplete_reasons[0]
    if html:
        page = BeautifulSoup(path.with_suffix(".html").read_text(), "html.parser")
        text = page.get_text(" ")
        assert "CDNA 3 (gfx942)" in text and "verified on hardware" in text


def test_arc_b580_is_too_small_for_the_model_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """12 GB cannot hold 26B parameters even at 4 bits: the GPU's own verdict is cannot-run, not a CPU verdict."""
    use_machine(monkeypatch, tmp_path, SCENARIOS[3])
    path = tmp_path / "check.json"
    CliRunner().invoke(cli, ["check", "--no-html", "-o", str(path)])
    predictions = results.load(path).predictions
    assert isinstance(predictions, Predictions) and predictions.verdict.value == "cannot-run"


def test_intel_machine_round_trips_through_a_result_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_machine(monkeypatch, tmp_path, SCENARIOS[4])
    path = tmp_path / "probe.json"
    CliRunner().invoke(cli, ["probe", "--anonymize", "-o", str(path)])
    (gpu,) = results.load(path).machine.accelerators
    assert isinstance(gpu, IntelGpu) and gpu.pci_bus_id.startswith("anon-")


def test_benchmark_locks_name_the_card_not_the_torch_index(tmp_path: Path) -> None:
    """Two containers sharing one card must collide on its lock, whatever index torch gives it there."""
    from dgprofile.app.runner import lock_key
    from dgprofile.probes.collect import collect_machine

    amd = collect_machine(seams=machines.seams(tmp_path, amd=fake_amdsmi.healthy_mi300x()))
    assert lock_key(amd, "cuda:0") == "5fff74a1-0000-1000-80ea-000000000000"
    intel = collect_machine(seams=machines.seams(tmp_path, intel=intel_sysfs.arc_b580()))
    assert lock_key(intel, "xpu:0") == "0000:03:00.0"
    assert lock_key(intel, "cpu") == "cpu"
