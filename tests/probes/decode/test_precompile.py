"""The compile workers: which jobs a run plans, and how their processes are waited for and ended."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import pytest

from dgprofile.probes.decode.precompile import (
    SKIP_LINE,
    Precompile,
    planned_jobs,
    run_job,
    target_line,
    worker_command,
)


def test_a_quick_run_compiles_bf16_passes_and_the_sampler():
    jobs = planned_jobs(quick=True, native_fp8=True)
    assert "sampler" in jobs and "bf16:dg-denoise" in jobs
    assert not [job for job in jobs if job.startswith("fp8")]


def test_a_full_run_compiles_fp8_experts_only_where_fp8_is_measured():
    assert {"fp8:dg-denoise", "fp8:checks"} <= set(planned_jobs(quick=False, native_fp8=True))
    assert not [job for job in planned_jobs(quick=False, native_fp8=False) if job.startswith("fp8")]


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton (with its CUDA backend)")
def test_a_worker_compiles_for_a_gpu_without_one_into_the_triton_cache(tmp_path):
    command = worker_command("sampler", quick=True)
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TRITON_CACHE_DIR": str(tmp_path)}
    line = target_line(capability=90, multiprocessors=132, shared_memory_bytes=232448, free_memory_bytes=1e10)
    done = subprocess.run(command, env=environment, input=line, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sampler" in done.stderr and "Error" not in done.stderr
    assert list(tmp_path.iterdir())  # the sampler's two kernels, compiled for sm_90 on a machine without a GPU


def _worker(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)


def test_a_worker_of_a_job_the_run_does_not_plan_ends_without_compiling():
    done = subprocess.run(worker_command("fp8:dg-denoise", quick=False), input=SKIP_LINE, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0 and "fp8:dg-denoise" not in done.stderr, done.stderr


def test_workers_started_before_the_gpu_is_known_get_its_target_or_end(tmp_path):
    """Workers start before the probe; once the GPU is known, the planned jobs' workers get its target line and
    the others (fp8 on a GPU without it) the line that ends them."""
    echo = "import sys; open(sys.argv[1], 'w').write(sys.stdin.readline())"
    jobs = ("bf16:dg-denoise", "fp8:dg-denoise")
    handle = Precompile(jobs=jobs, processes=[
        subprocess.Popen([sys.executable, "-c", echo, str(tmp_path / job)], stdin=subprocess.PIPE) for job in jobs])
    line = target_line(capability=90, multiprocessors=132, shared_memory_bytes=232448, free_memory_bytes=1e10)
    handle.keep(("bf16:dg-denoise",), line)
    assert handle.jobs == ("bf16:dg-denoise",) and len(handle.processes) == 1
    assert len(handle.leaving) == 1  # told to end, not waited for (it may still be importing torch)
    handle.leaving[0].wait(timeout=60)
    assert "1 worker(s)" in handle.finish()
    assert (tmp_path / "bf16:dg-denoise").read_text() == line
    assert (tmp_path / "fp8:dg-denoise").read_text() == SKIP_LINE


def test_stop_ends_a_worker_still_waiting_for_its_target():
    handle = Precompile(jobs=("a",), processes=[_worker("import sys; sys.stdin.readline()")])
    handle.stop()
    assert handle.processes[0].poll() is not None


def test_finish_waits_for_every_worker_and_counts_failures():
    handle = Precompile(jobs=("a", "b"), processes=[_worker("pass"), _worker("raise SystemExit(1)")])
    text = handle.finish()
    assert "2 worker(s)" in text and "1 did not finish" in text
    assert all(p.poll() is not None for p in handle.processes)


def test_a_worker_past_the_wait_is_ended_not_waited_for():
    handle = Precompile(jobs=("slow",), processes=[_worker("import time; time.sleep(60)")],
                        deadline=time.perf_counter() + 0.2)
    assert "1 did not finish" in handle.finish()
    assert handle.processes[0].poll() is not None


def test_each_pass_waits_for_its_own_job_only():
    """The benchmark waits for a pass's job just before the pass: a slower job's worker keeps compiling."""
    handle = Precompile(jobs=("bf16:prefill", "bf16:dg-denoise"),
                        processes=[_worker("pass"), _worker("import time; time.sleep(60)")])
    handle.ready("bf16:prefill")
    handle.ready("fp8:prefill")  # not compiled by this run: no wait
    assert handle.processes[0].poll() == 0 and handle.processes[1].poll() is None
    handle.stop()


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

    def gemv_cases(config, layers, device, dtype, expert_method, attention_methods):
        for case in ("sliding c=1", "sliding c=8"):
            consumed.append((case, expert_method, attention_methods))
            yield case, case

    def quantisation(device, config):
        consumed.append(("quantisation", device))
        yield from ()

    monkeypatch.setattr(checks, "fused_layer_outputs", cases)
    monkeypatch.setattr(checks, "quantization_outputs", quantisation)
    monkeypatch.setattr(checks, "gemv_layer_outputs", gemv_cases)
    monkeypatch.setattr(checks, "check_layers", lambda config, dtype, device, fp8=False: layers_built.append(fp8))
    monkeypatch.setattr(checks, "check_experts", lambda *args, **options: "")
    monkeypatch.setattr(checks, "check_attention", lambda *args: "")
    assert run_job(f"{precision}:checks", quick=False, free_memory_bytes=1e10) == []
    quantisation = [("quantisation", "meta")] if precision == "fp8" else []  # the fp8 quantisation check's kernels
    gemv = precision == "fp8"  # only fp8 layers try the GEMV
    assert consumed[5 if gemv else 3:] == quantisation
    # Every case of the GEMV layer check too (the GEMV's kernels for one row and for several).
    assert [case for case, _, _ in consumed[3:5]] == (["sliding c=1", "sliding c=8"] if gemv else [])
    del consumed[3:]
    assert [case for case, _, _ in consumed] == ["sliding denoise", "sliding commit", "global denoise"]
    assert layers_built == [precision == "fp8"] * (2 if gemv else 1)
    _, methods, attention_methods = consumed[0]
    # bf16 compiles the Triton expert GEMM with its GeGLU epilogue alone (the plain one never won a bf16 shape).
    assert methods == (("grouped", "triton", "triton-geglu") if precision == "fp8" else ("grouped", "triton-geglu"))
    # fp8 layers' attention kernels are the bf16 layers': compiled by the bf16 job.
    assert attention_methods == (("sdpa",) if precision == "fp8" else ("sdpa", "matmul", "split-kv"))


def test_a_quick_runs_checks_job_compiles_only_the_expert_check_a_quick_run_makes(monkeypatch):
    """On an H200 the quick run's checks job compiled every fused-layer and attention case (18.9 s, the slowest
    job), though a quick run checks only its Triton expert method."""
    pytest.importorskip("torch")
    from dgprofile.probes.decode import checks

    checked: list[str] = []
    monkeypatch.setattr(checks, "check_experts", lambda *args, method, **options: checked.append(method) or "")
    monkeypatch.setattr(checks, "check_layers", lambda *args, **options: pytest.fail("no fused-layer check"))
    monkeypatch.setattr(checks, "check_attention", lambda *args: pytest.fail("no attention check"))
    assert run_job("bf16:checks", quick=True, free_memory_bytes=1e10) == []
    assert checked == ["triton-geglu"]


GEMV_FOR_SM90 = """
import torch
from dgprofile.probes.decode.compile_target import CompileTarget, set_compile_target
from dgprofile.probes.decode.precompile import compile_only
set_compile_target(CompileTarget(capability=90, multiprocessors=132, shared_memory_per_block_bytes=232448))
compile_only(90)
from dgprofile.probes.decode.triton_gemv import gemv
norm = torch.empty(2816, device="meta", dtype=torch.bfloat16)
for rows in (1, 8):
    x = torch.empty(rows, 2816, device="meta", dtype=torch.bfloat16)
    fp8 = torch.empty(4224, 2816, device="meta", dtype=torch.float8_e4m3fn)
    gemv(x, fp8, torch.empty(1, 4224, device="meta"), geglu=True)
    gemv(x, torch.empty(8192, 2816, device="meta", dtype=torch.bfloat16), norm_weight=norm, eps=1e-6)
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton (with its CUDA backend)")
def test_the_gemv_compiles_for_a_hopper_gpu_on_one_row_and_on_several_with_bf16_and_fp8_weights(tmp_path):
    # The interpreter runs no PTX: this is where the fp8 widening, the tensor-core path and the epilogues first
    # meet the real compiler on a machine without a GPU.
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TRITON_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", GEMV_FOR_SM90], env=environment, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    compiled = list(tmp_path.rglob("*.cubin"))
    assert len(compiled) == 4, compiled


def test_bf16_runs_compile_and_time_the_triton_expert_gemm_with_its_geglu_epilogue_alone():
    """In the H100's and the H200's runs the plain Triton expert GEMM (GeGLU in a kernel after it) lost every bf16
    token count to the one with the epilogue, by 2-8%; with fp8 it won several on the H200."""
    from dgprofile.probes.decode.precompile import triton_expert_methods

    assert triton_expert_methods(fp8=False, quick=False) == ("triton-geglu",)
    assert triton_expert_methods(fp8=True, quick=False) == ("triton", "triton-geglu")
    assert triton_expert_methods(fp8=True, quick=True) == triton_expert_methods(fp8=False, quick=True) == (
        "triton-geglu",)


def test_a_run_after_one_whose_workers_all_finished_starts_no_compilation(tmp_path, monkeypatch):
    """On an H200 a warm full check waited 3.5 s for workers that had nothing left to compile."""
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    line = target_line(capability=90, multiprocessors=132, shared_memory_bytes=232448, free_memory_bytes=1e10)
    read_line = "import sys; sys.stdin.readline()"

    def workers(*codes: str) -> Precompile:
        return Precompile(jobs=tuple(f"bf16:job{i}" for i in range(len(codes))),
                          processes=[_worker(code) for code in codes])

    failing = workers(read_line, read_line + "; raise SystemExit(1)")
    failing.begin(failing.jobs, line)
    assert not failing.reused and "1 did not finish" in failing.finish()
    assert not failing.marker.exists()  # type: ignore[union-attr]  # a job failed: the next run compiles again
    first = workers(read_line, read_line)
    first.begin(first.jobs, line)
    assert "2 worker(s)" in first.finish() and first.marker.exists()  # type: ignore[union-attr]
    second = workers(read_line, read_line)
    second.begin(second.jobs, line)
    assert second.reused and second.jobs == () and len(second.leaving) == 2
    assert "earlier run" in second.finish() and second.waited_seconds == 0
    other_gpu = workers(read_line)
    other_gpu.begin(other_gpu.jobs, line.replace('"capability": 90', '"capability": 100'))
    assert not other_gpu.reused and other_gpu.jobs == ("bf16:job0",)
    other_gpu.stop()
    quick = workers(read_line)
    quick.quick = True
    quick.begin(quick.jobs, line)
    assert quick.reused and quick.jobs == ()  # a full run's kernels include a quick run's
    quick.stop()


def test_a_full_run_after_a_quick_one_compiles_what_the_quick_run_did_not(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    line = target_line(capability=90, multiprocessors=132, shared_memory_bytes=232448, free_memory_bytes=1e10)
    quick = Precompile(jobs=("bf16:checks",), processes=[_worker("import sys; sys.stdin.readline()")], quick=True)
    quick.begin(quick.jobs, line)
    assert not quick.reused and "1 worker(s)" in quick.finish()
    full = Precompile(jobs=("bf16:checks",), processes=[_worker("import sys; sys.stdin.readline()")])
    full.begin(full.jobs, line)
    assert not full.reused and full.jobs == ("bf16:checks",)
    full.stop()


def _fake_launchers(monkeypatch: pytest.MonkeyPatch, *, per_signature: bool) -> list[tuple[object, object]]:
    """Triton's CUDA launcher seam: with ``per_signature``, a Triton that builds a C launcher per kernel signature
    (up to 3.6: it has ``make_launcher``); the launchers asked for are recorded, none is built."""
    nvidia = pytest.importorskip("triton.backends.nvidia.driver")
    built: list[tuple[object, object]] = []
    if per_signature:
        monkeypatch.setattr(nvidia, "make_launcher", lambda *args: "", raising=False)
    else:
        monkeypatch.delattr(nvidia, "make_launcher", raising=False)
    monkeypatch.setattr(nvidia, "CudaLauncher", lambda src, metadata: built.append((src, metadata)))
    return built


def test_a_worker_builds_the_launcher_of_each_kernel_where_triton_builds_one_per_signature(monkeypatch):
    from types import SimpleNamespace

    from dgprofile.probes.decode.precompile import build_launcher

    built = _fake_launchers(monkeypatch, per_signature=True)
    build_launcher(SimpleNamespace(src="source", metadata="metadata"))
    assert built == [("source", "metadata")]


def test_a_worker_builds_no_launcher_where_triton_launches_every_kernel_through_its_own(monkeypatch):
    from types import SimpleNamespace

    from dgprofile.probes.decode.precompile import build_launcher

    built = _fake_launchers(monkeypatch, per_signature=False)
    build_launcher(SimpleNamespace(src="source", metadata="metadata"))
    assert built == []


LAUNCHER_FAILS_FOR_SM90 = """
import torch
from triton.backends.nvidia import driver as nvidia
from dgprofile.probes.decode import precompile
from dgprofile.probes.decode.compile_target import CompileTarget, set_compile_target

def no_compiler(src, metadata):
    raise OSError("no C compiler on this host")

nvidia.make_launcher = lambda *args: ""
nvidia.CudaLauncher = no_compiler
set_compile_target(CompileTarget(capability=90, multiprocessors=132, shared_memory_per_block_bytes=232448))
precompile.compile_only(90)
from dgprofile.probes.decode.triton_fused import rms_norm
rms_norm(torch.empty(4, 256, device="meta", dtype=torch.bfloat16), torch.empty(256, device="meta"), 1e-6)
print(precompile.LAUNCHER_PROBLEMS)
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton (with its CUDA backend)")
def test_a_launcher_the_worker_cannot_build_is_noted_and_its_kernel_still_compiles(tmp_path):
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TRITON_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", LAUNCHER_FAILS_FOR_SM90], env=environment, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OSError: no C compiler on this host" in done.stdout
    assert list(tmp_path.rglob("*.cubin"))
