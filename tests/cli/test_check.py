"""`dgprofile check` through the real CLI on this CPU, with small benchmark sizes and named failure scenarios."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes.small_limits import use_small_limits
from html_soup import page_soup

from dgprofile.cli import cli
from dgprofile.exit_codes import ExitCode
from dgprofile.probes.device_lock import exclusive_device
from dgprofile.records import results


@pytest.fixture(autouse=True)
def small_sizes_and_no_decode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tiny limits; the decode step fails fast (its own tests cover it), so check predicts from the limits."""
    import dgprofile.probes.decode as decode

    def decode_not_run_here(**kwargs):
        raise RuntimeError("decode benchmark replaced in this test")

    use_small_limits(monkeypatch, tmp_path)
    monkeypatch.setattr(decode, "run_decode_bench", decode_not_run_here)


def test_check_writes_result_and_page_and_exits_with_the_verdict_code(tmp_path):
    path = tmp_path / "out" / "cpu.dgprofile.json"
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "-o", str(path)])
    loaded = results.load(path)
    assert result.exit_code == loaded.predictions.verdict.exit_code, result.output
    assert loaded.run.origin == "measured" and loaded.limits.device == "cpu"
    assert loaded.run.incomplete_reasons == (
        "timing decode passes failed: RuntimeError: decode benchmark replaced in this test",)
    assert f"verdict: {loaded.predictions.verdict}" in result.stdout
    page = page_soup((tmp_path / "out" / "cpu.dgprofile.html").read_text())
    assert loaded.predictions.verdict.label in page.get_text()
    assert "... measuring limits on cpu" in result.stderr


def test_check_json_prints_the_headline_summary(tmp_path):
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "--json", "--no-html",
                                      "-o", str(tmp_path / "r.json")])
    summary = json.loads(result.stdout)
    assert {"hardware", "engine", "precision", "speedup", "speedup_low", "verdict", "reasons"} <= set(summary)
    assert summary["engine"] == "llama.cpp"  # what CPU users run
    assert not (tmp_path / "r.html").exists()


def test_fail_under_exits_5_when_the_lower_band_is_below_it(tmp_path):
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "--no-html", "--fail-under", "1000",
                                      "-o", str(tmp_path / "r.json")])
    assert result.exit_code == ExitCode.BELOW_FAIL_UNDER
    assert "below --fail-under 1000" in result.stderr


def _hold(key: str, ready, release) -> None:
    with exclusive_device(key, wait_seconds=0):
        ready.set()
        release.wait(20)


def test_second_check_on_the_same_device_refuses_clearly(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=("cpu", ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        result = CliRunner().invoke(cli, ["check", "--device", "cpu", "-o", str(tmp_path / "r.json")])
    finally:
        release.set()
        holder.join(10)
    assert "another dgprofile benchmark" in str(result.exception)
    assert not (tmp_path / "r.json").exists()


def test_check_without_torch_says_why_there_is_no_verdict(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    path = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["check", "-o", str(path)])
    assert result.exit_code == ExitCode.ENVIRONMENT_ERROR
    assert "torch is not installed" in result.stderr
    loaded = results.load(path)
    assert loaded.run.status == "incomplete"
    assert "pip install 'dgprofile[bench]'" in loaded.limits.reason


def test_ctrl_c_during_the_limits_step_keeps_bandwidth_and_matmul_and_exits_130(tmp_path, monkeypatch):
    from dgprofile.probes import bench_latency

    def pressed_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_latency, "measure_latency", pressed_ctrl_c)
    path = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "--no-html", "-o", str(path)])
    assert result.exit_code == ExitCode.INTERRUPTED
    loaded = results.load(path)
    assert loaded.run.status == "incomplete"
    assert loaded.run.incomplete_reasons == (
        "interrupted (Ctrl-C) while measuring limits; the measurements that finished are kept",)
    assert loaded.limits.stream_read_bytes_per_s > 0 and loaded.limits.peak_flops_per_s["bf16"] > 0
    assert loaded.passes.reason == "not measured: the run ended before this step"
    assert "verdict:" in result.stdout  # predicted from the limits that were kept


SIGTERMED_CHECK = """
import sys, tempfile, time
sys.path.insert(0, {tests!r})
from fakes.small_limits import tiny_plan
import dgprofile.probes.decode as decode
from dgprofile.probes import bench_bandwidth, measure_limits
from dgprofile.records.machine import CpuInfo
from dgprofile.cli import main

def slow_decode(**options):
    print("decode started", file=sys.stderr, flush=True)
    time.sleep(60)

measure_limits.plan_for = tiny_plan
bench_bandwidth.MIN_CPU_BUFFER_BYTES, bench_bandwidth.LLC_MULTIPLE = 2 << 20, 0
tempfile.tempdir = {tmp!r}
decode.run_decode_bench = slow_decode
CpuInfo.computes_bf16_natively = property(lambda self: True)  # time the passes whatever this CPU has
main(["check", "--device", "cpu", "-o", {path!r}])
"""


def test_sigterm_ends_check_like_ctrl_c_leaving_a_result_file_marked_incomplete(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    path = tmp_path / "r.json"
    script = SIGTERMED_CHECK.format(tests=str(Path(__file__).parents[1]), tmp=str(tmp_path), path=str(path))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    with subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                          env=env) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("decode started"):
                process.send_signal(signal.SIGTERM)
                break
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == ExitCode.TERMINATED, stderr
    loaded = results.load(path)
    assert loaded.run.incomplete_reasons == ("interrupted (SIGTERM) while timing decode passes",)
    assert loaded.limits.stream_read_bytes_per_s > 0
    assert "verdict:" in stdout


def test_anonymize_leaves_no_hostname_or_home_directory_in_names_files_pages_or_fleet_csv(tmp_path, monkeypatch):
    import dataclasses
    import socket

    import dgprofile.probes.decode as decode
    from dgprofile.probes import collect

    secret, home = "secret-host-4711", tmp_path / "home" / "alice"
    real_seams = collect.default_seams()
    monkeypatch.setattr(collect, "default_seams", lambda: dataclasses.replace(real_seams, hostname=lambda: secret))
    monkeypatch.setattr(socket, "gethostname", lambda: secret)
    monkeypatch.setenv("HOME", str(home))

    def fails_naming_the_host(**kwargs):
        raise RuntimeError(f"Triton cache {home}/.triton/cache on {secret} is full")

    monkeypatch.setattr(decode, "run_decode_bench", fails_naming_the_host)
    monkeypatch.chdir(tmp_path)
    page = tmp_path / f"{secret}.html"
    result = CliRunner().invoke(cli, ["check", "--device", "cpu", "--anonymize", "--html", str(page)])
    assert result.exit_code in (0, 10, 11, 12), result.output
    (result_file,) = (tmp_path / "dgprofile-results").glob("*.json")
    assert result_file.name.startswith("anon-") and secret not in result_file.name
    loaded = results.load(result_file)
    assert loaded.run.command == ("dgprofile", "check", "--device", "cpu", "--html", "FILE", "--anonymize")
    assert loaded.run.incomplete_reasons == (
        f"timing decode passes failed: RuntimeError: Triton cache ~/.triton/cache on "
        f"{loaded.machine.identity.hostname} is full",)
    report = CliRunner().invoke(cli, ["report", "dgprofile-results", "-o", "fleet.html", "--csv", "fleet.csv"])
    assert report.exit_code == 0, report.output
    for text in (result_file.read_text(), page.read_text(), (tmp_path / "fleet.html").read_text(),
                 (tmp_path / "fleet.csv").read_text(), result.stdout, report.stdout):
        assert secret not in text and str(home) not in text


def test_check_over_two_gpus_measures_both_and_the_link_and_predicts_over_it(tmp_path, monkeypatch):
    """`check --gpus 2` on a machine NVML shows as the recorded 2x H200 pair; its GPUs are two CPU processes
    joined by gloo (the hardware seam), each GPU's limits an H200-like record."""
    import dataclasses

    import result_factory as factory
    from fakes import multi_gpu as fake_gpus
    from fakes import nvml as fake_nvml

    from dgprofile.app import runner
    from dgprofile.probes import multi_gpu, torch_devices
    from dgprofile.probes.gpu_nvidia import probe_nvidia
    from dgprofile.probes.harness import Budget
    from dgprofile.probes.verify.plan import miniature_config
    from dgprofile.records.multi_gpu import MultiGpuRun
    from dgprofile.specs.model_config import load_model_config

    devices = probe_nvidia(fake_nvml.h200_nvlink_pair(), read_host_meminfo=lambda: {"MemTotal": 2**38,
                                                                                   "MemAvailable": 2**37},
                           own_pid=1).devices
    monkeypatch.setattr(runner, "probe_machine", lambda: factory.machine(accelerators=devices))
    monkeypatch.setattr(torch_devices, "undrivable_accelerator", lambda machine, device: None)
    monkeypatch.setattr(multi_gpu, "gpu_devices", lambda machine, gpus: ("cpu", "cpu"))
    config = miniature_config(load_model_config())
    config = dataclasses.replace(config, diffusion=dataclasses.replace(config.diffusion, canvas_length=16))
    monkeypatch.setattr(multi_gpu, "collective_plan", lambda quick: multi_gpu.CollectivePlan(
        concurrencies=(1, 2), layer_passes=(("dg-denoise", 1),), config=config,
        budget=Budget(0.001, 3, 0.05, 1), context_tokens=64))
    monkeypatch.setattr(multi_gpu, "measure_device_limits", fake_gpus.throttled_second_gpu)
    path = tmp_path / "pair.dgprofile.json"
    result = CliRunner().invoke(cli, ["check", "--gpus", "2", "-o", str(path)])
    loaded = results.load(path)
    assert result.exit_code == loaded.predictions.verdict.exit_code, result.output
    run = loaded.multi_gpu
    assert isinstance(run, MultiGpuRun) and run.backend == "gloo" and run.gpu_indices == (0, 1)
    assert [gpu.limits.device_name for gpu in run.per_gpu_limits] == ["NVIDIA H200", "NVIDIA H200"]
    scenario = loaded.predictions.headline.scenario
    assert scenario.gpus == 2 and scenario.interconnect.source == "measured-all-reduce"
    assert "all-reduces measured here" in result.stdout
    assert "... all-reduce sweep and tensor-parallel layers over 2 devices" in result.stderr
    page = page_soup(path.with_name("pair.dgprofile.html").read_text())
    section = page.find(id="multi-gpu")
    captions = [heading.get_text(" ", strip=True) for heading in section.find_all("h3")]
    assert any("Path between each pair" in c for c in captions)
    assert any("What the link costs per pass" in c for c in captions)
    assert "NVLink, GPU to GPU" in section.get_text() and "Spread" in section.get_text()
    assert "Split layers not set against the model: unknown model 'diffusiongemma-26b-a4b-miniature'" in \
        section.get_text()  # the miniature this test splits has no model file to scale to


def test_gpus_all_is_for_check_alone(tmp_path):
    result = CliRunner().invoke(cli, ["predict", "--hardware", "h100-sxm", "--gpus", "all"])
    assert result.exit_code == ExitCode.USAGE_ERROR and "--gpus all counts the GPUs" in result.stderr


def test_check_gpus_on_a_machine_without_them_refuses_before_measuring(tmp_path):
    result = CliRunner().invoke(cli, ["check", "--gpus", "2", "--no-html", "-o", str(tmp_path / "r.json")])
    assert result.exit_code == ExitCode.USAGE_ERROR, result.output
    assert "--gpus 2: this machine has 0 NVIDIA or AMD GPU(s)" in result.stderr
    assert not (tmp_path / "r.json").exists()
