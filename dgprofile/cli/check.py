"""`dgprofile check`: measure this machine end to end, write the result file and page, print the verdict."""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dgprofile.cli.command_line import command_line
from dgprofile.cli.outputs import Output, Written, check_outputs, free_path, output_option, write_output
from dgprofile.cli.scenario_options import (
    below_fail_under,
    device_option,
    predict_options,
    scenario_options,
    wait_option,
)
from dgprofile.errors import UsageError
from dgprofile.exit_codes import ExitCode
from dgprofile.records.values import Unavailable

if TYPE_CHECKING:  # the result records are imported when a command runs, so that `--help` starts fast
    from dgprofile.records.results import ResultFile

RESULTS_DIR = Path("dgprofile-results")
HOST_NAME_CHARS = 40


def default_result_path(*, anonymize: bool, started: datetime) -> Path:
    """``dgprofile-results/<host>_<UTC time>.dgprofile.json``: one file per run, ready for `dgprofile report`.
    Anonymized, the host is its salted hash (as in the file); a name never starts with "-" or "." (a file
    named like an option, or hidden)."""
    from dgprofile.records.results import anonymize_salt, salted_hash

    hostname = socket.gethostname()
    host = salted_hash(hostname, anonymize_salt()) if anonymize else hostname
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in host)[:HOST_NAME_CHARS].lstrip("-_")
    return RESULTS_DIR / f"{safe or 'machine'}_{started:%Y%m%d-%H%M%S}.dgprofile.json"


def write_result_and_page(result: ResultFile, result_path: Path, page_path: Path | None) -> list[Written]:
    """The result file (checked against the schema) and its page, each saved elsewhere if its place fails, and
    where they went said on stderr."""
    from dgprofile.pages.result_page import render_result_html
    from dgprofile.records.results import validated_text

    written = [write_output(Output("-o/--output", result_path), validated_text(result, source=str(result_path)))]
    click.echo(f"result file: {written[0].path}", err=True)
    if page_path is not None:
        written.append(write_output(Output("--html", page_path), render_result_html(result)))
        click.echo(f"report page: {written[-1].path}", err=True)
    return written


def page_path_for(result_path: Path) -> Path:
    """The report page beside a result file: its name with .html for .json."""
    return result_path.with_name(result_path.name.removesuffix(".json") + ".html")


@click.command()
@click.option("--quick", is_flag=True, help="Fewer shapes and concurrencies (about a third of the time).")
@device_option("cuda, cuda:N (NVIDIA, or AMD with ROCm torch), xpu, xpu:N (Intel), mps or cpu.")
@output_option("-o", "--output", help="Result file [default: dgprofile-results/<host>_<time>.dgprofile.json].")
@output_option("--html", "html_path", help="Report page [default: the result file's name with .html].")
@click.option("--no-html", is_flag=True, help="Do not write the report page.")
@click.option("--anonymize", is_flag=True, help="Hash hostname, GPU UUIDs and PCI bus ids in the result, its "
              "file name and its page; paths on the recorded command line are shown as FILE.")
@wait_option("Seconds to wait when another dgprofile benchmark holds the device.")
@click.option("--json", "as_json", is_flag=True, help="Print the headline summary as JSON.")
@scenario_options
@click.pass_context
def check(ctx: click.Context, quick: bool, device: str, output: Path | None, html_path: Path | None, no_html: bool,
          anonymize: bool, wait_seconds: float, as_json: bool, fail_under: float | None, **scenario: Any) -> None:
    """Measure this machine end to end and say whether DiffusionGemma's speedup applies here.

    Probes the hardware, measures bandwidth, matmul rates and launch latency, times the AR step and the DG
    denoise/commit passes at the real model shapes, predicts every scenario and writes a result file and a
    self-contained HTML page. Exits with the verdict's code (see the README).
    """
    import json

    from dgprofile.app.runner import CheckOptions, MeasureOptions, run_check
    from dgprofile.terminal.format_predictions import format_predictions, summary_json

    gpus = scenario.pop("gpus")
    # --gpus all stands for two or more GPUs until the probe has counted them.
    options = CheckOptions(measure=MeasureOptions(quick=quick, device=device, anonymize=anonymize,
                                                  wait_seconds=wait_seconds, gpus=gpus),
                           prediction=predict_options(gpus=2 if gpus == "all" else gpus, **scenario))
    result_path = output or default_result_path(anonymize=anonymize, started=datetime.now(timezone.utc))
    page_path = None if no_html else html_path or page_path_for(result_path)
    check_outputs([Output("-o/--output", result_path), *([Output("--html", page_path)] if page_path else [])])
    try:
        outcome = run_check(options, command=command_line(ctx),
                            progress=lambda message: click.echo(f"... {message}", err=True))
    except UsageError as exc:  # the device or engine asked for is not on this machine: found before measuring
        raise click.UsageError(str(exc)) from None
    if output is None:  # another run may have taken the default name since
        result_path = free_path(result_path)
        page_path = None if no_html else html_path or page_path_for(result_path)
    written = write_result_and_page(outcome.result, result_path, page_path)
    predictions = outcome.result.predictions
    for reason in outcome.result.run.incomplete_reasons:
        click.echo(f"incomplete: {reason}", err=True)
    if isinstance(predictions, Unavailable):
        click.echo(f"Error: no verdict: {predictions.reason}", err=True)
    else:
        click.echo(json.dumps(summary_json(predictions), indent=2) if as_json else format_predictions(predictions))
    if outcome.interruption is not None:
        ctx.exit(outcome.interruption.exit_code)
    if any(w.problem for w in written):
        ctx.exit(ExitCode.OUTPUT_ERROR)
    if isinstance(predictions, Unavailable):
        ctx.exit(ExitCode.ENVIRONMENT_ERROR)
    if below_fail_under(predictions, fail_under):
        click.echo(f"headline speedup (lower band) below --fail-under {fail_under}", err=True)
        ctx.exit(ExitCode.BELOW_FAIL_UNDER)
    ctx.exit(predictions.verdict.exit_code)
