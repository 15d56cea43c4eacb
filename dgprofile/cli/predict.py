"""`dgprofile predict --hardware NAME`: the speedup and verdict for hardware you don't have, from its datasheet;
`--from-result FILE`: the same from the measured limits and passes of a result file, with this dgprofile's model."""

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
@click.option("--hardware", "hardware_id", help="Datasheet entry id (`dgprofile hardware list`).")
@click.option("--from-result", "from_result", type=click.Path(dir_okay=False, path_type=Path),
              help="Predict from the measured limits and passes of this result file (`dgprofile check`) instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the headline summary as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a result file (origin: predicted; with --from-result: the measured file with the "
              "new predictions).")
@scenario_options
@click.pass_context
def predict(ctx: click.Context, hardware_id: str | None, from_result: Path | None, as_json: bool,
            output: Path | None, fail_under: float | None, **scenario: Any) -> None:
    """Predict DiffusionGemma's speedup over autoregressive Gemma 4 on hardware you don't have, or again from a
    measured result file."""
    import dataclasses

    from dgprofile.app.predictor import predict_for_result, predict_for_spec, predicted_result
    from dgprofile.records.results import SCHEMA_VERSION, dump, load
    from dgprofile.specs.hardware import spec_by_id
    from dgprofile.terminal.format_predictions import format_predictions, summary_json

    if hardware_id is not None and from_result is not None:
        raise click.UsageError("give either --hardware NAME or --from-result FILE, not both")
    started = datetime.now(timezone.utc)
    options = predict_options(**scenario)
    if from_result is not None:
        measured = load(from_result)
        predictions = predict_for_result(measured, options=options)
        if output is not None:
            dump(dataclasses.replace(measured, schema_version=SCHEMA_VERSION, predictions=predictions), output)
    elif hardware_id is None:
        raise click.UsageError("give --hardware NAME (`dgprofile hardware list`) or --from-result FILE")
    else:
        spec = spec_by_id(hardware_id)
        predictions = predict_for_spec(spec, options=options)
        if output is not None:
            dump(predicted_result(spec, predictions, command=command_line(ctx), started_at=started,
                                  finished_at=datetime.now(timezone.utc)), output)
    click.echo(json.dumps(summary_json(predictions), indent=2) if as_json else format_predictions(predictions))
    if below_fail_under(predictions, fail_under):
        click.echo(f"headline speedup (lower band) below --fail-under {fail_under}", err=True)
        ctx.exit(ExitCode.BELOW_FAIL_UNDER)
