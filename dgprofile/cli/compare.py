"""`dgprofile compare A B [-o compare.html]`: two result files side by side, and why they differ."""

from __future__ import annotations

from pathlib import Path

import click

from dgprofile.analysis.compare import compare as compare_results
from dgprofile.cli.outputs import Output, check_outputs, output_option, write_output
from dgprofile.exit_codes import ExitCode
from dgprofile.pages.compare_page import render_compare_html
from dgprofile.records.results import load
from dgprofile.terminal.format_comparison import format_comparison


@click.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@output_option("-o", "--output", help="Also write the side-by-side page here (e.g. compare.html).")
@click.option("--all-scenarios", is_flag=True, help="Print every predicted scenario, not only concurrency 1.")
@click.pass_context
def compare(ctx: click.Context, a: Path, b: Path, output: Path | None, all_scenarios: bool) -> None:
    """Compare result file B against A (typically a dedicated GPU against Apple Silicon): limits, pass times,
    predicted speedups per scenario, and a plain-words account of why they differ."""
    page = Output("-o/--output", output) if output is not None else None
    check_outputs([page] if page else [], inputs=(a, b))
    comparison = compare_results(load(a), load(b))
    click.echo(format_comparison(comparison, all_scenarios=all_scenarios), nl=False)
    if page is not None:
        written = write_output(page, render_compare_html(comparison))
        click.echo(f"wrote {written.path}")
        if written.problem:
            ctx.exit(ExitCode.OUTPUT_ERROR)
