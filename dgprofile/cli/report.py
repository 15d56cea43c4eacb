"""`dgprofile report RESULTS... | DIR -o fleet.html [--csv FILE] [--json]`: the fleet page over many result files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dgprofile.analysis.fleet import fleet_csv, fleet_json, load_fleet
from dgprofile.errors import ResultFileError
from dgprofile.pages.fleet_page import render_fleet_html
from dgprofile.records.results import write_atomic
from dgprofile.text.units import plural


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("fleet.html"),
              show_default=True, help="Where to write the fleet page.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write one CSV line per result file here.")
@click.option("--json", "as_json", is_flag=True, help="Print the fleet summary as JSON instead of text.")
def report(results: tuple[Path, ...], output: Path, csv_path: Path | None, as_json: bool) -> None:
    """Fleet page over result files (or directories of them): verdict counts, machines grouped by hardware model,
    a sortable and filterable table. Unreadable, duplicate or incompatible files are skipped with the reason."""
    fleet = load_fleet(list(results))
    if not fleet.rows:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in fleet.skipped[:5]) or "no *.json files found"
        raise ResultFileError(f"no readable result file among {len(fleet.skipped)} ({reasons})")
    write_atomic(output, render_fleet_html(fleet))
    if csv_path is not None:
        write_atomic(csv_path, fleet_csv(fleet))
    if as_json:
        click.echo(json.dumps(fleet_json(fleet), indent=2, sort_keys=True))
        return
    counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(fleet.verdict_counts.items()))
    click.echo(f"{plural(len(fleet.rows), 'result file')}, {plural(len(fleet.groups), 'hardware model')}: {counts}")
    for skipped in fleet.skipped:
        click.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    click.echo(f"wrote {output}" + (f" and {csv_path}" if csv_path is not None else ""))
