"""What a fleet run does on each machine: run one dgprofile command in the node's own environment and hand back the
result file it wrote.

A Ray task calls ``run_on_node`` on the node. Ray ships this module's code to the nodes by value, so that the node
needs dgprofile only for the command itself (its own installation, or one shipped with a runtime environment); for
the same reason this module imports nothing but the standard library, and what goes in and out are plain dicts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from subprocess import Popen
from typing import BinaryIO, TypedDict

# After the timeout the command gets an interrupt (a Ctrl-C, after which `check` still writes what it measured),
# then this long to write it before it is killed.
INTERRUPT_GRACE_SECONDS = 30.0
# The end of the command's error output kept for the reason of a failure.
ERROR_TAIL_CHARACTERS = 2000
RESULT_NAME = "result.dgprofile.json"
# The exit code reported when the command could not be started (a shell's "command not found").
COMMAND_NOT_STARTED = 127


class NodeJob(TypedDict):
    """What to run: ``launcher`` starts dgprofile on the node (empty: this Python's ``-m dgprofile``), ``arguments``
    are the command and its options; the result file's path is added with ``-o``, and ``--device cuda:N`` for the
    GPU Ray gave the task when ``device_option`` is set. ``environment`` is added to the node's own."""

    launcher: list[str]
    arguments: list[str]
    device_option: bool
    environment: dict[str, str]
    timeout_seconds: float


class NodeRun(TypedDict):
    """What happened: the result file's bytes (empty when none was written), the command's exit code, the end of
    its error output, the GPUs Ray gave the task, the node's hostname, how long it ran, and whether it timed out."""

    result: bytes
    exit_code: int
    error_tail: str
    gpu_ids: list[str]
    hostname: str
    seconds: float
    timed_out: bool
    command: list[str]


def run_on_node(job: NodeJob) -> NodeRun:
    """Run the job's dgprofile command here and return its result file (runs inside a Ray task)."""
    import ray  # a Ray worker has it

    gpu_ids = [str(gpu) for gpu in ray.get_gpu_ids()]
    workdir = tempfile.mkdtemp(prefix="dgprofile-fleet-")
    try:
        return _run(job, gpu_ids, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(job: NodeJob, gpu_ids: list[str], workdir: str) -> NodeRun:
    result_path = os.path.join(workdir, RESULT_NAME)
    command = [*(job["launcher"] or [sys.executable, "-m", "dgprofile"]), *job["arguments"], "-o", result_path]
    environment = {**os.environ, **job["environment"]}
    if job["device_option"] and gpu_ids:
        device, environment = _device_for(gpu_ids[0], environment)
        command += ["--device", device]
    started = time.monotonic()
    timed_out = False
    with open(os.path.join(workdir, "stderr"), "w+b") as error_output:
        try:
            process = _start(command, environment, workdir, error_output)
        except OSError as exc:  # the launcher is not there, or not a program
            return NodeRun(result=b"", exit_code=COMMAND_NOT_STARTED, gpu_ids=gpu_ids,
                           error_tail=f"cannot start {command[0]}: {exc.strerror or exc}",
                           hostname=socket.gethostname(), seconds=0.0, timed_out=False, command=command)
        try:
            exit_code = process.wait(timeout=job["timeout_seconds"])
        except subprocess.TimeoutExpired:
            timed_out = True
            exit_code = _interrupt(process)
        error_output.seek(0)
        error_tail = error_output.read().decode("utf-8", "replace")[-ERROR_TAIL_CHARACTERS:]
    try:
        with open(result_path, "rb") as result_file:
            result = result_file.read()
    except FileNotFoundError:
        result = b""
    return NodeRun(result=result, exit_code=exit_code, error_tail=error_tail, gpu_ids=gpu_ids,
                   hostname=socket.gethostname(), seconds=round(time.monotonic() - started, 3),
                   timed_out=timed_out, command=command)


def _start(command: list[str], environment: dict[str, str], workdir: str, error_output: BinaryIO) -> Popen[bytes]:
    """Start the command able to take an interrupt: a Ray task's thread blocks SIGINT, and a child inherits the
    blocked signal, so it is unblocked for the moment of the start."""
    unblock = hasattr(signal, "pthread_sigmask")
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}) if unblock else set()
    try:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=error_output,
                                env=environment, cwd=workdir)
    finally:
        if unblock:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _device_for(gpu_id: str, environment: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The torch device of the GPU Ray gave the task, and the environment to run the command in.

    dgprofile ties `cuda:N` to the GPU that NVML numbers N (for its lock and its machine record), so the command
    sees every GPU in PCI bus order, as NVML does, and is told which one to measure. Ray names GPUs by index unless
    CUDA_VISIBLE_DEVICES named them by UUID; then only that GPU is made visible, as `cuda:0`.
    """
    environment = dict(environment)
    environment["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    if gpu_id.isdigit():
        environment.pop("CUDA_VISIBLE_DEVICES", None)
        return f"cuda:{gpu_id}", environment
    environment["CUDA_VISIBLE_DEVICES"] = gpu_id
    return "cuda:0", environment


def _interrupt(process: Popen[bytes]) -> int:
    """Interrupt the command as Ctrl-C would (so it can write what it measured), then kill it if it lingers."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=INTERRUPT_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
