"""`dgprofile compare A B [-o compare.html]`: two result files side by side, and why they differ."""

from __future__ import annotations

from pathlib import Path

import click

from dgprofile.analysis.compare import compare as compare_results
from dgprofile.pages.compare_page import render_compare_html
from dgprofile.records.results import load, write_atomic
from dgprofile.terminal.format_comparison import format_comparison


@click.command()
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the side-by-side page here (e.g. compare.html).")
@click.option("--all-scenarios", is_flag=True, help="Print every predicted scenario, not only concurrency 1.")
def compare(a: Path, b: Path, output: Path | None, all_scenarios: bool) -> None:
    """Compare result file B against A (typically a dedicated GPU against Apple Silicon): limits, pass times,
    predicted speedups per scenario, and a plain-words account of why they differ."""
    comparison = compare_results(load(a), load(b))
    click.echo(format_comparison(comparison, all_scenarios=all_scenarios), nl=False)
    if output is not None:
        write_atomic(output, render_compare_html(comparison))
        click.echo(f"wrote {output}")
