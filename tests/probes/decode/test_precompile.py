"""The compile workers: which jobs a run plans, and how their processes are waited for and ended."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dgprofile.probes.decode.precompile import Precompile, main, planned_jobs


def test_a_quick_run_compiles_only_the_fused_geglu_experts_and_the_sampler():
    assert planned_jobs(quick=True, native_fp8=True) == ("experts:triton-geglu:bf16", "sampler")


def test_a_full_run_compiles_fp8_experts_only_where_fp8_is_measured():
    with_fp8 = planned_jobs(quick=False, native_fp8=True)
    without = planned_jobs(quick=False, native_fp8=False)
    assert {"experts:triton:fp8", "experts:triton-geglu:fp8"} <= set(with_fp8)
    assert not [job for job in without if job.endswith(":fp8")]
    assert {"attention:matmul:bf16", "attention:split-kv:bf16", "fused:bf16"} <= set(without)


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
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="unknown compile job"):
        main(["--device", "cpu", "nonsense:bf16"])
