"""`dgprofile bench`: measure this machine's limits and decode passes and print or save them."""

from __future__ import annotations

from pathlib import Path

import click

from dgprofile.cli.command_line import command_line
from dgprofile.cli.outputs import Output, check_outputs, output_option, write_output
from dgprofile.cli.scenario_options import device_option, wait_option
from dgprofile.errors import UsageError
from dgprofile.exit_codes import ExitCode


@click.command()
@click.option("--limits-only", is_flag=True, help="Measure bandwidth, matmul rates and latency floor only.")
@device_option("torch device to measure: auto, cuda, cuda:N (NVIDIA, or AMD with ROCm torch), xpu, xpu:N, mps or "
               "cpu.")
@click.option("--quick", is_flag=True, help="Fewer samples, dtypes, shapes and concurrencies.")
@click.option("--json", "as_json", is_flag=True, help="Print the result file as JSON instead of text.")
@output_option("-o", "--output", help="Write the result file here.")
@wait_option("Seconds to wait for another dgprofile benchmark on the same device.")
@click.option("--anonymize", is_flag=True, help="Replace hostname, GPU UUIDs and PCI bus ids with salted hashes; "
              "paths on the recorded command line are shown as FILE.")
@click.pass_context
def bench(ctx: click.Context, limits_only: bool, device: str, quick: bool, as_json: bool, output: Path | None,
          wait_seconds: float, anonymize: bool) -> None:
    """Measure memory bandwidth, matmul rates and ridge, the latency floor, then the decode passes.

    Progress goes to stderr; limits and passes to stdout as text, or the whole result file with --json.
    """
    from dgprofile.app.runner import MeasureOptions, run_bench
    from dgprofile.records.results import dumps, validated_text
    from dgprofile.records.values import Unavailable
    from dgprofile.terminal.format_limits import format_limits
    from dgprofile.terminal.format_passes import format_passes
    from dgprofile.text.units import unavailable_text

    result_file = Output("-o/--output", output) if output is not None else None
    check_outputs([result_file] if result_file else [])  # refuse before minutes of measuring, not after
    options = MeasureOptions(quick=quick, device=device, anonymize=anonymize, wait_seconds=wait_seconds,
                             limits_only=limits_only)
    try:
        outcome = run_bench(options, command=command_line(ctx),
                            progress=lambda message: click.echo(message, err=True))
    except UsageError as exc:  # the device asked for is not on this machine: found before measuring
        raise click.UsageError(str(exc)) from None
    result = outcome.result
    written = None
    if result_file is not None:
        written = write_output(result_file, validated_text(result, source=str(result_file.path)))
        click.echo(f"wrote {written.path}", err=True)
    if as_json:
        click.echo(dumps(result), nl=False)
    else:
        limits = result.limits
        click.echo(unavailable_text(limits) if isinstance(limits, Unavailable) else format_limits(limits))
        if not limits_only:
            click.echo("\n" + format_passes(result.passes))
    for reason in result.run.incomplete_reasons:
        click.echo(f"incomplete: {reason}", err=True)
    if outcome.interruption is not None:
        ctx.exit(outcome.interruption.exit_code)
    if written is not None and written.problem:
        ctx.exit(ExitCode.OUTPUT_ERROR)
