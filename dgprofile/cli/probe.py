"""`dgprofile probe`: describe this machine's devices, memory and software (no benchmarks)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from dgprofile.app.machine import anonymized, probe_machine, probe_result
from dgprofile.cli.command_line import command_line
from dgprofile.cli.outputs import Output, check_outputs, output_option, write_output
from dgprofile.exit_codes import ExitCode
from dgprofile.records.codec import to_json
from dgprofile.records.machine import Machine
from dgprofile.records.results import validated_text
from dgprofile.terminal.format_machine import format_machine


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the machine description as JSON.")
@output_option("-o", "--output", help="Also write a result file (probe section only) to this path.")
@click.option("--anonymize", is_flag=True,
              help="Replace hostname, GPU UUIDs and PCI bus ids with salted hashes; paths on the recorded command "
                   "line are shown as FILE.")
@click.pass_context
def probe(ctx: click.Context, as_json: bool, output: Path | None, anonymize: bool) -> None:
    """Describe this machine's GPUs, CPU, memory and software in about a second, without benchmarks.

    Values that cannot be read are shown as unavailable, with the reason.
    """
    result_file = Output("-o/--output", output) if output is not None else None
    check_outputs([result_file] if result_file else [])
    started_at = datetime.now(timezone.utc)
    result = probe_result(probe_machine(), command=command_line(ctx), started_at=started_at)
    if anonymize:
        result = anonymized(result)
    assert isinstance(result.machine, Machine)  # a probe result always holds the machine it probed
    written = None
    if result_file is not None:
        written = write_output(result_file, validated_text(result, source=str(result_file.path)))
    if as_json:
        click.echo(json.dumps(to_json(result.machine), indent=2))
    else:
        click.echo(format_machine(result.machine), nl=False)
    if written is not None:
        click.echo(f"wrote {written.path}", err=True)
        if written.problem:
            ctx.exit(ExitCode.OUTPUT_ERROR)
