"""The default workloads: what a request looks like for the use cases DiffusionGemma is pitched for.

Steps per canvas come from the published convergence evidence (calibration-runs.json,
``denoising_steps_evidence``). The arXiv study reports *tokens committed per decoder call* per task type, counted
as in transformers' ``tokens_per_forward``: real (non-pad) tokens over decoder passes. A canvas holding ``r``
real tokens therefore took ``r / tokens_per_call`` denoise passes, so for a workload whose canvases hold
``min(output, 256)`` real tokens, ``steps = min(output, 256) / tokens_per_call``, clamped to the sampler's
limits (at least 2 passes, at most 48). A workload's range spans the tasks that resemble it; its typical value
is their geometric mean. Prompt and output lengths are assumptions about the use case, stated per workload and
overridable on the command line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dgprofile.errors import UsageError
from dgprofile.specs.model_config import CANVAS_TOKENS

MIN_STEPS = 2  # the stability check needs two passes (transformers' StableAndConfidentStoppingCriteria)
MAX_STEPS = 48  # max_denoising_steps of the released generation config
ARXIV_SOURCE = "arXiv 2606.14620 (tokens committed per decoder call, H100, transformers)"
TOKENS_PER_CALL: dict[str, float] = {"gsm8k": 25.5, "humaneval": 23.0, "mbpp": 19.8, "factual": 5.8,
                                     "open_ended": 12.6, "json": 8.5}
# Google: "adaptive stopping usually ends denoising after 12-16 steps depending on the task".
GOOGLE_TYPICAL_STEPS = (12.0, 16.0)


@dataclass(frozen=True)
class StepsPerCanvas:
    """Denoise passes per canvas: a typical value and the range the evidence spans."""

    low: float
    typical: float
    high: float
    basis: str
    exact: bool = False  # fixed steps (early stopping off): no sampler or thinking mode moves them

    @classmethod
    def fixed(cls, steps: float, basis: str) -> StepsPerCanvas:
        """One value, no spread (a fixed ``max_denoising_steps`` with early stopping off)."""
        return cls(steps, steps, steps, basis, exact=True)


@dataclass(frozen=True)
class Workload:
    """One kind of request."""

    name: str
    description: str
    prompt_tokens: int
    output_tokens: int
    steps: StepsPerCanvas
    length_basis: str


def steps_from_tokens_per_call(tokens_per_call: float, output_tokens: int) -> float:
    """Denoise passes per canvas implied by a tokens-per-call figure for canvases of this output length."""
    real_tokens = min(output_tokens, CANVAS_TOKENS)
    return min(MAX_STEPS, max(MIN_STEPS, real_tokens / tokens_per_call))


def _steps_for_tasks(tasks: tuple[str, ...], output_tokens: int, *, extra: tuple[float, ...] = (),
                     extra_basis: str = "") -> StepsPerCanvas:
    values = [steps_from_tokens_per_call(TOKENS_PER_CALL[t], output_tokens) for t in tasks] + list(extra)
    geometric_mean = math.exp(sum(math.log(v) for v in values) / len(values))
    typical = min(max(geometric_mean, min(values)), max(values))  # no rounding outside the range
    basis = (f"{ARXIV_SOURCE}: {', '.join(f'{t} {TOKENS_PER_CALL[t]} tokens/call' for t in tasks)} "
             f"-> {min(output_tokens, CANVAS_TOKENS)} real tokens per canvas / tokens per call"
             + (f"; {extra_basis}" if extra_basis else ""))
    return StepsPerCanvas(min(values), typical, max(values), basis)


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("short-completion", "a short answer or inline completion", 512, 64,
             _steps_for_tasks(("factual", "open_ended"), 64),
             "assumed: a few paragraphs of context, a one- or two-sentence answer"),
    Workload("structured-rewrite", "rewrite text into JSON or another constrained format", 1024, 256,
             _steps_for_tasks(("json",), 256), "assumed: a page in, one canvas of structured output"),
    Workload("code-infill", "fill in a function body from the surrounding file", 2048, 128,
             _steps_for_tasks(("humaneval", "mbpp"), 128), "assumed: a source file of context, a short body"),
    Workload("long-form-drafting", "draft a long document from a brief", 512, 1024,
             _steps_for_tasks(("open_ended",), 1024, extra=GOOGLE_TYPICAL_STEPS,
                              extra_basis="Google's typical 12-16 steps (ai.google.dev/gemma/docs/diffusiongemma)"),
             "assumed: a short brief, four canvases of prose (the vLLM blog's 1024-token outputs)"),
)}
HEADLINE_WORKLOAD = "long-form-drafting"


def workload_by_name(name: str) -> Workload:
    """The workload called ``name``; UsageError listing the known ones otherwise."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise UsageError(f"unknown workload '{name}': known are {', '.join(WORKLOADS)}") from None


def with_overrides(workload: Workload, *, prompt_tokens: int | None = None, output_tokens: int | None = None,
                   steps: float | None = None) -> Workload:
    """The workload with command-line overrides applied; a new output length re-derives the steps from the same
    tasks only when no explicit ``steps`` is given (then they are fixed, as with ``max_denoising_steps``)."""
    for label, value in (("--prompt-tokens", prompt_tokens), ("--output-tokens", output_tokens)):
        if value is not None and value < 1:
            raise UsageError(f"{label} must be at least 1")
    if steps is not None and not MIN_STEPS <= steps <= MAX_STEPS:
        raise UsageError(f"--steps must be between {MIN_STEPS} and {MAX_STEPS} (the sampler's limits)")
    output = output_tokens if output_tokens is not None else workload.output_tokens
    if steps is not None:
        steps_per_canvas = StepsPerCanvas.fixed(steps, "fixed on the command line (--steps)")
    elif output != workload.output_tokens:
        steps_per_canvas = _rescaled_steps(workload.steps, workload.output_tokens, output)
    else:
        steps_per_canvas = workload.steps
    return Workload(workload.name, workload.description,
                    prompt_tokens if prompt_tokens is not None else workload.prompt_tokens, output,
                    steps_per_canvas, workload.length_basis + ("; lengths overridden on the command line"
                                                               if prompt_tokens or output_tokens else ""))


def _rescaled_steps(steps: StepsPerCanvas, old_output: int, new_output: int) -> StepsPerCanvas:
    """Steps scale with the real tokens a canvas holds (the tokens-per-call mapping above)."""
    factor = min(new_output, CANVAS_TOKENS) / min(old_output, CANVAS_TOKENS)

    def clamp(value: float) -> float:
        return min(MAX_STEPS, max(MIN_STEPS, value * factor))

    return StepsPerCanvas(clamp(steps.low), clamp(steps.typical), clamp(steps.high),
                          steps.basis + f"; rescaled to {min(new_output, CANVAS_TOKENS)} real tokens per canvas")
