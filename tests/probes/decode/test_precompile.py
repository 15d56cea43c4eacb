"""The compile workers: which jobs a run plans, and how their processes are waited for and ended."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from dgprofile.probes.decode.precompile import Precompile, planned_jobs, run_job, worker_command


def test_a_quick_run_compiles_bf16_passes_and_the_sampler():
    jobs = planned_jobs(quick=True, native_fp8=True)
    assert "sampler" in jobs and "bf16:dg-denoise" in jobs
    assert not [job for job in jobs if job.startswith("fp8")]


def test_a_full_run_compiles_fp8_experts_only_where_fp8_is_measured():
    assert {"fp8:dg-denoise", "fp8:checks"} <= set(planned_jobs(quick=False, native_fp8=True))
    assert not [job for job in planned_jobs(quick=False, native_fp8=False) if job.startswith("fp8")]


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton (with its CUDA backend)")
def test_a_worker_compiles_for_a_gpu_without_one_into_the_triton_cache(tmp_path):
    command = worker_command("sampler", capability=90, multiprocessors=132, shared_memory_bytes=232448,
                             free_memory_bytes=1e10, quick=True)
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TRITON_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sampler" in done.stderr and "Error" not in done.stderr
    assert list(tmp_path.iterdir())  # the sampler's two kernels, compiled for sm_90 on a machine without a GPU


def _worker(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_finish_waits_for_every_worker_and_counts_failures():
    handle = Precompile(jobs=("a", "b"), processes=[_worker("pass"), _worker("raise SystemExit(1)")])
    text = handle.finish()
    assert "2 worker(s)" in text and "1 did not finish" in text
    assert all(p.poll() is not None for p in handle.processes)


def test_a_worker_past_the_wait_is_ended_not_waited_for():
    handle = Precompile(jobs=("slow",), processes=[_worker("import time; time.sleep(60)")])
    assert "1 did not finish" in handle.finish(timeout_seconds=0.2)
    assert handle.processes[0].poll() is not None


def test_an_unknown_job_is_refused():
    with pytest.raises(ValueError, match="unknown compile job"):
        run_job("bf16:nonsense", quick=True, free_memory_bytes=1e10)


@pytest.mark.parametrize("precision", ["bf16", "fp8"])
def test_the_checks_job_runs_every_case_of_the_fused_layer_check_not_only_the_first(monkeypatch, precision):
    pytest.importorskip("torch")
    from dgprofile.probes.decode import checks

    consumed: list[object] = []
    layers_built: list[bool] = []

    def cases(config, layers, device, dtype, methods, attention_methods):
        for case in ("sliding denoise", "sliding commit", "global denoise"):
            consumed.append((case, methods, attention_methods))
            yield case, case

    def quantisation(device, config):
        consumed.append(("quantisation", device))
        yield from ()

    monkeypatch.setattr(checks, "fused_layer_outputs", cases)
    monkeypatch.setattr(checks, "quantization_outputs", quantisation)
    monkeypatch.setattr(checks, "check_layers", lambda config, dtype, device, fp8=False: layers_built.append(fp8))
    monkeypatch.setattr(checks, "check_experts", lambda *args, **options: "")
    monkeypatch.setattr(checks, "check_attention", lambda *args: "")
    assert run_job(f"{precision}:checks", quick=False, free_memory_bytes=1e10) == []
    quantisation = [("quantisation", "meta")] if precision == "fp8" else []  # the fp8 quantisation check's kernels
    assert consumed[3:] == quantisation
    del consumed[3:]
    assert [case for case, _, _ in consumed] == ["sliding denoise", "sliding commit", "global denoise"]
    assert layers_built == [precision == "fp8"]
    _, methods, attention_methods = consumed[0]
    assert methods == ("grouped", "triton", "triton-geglu")
    # fp8 layers' attention kernels are the bf16 layers': compiled by the bf16 job.
    assert attention_methods == (("sdpa",) if precision == "fp8" else (
        "sdpa", "matmul", "split-kv", "sdpa-split-cudnn", "sdpa-split-flash"))
