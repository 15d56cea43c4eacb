"""Compile the decode benchmark's Triton kernels in worker processes while the machine is probed and measured.

On a machine whose Triton cache is empty, compiling the benchmark's kernels in the benchmark's own process took
47 of the 91 seconds of a full `dgprofile check` on an H200. The workers compile them beforehand, side by side,
without touching the GPU: each runs the benchmark's own code (its small-shape checks, and the layers and head at
every pass shape the run plans) on torch's ``meta`` device, where tensors have shapes but no data, with every
Triton launch turned into a compilation for the GPU's architecture (``compile_target.py`` supplies what the
wrappers would have read from the GPU). The kernels land in Triton's on-disk cache under the keys the real run
computes, and the benchmark loads them from there. Where Triton builds a C launcher per kernel signature at a
kernel's first launch (up to Triton 3.6; two of them took 0.75 s of a fresh process's first sampler launch on an
H200), the workers build those too.

Workers that only compiled were the second design: workers that ran the checks on the GPU while the limits step
measured moved the measured fp32 matmul rate by 12%, bf16 by 4% and the launch floor by 8-11% on an H200 (other
contexts on the same GPU share its time). A compile-only worker holds no CUDA context. It runs at a lower CPU
priority than the measurement, and a worker that fails costs only time: the benchmark compiles what is missing
itself and runs its checks on the GPU either way.

The workers start before the probe, when the GPU is not yet known: a fresh Python process takes seconds to import
torch and the benchmark, and those seconds now pass while the machine is probed. Each then reads its target (the
GPU's compute capability, multiprocessors, shared memory and free memory) as a JSON line on its standard input:

    echo '{"capability": 90, "multiprocessors": 132, "shared_memory_bytes": 232448, "free_memory_bytes": 1.5e11}' \\
        | python -m dgprofile.probes.decode.precompile bf16:dg-denoise
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dgprofile.probes.decode.plan import PASS_KINDS
from dgprofile.records.passes import PassKind
from dgprofile.specs.model_config import LayerType

if TYPE_CHECKING:  # the model module imports torch, which a worker loads only once it runs
    from dgprofile.probes.decode.model import AttentionMethod, ExpertMethod

ATTENTION_METHODS: tuple[AttentionMethod, ...] = ("sdpa", "matmul", "split-kv")
QUICK_EXPERT_METHOD: ExpertMethod = "triton-geglu"  # the one Triton expert method a quick run compiles
LAYER_TYPES: tuple[LayerType, ...] = ("sliding", "global")
WAIT_SECONDS = 120.0
CHECKS = "checks"
SAMPLER_JOB = "sampler"
WORKER_NICENESS = 10  # the limits step's host loops come first
META = "meta"


def triton_expert_methods(*, fp8: bool, quick: bool) -> tuple[ExpertMethod, ...]:
    """The Triton expert methods a run compiles and times. bf16 takes the GeGLU epilogue's alone: the same GEMM
    without it (and a GeGLU kernel after) never won a bf16 token count in the H100's and the H200's runs, 2-8%
    slower at every one; with fp8 the plain GEMM feeding the quantising GeGLU kernel won at 1-4 and 512-4096
    tokens on the H200."""
    if quick:
        return (QUICK_EXPERT_METHOD,)
    return ("triton", "triton-geglu") if fp8 else ("triton-geglu",)


def planned_jobs(*, quick: bool, native_fp8: bool) -> tuple[str, ...]:
    """One job per measured precision and pass kind, the precisions' small-shape checks, and the sampler."""
    precisions = ("bf16", "fp8") if native_fp8 and not quick else ("bf16",)
    kinds: tuple[str, ...] = (*PASS_KINDS, CHECKS)
    return (*(job_name(precision, kind) for precision in precisions for kind in kinds), SAMPLER_JOB)


def job_name(precision: str, kind: str) -> str:
    """The job compiling one precision's passes of one kind (or, for ``CHECKS``, its small-shape checks)."""
    return f"{precision}:{kind}"


def jobs_before_checks() -> tuple[str, ...]:
    """The jobs the benchmark waits for before its small-shape checks (expert, sampler and layer checks)."""
    return (job_name("bf16", CHECKS), job_name("fp8", CHECKS), SAMPLER_JOB)


@dataclass
class Precompile:
    """Worker processes compiling kernels: ``aim`` gives them the GPU, ``ready`` waits for one job (the benchmark
    waits for each pass's own job just before the pass), ``finish`` for the rest, ``stop`` ends them."""

    jobs: tuple[str, ...]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    quick: bool = False
    leaving: list[subprocess.Popen[bytes]] = field(default_factory=list)  # told to end, not waited for
    deadline: float | None = None  # set by the first wait: WAIT_SECONDS for all of them together
    waited_seconds: float = 0.0
    failed: set[str] = field(default_factory=set)
    marker: Path | None = None  # written once every worker has compiled its kernels (``compiled_marker``)
    reused: bool = False  # an earlier run's workers compiled these kernels: none ran

    def aim(self, device: str) -> None:
        """Send each worker of a job this run plans on the CUDA ``device`` the device's target; the others end, and
        all of them where an earlier run's workers compiled the same kernels into the same Triton cache."""
        import torch

        from dgprofile.probes import gpu_backends

        self.begin(planned_jobs(quick=self.quick, native_fp8=gpu_backends.native_fp8(torch, device)[0]),
                   target_of(device))

    def begin(self, planned: tuple[str, ...], line: str) -> None:
        """``keep`` the ``planned`` jobs, or none where ``compiled_marker`` says they compiled before. A quick run
        also takes a full run's marker: its kernels are among a full run's (its one expert method's check, the
        sampler, and its passes' expert GEMMs and sampler at the smallest concurrency, which a full run keeps), and
        on an H200 a quick check after a full one waited 3.1 s for six workers with nothing to compile."""
        self.marker = compiled_marker(line, quick=self.quick)
        earlier = (self.marker, compiled_marker(line, quick=False)) if self.quick else (self.marker,)
        self.reused = any(marker.exists() for marker in earlier)
        self.keep(() if self.reused else planned, line)

    def keep(self, planned: tuple[str, ...], line: str) -> None:
        """Send the workers of the ``planned`` jobs ``line``; the others end (in their own time: one may still be
        importing torch)."""
        kept = []
        for job, process in zip(self.jobs, self.processes, strict=True):
            _tell(process, line if job in planned else SKIP_LINE)
            if job in planned:
                kept.append((job, process))
            else:
                self.leaving.append(process)
        self.jobs = tuple(job for job, _ in kept)
        self.processes = [process for _, process in kept]

    def ready(self, job: str) -> None:
        """Wait until the worker of ``job`` has ended (at once for a job this run does not compile)."""
        if job in self.jobs:
            self._wait(job, self.processes[self.jobs.index(job)])

    def _wait(self, job: str, process: subprocess.Popen[bytes]) -> None:
        started = time.perf_counter()
        if self.deadline is None:
            self.deadline = started + WAIT_SECONDS
        try:
            if process.wait(timeout=max(0.0, self.deadline - started)) != 0:
                self.failed.add(job)
        except subprocess.TimeoutExpired:
            self.failed.add(job)
            process.kill()
            process.wait()
        self.waited_seconds += time.perf_counter() - started

    def finish(self) -> str:
        """Wait for the workers still running (within the one deadline); what they did, in a line."""
        for job, process in zip(self.jobs, self.processes, strict=True):
            self._wait(job, process)
        self.stop()
        if self.reused:
            return "Triton kernels: compiled into this Triton cache by an earlier run's workers"
        if self.marker is not None and self.jobs and not self.failed:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(" ".join(self.jobs) + "\n")
        return (f"Triton kernels compiled beside the probe, the limits step and the passes: {len(self.jobs)} "
                f"worker(s); the benchmark waited {self.waited_seconds:.1f} s for them"
                + (f"; {len(self.failed)} did not finish" if self.failed else ""))

    def stop(self) -> None:
        """End every worker still running (one still waiting for its target included)."""
        for process in (*self.processes, *self.leaving):
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()


def worker_command(job: str, *, quick: bool) -> list[str]:
    """The command line of one worker; it reads its target from its standard input (``target_line``)."""
    return [sys.executable, "-m", "dgprofile.probes.decode.precompile", *(["--quick"] if quick else []), job]


def target_line(*, capability: int, multiprocessors: int, shared_memory_bytes: int, free_memory_bytes: float) -> str:
    """What a worker reads to start compiling: the GPU's architecture and sizes, as one JSON line."""
    return json.dumps({"capability": capability, "multiprocessors": multiprocessors,
                       "shared_memory_bytes": shared_memory_bytes, "free_memory_bytes": free_memory_bytes}) + "\n"


SKIP_LINE = json.dumps({"skip": True}) + "\n"  # for a job the run does not plan: the worker ends


def _lower_priority() -> None:
    os.nice(WORKER_NICENESS)


def spawn(*, quick: bool) -> Precompile:
    """Start a worker for every job a CUDA run may plan, before the GPU is known: each imports torch and the
    benchmark while the machine is probed (seconds, in a fresh process), then waits for ``Precompile.aim``.
    Their output is discarded: the benchmark's own checks report what does not work here."""
    jobs = planned_jobs(quick=quick, native_fp8=True)
    # No CUDA device is visible to a worker: it cannot open a context on the GPU being measured.
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    processes = [subprocess.Popen(worker_command(job, quick=quick), env=environment, stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=_lower_priority if hasattr(os, "nice") else None) for job in jobs]
    return Precompile(jobs=jobs, processes=processes, quick=quick)


def _tell(process: subprocess.Popen[bytes], line: str) -> None:
    """Give a waiting worker its line; one that has already ended is left alone."""
    if process.stdin is None or process.stdin.closed:
        return
    try:
        process.stdin.write(line.encode())
        process.stdin.close()
    except OSError:  # the worker ended (a broken pipe)
        pass


def compiled_marker(target: str, *, quick: bool) -> Path:
    """The file that says an earlier run's workers compiled every kernel of this run into the Triton cache in
    use: named after the GPU's target, the benchmark's own sources (which hold the kernels and every shape they are
    launched at), torch's and Triton's versions, the Triton cache folder and the kind of run. A run that finds it
    starts no compilation (on an H200 a warm full check waited 3.5 s for workers with nothing to compile); a kernel
    missing from the cache all the same is compiled by the benchmark where it is first launched."""
    import torch
    import triton

    digest = hashlib.sha256()
    for part in (target, str(quick), torch.__version__, triton.__version__, os.environ.get("TRITON_CACHE_DIR", "")):
        digest.update(part.encode() + b"\0")
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "dgprofile" / "compiled-kernels" / digest.hexdigest()


def target_of(device: str) -> str:
    """The target line of the CUDA ``device`` this process has opened."""
    import torch

    from dgprofile.probes.decode.triton_moe import shared_memory_per_block

    target = torch.device(device)
    major, minor = torch.cuda.get_device_capability(target)
    return target_line(capability=major * 10 + minor,
                       multiprocessors=torch.cuda.get_device_properties(target).multi_processor_count,
                       shared_memory_bytes=shared_memory_per_block(target),
                       free_memory_bytes=float(torch.cuda.mem_get_info(target)[0]))


# --- the worker ----------------------------------------------------------------------------------------------


class _CompileOnlyDriver:
    """What Triton's JIT asks of its driver to compile (and, with launches turned off, nothing more)."""

    def __init__(self, capability: int) -> None:
        self.capability = capability

    def get_current_device(self) -> int:
        return 0

    def set_current_device(self, device: int) -> None:
        del device

    def get_current_stream(self, device: int | None = None) -> int:
        del device
        return 0

    def get_current_target(self) -> Any:
        from triton.backends.compiler import GPUTarget

        return GPUTarget("cuda", self.capability, 32)

    def get_device_capability(self, device: int | None = None) -> tuple[int, int]:
        del device
        return divmod(self.capability, 10)

    def get_active_torch_device(self) -> Any:
        import torch

        return torch.device(META)

    def map_python_to_cpp_type(self, ty: str) -> str:
        from triton.backends.nvidia.driver import ty_to_cpp

        return str(ty_to_cpp(ty))


LAUNCHER_PROBLEMS: list[str] = []  # launchers a worker could not build (it goes on compiling kernels)


def compile_only(capability: int) -> None:
    """From now on in this process, a Triton launch compiles the kernel for ``capability`` (and its launcher, where
    Triton builds one per kernel) and runs nothing."""
    from triton.runtime import driver
    from triton.runtime.jit import JITFunction

    driver.set_active(_CompileOnlyDriver(capability))
    launch = JITFunction.run

    def compile_instead(self: Any, *args: Any, grid: Any, warmup: bool, **kwargs: Any) -> Any:
        del warmup
        kernel = launch(self, *args, grid=grid, warmup=True, **kwargs)
        try:
            build_launcher(kernel)
        except Exception as error:  # no C compiler or CUDA library: the benchmark builds it at the first launch
            LAUNCHER_PROBLEMS.append(f"{type(error).__name__}: {str(error)[:160]}")
        return kernel

    JITFunction.run = compile_instead


def build_launcher(kernel: Any) -> None:
    """Build the C launcher of a compiled kernel into the Triton cache, where the benchmark's first launch finds it.

    Triton up to 3.6 compiles one with the host's C compiler per kernel signature at the kernel's first launch;
    later versions launch every kernel through one launcher built into Triton (they have no ``make_launcher``), and
    this does nothing. It needs the CUDA driver's library on the host, not a GPU."""
    from triton.backends.nvidia import driver as nvidia

    if hasattr(nvidia, "make_launcher"):
        nvidia.CudaLauncher(kernel.src, kernel.metadata)


def _attempt(what: str, call: Callable[[], object], problems: list[str]) -> None:
    """Run ``call``; a failure (an operator meta tensors lack, say) is noted and the job goes on."""
    try:
        call()
    except Exception as error:  # best effort: what is not compiled here compiles in the benchmark
        problems.append(f"{what}: {type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}")


def _checks(precision: str, problems: list[str], *, quick: bool) -> None:
    """The benchmark's small-shape checks, whose comparisons fail on meta tensors after their kernels compiled. A
    quick run checks only its one Triton expert method (its layers run torch ops)."""
    import torch

    from dgprofile.probes.decode import checks
    from dgprofile.specs.model_config import load_model_config

    fp8 = precision == "fp8"
    for method in triton_expert_methods(fp8=fp8, quick=quick):
        _attempt(f"check experts {method}",
                 partial(checks.check_experts, META, torch.bfloat16, fp8=fp8, method=method), problems)
    if quick:  # a quick run's layers run torch ops: it checks its expert method alone
        return
    small = checks.check_config(load_model_config())

    # Every case: a comparison on meta tensors would end the check at the first. The fp8 layers' attention kernels
    # are the bf16 layers' (compiled by that job), so their cases run SDPA.
    attention_methods = ("sdpa",) if fp8 else ATTENTION_METHODS

    def fused_layer_cases() -> None:
        layers = checks.check_layers(small, torch.bfloat16, META, fp8=fp8)
        methods = ("grouped", *triton_expert_methods(fp8=fp8, quick=False))
        for _ in checks.fused_layer_outputs(small, layers, META, torch.bfloat16, methods, attention_methods):
            pass

    _attempt(f"check fused {precision} layer", fused_layer_cases, problems)

    def gemv_layer_cases() -> None:
        # The expert method does not change the GEMV's kernels: a Triton one, which runs on meta tensors.
        layers = checks.check_layers(small, torch.bfloat16, META, fp8=fp8)
        for _ in checks.gemv_layer_outputs(small, layers, META, torch.bfloat16, "triton-geglu", attention_methods):
            pass

    if fp8:  # only fp8 layers try the GEMV (see bench.py)
        _attempt(f"check GEMV {precision} layer", gemv_layer_cases, problems)
        _attempt("check fp8 quantisation", lambda: list(checks.quantization_outputs(META, small)), problems)
        return
    for attention_method in ATTENTION_METHODS[1:]:
        _attempt(f"check attention {attention_method}",
                 partial(checks.check_attention, META, torch.bfloat16, attention_method, small), problems)


def _sampler(problems: list[str]) -> None:
    """The fused sampler at the shapes of its checks (the denoise passes compile their own shapes)."""
    import torch

    from dgprofile.probes.decode.triton_sampler import (
        CHECK_SOFTCAP,
        CHECK_TEMPERATURE,
        DISTRIBUTION_CHECK_SHAPE,
        STATISTICS_CHECK_SHAPE,
        TritonSampler,
    )

    rows, vocab = STATISTICS_CHECK_SHAPE
    logits = torch.empty(rows, vocab, device=META, dtype=torch.bfloat16)
    rows, vocab = DISTRIBUTION_CHECK_SHAPE
    one_row = torch.empty(vocab, device=META, dtype=torch.bfloat16).expand(rows, vocab)  # as the check reads it
    for shaped in (logits, one_row):
        probs = torch.empty(shaped.shape, device=META, dtype=torch.bfloat16)
        _attempt("sampler check", partial(TritonSampler(), shaped, probs, CHECK_SOFTCAP, CHECK_TEMPERATURE), problems)


def _passes(precision: str, kind: PassKind, *, quick: bool, free_memory_bytes: float, problems: list[str]) -> None:
    """One sliding and one global layer, then the head, at every shape of ``kind`` the run plans, with every
    expert and attention method the benchmark may time there."""
    import torch

    from dgprofile.probes.decode.bench import _attention_applies, _pass_tokens
    from dgprofile.probes.decode.head import build_head, head_parts
    from dgprofile.probes.decode.model import (
        GEMV_MAX_ROWS,
        build_layer,
        decoder_layer,
        layer_state,
        random_tensor,
        run_expert_rows,
        uniform_routing,
    )
    from dgprofile.probes.decode.plan import plan_bench
    from dgprofile.probes.decode.triton_sampler import TritonSampler
    from dgprofile.specs.model_config import load_model_config

    config = load_model_config()
    plan = plan_bench(config, device_kind="cuda", free_memory_bytes=free_memory_bytes,
                      native_fp8=precision == "fp8", quick=quick)
    if precision not in plan.measured_precisions:
        return
    fp8 = precision == "fp8"
    layers = {t: build_layer(config, t, dtype=torch.bfloat16, fp8=fp8, device=META) for t in LAYER_TYPES}
    head = build_head(config, vocab_rows=config.backbone.vocab_size // plan.vocab_divisor, dtype=torch.bfloat16,
                      fp8=fp8, device=META)
    generator = torch.Generator().manual_seed(0)
    expert_methods = triton_expert_methods(fp8=fp8, quick=quick)
    for context in plan.contexts:
        for concurrency in plan.concurrencies_for(kind, precision):
            tokens = _pass_tokens(config, kind, context)
            pass_context = 0 if kind == "prefill" else context
            if fp8 and not quick and concurrency * tokens <= GEMV_MAX_ROWS:  # the fused layers with the GEMV
                x = random_tensor((concurrency * tokens, config.backbone.hidden_size), torch.bfloat16, META)
                for layer_type, layer in layers.items():
                    state = layer_state(config, layer_type, kind=kind, concurrency=concurrency, new=tokens,
                                        context=pass_context, dtype=torch.bfloat16, device=META,
                                        generator=generator, expert_method="triton-geglu", fused=True,
                                        projection_method="gemv")
                    _attempt(f"{kind} c={concurrency} {precision} {layer_type} gemv",
                             partial(decoder_layer, config, x, layer, state, concurrency), problems)
            # What differs from bf16: the expert GEMMs and the kernels that quantise (attention runs as in bf16;
            # the head's quantising kernels are the layers', at the same widths).
            if fp8:
                routing = uniform_routing(concurrency * tokens, config.backbone.num_experts,
                                          config.backbone.top_k_experts, META, generator)
                x = random_tensor((concurrency * tokens, config.backbone.hidden_size), torch.bfloat16, META)
                for expert_method in expert_methods:
                    # Unquantised input, as the benchmark's autotuning gives it: quantised in one kernel.
                    _attempt(f"{kind} c={concurrency} fp8 experts {expert_method}",
                             partial(run_expert_rows, expert_method, layers["sliding"].experts, x, routing),
                             problems)
                    for layer_type, layer in layers.items():
                        state = layer_state(config, layer_type, kind=kind, concurrency=concurrency, new=tokens,
                                            context=pass_context, dtype=torch.bfloat16, device=META,
                                            generator=generator, expert_method=expert_method, fused=True)
                        _attempt(f"{kind} c={concurrency} fp8 {layer_type} {expert_method}",
                                 partial(decoder_layer, config, x, layer, state, concurrency), problems)
                continue
            for layer_type, layer in layers.items():
                attention_methods: tuple[AttentionMethod, ...] = ("sdpa",) if quick else tuple(
                    m for m in ATTENTION_METHODS
                    if _attention_applies(config, m, layer_type, kind, concurrency, tokens, pass_context))
                x = random_tensor((concurrency * tokens, config.backbone.hidden_size), torch.bfloat16, META)
                for expert_method in expert_methods:
                    for attention_method in attention_methods:
                        state = layer_state(config, layer_type, kind=kind, concurrency=concurrency, new=tokens,
                                            context=pass_context, dtype=torch.bfloat16, device=META,
                                            generator=generator, expert_method=expert_method,
                                            attention_method=attention_method, fused=not quick)
                        _attempt(f"{kind} c={concurrency} {layer_type} {expert_method} {attention_method}",
                                 partial(decoder_layer, config, x, layer, state, concurrency), problems)
            parts = head_parts(config, head, kind=kind, concurrency=concurrency, tokens=tokens,
                               split=plan.vocab_divisor > 1, sampler=TritonSampler(), device=META,
                               fused=not quick)
            for name, part in parts.items():
                _attempt(f"{kind} c={concurrency} {name}", part, problems)


def run_job(job: str, *, quick: bool, free_memory_bytes: float) -> list[str]:
    """Compile one job's kernels (``compile_only`` must be in force); what could not be run on meta tensors."""
    problems: list[str] = []
    if job == SAMPLER_JOB:
        _sampler(problems)
        return problems
    precision, _, kind = job.partition(":")
    if kind == CHECKS:
        _checks(precision, problems, quick=quick)
    elif kind in PASS_KINDS:
        _passes(precision, kind, quick=quick, free_memory_bytes=free_memory_bytes, problems=problems)
    else:
        raise ValueError(f"unknown compile job {job!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Compile the jobs named on the command line for the GPU described by the line on standard input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("jobs", nargs="+")
    args = parser.parse_args(argv)
    # Imported before the target arrives: that is the time the early start saves.
    import torch  # noqa: F401

    from dgprofile.probes.decode import bench, checks, head  # noqa: F401
    from dgprofile.probes.decode.compile_target import CompileTarget, set_compile_target

    target = json.loads(sys.stdin.readline() or SKIP_LINE)  # no line at all: the run ended before aiming it
    if target.get("skip"):
        return 0
    set_compile_target(CompileTarget(capability=target["capability"], multiprocessors=target["multiprocessors"],
                                     shared_memory_per_block_bytes=target["shared_memory_bytes"]))
    compile_only(target["capability"])
    for job in args.jobs:
        started = time.perf_counter()
        problems = run_job(job, quick=args.quick, free_memory_bytes=target["free_memory_bytes"])
        problems += [f"launcher: {problem}" for problem in dict.fromkeys(LAUNCHER_PROBLEMS)]
        LAUNCHER_PROBLEMS.clear()
        print(f"{job}: {time.perf_counter() - started:.1f} s", *problems, sep="\n  ", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
