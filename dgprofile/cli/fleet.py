"""`dgprofile fleet run`: profile every machine of a Ray cluster and write the fleet page."""

from __future__ import annotations

import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from dgprofile.cli.outputs import Output, check_outputs, write_output
from dgprofile.cli.scenario_options import FiniteFloatRange
from dgprofile.errors import UsageError
from dgprofile.exit_codes import ExitCode

if TYPE_CHECKING:
    from dgprofile.app.fleet_run import FleetProgress

FLEET_DIR = Path("dgprofile-fleet")


def default_output_dir() -> Path:
    """``dgprofile-fleet/<UTC time>``: one folder per run, holding the page, the CSV and the result files."""
    return FLEET_DIR / f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"


@click.group()
def fleet() -> None:
    """Profile many machines at once: `fleet run` measures every node of a Ray cluster (needs the `fleet` extra)."""


@fleet.command("run")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND [OPTIONS]...]")
@click.option("--address", default="",
              help="Ray cluster to run on, e.g. head-node:6379 [default: $RAY_ADDRESS, else a local Ray instance "
                   "started for this run].")
@click.option("--per-gpu", is_flag=True, help="One measurement per GPU instead of one per node.")
@click.option("--quick", is_flag=True, help="Run `check --quick` on every machine (without a command after --).")
@click.option("--include-cpu-nodes", is_flag=True,
              help="Also measure nodes without a GPU when the cluster has GPU nodes (they are left out otherwise).")
@click.option("--timeout", "timeout_seconds", default=1800.0, show_default=True, type=FiniteFloatRange(min=1),
              help="Seconds each machine's command may run; then it is interrupted and what it saved is kept.")
@click.option("--anonymize", is_flag=True,
              help="Hash hostnames, GPU UUIDs and PCI bus ids with one salt for the whole fleet.")
@click.option("--runtime-env-json", "runtime_env",
              help="Ray runtime environment for the run's tasks, as JSON or a JSON file (README: Fleets).")
@click.option("--node-command",
              help="How to start dgprofile on a node, e.g. '/opt/venv/bin/dgprofile' [default: the node's Python "
                   "with -m dgprofile].")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the page, the CSV and the result files [default: dgprofile-fleet/<time>].")
@click.option("--label", default="", help="What the fleet is, for the page's heading [default: the cluster].")
@click.pass_context
def run(ctx: click.Context, command: tuple[str, ...], address: str, per_gpu: bool, quick: bool,
        include_cpu_nodes: bool, timeout_seconds: float, anonymize: bool, runtime_env: str | None,
        node_command: str | None, output_dir: Path | None, label: str) -> None:
    """Run `check` (or the dgprofile command after --) on every node of a Ray cluster, or on every GPU with
    --per-gpu; stream each result file back as it finishes; write the fleet page and CSV.

    \b
    dgprofile fleet run --address head:6379 --quick
    dgprofile fleet run --per-gpu -- check --precision fp8
    dgprofile fleet run -- verify --random-weights --quick

    Each machine's result, or the reason it has none, goes on the fleet page. Exits 0 when every machine gave a
    result, 6 when some did not.
    """
    from dgprofile.analysis.fleet import fleet_csv
    from dgprofile.app.fleet_run import FleetRunOptions, read_runtime_env, run_fleet
    from dgprofile.pages.fleet_page import render_fleet_html

    if command and quick:
        raise UsageError("--quick stands for `-- check --quick`: give one or the other")
    output_dir = output_dir or default_output_dir()
    if output_dir.exists() and any(output_dir.iterdir()):
        raise UsageError(f"{output_dir} is not empty: give a new folder with -o, so that runs do not mix")
    # Checked before the cluster is asked for anything: a page that cannot be written loses nothing yet.
    outputs = [Output("-o/--output-dir", output_dir / name) for name in ("fleet.html", "fleet.csv")]
    check_outputs(outputs)
    options = FleetRunOptions(
        arguments=command or (("check", "--quick") if quick else ("check",)), address=address, per_gpu=per_gpu,
        include_cpu_nodes=include_cpu_nodes, timeout_seconds=timeout_seconds, anonymize=anonymize,
        runtime_env=read_runtime_env(runtime_env) if runtime_env else {},
        launcher=tuple(shlex.split(node_command)) if node_command else (), label=label)
    view = ProgressView(sys.stderr)
    try:
        outcome = run_fleet(options, output_dir, progress=view.show)
    finally:
        view.close()
    fleet = outcome.fleet
    page, table = write_output(outputs[0], render_fleet_html(fleet)), write_output(outputs[1], fleet_csv(fleet))
    counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(fleet.verdict_counts.items()))
    click.echo(f"{len(fleet.rows)} machines with a result ({counts or 'none'}), {len(fleet.failed)} without, "
               f"{len(fleet.skipped)} result files skipped")
    for failed in fleet.failed:
        click.echo(f"no result from {failed.machine}: {failed.reason}", err=True)
    for skipped in fleet.skipped:
        click.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    click.echo(f"wrote {page.path} and {table.path}; result files in {output_dir / 'results'}")
    if outcome.interruption is not None:
        ctx.exit(outcome.interruption.exit_code)
    if page.problem or table.problem:
        ctx.exit(ExitCode.OUTPUT_ERROR)
    if fleet.failed:
        ctx.exit(ExitCode.FLEET_INCOMPLETE)


def _as_is(status: str | None) -> str | None:
    return status


def clock_text(seconds: float) -> str:
    """A duration as a clock shows it: 0:42, 12:05, 1:02:03."""
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


class ProgressView:
    """Live progress on a terminal (Click's progress bar: machines finished of all, with what is running, failed
    and the time left), one line per event elsewhere (logs, CI)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.bar: Any = None
        self.finished = 0

    def show(self, progress: FleetProgress) -> None:
        """Show where the run stands, and what just happened."""
        eta = progress.eta_seconds
        left = (f"about {clock_text(eta)} left" if isinstance(eta, float) and eta >= 1 else
                "finishing" if isinstance(eta, float) else "time left unknown until one finishes")
        status = (f"{progress.running} running, {progress.failed} failed, {clock_text(progress.elapsed_seconds)} "
                  f"elapsed, {left}" if progress.running else
                  f"{progress.failed} failed, {clock_text(progress.elapsed_seconds)} elapsed")
        if not self.interactive:
            if progress.event:
                click.echo(f"[{progress.done + progress.failed}/{progress.total}: {status}] {progress.event}",
                           file=self.stream)
            return
        if self.bar is None:
            self.bar = click.progressbar(None, length=progress.total, label="fleet run", file=self.stream,
                                         show_eta=False, show_percent=False, show_pos=True, item_show_func=_as_is)
            self.bar.__enter__()
        if progress.event:
            click.echo("\r\x1b[2K" + progress.event, file=self.stream)
        finished = progress.done + progress.failed
        self.bar.update(finished - self.finished, status)
        if finished == self.finished:
            self.bar.render_progress()  # update() draws only when a step was made; the status changed anyway
        self.finished = finished

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
