"""The scenario options `check`, `predict` and `verify` share (engine, precision, workload overrides, the setup
knobs of the README's "Setup knobs", --fail-under), and the option types every command uses for numbers and devices.

Every option is checked when the command line is parsed, before anything is measured: a number outside its range
(NaN and infinities included) is a usage error (exit 2) whose message, like the option's help, gives the range.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import click

from dgprofile.app.predictor import PredictOptions, validate_options
from dgprofile.errors import UsageError
from dgprofile.exit_codes import ExitCode
from dgprofile.model.engines import AUTO, ENGINE_NAMES
from dgprofile.model.setup import INTERCONNECT_CHOICES, SAMPLER_KINDS
from dgprofile.model.workloads import MAX_STEPS, MIN_STEPS, WORKLOADS
from dgprofile.records.codec import UNIT_BOUNDS
from dgprofile.records.predictions import Predictions
from dgprofile.specs.model_config import load_model_config
from dgprofile.specs.pass_cost import PRECISIONS

GIB = 1 << 30
CONTEXT_TOKENS = load_model_config().backbone.max_position_embeddings
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")
LOGITS_CHOICES = ("auto", "full", "quantised")
# vLLM splits the attention heads evenly over the GPUs of a tensor-parallel group (it refuses a size that does
# not divide them: ModelConfig.verify_with_parallel_config), so the group sizes are the divisors of the heads.
ATTENTION_HEADS = load_model_config().backbone.num_attention_heads
TENSOR_PARALLEL_SIZES = tuple(n for n in range(1, ATTENTION_HEADS + 1) if ATTENTION_HEADS % n == 0)


class GpuCount(click.ParamType):
    """A tensor-parallel group size (a divisor of the attention heads), or ``all`` (`check` only: the GPUs the
    machine has)."""

    name = "N|all"

    def get_metavar(self, *args: Any, **kwargs: Any) -> str:
        """The choices, as Click shows a Choice's."""
        return f"[{'|'.join(map(str, TENSOR_PARALLEL_SIZES))}|all]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "all" or isinstance(value, int):
            return value
        if str(value).isdigit() and int(value) in TENSOR_PARALLEL_SIZES:
            return int(value)
        self.fail(f"{value!r} is not one of {', '.join(map(str, TENSOR_PARALLEL_SIZES))} or all.", param, ctx)


class FiniteFloatRange(click.FloatRange):
    """A float range that also refuses NaN and infinities (which pass every comparison a range makes)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def device_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--device``: auto, cpu, mps, cuda, cuda:N, xpu or xpu:N (whether the machine has it is checked when
    probing)."""
    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        if not DEVICE_PATTERN.fullmatch(value):
            raise click.BadParameter(f"{value!r} is not one of auto, cpu, mps, cuda, cuda:N, xpu or xpu:N.")
        return value

    return click.option("--device", default="auto", show_default=True, callback=check, help=help_text)


def wait_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--wait SECONDS`` for another benchmark on the same device."""
    return click.option("--wait", "wait_seconds", default=0.0, show_default=True, type=FiniteFloatRange(min=0),
                        help=help_text)


_OPTIONS = (
    click.option("--engine", default=AUTO, show_default=True, type=click.Choice((AUTO, *ENGINE_NAMES)),
                 help="Inference engine; auto picks what users of the platform run."),
    click.option("--precision", type=click.Choice(tuple(PRECISIONS)),
                 help="Weight format (default: the best that fits)."),
    click.option("--workload", type=click.Choice(tuple(WORKLOADS)),
                 help="Headline workload (default long-form-drafting)."),
    click.option("--steps", type=FiniteFloatRange(min=MIN_STEPS, max=MAX_STEPS), help="Denoise passes per canvas, "
                 "fixed: early stopping off (default: the workload's published convergence evidence, moved by the "
                 f"sampler, thinking and quantised logits; the sampler runs {MIN_STEPS} to {MAX_STEPS})."),
    click.option("--prompt-tokens", type=click.IntRange(min=1, max=CONTEXT_TOKENS - 1),
                 help=f"Prompt length of the headline workload (prompt and output share the model's {CONTEXT_TOKENS:,}"
                 "-token context)."),
    click.option("--output-tokens", type=click.IntRange(min=1, max=CONTEXT_TOKENS - 1),
                 help="Output length of the headline workload."),
    click.option("--concurrency", default=1, show_default=True, type=click.IntRange(min=1),
                 help="Concurrent requests batched into each pass."),
    click.option("--memory-gb", type=FiniteFloatRange(min=0, min_open=True, max=int(UNIT_BOUNDS["bytes"]) // GIB),
                 help="Memory per GPU in GiB, when yours has less than the table's (e.g. a 16 GB Mac)."),
    click.option("--gpus", default="1", show_default=True, type=GpuCount(),
                 help=f"Identical GPUs, tensor parallel: the model's {ATTENTION_HEADS} attention heads split evenly "
                 f"over them ({', '.join(map(str, TENSOR_PARALLEL_SIZES))}). check measures every one of them and "
                 "the links between them; `check --gpus all` takes as many as this machine has."),
    click.option("--interconnect", metavar="LINK",
                 help=f"Link under --gpus N: {INTERCONNECT_CHOICES} (default: NVML's topology on a measured "
                 "machine, else the datasheet's)."),
    click.option("--execution-mode", type=click.Choice(("cuda-graphs", "eager")),
                 help="How the engine launches kernels (default: the engine's; vLLM --enforce-eager is eager)."),
    click.option("--sampler", type=click.Choice(SAMPLER_KINDS),
                 help="DiffusionGemma's acceptance rule (default: the released entropy bound)."),
    click.option("--sampler-value", type=FiniteFloatRange(min=0, min_open=True),
                 help="Entropy bound in nats (default 0.1) or confidence threshold (default 0.6)."),
    click.option("--thinking/--no-thinking", default=False, show_default=True,
                 help="Thinking mode (moves the steps per canvas to 30-48)."),
    click.option("--logits", type=click.Choice(LOGITS_CHOICES), default="auto", show_default=True,
                 help="Whether the logits come from a quantised LM head (auto: MLX 4-bit does)."),
    click.option("--ar-baseline", type=click.Choice(("plain", "mtp")), default="plain", show_default=True,
                 help="Autoregressive Gemma 4 alone, or with its MTP drafter."),
    click.option("--mtp-draft-tokens", type=click.IntRange(min=1), help="MTP tokens drafted per step (default 4)."),
    click.option("--mtp-acceptance", type=FiniteFloatRange(min=0, max=1, max_open=True),
                 help="Share of drafted tokens accepted (default: fitted to the published runs)."),
    click.option("--fail-under", type=FiniteFloatRange(min=0, max=int(UNIT_BOUNDS["speedup"])),
                 help=f"Exit {int(ExitCode.BELOW_FAIL_UNDER)} when the lower band of the headline speedup is below "
                 "this."),
)


def scenario_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared scenario options to a Click command."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def predict_options(*, engine: str, precision: str | None, workload: str | None, steps: float | None,
                    prompt_tokens: int | None, output_tokens: int | None, concurrency: int,
                    memory_gb: float | None, gpus: int | str, interconnect: str | None, execution_mode: Any,
                    sampler: Any, sampler_value: float | None, thinking: bool, logits: str, ar_baseline: Any,
                    mtp_draft_tokens: int | None, mtp_acceptance: float | None) -> PredictOptions:
    """The core's options object from the parsed command-line values, refused (a usage error, exit 2) when the
    options do not go together (``validate_options``: an engine and a precision it does not run, a prompt and
    output longer than the model's context).

    Commands pass their ``**scenario`` (typed Any: Click converted each value by the option types above).
    ``--gpus all`` is `check`'s alone (it counts the GPUs it measures): `check` passes the count it stands for.
    """
    if not isinstance(gpus, int):
        raise click.UsageError("--gpus all counts the GPUs of the machine `check` measures: give a number here")
    options = PredictOptions(engine=engine, precision=precision, workload=workload, steps=steps,
                             prompt_tokens=prompt_tokens, output_tokens=output_tokens, concurrency=concurrency,
                             memory_bytes=None if memory_gb is None else int(memory_gb * GIB), gpus=gpus,
                             interconnect=interconnect, execution_mode=execution_mode, sampler=sampler,
                             sampler_value=sampler_value, thinking=thinking,
                             quantised_logits=None if logits == "auto" else logits == "quantised",
                             ar_baseline=ar_baseline, mtp_draft_tokens=mtp_draft_tokens, mtp_acceptance=mtp_acceptance)
    try:
        validate_options(options)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    return options


def below_fail_under(predictions: Predictions, fail_under: float | None) -> bool:
    """True when --fail-under was given and the headline's lower band is below it (or unknown)."""
    if fail_under is None:
        return False
    low = predictions.headline.speedup_low
    return not isinstance(low, float) or low < fail_under
