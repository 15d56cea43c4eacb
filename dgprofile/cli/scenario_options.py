"""The scenario options `check`, `predict` and `verify` share: engine, precision, workload overrides, the setup
knobs (README, "Setup knobs") and --fail-under."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dgprofile.app.predictor import PredictOptions
from dgprofile.exit_codes import ExitCode
from dgprofile.model.engines import AUTO, ENGINE_NAMES
from dgprofile.model.setup import INTERCONNECT_CHOICES, SAMPLER_KINDS
from dgprofile.model.workloads import WORKLOADS
from dgprofile.records.predictions import Predictions
from dgprofile.specs.pass_cost import PRECISIONS

GIB = 1 << 30
LOGITS_CHOICES = ("auto", "full", "quantised")

_OPTIONS = (
    click.option("--engine", default=AUTO, show_default=True, type=click.Choice((AUTO, *ENGINE_NAMES)),
                 help="Inference engine; auto picks what users of the platform run."),
    click.option("--precision", type=click.Choice(tuple(PRECISIONS)),
                 help="Weight format (default: the best that fits)."),
    click.option("--workload", type=click.Choice(tuple(WORKLOADS)),
                 help="Headline workload (default long-form-drafting)."),
    click.option("--steps", type=click.FloatRange(min=1), help="Denoise passes per canvas, fixed: early stopping "
                 "off (default: the workload's published convergence evidence, moved by the sampler, thinking and "
                 "quantised logits)."),
    click.option("--prompt-tokens", type=click.IntRange(min=1), help="Prompt length of the headline workload."),
    click.option("--output-tokens", type=click.IntRange(min=1), help="Output length of the headline workload."),
    click.option("--concurrency", default=1, show_default=True, type=click.IntRange(min=1),
                 help="Concurrent requests batched into each pass."),
    click.option("--memory-gb", type=click.FloatRange(min=0, min_open=True),
                 help="Memory per GPU in GiB, when yours has less than the table's (e.g. a 16 GB Mac)."),
    click.option("--gpus", default=1, show_default=True, type=click.IntRange(min=1),
                 help="Identical GPUs, tensor parallel."),
    click.option("--interconnect", metavar="LINK",
                 help=f"Link under --gpus N: {INTERCONNECT_CHOICES} (default: NVML's topology on a measured "
                 "machine, else the datasheet's)."),
    click.option("--execution-mode", type=click.Choice(("cuda-graphs", "eager")),
                 help="How the engine launches kernels (default: the engine's; vLLM --enforce-eager is eager)."),
    click.option("--sampler", type=click.Choice(SAMPLER_KINDS),
                 help="DiffusionGemma's acceptance rule (default: the released entropy bound)."),
    click.option("--sampler-value", type=click.FloatRange(min=0, min_open=True),
                 help="Entropy bound in nats (default 0.1) or confidence threshold (default 0.6)."),
    click.option("--thinking/--no-thinking", default=False, show_default=True,
                 help="Thinking mode (moves the steps per canvas to 30-48)."),
    click.option("--logits", type=click.Choice(LOGITS_CHOICES), default="auto", show_default=True,
                 help="Whether the logits come from a quantised LM head (auto: MLX 4-bit does)."),
    click.option("--ar-baseline", type=click.Choice(("plain", "mtp")), default="plain", show_default=True,
                 help="Autoregressive Gemma 4 alone, or with its MTP drafter."),
    click.option("--mtp-draft-tokens", type=click.IntRange(min=1), help="MTP tokens drafted per step (default 4)."),
    click.option("--mtp-acceptance", type=click.FloatRange(min=0, max=1, max_open=True),
                 help="Share of drafted tokens accepted (default: fitted to the published runs)."),
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
                    memory_gb: float | None, gpus: int, interconnect: str | None, execution_mode: Any,
                    sampler: Any, sampler_value: float | None, thinking: bool, logits: str, ar_baseline: Any,
                    mtp_draft_tokens: int | None, mtp_acceptance: float | None) -> PredictOptions:
    """The core's options object from the parsed command-line values.

    Commands pass their ``**scenario`` (typed Any: Click converted each value by the option types above).
    """
    return PredictOptions(engine=engine, precision=precision, workload=workload, steps=steps,
                          prompt_tokens=prompt_tokens, output_tokens=output_tokens, concurrency=concurrency,
                          memory_bytes=None if memory_gb is None else int(memory_gb * GIB), gpus=gpus,
                          interconnect=interconnect, execution_mode=execution_mode, sampler=sampler,
                          sampler_value=sampler_value, thinking=thinking,
                          quantised_logits=None if logits == "auto" else logits == "quantised",
                          ar_baseline=ar_baseline, mtp_draft_tokens=mtp_draft_tokens, mtp_acceptance=mtp_acceptance)


def below_fail_under(predictions: Predictions, fail_under: float | None) -> bool:
    """True when --fail-under was given and the headline's lower band is below it (or unknown)."""
    if fail_under is None:
        return False
    low = predictions.headline.speedup_low
    return not isinstance(low, float) or low < fail_under
