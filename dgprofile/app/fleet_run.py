"""`dgprofile fleet run`: one dgprofile command on every machine of a Ray cluster, results streamed back as they
finish, and the fleet of them.

Ray (https://docs.ray.io) places one task per node, or one per GPU, each pinned to its node by a hard node-affinity
strategy and holding the node's GPUs (or one GPU) as Ray resources, so two measurements never share a device; in
per-node runs the task also holds all the node's CPUs, so no other Ray work runs beside the measurement. The task
runs the command in the node's own Python environment (``dgprofile.app.fleet_node``) and returns the result file,
which is written here as soon as it arrives. A machine that gives no result is recorded with the reason: the
command failed, it ran past the timeout, its node was lost (retried once, on the same node, as Ray cannot place a
pinned task elsewhere), or the run was interrupted.

Ray is imported only here, and only when a fleet run starts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dgprofile.analysis.fleet import FailedMachine, Fleet, FleetRow, FleetRunInfo, SkippedFile, summarise
from dgprofile.app import fleet_node
from dgprofile.errors import DgprofileError, ResultFileError, UsageError
from dgprofile.interrupts import Interruption, interruption_of, sigterm_interrupts
from dgprofile.records.results import SALT_ENVIRONMENT_VARIABLE, anonymize_salt, salted_hash, write_atomic
from dgprofile.records.values import Unavailable

RAY_MISSING = "fleet runs need Ray: pip install 'dgprofile[fleet]'"
LOCAL_CLUSTER = "a local Ray instance started for this run"
RESULTS_FOLDER = "results"
RECEIVED = "the received result"
# A task that has sent nothing back this long after its timeout (and the command's grace to save its result) is
# cancelled: its node may be busy with other Ray work that holds the resources it waits for, or stuck.
UNANSWERED_MARGIN_SECONDS = 60.0
# How often the progress (and its ETA) is refreshed while nothing finishes.
PROGRESS_INTERVAL_SECONDS = 1.0
# The environment variable that sets the niceness Ray starts task workers with.
WORKER_NICENESS = "RAY_worker_niceness"
# Ray reads resource amounts to four decimal places.
RESOURCE_STEP = 1e-4


@dataclass(frozen=True)
class NodeCommand:
    """A dgprofile command a fleet run may run on each machine, and what the run adds to its command line."""

    takes_device: bool
    added: tuple[str, ...] = ()


# `verify` (real models, measured) takes `--device` like `check`; its own options pass through unchanged.
NODE_COMMANDS: dict[str, NodeCommand] = {
    "check": NodeCommand(takes_device=True, added=("--no-html",)),
    "verify": NodeCommand(takes_device=True),
    "bench": NodeCommand(takes_device=True),
    "probe": NodeCommand(takes_device=False),
}
# Options the run sets itself on each machine's command line.
RUN_OWNED_OPTIONS = ("-o", "--output", "--html", "--json")


@dataclass(frozen=True)
class FleetRunOptions:
    """What a fleet run does. ``arguments``: the dgprofile command for each machine (``check --quick``);
    ``address``: the Ray cluster (empty: $RAY_ADDRESS, else a local Ray instance for this run); ``launcher``:
    how to start dgprofile on a node (empty: the node's Python with ``-m dgprofile``); ``runtime_env``: Ray's
    runtime environment for the run's tasks (how to ship dgprofile to nodes: the README)."""

    arguments: tuple[str, ...] = ("check",)
    address: str = ""
    per_gpu: bool = False
    include_cpu_nodes: bool = False
    timeout_seconds: float = 1800.0
    anonymize: bool = False
    runtime_env: Mapping[str, Any] = field(default_factory=dict)
    launcher: tuple[str, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class Target:
    """One measurement of the run: a whole node, or one GPU slot of it (Ray picks which GPU), with the Ray
    resources its task holds."""

    node_id: str
    hostname: str
    address: str
    cpus: float
    gpus: float
    gpu_slot: int = 0
    gpu_slots: int = 0

    def describe(self, salt: str) -> str:
        """How the fleet page names the machine (hostname and address hashed when ``salt`` is set)."""
        where = (f"{salted_hash(self.hostname, salt)}, Ray node {self.node_id[:8]}" if salt else
                 f"{self.hostname} ({self.address}, Ray node {self.node_id[:8]})")
        return where + (f", GPU {self.gpu_slot} of {self.gpu_slots}" if self.gpu_slots else "")


@dataclass(frozen=True)
class FleetProgress:
    """Where a run stands: measurements finished with a result, running, failed, the time since the start and the
    expected time to the end, and what just happened (empty on a plain refresh)."""

    total: int
    done: int
    running: int
    failed: int
    elapsed_seconds: float
    eta_seconds: float | Unavailable
    event: str


@dataclass(frozen=True)
class FleetRunOutcome:
    """The fleet of the run, the result files written, and what interrupted it, if anything (Ctrl-C, SIGTERM)."""

    fleet: Fleet
    result_paths: tuple[Path, ...]
    interruption: Interruption | None


Progress = Callable[[FleetProgress], None]


def node_arguments(arguments: Sequence[str], *, anonymize: bool) -> tuple[tuple[str, ...], NodeCommand]:
    """The command line for each machine (without its output path), checked; UsageError when it cannot run."""
    if not arguments:
        raise UsageError("no command to run on the machines")
    name = arguments[0]
    if name not in NODE_COMMANDS:
        raise UsageError(f"cannot run `dgprofile {name}` on a fleet: expected one of {', '.join(NODE_COMMANDS)}")
    owned = [a for a in arguments[1:] if a.split("=")[0] in RUN_OWNED_OPTIONS]
    if owned:
        raise UsageError(f"{' '.join(owned)}: the fleet run chooses where each machine's result goes")
    command = NODE_COMMANDS[name]
    extra = [*command.added, *(["--anonymize"] if anonymize and "--anonymize" not in arguments else [])]
    return (*arguments, *extra), command


def discover(nodes: Sequence[Mapping[str, Any]], *, per_gpu: bool,
             include_cpu_nodes: bool) -> tuple[list[Target], list[str]]:
    """The measurements to make on the alive nodes of ``ray.nodes()``, and notes on nodes left out."""
    alive = [node for node in nodes if node.get("Alive")]
    with_gpus = [node for node in alive if node["Resources"].get("GPU", 0) >= 1]
    notes: list[str] = []
    chosen = alive
    if with_gpus and not include_cpu_nodes and len(with_gpus) < len(alive):
        chosen = with_gpus
        notes.append(f"{len(alive) - len(with_gpus)} node(s) without a GPU left out (--include-cpu-nodes measures "
                     "them too)")
    targets: list[Target] = []
    for node in chosen:
        resources = node["Resources"]
        cpus, gpus = float(resources.get("CPU", 0.0)), int(resources.get("GPU", 0))
        base = {"node_id": node["NodeID"], "hostname": node.get("NodeManagerHostname") or "unknown host",
                "address": node.get("NodeManagerAddress") or "unknown address"}
        if per_gpu and gpus:
            share = round(math.floor(cpus / gpus / RESOURCE_STEP) * RESOURCE_STEP, 4)
            targets += [Target(**base, cpus=share, gpus=1, gpu_slot=slot, gpu_slots=gpus)
                        for slot in range(1, gpus + 1)]
        else:
            targets.append(Target(**base, cpus=cpus, gpus=gpus))
    return targets, notes


def import_ray() -> Any:
    """The ray module; DgprofileError naming the extra to install when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise DgprofileError(RAY_MISSING) from exc
    return ray


@dataclass
class _Attempt:
    target: Target
    number: int
    submitted: float
    first_failure: str = ""


@dataclass
class _Collected:
    rows: list[FleetRow] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    failed: list[FailedMachine] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)


def run_fleet(options: FleetRunOptions, output_dir: Path, *, progress: Progress) -> FleetRunOutcome:
    """Run the command on every machine of the cluster, write each result file under ``output_dir/results`` as it
    arrives, and return the fleet (with every machine that gave no result and why)."""
    arguments, command = node_arguments(options.arguments, anonymize=options.anonymize)
    if options.per_gpu and not command.takes_device:
        raise UsageError(f"`dgprofile {arguments[0]}` describes a whole machine: run it once per node, "
                         "without --per-gpu")
    salt = anonymize_salt() if options.anonymize else ""
    job_base = fleet_node.NodeJob(
        launcher=list(options.launcher), arguments=list(arguments),
        device_option=command.takes_device and "--device" not in arguments,
        environment={SALT_ENVIRONMENT_VARIABLE: salt} if salt else {}, timeout_seconds=options.timeout_seconds)

    ray = import_ray()
    cluster = _connect(ray, options)
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    started = time.monotonic()
    try:
        results_dir = output_dir / RESULTS_FOLDER
        results_dir.mkdir(parents=True, exist_ok=True)
        targets, notes = discover(ray.nodes(), per_gpu=options.per_gpu, include_cpu_nodes=options.include_cpu_nodes)
        if not targets:
            raise DgprofileError(f"no alive node to run on in {cluster}")
        with sigterm_interrupts():
            collected, interruption = _run_all(ray, targets, job_base, results_dir, salt, options, progress,
                                               started)
    finally:
        ray.shutdown()
    if interruption is not None:
        notes.append(f"interrupted ({interruption.value}): machines still running were cancelled")
    run = FleetRunInfo(label=options.label or f"Ray cluster at {cluster}", cluster=cluster,
                       command="dgprofile " + " ".join(arguments), machines=len(targets), started_at=started_at,
                       wall_seconds=round(time.monotonic() - started, 1), notes=tuple(notes))
    fleet = Fleet(rows=tuple(collected.rows), skipped=tuple(collected.skipped), failed=tuple(collected.failed),
                  run=run)
    return FleetRunOutcome(fleet=fleet, result_paths=tuple(collected.paths), interruption=interruption)


def _connect(ray: Any, options: FleetRunOptions) -> str:
    """Connect to the cluster (or start a local one); how the page names it."""
    address = options.address or os.environ.get("RAY_ADDRESS", "")
    if not address:
        # A local instance is this run's own: it need not report usage to Ray's servers.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray starts task workers at niceness 15, below everything else on the node: a measurement at that priority
    # gives the CPU up to any other work, and its timings with it. Its tasks run at the usual priority instead.
    runtime_env = dict(options.runtime_env)
    runtime_env["env_vars"] = {WORKER_NICENESS: "0", **runtime_env.get("env_vars", {})}
    try:
        ray.init(address=address or None, runtime_env=runtime_env, log_to_driver=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise DgprofileError(f"cannot connect to {where}: {_first_line(exc)}") from exc
    return address or LOCAL_CLUSTER


def _run_all(ray: Any, targets: list[Target], job: fleet_node.NodeJob, results_dir: Path, salt: str,
             options: FleetRunOptions, progress: Progress,
             started: float) -> tuple[_Collected, Interruption | None]:
    from ray import cloudpickle
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # By value: the node runs this code without importing dgprofile (see fleet_node).
    cloudpickle.register_pickle_by_value(fleet_node)
    remote = ray.remote(fleet_node.run_on_node)

    def submit(target: Target, number: int, first_failure: str = "") -> None:
        ref = remote.options(
            num_cpus=target.cpus, num_gpus=target.gpus, max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=target.node_id, soft=False)).remote(job)
        pending[ref] = _Attempt(target, number, time.monotonic(), first_failure)

    pending: dict[Any, _Attempt] = {}
    collected = _Collected()
    for target in targets:
        submit(target, 1)
    unanswered_after = options.timeout_seconds + fleet_node.INTERRUPT_GRACE_SECONDS + UNANSWERED_MARGIN_SECONDS

    def report(event: str) -> None:
        now = time.monotonic()
        progress(FleetProgress(
            total=len(targets), done=len(collected.rows) + len(collected.skipped), running=len(pending),
            failed=len(collected.failed), elapsed_seconds=now - started,
            eta_seconds=_eta(now, [a.submitted for a in pending.values()], collected.durations), event=event))

    report("")
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=PROGRESS_INTERVAL_SECONDS)
            for ref in ready:
                attempt = pending.pop(ref)
                report(_receive(ray, ref, attempt, submit, results_dir, salt, collected, options.timeout_seconds))
            now = time.monotonic()
            for ref, attempt in list(pending.items()):
                if now - attempt.submitted > unanswered_after:
                    ray.cancel(ref, force=True)
                    del pending[ref]
                    reason = (f"no answer within {unanswered_after:.0f} s of being sent (the node may be busy with "
                              "other Ray work holding the resources the measurement needs, or stuck); cancelled")
                    report(_fail(collected, attempt, reason, salt))
            if not ready:
                report("")
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (sigterm_interrupts): keep every result that came back
        interruption = interruption_of(exc)
        for ref, attempt in pending.items():
            ray.cancel(ref, force=True)
            _fail(collected, attempt, f"interrupted ({interruption.value}) before it finished", salt)
        pending.clear()
        report("interrupted: running measurements cancelled")
        return collected, interruption
    return collected, None


def _receive(ray: Any, ref: Any, attempt: _Attempt, submit: Callable[[Target, int, str], None], results_dir: Path,
             salt: str, collected: _Collected, timeout_seconds: float) -> str:
    """Take in one finished task: write its result file, or record why there is none (or retry it once after a
    node loss). Returns the progress event."""
    from ray import exceptions

    node_lost = (exceptions.NodeDiedError, exceptions.WorkerCrashedError, exceptions.TaskUnschedulableError,
                 exceptions.ObjectLostError, exceptions.LocalRayletDiedError)
    name = attempt.target.describe(salt)
    try:
        run: fleet_node.NodeRun = ray.get(ref)
    except node_lost as exc:
        if attempt.number == 1:
            submit(attempt.target, 2, _first_line(exc))
            return f"{name}: node lost ({type(exc).__name__}); retrying once"
        return _fail(collected, attempt, f"node lost ({attempt.first_failure}); the retry failed too: "
                                         f"{_first_line(exc)}", salt)
    except exceptions.RuntimeEnvSetupError as exc:
        return _fail(collected, attempt, f"Ray could not set up the runtime environment on the node: "
                                         f"{_first_line(exc)}", salt)
    except exceptions.RayError as exc:
        return _fail(collected, attempt, _first_line(exc), salt)
    if not run["result"]:
        return _fail(collected, attempt, _no_result_reason(run, timeout_seconds), salt)
    collected.durations.append(run["seconds"])
    path, outcome = _store(run["result"], attempt.target, results_dir)
    collected.paths.append(path)
    if isinstance(outcome, SkippedFile):
        collected.skipped.append(outcome)
        return f"{name}: result file skipped: {outcome.reason}"
    collected.rows.append(outcome)
    timed_out = f", interrupted at the {timeout_seconds:g} s timeout: partial result" if run["timed_out"] else ""
    verdict = outcome.verdict if isinstance(outcome.speedup, Unavailable) else \
        f"{outcome.verdict} {outcome.speedup:.2g}x"
    return f"{name}: {verdict} ({run['seconds']:.0f} s{timed_out}) -> {path.name}"


def _fail(collected: _Collected, attempt: _Attempt, reason: str, salt: str) -> str:
    name = attempt.target.describe(salt)
    collected.failed.append(FailedMachine(machine=name, reason=reason))
    return f"{name}: no result: {reason}"


def _no_result_reason(run: fleet_node.NodeRun, timeout_seconds: float) -> str:
    """Why a command wrote no result file, from its exit code and the end of its error output."""
    lines = [line.strip() for line in run["error_tail"].splitlines() if line.strip()]
    last = lines[-1] if lines else "no error output"
    if run["timed_out"]:
        return f"timed out after {timeout_seconds:g} s and wrote no partial result ({last})"
    if "No module named dgprofile" in run["error_tail"]:
        return (f"dgprofile is not installed in the node's Python ({run['command'][0]}): install it there or ship "
                "it with --runtime-env-json (README: Fleets)")
    return f"exited {run['exit_code']} without a result file: {last}"


def _store(result: bytes, target: Target, results_dir: Path) -> tuple[Path, FleetRow | SkippedFile]:
    """Write a received result file under a name of its own (the machine's host and device as the file records
    them, so hashed under --anonymize), and summarise it for the fleet."""
    summary: FleetRow | str
    try:
        summary = summarise(result, source=RECEIVED)
        stem = _safe_name(summary.hostname + (f"_{summary.device}" if summary.device else ""))
    except ResultFileError as exc:
        summary = str(exc).removeprefix(f"{RECEIVED}: ")
        stem = f"node-{target.node_id[:12]}" + (f"-gpu{target.gpu_slot}" if target.gpu_slots else "")
    path = _unused_path(results_dir, stem)
    try:
        write_atomic(path, result.decode("utf-8"))
    except UnicodeDecodeError:
        path.write_bytes(result)  # kept as received; the fleet lists it as skipped (not UTF-8 text)
    if isinstance(summary, FleetRow):
        return path, dataclasses.replace(summary, path=str(path))
    return path, SkippedFile(str(path), summary)


def _safe_name(text: str) -> str:
    """A file name made of the text's letters, digits, '-', '_' and '.', never starting with '-' or '.'."""
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:60].lstrip("-.")
    return name or "machine"


def _unused_path(directory: Path, stem: str) -> Path:
    """``directory/stem.dgprofile.json``, or with -2, -3... when a machine of the same name already sent one (nodes
    of a test cluster share their host)."""
    path = directory / f"{stem}.dgprofile.json"
    number = 2
    while path.exists():
        path = directory / f"{stem}-{number}.dgprofile.json"
        number += 1
    return path


def _eta(now: float, running_since: Sequence[float], durations: Sequence[float]) -> float | Unavailable:
    """Time to the end: the measurements run side by side, each expected to take the median of those finished."""
    if not running_since:
        return 0.0
    if not durations:
        return Unavailable("no machine has finished yet")
    typical = statistics.median(durations)
    return max(0.0, max(typical - (now - since) for since in running_since))


def _first_line(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_runtime_env(text: str) -> dict[str, Any]:
    """A runtime environment given as JSON text or as the path of a JSON file; UsageError when it is neither."""
    source = text
    if not text.lstrip().startswith("{"):
        try:
            text = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--runtime-env-json {source}: neither JSON nor a readable file ({exc})") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--runtime-env-json: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(value, dict):
        raise UsageError("--runtime-env-json: expected a JSON object, e.g. {\"py_modules\": [\"dist/x.whl\"]}")
    return value
