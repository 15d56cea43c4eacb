"""`dgprofile verify`: run the real DiffusionGemma and Gemma 4 here and set what users feel beside the prediction."""

from __future__ import annotations

from pathlib import Path

import click

from dgprofile.cli.command_line import command_line
from dgprofile.exit_codes import ExitCode
from dgprofile.model.engines import AUTO, ENGINE_NAMES
from dgprofile.model.workloads import WORKLOADS
from dgprofile.specs.pass_cost import PRECISIONS

SIZES = ("full", "sampled-layers", "miniature")


@click.command()
@click.option("--dg-model", metavar="DIR|ID", help="DiffusionGemma checkpoint: a directory, or a hub id already in "
              "the local Hugging Face cache (nothing is downloaded).")
@click.option("--ar-model", metavar="DIR|ID", help="The autoregressive Gemma 4 checkpoint, likewise.")
@click.option("--random-weights", is_flag=True, help="Build both released architectures with random weights "
              "(no checkpoint or tokenizer; fixed steps; quality measures not measured).")
@click.option("--size", type=click.Choice(SIZES), help="Random weights: full size, sampled layers scaled to the "
              "whole model, or the miniature [default: full where it fits, else sampled layers; a quick run on a "
              "CPU builds the miniature].")
@click.option("--dg-url", metavar="URL", help="An OpenAI-compatible server serving DiffusionGemma (e.g. vLLM's "
              "http://127.0.0.1:8001).")
@click.option("--dg-served-model", metavar="NAME", help="The model name DiffusionGemma is served under.")
@click.option("--ar-url", metavar="URL", help="The server serving the autoregressive Gemma 4.")
@click.option("--ar-served-model", metavar="NAME", help="The model name Gemma 4 is served under.")
@click.option("--concurrency", "concurrencies", multiple=True, type=click.IntRange(min=1),
              help="Servers: concurrent streams per level (repeatable) [default: 1, 2, 4, 8].")
@click.option("--precision", default="bf16", show_default=True, type=click.Choice(tuple(PRECISIONS)),
              help="Servers: the weight format they run (the prediction beside the figures is for it).")
@click.option("--timeout", "timeout_seconds", default=300.0, show_default=True, type=click.FloatRange(min=0,
              min_open=True), help="Servers: seconds before a request counts as timed out.")
@click.option("--steps", type=click.IntRange(min=1), help="Denoise passes per canvas, fixed [default: random "
              "weights: each workload's typical figure; checkpoints: the checkpoint's adaptive stopping].")
@click.option("--workload", "workloads", multiple=True, type=click.Choice(tuple(WORKLOADS)),
              help="Workload to run (repeatable) [default: all four].")
@click.option("--prompts", "prompts_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Your own prompts, one JSON object per line (see the README) [default: the shipped ones].")
@click.option("--quick", is_flag=True, help="One prompt per workload (and the miniature on a CPU).")
@click.option("--device", default="auto", show_default=True, help="cuda, cuda:N, mps or cpu.")
@click.option("--dtype", default="auto", show_default=True, type=click.Choice(("auto", "bf16", "fp16", "fp32")),
              help="Weights' dtype in transformers (auto: bf16, or fp32 on a CPU without native bf16).")
@click.option("--engine", default=AUTO, show_default=True, type=click.Choice((AUTO, *ENGINE_NAMES)),
              help="Engine the prediction beside the figures is for (auto: the one that ran).")
@click.option("--result", "base_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A `check` result to add the measured run to (written back unless -o is given).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Result file [default: --result's file, else dgprofile-results/<host>_<time>.dgprofile.json].")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Report page [default: the result file's name with .html].")
@click.option("--no-html", is_flag=True, help="Do not write the report page.")
@click.option("--anonymize", is_flag=True, help="Hash hostname, GPU UUIDs and PCI bus ids in a new result.")
@click.option("--wait", "wait_seconds", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait when another dgprofile benchmark holds the device.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of random weights, prompts and sampling.")
@click.pass_context
def verify(ctx: click.Context, dg_model: str | None, ar_model: str | None, random_weights: bool, size: str | None,
           dg_url: str | None, dg_served_model: str | None, ar_url: str | None, ar_served_model: str | None,
           concurrencies: tuple[int, ...], precision: str, timeout_seconds: float, steps: int | None, workloads: tuple[str, ...], prompts_path: Path | None, quick: bool, device: str,
           dtype: str, engine: str, base_path: Path | None, output: Path | None, html_path: Path | None,
           no_html: bool, anonymize: bool, wait_seconds: float, seed: int) -> None:
    """Run the real DiffusionGemma and Gemma 4 on this machine and measure what users feel.

    Time to first token, time to first useful draft, total latency, tokens/s, steps per canvas, peak
    accelerator memory and the edit distance between the two models' outputs, per workload (median and
    spread), each beside the prediction for the same scenario. Writes a result file with a measured-runs
    section (or adds one to a `check` result) and prints a table. Exits 0, or 130 after a Ctrl-C (what
    finished is kept).
    """
    from dgprofile.app.verify.run import VerifyOptions, run_verify
    from dgprofile.cli.check import default_result_path
    from dgprofile.pages.result_page import render_result_html
    from dgprofile.records.results import dump, load, write_atomic
    from dgprofile.terminal.format_verification import format_measured_run

    result_path = output or base_path or default_result_path()
    if not result_path.parent.is_dir() and result_path.parent != Path("dgprofile-results"):
        raise click.BadParameter(f"cannot write {result_path}: no directory {result_path.parent}",
                                 param_hint="-o/--output")
    base = load(base_path) if base_path is not None else None
    options = VerifyOptions(dg_model=dg_model, ar_model=ar_model, random_weights=random_weights, size=size,
                            device=device, dtype=dtype, steps=steps, workloads=workloads, prompts_path=prompts_path,
                            quick=quick, engine=engine, anonymize=anonymize, wait_seconds=wait_seconds, seed=seed,
                            dg_url=dg_url, dg_served_model=dg_served_model, ar_url=ar_url,
                            ar_served_model=ar_served_model, precision=precision, timeout_seconds=timeout_seconds,
                            **({"concurrencies": concurrencies} if concurrencies else {}))
    outcome = run_verify(options, base=base, command=command_line(ctx),
                         progress=lambda message: click.echo(f"... {message}", err=True))
    dump(outcome.result, result_path)
    click.echo(f"result file: {result_path}", err=True)
    if not no_html:
        page_path = html_path or result_path.with_name(result_path.name.removesuffix(".json") + ".html")
        write_atomic(page_path, render_result_html(outcome.result))
        click.echo(f"report page: {page_path}", err=True)
    for reason in outcome.run.incomplete_reasons:
        click.echo(f"incomplete: {reason}", err=True)
    click.echo(format_measured_run(outcome.run))
    if outcome.interrupted:
        ctx.exit(ExitCode.INTERRUPTED)
