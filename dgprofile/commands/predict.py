"""`dgprofile predict --hardware NAME`: the speedup and verdict for hardware you don't have, from its datasheet."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from dgprofile.engines import AUTO, ENGINE_NAMES
from dgprofile.exit_codes import ExitCode
from dgprofile.passcost import PRECISIONS
from dgprofile.workloads import WORKLOADS

GIB = 1 << 30


@click.command()
@click.option("--hardware", "hardware_id", required=True, help="Datasheet entry id (`dgprofile hardware list`).")
@click.option("--gpus", default=1, show_default=True, type=click.IntRange(min=1),
              help="Identical GPUs, tensor parallel.")
@click.option("--engine", default=AUTO, show_default=True, type=click.Choice((AUTO, *ENGINE_NAMES)),
              help="Inference engine; auto picks what users of the platform run.")
@click.option("--precision", type=click.Choice(tuple(PRECISIONS)), help="Weight format (default: best that fits).")
@click.option("--workload", type=click.Choice(tuple(WORKLOADS)), help="Headline workload (default long-form-drafting).")
@click.option("--steps", type=float, help="Denoise passes per canvas, fixed (default: the workload's evidence).")
@click.option("--prompt-tokens", type=int, help="Prompt length of the headline workload.")
@click.option("--output-tokens", type=int, help="Output length of the headline workload.")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(min=1),
              help="Concurrent requests batched into each pass.")
@click.option("--memory-gb", type=click.FloatRange(min=0, min_open=True),
              help="Memory per GPU in GiB, when yours has less than the table's (e.g. a 16 GB Mac).")
@click.option("--json", "as_json", is_flag=True, help="Print the headline summary as JSON.")
@click.option("--fail-under", type=float, help=f"Exit {int(ExitCode.BELOW_FAIL_UNDER)} when the lower band of "
              "the headline speedup is below this.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a result file (origin: predicted).")
@click.pass_context
def predict(ctx: click.Context, hardware_id: str, gpus: int, engine: str, precision: str | None,
            workload: str | None, steps: float | None, prompt_tokens: int | None, output_tokens: int | None,
            concurrency: int, memory_gb: float | None, as_json: bool, fail_under: float | None,
            output: Path | None) -> None:
    """Predict DiffusionGemma's speedup over autoregressive Gemma 4 on hardware you don't have."""
    from dgprofile.format_predictions import format_predictions, summary_json
    from dgprofile.hardware import spec_by_id
    from dgprofile.predict import PredictOptions, predict_for_spec, predicted_result
    from dgprofile.results import dump

    started = datetime.now(timezone.utc)
    spec = spec_by_id(hardware_id)
    options = PredictOptions(engine=engine, precision=precision, workload=workload, steps=steps,
                             prompt_tokens=prompt_tokens, output_tokens=output_tokens, concurrency=concurrency,
                             memory_bytes=None if memory_gb is None else int(memory_gb * GIB))
    predictions = predict_for_spec(spec, gpus=gpus, options=options)
    if output is not None:
        dump(predicted_result(spec, predictions, command=("dgprofile", *sys.argv[1:]), started_at=started,
                              finished_at=datetime.now(timezone.utc)), output)
    click.echo(json.dumps(summary_json(predictions), indent=2) if as_json else format_predictions(predictions))
    low = predictions.headline.speedup_low
    if fail_under is not None and (not isinstance(low, float) or low < fail_under):
        click.echo(f"headline speedup (lower band) below --fail-under {fail_under}", err=True)
        ctx.exit(ExitCode.BELOW_FAIL_UNDER)
