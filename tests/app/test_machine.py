"""probe_machine and probe_result: the probes' findings, identities hashed when asked, round-trip through a file."""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fakes import amdsmi as fake_amdsmi
from fakes import cpu
from fakes import nvml as fake
from fakes.intel_sysfs import FakeDrmFiles

from dgprofile.app.machine import probe_machine, probe_result
from dgprofile.probes import collect
from dgprofile.probes.collect import ProbeSeams
from dgprofile.records import results
from dgprofile.records.values import Unavailable


def probe_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario) -> None:
    """Make the probes see a fake machine named gpu-box-7 with the NVML ``scenario``."""
    @contextlib.contextmanager
    def open_nvml():
        yield scenario

    seams = ProbeSeams(host=cpu.linux_seams(cpu.linux_tree(tmp_path)), open_nvml=open_nvml,
                       read_meminfo=lambda: {"MemTotal": 128 << 30, "MemAvailable": 100 << 30},
                       hostname=lambda: "gpu-box-7", open_amdsmi=fake_amdsmi.opener(fake_amdsmi.NOT_INSTALLED),
                       drm_files=FakeDrmFiles())
    monkeypatch.setattr(collect, "default_seams", lambda: seams)


def test_anonymize_hashes_identities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe_fake(tmp_path, monkeypatch, fake.healthy_h100())
    machine = probe_machine(anonymize=True)
    (gpu,) = machine.accelerators
    assert machine.identity.anonymized
    assert machine.identity.hostname.startswith("anon-") and "gpu-box-7" not in machine.identity.hostname
    assert gpu.uuid.startswith("anon-") and gpu.pci_bus_id.startswith("anon-")


def test_probe_result_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe_fake(tmp_path, monkeypatch, fake.gpu_lost_mid_query())
    machine = probe_machine()
    result = probe_result(machine, command=("dgprofile", "probe", "-o", "x.json"),
                          started_at=datetime.now(timezone.utc))
    path = tmp_path / "probe.json"
    results.dump(result, path)
    loaded = results.load(path)
    assert loaded.machine == machine
    assert (loaded.run.origin, loaded.run.status, loaded.run.label) == ("measured", "complete", "gpu-box-7")
    assert isinstance(loaded.limits, Unavailable)
