"""A measured run (`dgprofile verify`) as terminal text: per workload, each figure's median and spread for both
models beside the prediction for the same scenario, with the residual."""

from __future__ import annotations

from collections.abc import Callable

from dgprofile.records.values import Unavailable
from dgprofile.records.verification import MeasuredFigure, MeasuredRun, ModeStatistics, WorkloadStatistics
from dgprofile.text.units import (
    bytes_text,
    count_text,
    seconds_text,
    speedup_text,
    text_table,
    tokens_per_s_text,
    unavailable_text,
)

Formatter = Callable[[float | Unavailable], str]


def _steps_text(value: float | Unavailable) -> str:
    return unavailable_text(value) if isinstance(value, Unavailable) else count_text(value)


def _distance_text(value: float | Unavailable) -> str:
    return unavailable_text(value) if isinstance(value, Unavailable) else f"{value:.2f}"


def residual_text(residual: float | Unavailable) -> str:
    """A residual as a signed percentage (measured over predicted, less one)."""
    return "" if isinstance(residual, Unavailable) else f"{residual:+.0%}"


def _short(value: Unavailable) -> str:
    return "not measured" if value.reason.startswith("not measured") else "-"


def measured_cells(figure: MeasuredFigure | Unavailable, text: Formatter) -> tuple[str, str, str]:
    """(median, spread, predicted with residual) of one figure."""
    if isinstance(figure, Unavailable):
        return _short(figure), "", ""
    spread = f"{text(figure.p25)}-{text(figure.p75)}" if figure.samples > 1 else ""
    predicted = figure.predicted
    if isinstance(predicted, Unavailable):
        return text(figure.median), spread, ""
    return text(figure.median), spread, f"{text(predicted)} ({residual_text(figure.residual)})"


ROWS: tuple[tuple[str, str, Formatter], ...] = (
    ("time to first token", "ttft_seconds", seconds_text),
    ("time to first useful draft", "first_useful_draft_seconds", seconds_text),
    ("total latency", "total_latency_seconds", seconds_text),
    ("tokens/s (end to end)", "tokens_per_s", tokens_per_s_text),
    ("pass (denoise / decode step)", "pass_seconds", seconds_text),
    ("steps per canvas", "steps_per_canvas", _steps_text),
    ("tokens per forward", "tokens_per_forward", _steps_text),
    ("output tokens", "output_tokens", _steps_text),
    ("peak accelerator memory", "peak_memory_bytes", bytes_text),
)


def _workload_block(stats: WorkloadStatistics) -> list[str]:
    speedup = stats.speedup
    if isinstance(speedup, MeasuredFigure):
        predicted = ("" if isinstance(speedup.predicted, Unavailable)
                     else f" vs {speedup_text(speedup.predicted)} predicted ({residual_text(speedup.residual)})")
        head = f"speedup {speedup_text(speedup.median)} measured{predicted}"
    else:
        head = f"speedup {unavailable_text(speedup)}"
    verdicts = (f"verdict measured {unavailable_text(stats.measured_verdict)}"
                if isinstance(stats.measured_verdict, Unavailable) else f"verdict measured {stats.measured_verdict}")
    if not isinstance(stats.predicted_verdict, Unavailable):
        verdicts += f", predicted {stats.predicted_verdict}"
    prompts = f"{stats.prompts} prompt{'s' if stats.prompts != 1 else ''}"
    lines = [f"{stats.workload} ({prompts}, concurrency {stats.concurrency}): {head}; {verdicts}"]
    distance = stats.edit_distance_between_models
    lines.append("  edit distance between the two outputs: " + (
        f"{distance.median:.2f} median ({distance.minimum:.2f}-{distance.maximum:.2f})"
        if isinstance(distance, MeasuredFigure) else unavailable_text(distance)))
    header = ("", "DiffusionGemma", "spread", "predicted", "Gemma 4", "spread", "predicted")
    rows = [header]
    for label, field, text in ROWS:
        dg: ModeStatistics = stats.diffusion
        ar: ModeStatistics = stats.autoregressive
        rows.append((label, *measured_cells(getattr(dg, field), text), *measured_cells(getattr(ar, field), text)))
    failed = [f"{mode.failed} of {mode.requests} {name} requests failed"
              for mode, name in ((stats.diffusion, "DiffusionGemma"), (stats.autoregressive, "Gemma 4"))
              if mode.failed]
    return lines + text_table(rows) + ([f"  {'; '.join(failed)}"] if failed else [])


def format_measured_run(run: MeasuredRun) -> str:
    """The run's header (backend, models, settings, basis of the prediction) and one block per workload."""
    version = unavailable_text(run.engine_version) if isinstance(run.engine_version, Unavailable) else run.engine_version
    lines = [f"Measured run: {run.backend} ({version}) on {run.device}, {run.status}, "
             f"{seconds_text(run.duration_seconds)}"]
    for model in run.models:
        name = "DiffusionGemma" if model.role == "diffusion" else "Gemma 4"
        lines.append(f"  {name}: {model.model_id} [{model.architecture}, {model.dtype}; {model.scaling}]")
    settings = run.settings
    steps = (unavailable_text(settings.steps_per_canvas) if isinstance(settings.steps_per_canvas, Unavailable)
             else f"{settings.steps_per_canvas} fixed")
    lines.append(f"  steps per canvas: {steps}; Gemma 4 {settings.autoregressive_decoding}; prompts: "
                 f"{settings.prompts_source}")
    lines += [f"  reduced: {reduction}" for reduction in settings.reductions]
    lines.append(f"  predictions beside the figures: {run.prediction_basis}")
    for reason in run.incomplete_reasons:
        lines.append(f"  incomplete: {reason}")
    for stats in run.workloads:
        lines += ["", *_workload_block(stats)]
    return "\n".join(lines)
