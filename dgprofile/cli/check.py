"""`dgprofile check`: measure this machine end to end, write the result file and page, print the verdict."""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from dgprofile.cli.command_line import command_line
from dgprofile.cli.scenario_options import below_fail_under, predict_options, scenario_options
from dgprofile.exit_codes import ExitCode
from dgprofile.records.values import Unavailable

RESULTS_DIR = Path("dgprofile-results")


def default_result_path() -> Path:
    """``dgprofile-results/<host>_<UTC time>.dgprofile.json``: one file per run, ready for `dgprofile report`."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())[:40] or "machine"
    return RESULTS_DIR / f"{host}_{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.dgprofile.json"


@click.command()
@click.option("--quick", is_flag=True, help="Fewer shapes and concurrencies (about a third of the time).")
@click.option("--device", default="auto", show_default=True,
              help="cuda, cuda:N (NVIDIA, or AMD with ROCm torch), xpu, xpu:N (Intel), mps or cpu.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Result file [default: dgprofile-results/<host>_<time>.dgprofile.json].")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Report page [default: the result file's name with .html].")
@click.option("--no-html", is_flag=True, help="Do not write the report page.")
@click.option("--anonymize", is_flag=True, help="Hash hostname, GPU UUIDs and PCI bus ids in the result.")
@click.option("--wait", "wait_seconds", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait when another dgprofile benchmark holds the device.")
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
    from dgprofile.pages.result_page import render_result_html
    from dgprofile.records.results import dump, write_atomic
    from dgprofile.terminal.format_predictions import format_predictions, summary_json

    options = CheckOptions(measure=MeasureOptions(quick=quick, device=device, anonymize=anonymize,
                                                  wait_seconds=wait_seconds),
                           prediction=predict_options(**scenario))
    outcome = run_check(options, command=command_line(ctx),
                        progress=lambda message: click.echo(f"... {message}", err=True))
    result_path = output or default_result_path()
    dump(outcome.result, result_path)
    click.echo(f"result file: {result_path}", err=True)
    if not no_html:
        page_path = html_path or result_path.with_name(result_path.name.removesuffix(".json") + ".html")
        write_atomic(page_path, render_result_html(outcome.result))
        click.echo(f"report page: {page_path}", err=True)
    predictions = outcome.result.predictions
    for reason in outcome.result.run.incomplete_reasons:
        click.echo(f"incomplete: {reason}", err=True)
    if isinstance(predictions, Unavailable):
        click.echo(f"Error: no verdict: {predictions.reason}", err=True)
        ctx.exit(ExitCode.INTERRUPTED if outcome.interrupted else ExitCode.ENVIRONMENT_ERROR)
    click.echo(json.dumps(summary_json(predictions), indent=2) if as_json else format_predictions(predictions))
    if outcome.interrupted:
        ctx.exit(ExitCode.INTERRUPTED)
    if below_fail_under(predictions, fail_under):
        click.echo(f"headline speedup (lower band) below --fail-under {fail_under}", err=True)
        ctx.exit(ExitCode.BELOW_FAIL_UNDER)
    ctx.exit(predictions.verdict.exit_code)
