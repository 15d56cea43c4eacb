"""Compile the decode benchmark's Triton kernels in worker processes while the limits step measures.

On a machine whose Triton cache is empty, compiling the benchmark's kernels in the benchmark's own process took
47 of the 91 seconds of a full `dgprofile check` on an H200 (27 s compiling before the first pass). Each worker
runs one of the benchmark's small-shape checks (``checks.py``: the same code, so the same kernel variants) and,
for the expert GEMMs, the larger block size the real passes pick; that fills Triton's on-disk cache, from which
the benchmark then loads the kernels in milliseconds. Workers start when the device is known and run side by side
(compiling is CPU work: one process per kernel family). Their GPU work is a few small checks, milliseconds in all;
the limits harness takes medians over several samples. A worker that fails costs nothing but time: the benchmark
compiles what is missing itself and runs its own checks either way.

    python -m dgprofile.probes.decode.precompile --device cuda:0 experts:triton-geglu:bf16 sampler
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field

EXPERT_METHODS = ("triton", "triton-geglu")
# Tokens for the extra expert call: over 8 experts with top-2 routing, about 50 rows per expert, past the 32-row
# block, so the 64-row variant the real passes use compiles too.
LARGE_BLOCK_TOKENS = 200
WAIT_SECONDS = 120.0


def planned_jobs(*, quick: bool, native_fp8: bool) -> tuple[str, ...]:
    """The compile jobs for a run: a quick run uses the fused-GeGLU expert GEMM and the sampler alone (its layers
    run SDPA and torch ops; fp8 is modelled); a full run also checks every attention method and the fused
    elementwise kernels in bf16, and the fp8 expert GEMMs where fp8 is measured (fp16 is not measured on CUDA:
    ``plan.plan_bench``)."""
    if quick:
        return ("experts:triton-geglu:bf16", "sampler")
    formats = ("bf16", "fp8") if native_fp8 else ("bf16",)
    return (*(f"experts:{method}:{precision}" for precision in formats for method in EXPERT_METHODS), "sampler",
            "attention:matmul:bf16", "attention:split-kv:bf16", "fused:bf16")


def run_job(job: str, device: str) -> str:
    """Run one compile job on ``device``: the check's reason when the path does not work here, else ""."""
    import torch

    from dgprofile.probes.decode import checks

    kind, *method_and_precision = job.split(":")
    if kind == "sampler":
        from dgprofile.probes.decode.head import torch_sampler
        from dgprofile.probes.decode.triton_sampler import TritonSampler, check_against_torch

        return check_against_torch(TritonSampler(), torch_sampler, device)
    precision = method_and_precision[-1]
    method = method_and_precision[0]
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16  # fp8 layers compute in bf16
    if kind == "experts":
        problem = checks.check_experts(device, dtype, fp8=precision == "fp8", method=method)  # type: ignore[arg-type]
        if not problem:
            _large_block_experts(device, dtype, fp8=precision == "fp8", method=method)
        return problem
    from dgprofile.specs.model_config import load_model_config

    small = checks.check_config(load_model_config())
    if kind == "attention":
        return checks.check_attention(device, dtype, method, small)  # type: ignore[arg-type]
    if kind == "fused":
        return checks.check_fused_layer(device, dtype, ("grouped", *EXPERT_METHODS), small,  # type: ignore[arg-type]
                                        attention_methods=("sdpa", "matmul", "split-kv"))
    raise ValueError(f"unknown compile job {job!r}")


def _large_block_experts(device: str, dtype: object, *, fp8: bool, method: str) -> None:
    import torch

    from dgprofile.probes.decode.model import Experts, run_experts, uniform_routing

    experts = Experts(8, 256, 192, dtype=dtype, fp8=fp8, device=device)
    routing = uniform_routing(LARGE_BLOCK_TOKENS, 8, 2, device, torch.Generator().manual_seed(0))
    x = torch.randn(LARGE_BLOCK_TOKENS, 256, device=device, dtype=dtype)  # type: ignore[call-overload]
    run_experts(method, experts, x, routing)  # type: ignore[arg-type]
    torch.cuda.synchronize(torch.device(device))


@dataclass
class Precompile:
    """Worker processes compiling kernels; ``finish`` waits for them, ``stop`` ends them."""

    jobs: tuple[str, ...]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def finish(self, timeout_seconds: float = WAIT_SECONDS) -> str:
        """Wait for the workers (at most ``timeout_seconds`` in all); what they did, in a line."""
        deadline = time.perf_counter() + timeout_seconds
        failed = 0
        for process in self.processes:
            try:
                failed += process.wait(timeout=max(0.0, deadline - time.perf_counter())) != 0
            except subprocess.TimeoutExpired:
                failed += 1
        self.stop()
        seconds = time.perf_counter() - self.started
        return (f"Triton kernels compiled beside the limits step: {len(self.jobs)} worker(s), "
                f"{seconds:.1f} s" + (f", {failed} did not finish" if failed else ""))

    def stop(self) -> None:
        """End every worker still running."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def start(device: str, *, quick: bool) -> Precompile:
    """Start one worker per compile job for ``device`` (their output is discarded: the benchmark's own checks
    report what does not work)."""
    import torch

    from dgprofile.probes import gpu_backends

    jobs = planned_jobs(quick=quick, native_fp8=gpu_backends.native_fp8(torch, device)[0])
    handle = Precompile(jobs=jobs)
    for job in jobs:
        handle.processes.append(subprocess.Popen(
            [sys.executable, "-m", "dgprofile.probes.decode.precompile", "--device", device, job],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return handle


def main(argv: list[str] | None = None) -> int:
    """Run the compile jobs named on the command line; exit 1 if a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", required=True)
    parser.add_argument("jobs", nargs="+")
    args = parser.parse_args(argv)
    problems = [f"{job}: {problem}" for job in args.jobs if (problem := run_job(job, args.device))]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
