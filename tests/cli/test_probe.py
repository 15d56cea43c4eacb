"""`dgprofile probe`, `--json`, `-o FILE`, `--anonymize` through the real CLI, on fakes and on this machine."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import amdsmi as fake_amdsmi
from fakes import cpu
from fakes import nvml as fake
from fakes.intel_sysfs import FakeDrmFiles

from dgprofile.cli import cli
from dgprofile.exit_codes import ExitCode
from dgprofile.probes import collect
from dgprofile.probes.collect import ProbeSeams
from dgprofile.records import results


@pytest.fixture()
def fake_h100(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI probe a fake machine with one healthy H100."""
    @contextlib.contextmanager
    def open_nvml():
        yield fake.healthy_h100()

    seams = ProbeSeams(host=cpu.linux_seams(cpu.linux_tree(tmp_path / "root")), open_nvml=open_nvml,
                       read_meminfo=lambda: {"MemAvailable": 100 << 30}, hostname=lambda: "gpu-box-7",
                       open_amdsmi=fake_amdsmi.opener(fake_amdsmi.NOT_INSTALLED), drm_files=FakeDrmFiles())
    monkeypatch.setattr(collect, "default_seams", lambda: seams)


def test_probe_table(fake_h100: None) -> None:
    result = CliRunner().invoke(cli, ["probe"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Machine gpu-box-7, probed in ")
    assert "GPU 0: NVIDIA H100 80GB HBM3" in result.output
    assert "3.35 TB/s" in result.output


def test_probe_json(fake_h100: None) -> None:
    result = CliRunner().invoke(cli, ["probe", "--json"])
    assert result.exit_code == 0
    machine = json.loads(result.output)
    (gpu,) = machine["accelerators"]
    assert gpu["kind"] == "nvidia-gpu"
    assert gpu["theoretical_bandwidth_bytes_per_s"] == pytest.approx(3352.32e9)
    assert gpu["memory_class"]["kind"] == "discrete"
    assert machine["identity"] == {"hostname": "gpu-box-7", "anonymized": False}


def test_probe_output_file_loads(fake_h100: None, tmp_path: Path) -> None:
    path = tmp_path / "out" / "probe.json"
    result = CliRunner().invoke(cli, ["probe", "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert f"wrote {path}" in result.stderr
    loaded = results.load(path)
    assert loaded.run.command == ("dgprofile", "probe", "-o", str(path))
    assert (loaded.run.origin, loaded.run.status) == ("measured", "complete")
    assert loaded.machine.accelerators[0].spec_id == "h100-sxm"


def test_probe_anonymize(fake_h100: None) -> None:
    result = CliRunner().invoke(cli, ["probe", "--json", "--anonymize"])
    machine = json.loads(result.output)
    assert machine["identity"]["anonymized"] is True
    assert "gpu-box-7" not in result.output
    assert "GPU-11111111" not in result.output


def test_probe_unwritable_output_is_one_line_error(fake_h100: None, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(cli, ["probe", "-o", str(blocker / "probe.json")])
    assert result.exit_code == ExitCode.USAGE_ERROR
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Invalid value for -o/--output: cannot write" in result.stderr
    assert result.stdout == ""


def test_probe_on_this_machine_is_fast_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "probe.json"
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["probe", "--json", "-o", str(path)])
    assert time.perf_counter() - started < 2
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cpu"]["architecture"]
    assert results.load(path).machine.probe_seconds < 2
