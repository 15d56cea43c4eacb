"""`dgprofile predict --hardware NAME`: the speedup and verdict for hardware you don't have, from its datasheet."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from dgprofile.cli.command_line import command_line
from dgprofile.cli.scenario_options import below_fail_under, predict_options, scenario_options
from dgprofile.exit_codes import ExitCode


@click.command()
@click.option("--hardware", "hardware_id", required=True, help="Datasheet entry id (`dgprofile hardware list`).")
@click.option("--gpus", default=1, show_default=True, type=click.IntRange(min=1),
              help="Identical GPUs, tensor parallel.")
@click.option("--json", "as_json", is_flag=True, help="Print the headline summary as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a result file (origin: predicted).")
@scenario_options
@click.pass_context
def predict(ctx: click.Context, hardware_id: str, gpus: int, as_json: bool, output: Path | None,
            fail_under: float | None, **scenario: Any) -> None:
    """Predict DiffusionGemma's speedup over autoregressive Gemma 4 on hardware you don't have."""
    from dgprofile.app.predictor import predict_for_spec, predicted_result
    from dgprofile.records.results import dump
    from dgprofile.specs.hardware import spec_by_id
    from dgprofile.terminal.format_predictions import format_predictions, summary_json

    started = datetime.now(timezone.utc)
    spec = spec_by_id(hardware_id)
    predictions = predict_for_spec(spec, gpus=gpus, options=predict_options(**scenario))
    if output is not None:
        dump(predicted_result(spec, predictions, command=command_line(ctx), started_at=started,
                              finished_at=datetime.now(timezone.utc)), output)
    click.echo(json.dumps(summary_json(predictions), indent=2) if as_json else format_predictions(predictions))
    if below_fail_under(predictions, fail_under):
        click.echo(f"headline speedup (lower band) below --fail-under {fail_under}", err=True)
        ctx.exit(ExitCode.BELOW_FAIL_UNDER)
