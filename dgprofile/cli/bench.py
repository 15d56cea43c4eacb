"""`dgprofile bench`: measure this machine's limits and decode passes and print or save them."""

from __future__ import annotations

from pathlib import Path

import click

from dgprofile.cli.command_line import command_line
from dgprofile.exit_codes import ExitCode


@click.command()
@click.option("--limits-only", is_flag=True, help="Measure bandwidth, matmul rates and latency floor only.")
@click.option("--device", default="auto", show_default=True,
              help="torch device to measure: auto, cuda, cuda:N (NVIDIA, or AMD with ROCm torch), xpu, xpu:N, mps or cpu.")
@click.option("--quick", is_flag=True, help="Fewer samples, dtypes, shapes and concurrencies.")
@click.option("--json", "as_json", is_flag=True, help="Print the result file as JSON instead of text.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the result file here.")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait for another dgprofile benchmark on the same device.")
@click.option("--anonymize", is_flag=True, help="Replace hostname, GPU UUIDs and PCI bus ids with salted hashes.")
@click.pass_context
def bench(ctx: click.Context, limits_only: bool, device: str, quick: bool, as_json: bool, output: Path | None,
          wait_seconds: float, anonymize: bool) -> None:
    """Measure memory bandwidth, matmul rates and ridge, the latency floor, then the decode passes.

    Progress goes to stderr; limits and passes to stdout as text, or the whole result file with --json.
    """
    from dgprofile.app.runner import MeasureOptions, run_bench
    from dgprofile.records.results import dump, dumps
    from dgprofile.records.values import Unavailable
    from dgprofile.terminal.format_limits import format_limits
    from dgprofile.terminal.format_passes import format_passes
    from dgprofile.text.units import unavailable_text

    if output is not None and not output.parent.is_dir():  # refuse before minutes of measuring, not after
        raise click.BadParameter(f"cannot write {output}: no directory {output.parent}", param_hint="-o/--output")
    options = MeasureOptions(quick=quick, device=device, anonymize=anonymize, wait_seconds=wait_seconds,
                             limits_only=limits_only)
    outcome = run_bench(options, command=command_line(ctx), progress=lambda message: click.echo(message, err=True))
    result = outcome.result
    if output is not None:
        dump(result, output)
        click.echo(f"wrote {output}", err=True)
    if as_json:
        click.echo(dumps(result), nl=False)
    else:
        limits = result.limits
        click.echo(unavailable_text(limits) if isinstance(limits, Unavailable) else format_limits(limits))
        if not limits_only:
            click.echo("\n" + format_passes(result.passes))
    for reason in result.run.incomplete_reasons:
        click.echo(f"incomplete: {reason}", err=True)
    if outcome.interrupted:
        ctx.exit(ExitCode.INTERRUPTED)
