"""The verdict: small named rules, in a fixed order, over the predicted speedup band and the memory fit.

Classes (README.md, "What `check` tells you"): ``cannot-run`` (no supported precision fits), ``applies`` (the
advertised multi-x speedup holds: the lower band reaches ``APPLIES_MIN_SPEEDUP``), ``does-not-apply`` (about
even or slower: the speedup is at most ``ABOUT_EVEN_MAX_SPEEDUP``), ``partial`` (faster, but short of it). The
first rule whose condition holds decides; the reasons and advice come from separate small rules that read the
same prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from dgprofile.model.engines import engine_by_name
from dgprofile.records.predictions import (
    Ceilings,
    Curve,
    MemoryFit,
    ModeEstimate,
    PassEstimate,
    Prediction,
    Scenario,
    Verdict,
)
from dgprofile.records.values import Unavailable, unreachable
from dgprofile.specs.model_config import CANVAS_TOKENS
from dgprofile.specs.pass_cost import FOUR_BIT_PRECISIONS
from dgprofile.text.units import (
    bytes_text,
    count_text,
    factor_text,
    percent_text,
    seconds_text,
    speedup_text,
    with_article,
)

APPLIES_MIN_SPEEDUP = 3.0  # "up to 4x" advertised; 3x at the lower band is the advertised effect, with margin
ABOUT_EVEN_MAX_SPEEDUP = 1.2  # within 20% is "about even": below what a user notices reliably between two runs
VERDICT_RULES_TEXT = (f"applies when the band's low end is at least {factor_text(APPLIES_MIN_SPEEDUP)}, "
                      f"does-not-apply when the speedup is {factor_text(ABOUT_EVEN_MAX_SPEEDUP)} or less, partial in "
                      "between, cannot-run when no precision fits")


@dataclass(frozen=True)
class SpeedupBand:
    """A speedup and its band (lower, upper)."""

    point: float
    low: float
    high: float


@dataclass(frozen=True)
class ClassRule:
    """One rule of the class decision: ``name``, the class it gives, and when it holds."""

    name: str
    verdict: Verdict
    holds: Callable[[SpeedupBand | None], bool]


CLASS_RULES: tuple[ClassRule, ...] = (
    # Order matters: nothing else can be said about a model that does not fit.
    ClassRule("does-not-fit", Verdict.CANNOT_RUN, lambda band: band is None),
    ClassRule("advertised-speedup-holds", Verdict.APPLIES,
              lambda band: band is not None and band.low >= APPLIES_MIN_SPEEDUP),
    ClassRule("about-even-or-slower", Verdict.DOES_NOT_APPLY,
              lambda band: band is not None and band.point <= ABOUT_EVEN_MAX_SPEEDUP),
    ClassRule("faster-but-short", Verdict.PARTIAL, lambda band: band is not None),
)


def classify(band: SpeedupBand | None) -> Verdict:
    """The class of the first rule that holds (``None``: nothing fits)."""
    return next(rule.verdict for rule in CLASS_RULES if rule.holds(band))


def classify_point(speedup: float) -> Verdict:
    """The class a single published speedup figure (no band) falls in."""
    return classify(SpeedupBand(speedup, speedup, speedup))


# --- reasons and advice ----------------------------------------------------------------------------------------

FOUR_BIT = FOUR_BIT_PRECISIONS
LATE_FIRST_TOKEN_FACTOR = 3.0  # DG's first token this many times later than AR's is worth saying
_BOUND_WORDS = {"compute": "compute-bound", "weights": "weight-streaming-bound",
                "memory-traffic": "memory-traffic-bound", "overhead": "engine-overhead-bound"}


@dataclass(frozen=True)
class Evidence:
    """What the reason rules of one scenario read."""

    scenario: Scenario
    diffusion: ModeEstimate | None
    autoregressive: ModeEstimate | None
    band: SpeedupBand | None
    memory: MemoryFit


def _characteristic(mode: ModeEstimate, kind: str) -> PassEstimate | None:
    return next((p for p in mode.passes if p.pass_kind == kind), None)


def _pass_ratio(e: Evidence) -> str | None:
    if e.diffusion is None or e.autoregressive is None:
        return None
    denoise = _characteristic(e.diffusion, "dg-denoise")
    bound = _BOUND_WORDS[denoise.bound_by] if denoise else "denoise pass"
    ratio = e.diffusion.pass_seconds / e.autoregressive.pass_seconds
    return (f"{bound}: a denoise pass costs {factor_text(ratio)} an AR step here, and a canvas of "
            f"{count_text(e.scenario.steps_per_canvas)} denoise passes yields {CANVAS_TOKENS} tokens")


def _ar_latency_bound(e: Evidence) -> str | None:
    step = _characteristic(e.autoregressive, "ar-step") if e.autoregressive else None
    if step is None or step.bound_by != "overhead":
        return None
    streaming = step.terms_seconds["weights"] + step.terms_seconds["kv-cache"]
    return (f"AR decoding is latency-bound with {e.scenario.engine}: a step takes {seconds_text(step.seconds)} "
            f"against {seconds_text(streaming)} to stream its weights, which is what DiffusionGemma amortises")


def _short_output(e: Evidence) -> str | None:
    tokens = e.scenario.output_tokens
    if tokens % CANVAS_TOKENS == 0:
        return None
    if tokens < CANVAS_TOKENS:
        return f"{with_article(f'{tokens}-token')} answer still pays a whole {CANVAS_TOKENS}-token canvas"
    used = (tokens % CANVAS_TOKENS) / CANVAS_TOKENS
    return (f"the last canvas is only {percent_text(used)} used: {count_text(tokens)} tokens are "
            f"{count_text(tokens / CANVAS_TOKENS)} canvases")


def _late_first_token(e: Evidence) -> str | None:
    if e.diffusion is None or e.autoregressive is None:
        return None
    if e.diffusion.ttft_s < LATE_FIRST_TOKEN_FACTOR * e.autoregressive.ttft_s:
        return None
    times = f"{seconds_text(e.diffusion.ttft_s)} vs {seconds_text(e.autoregressive.ttft_s)} for AR"
    engine = e.scenario.engine
    if engine_by_name(engine).shows_drafts:
        return (f"the first final token comes later, when the first canvas commits ({times}); {engine} shows drafts "
                "before it, and the first useful draft is in the table")
    return f"the first token comes later: {engine} shows nothing until the first canvas commits ({times})"


def _does_not_fit(e: Evidence) -> str | None:
    return None if e.memory.fits_diffusion and e.memory.engine_runs_it else e.memory.note


def _mtp_baseline(e: Evidence) -> str | None:
    baseline = e.scenario.ar_baseline
    if baseline.kind != "mtp" or e.autoregressive is None:
        return None
    step = _characteristic(e.autoregressive, "ar-step")
    if step is None:
        return None
    tokens = e.autoregressive.tokens_per_s * step.seconds
    return (f"the baseline is Gemma 4 with its MTP drafter: {count_text(tokens)} tokens per verification step of "
            f"{seconds_text(step.seconds)} ({baseline.draft_tokens} drafts, "
            f"{percent_text(baseline.acceptance)} accepted each)" if isinstance(baseline.acceptance, float) else None)


REASON_RULES: tuple[tuple[str, Callable[[Evidence], str | None]], ...] = (
    ("does-not-fit", _does_not_fit),
    ("pass-cost-ratio", _pass_ratio),
    ("mtp-baseline", _mtp_baseline),
    ("ar-latency-bound", _ar_latency_bound),
    ("whole-canvas", _short_output),
    ("late-first-token", _late_first_token),
)


def reasons_for(evidence: Evidence) -> tuple[str, ...]:
    """The reasons every rule finds for one scenario, in rule order."""
    return tuple(text for _, rule in REASON_RULES if (text := rule(evidence)) is not None)


def headline_reasons(headline: Prediction, memory: tuple[MemoryFit, ...], concurrency_curve: Curve | None,
                     ceilings: Ceilings) -> tuple[str, ...]:
    """Reasons that need more than one scenario: what fits, memory class, concurrency, tensor parallelism."""
    found: list[str] = []
    fitting = [m.precision for m in memory if m.fits_diffusion and m.engine_runs_it]
    if fitting and all(p in FOUR_BIT for p in fitting):
        found.append(f"fits only at 4-bit ({', '.join(fitting)}): {bytes_text(ceilings.usable_memory_bytes)} usable")
    if ceilings.vendor == "cpu":
        found.append(f"no GPU: the CPU runs the model from {ceilings.usable_memory_basis}")
    elif ceilings.memory_class == "shared-physical":
        found.append(f"unified memory: {ceilings.usable_memory_basis}")
    if ceilings.gpus > 1:
        found.append(f"tensor parallel over {ceilings.gpus} GPUs: weights and bandwidth split, plus two "
                     "all-reduces per layer on the interconnect (latency assumed, not measured)")
    if concurrency_curve is not None and isinstance(headline.speedup, float):
        later = [(p.x, p.speedup) for p in concurrency_curve.points if p.x > headline.scenario.concurrency
                 and isinstance(p.speedup, float)]
        if later:
            x, speedup = max(later, key=lambda point: point[0])
            found.append(_concurrency_sentence(int(x), speedup, headline.speedup))
    return tuple(found)


def _concurrency_sentence(concurrency: int, speedup: float, headline: float) -> str:
    """How the speedup moves at a higher concurrency, in the words of the speedup formatter (so a change too small
    to show reads as none)."""
    now, then = speedup_text(speedup), speedup_text(headline)
    if now == then:
        return f"at concurrency {concurrency} the speedup stays at {now}"
    return f"at concurrency {concurrency} the speedup {'falls' if speedup < headline else 'rises'} to {now} (from {then})"


def _cannot_run_advice(memory: tuple[MemoryFit, ...], ceilings: Ceilings) -> str:
    """What would make the model fit: the need at the asked concurrency, and only the remedies this platform and
    dgprofile's commands offer (tensor parallelism needs a GPU-to-GPU link; `predict --gpus` models it)."""
    runnable = [m for m in memory if m.engine_runs_it] or list(memory)
    smallest = min(runnable, key=lambda m: m.diffusion_needed_bytes)
    need = smallest.diffusion_needed_bytes
    remedies = []
    fewer = max(runnable, key=lambda m: m.max_diffusion_concurrency)
    if smallest.concurrency > 1 and fewer.max_diffusion_concurrency >= 1:
        remedies.append(f"lower --concurrency to {fewer.max_diffusion_concurrency} or less ({fewer.precision} fits "
                        f"{fewer.max_diffusion_concurrency} requests at once)")
    remedies.append(f"use an accelerator with at least {bytes_text(need)} usable")
    if not isinstance(ceilings.interconnect_bytes_per_s, Unavailable):
        per_gpu = smallest.usable_bytes / max(1, smallest.gpus)
        gpus = max(smallest.gpus + 1, math.ceil(need / per_gpu))
        command = (f": `dgprofile predict --hardware {ceilings.hardware_id} --gpus {gpus}` models it"
                   if isinstance(ceilings.hardware_id, str) else "")
        remedies.append(f"split it over {gpus} of these GPUs with tensor parallelism{command}")
    return (f"DiffusionGemma needs at least {bytes_text(need)} ({smallest.precision}, concurrency "
            f"{smallest.concurrency}) where {bytes_text(smallest.usable_bytes)} is usable: {'; or '.join(remedies)}")


def advice_for(verdict: Verdict, headline: Prediction, memory: tuple[MemoryFit, ...],
               ceilings: Ceilings) -> tuple[str, ...]:
    """What to do about the verdict, in plain words, and how to check it on real weights."""
    scenario = headline.scenario
    if verdict is Verdict.CANNOT_RUN:
        return (_cannot_run_advice(memory, ceilings),)
    match verdict:
        case Verdict.APPLIES:
            advice = (f"DiffusionGemma should be several times faster here for {scenario.workload} at concurrency "
                      f"{scenario.concurrency}: worth switching interactive traffic")
        case Verdict.PARTIAL:
            advice = ("faster than AR Gemma 4 here, but short of the advertised speedup: worth it for long outputs "
                      "at low concurrency; check the matrix before switching")
        case Verdict.DOES_NOT_APPLY:
            advice = ("keep autoregressive Gemma 4 on this machine: DiffusionGemma's denoise passes cost more than "
                      "the tokens they save")
        case _:
            unreachable(verdict)
    verify = (f"verify on real weights: `vllm bench serve --dataset-name random --random-input-len "
              f"{scenario.prompt_tokens} --random-output-len {scenario.output_tokens} --ignore-eos "
              f"--max-concurrency {scenario.concurrency}` against both models, as the vLLM blog did "
              "(https://vllm.ai/blog/2026-06-10-diffusion-gemma)"
              if scenario.engine == "vllm" else
              "verify on real weights with the engine's own benchmark, same prompt and output lengths, both models")
    return (advice, verify)
