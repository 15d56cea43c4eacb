"""`dgprofile predict --hardware NAME`: the speedup and verdict for hardware you don't have, from its datasheet."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from dgprofile.cli.command_line import command_line
from dgprofile.cli.outputs import Output, check_outputs, output_option, write_output
from dgprofile.cli.scenario_options import below_fail_under, predict_options, scenario_options
from dgprofile.exit_codes import ExitCode
from dgprofile.specs.model_config import load_model_config

# vLLM splits the attention heads evenly over the GPUs of a tensor-parallel group (it refuses a size that does
# not divide them: ModelConfig.verify_with_parallel_config), so the group sizes are the divisors of the heads.
ATTENTION_HEADS = load_model_config().backbone.num_attention_heads
TENSOR_PARALLEL_SIZES = tuple(n for n in range(1, ATTENTION_HEADS + 1) if ATTENTION_HEADS % n == 0)


@click.command()
@click.option("--hardware", "hardware_id", required=True, help="Datasheet entry id (`dgprofile hardware list`).")
@click.option("--gpus", default=1, show_default=True, type=click.Choice(TENSOR_PARALLEL_SIZES),
              help=f"Identical GPUs, tensor parallel: the model's {ATTENTION_HEADS} attention heads split evenly "
                   "over them.")
@click.option("--json", "as_json", is_flag=True, help="Print the headline summary as JSON.")
@output_option("-o", "--output", help="Also write a result file (origin: predicted).")
@scenario_options
@click.pass_context
def predict(ctx: click.Context, hardware_id: str, gpus: int, as_json: bool, output: Path | None,
            fail_under: float | None, **scenario: Any) -> None:
    """Predict DiffusionGemma's speedup over autoregressive Gemma 4 on hardware you don't have."""
    from dgprofile.app.predictor import predict_for_spec, predicted_result
    from dgprofile.records.results import validated_text
    from dgprofile.specs.hardware import spec_by_id
    from dgprofile.terminal.format_predictions import format_predictions, summary_json

    started = datetime.now(timezone.utc)
    options = predict_options(**scenario)
    result_file = Output("-o/--output", output) if output is not None else None
    check_outputs([result_file] if result_file else [])
    spec = spec_by_id(hardware_id)
    predictions = predict_for_spec(spec, gpus=gpus, options=options)
    written = None
    if result_file is not None:
        result = predicted_result(spec, predictions, command=command_line(ctx), started_at=started,
                                  finished_at=datetime.now(timezone.utc))
        written = write_output(result_file, validated_text(result, source=str(output)))
    click.echo(json.dumps(summary_json(predictions), indent=2) if as_json else format_predictions(predictions))
    if written is not None and written.problem:
        ctx.exit(ExitCode.OUTPUT_ERROR)
    if below_fail_under(predictions, fail_under):
        click.echo(f"headline speedup (lower band) below --fail-under {fail_under}", err=True)
        ctx.exit(ExitCode.BELOW_FAIL_UNDER)
