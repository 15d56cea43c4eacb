"""`dgprofile bench`: measure this machine's limits (and decode passes) and print or save them."""

from __future__ import annotations

from pathlib import Path

import click

from dgprofile.format_limits import format_limits
from dgprofile.results import dump, dumps
from dgprofile.units import unavailable_text
from dgprofile.values import Unavailable


@click.command()
@click.option("--limits-only", is_flag=True, help="Measure bandwidth, matmul rates and latency floor only.")
@click.option("--device", help="torch device to measure: cuda, cuda:N, mps or cpu (default: the first GPU, else cpu).")
@click.option("--quick", is_flag=True, help="Fewer samples, dtypes and shapes (a rougher, faster answer).")
@click.option("--json", "as_json", is_flag=True, help="Print the result file as JSON instead of text.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the result file here.")
@click.option("--wait", "wait_seconds", type=float, default=0.0, show_default=True,
              help="Seconds to wait for another dgprofile benchmark on the same device.")
@click.option("--anonymize", is_flag=True, help="Replace hostname, GPU UUIDs and PCI bus ids with salted hashes.")
def bench(limits_only: bool, device: str | None, quick: bool, as_json: bool, output: Path | None,
          wait_seconds: float, anonymize: bool) -> None:
    """Measure memory bandwidth, matmul rate and ridge per dtype, and the latency floor (then the decode passes).

    Progress goes to stderr; the limits to stdout as text, or the whole result file with --json.
    """
    from dgprofile.probes.limits import run_bench  # imports torch, only when measuring

    if output is not None and not output.parent.is_dir():  # refuse before minutes of measuring, not after
        raise click.BadParameter(f"cannot write {output}: no directory {output.parent}", param_hint="-o/--output")
    command = ("dgprofile", "bench", *(["--limits-only"] if limits_only else []),
               *(["--device", device] if device else []), *(["--quick"] if quick else []),
               *(["--json"] if as_json else []), *(["-o", str(output)] if output else []),
               *(["--anonymize"] if anonymize else []))
    result = run_bench(device=device, quick=quick, limits_only=limits_only, wait_seconds=wait_seconds,
                       anonymize=anonymize, command=command, progress=lambda message: click.echo(message, err=True))
    if output is not None:
        dump(result, output)
    limits = result.limits
    if as_json:
        click.echo(dumps(result))
    else:
        click.echo(unavailable_text(limits) if isinstance(limits, Unavailable) else format_limits(limits))
        if not limits_only and isinstance(result.passes, Unavailable):
            click.echo(f"\nDecode passes: {unavailable_text(result.passes)}")
    if output is not None:
        click.echo(f"wrote {output}", err=True)
