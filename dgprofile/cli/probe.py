"""`dgprofile probe`: describe this machine's devices, memory and software (no benchmarks)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from dgprofile.app.machine import probe_machine, probe_result
from dgprofile.records.codec import to_json
from dgprofile.records.results import dump
from dgprofile.terminal.format_machine import format_machine


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the machine description as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a result file (probe section only) to this path.")
@click.option("--anonymize", is_flag=True,
              help="Replace hostname, GPU UUIDs and PCI bus ids with salted hashes.")
def probe(as_json: bool, output: Path | None, anonymize: bool) -> None:
    """Describe this machine's GPUs, CPU, memory and software in about a second, without benchmarks.

    Values that cannot be read are shown as unavailable, with the reason.
    """
    started_at = datetime.now(timezone.utc)
    machine = probe_machine(anonymize=anonymize)
    if output is not None:
        command = ("dgprofile", "probe", *(["--json"] if as_json else []), "-o", str(output),
                   *(["--anonymize"] if anonymize else []))
        try:
            dump(probe_result(machine, command=command, started_at=started_at), output)
        except OSError as exc:
            raise click.BadParameter(f"cannot write {output}: {exc.strerror or exc}",
                                     param_hint="-o/--output") from exc
    if as_json:
        click.echo(json.dumps(to_json(machine), indent=2))
    else:
        click.echo(format_machine(machine), nl=False)
    if output is not None:
        click.echo(f"wrote {output}", err=True)
