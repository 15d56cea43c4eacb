"""The scenario options `check` and `predict` share (engine, precision, workload overrides, --fail-under)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dgprofile.app.predictor import PredictOptions
from dgprofile.exit_codes import ExitCode
from dgprofile.model.engines import AUTO, ENGINE_NAMES
from dgprofile.model.workloads import WORKLOADS
from dgprofile.records.predictions import Predictions
from dgprofile.specs.pass_cost import PRECISIONS

GIB = 1 << 30

_OPTIONS = (
    click.option("--engine", default=AUTO, show_default=True, type=click.Choice((AUTO, *ENGINE_NAMES)),
                 help="Inference engine; auto picks what users of the platform run."),
    click.option("--precision", type=click.Choice(tuple(PRECISIONS)),
                 help="Weight format (default: the best that fits)."),
    click.option("--workload", type=click.Choice(tuple(WORKLOADS)),
                 help="Headline workload (default long-form-drafting)."),
    click.option("--steps", type=click.FloatRange(min=1), help="Denoise passes per canvas, fixed "
                 "(default: the workload's published convergence evidence)."),
    click.option("--prompt-tokens", type=click.IntRange(min=1), help="Prompt length of the headline workload."),
    click.option("--output-tokens", type=click.IntRange(min=1), help="Output length of the headline workload."),
    click.option("--concurrency", default=1, show_default=True, type=click.IntRange(min=1),
                 help="Concurrent requests batched into each pass."),
    click.option("--memory-gb", type=click.FloatRange(min=0, min_open=True),
                 help="Memory per GPU in GiB, when yours has less than the table's (e.g. a 16 GB Mac)."),
    click.option("--fail-under", type=float, help=f"Exit {int(ExitCode.BELOW_FAIL_UNDER)} when the lower band of "
                 "the headline speedup is below this."),
)


def scenario_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared scenario options to a Click command."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def predict_options(*, engine: str, precision: str | None, workload: str | None, steps: float | None,
                    prompt_tokens: int | None, output_tokens: int | None, concurrency: int,
                    memory_gb: float | None) -> PredictOptions:
    """The core's options object from the parsed command-line values.

    Commands pass their ``**scenario`` (typed Any: Click converted each value by the option types above).
    """
    return PredictOptions(engine=engine, precision=precision, workload=workload, steps=steps,
                          prompt_tokens=prompt_tokens, output_tokens=output_tokens, concurrency=concurrency,
                          memory_bytes=None if memory_gb is None else int(memory_gb * GIB))


def below_fail_under(predictions: Predictions, fail_under: float | None) -> bool:
    """True when --fail-under was given and the headline's lower band is below it (or unknown)."""
    if fail_under is None:
        return False
    low = predictions.headline.speedup_low
    return not isinstance(low, float) or low < fail_under
