"""`dgprofile report RESULTS... | DIR -o fleet.html [--csv FILE] [--json]`: the fleet page over many result files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dgprofile.analysis.fleet import fleet_csv, fleet_json, load_listed_fleet, result_paths
from dgprofile.cli.outputs import Output, check_outputs, output_option, write_output
from dgprofile.errors import ResultFileError
from dgprofile.exit_codes import ExitCode
from dgprofile.pages.fleet_page import render_fleet_html
from dgprofile.text.units import plural


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option("-o", "--output", default=Path("fleet.html"), show_default=True, help="Where to write the fleet page.")
@output_option("--csv", "csv_path", help="Also write one CSV line per result file here.")
@click.option("--json", "as_json", is_flag=True, help="Print the fleet summary as JSON instead of text.")
@click.pass_context
def report(ctx: click.Context, results: tuple[Path, ...], output: Path, csv_path: Path | None, as_json: bool) -> None:
    """Fleet page over result files (or directories of them): verdict counts, machines grouped by hardware model,
    a sortable and filterable table. Unreadable, duplicate or incompatible files are skipped with the reason."""
    outputs = [Output("-o/--output", output), *([Output("--csv", csv_path)] if csv_path is not None else [])]
    paths, unreadable = result_paths(results)
    check_outputs(outputs, inputs=paths)
    fleet = load_listed_fleet(paths, unreadable)
    if not fleet.rows:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in fleet.skipped[:5]) or "no *.json files found"
        raise ResultFileError(f"no readable result file among {len(fleet.skipped)} ({reasons})")
    written = [write_output(outputs[0], render_fleet_html(fleet))]
    if csv_path is not None:
        written.append(write_output(outputs[1], fleet_csv(fleet)))
    for skipped in fleet.skipped:
        click.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    if as_json:
        click.echo(json.dumps(fleet_json(fleet), indent=2, sort_keys=True))
    else:
        counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(fleet.verdict_counts.items()))
        click.echo(f"{plural(len(fleet.rows), 'result file')}, {plural(len(fleet.groups), 'hardware model')}: "
                   f"{counts}")
        click.echo("wrote " + " and ".join(str(w.path) for w in written))
    if any(w.problem for w in written):
        ctx.exit(ExitCode.OUTPUT_ERROR)
