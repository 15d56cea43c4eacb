"""Predictions as terminal text and as the flat JSON summary of `predict --json`; the calibration table."""

from __future__ import annotations

import textwrap
from typing import Any

from dgprofile.model.speedup import USEFUL_DRAFT_DEFINITION
from dgprofile.model.verdict import VERDICT_RULES_TEXT
from dgprofile.records.codec import to_json
from dgprofile.records.predictions import (
    CalibrationSummary,
    ModeEstimate,
    PassEstimate,
    Prediction,
    Predictions,
    TransferValidation,
)
from dgprofile.records.values import Unavailable
from dgprofile.text.scenario import baseline_text, setup_text
from dgprofile.text.units import (
    bytes_text,
    count_text,
    percent_text,
    plural,
    seconds_text,
    signed_percent_text,
    speedup_band_text,
    speedup_text,
    speedup_with_band_text,
    text_table,
)

MODE_FIELDS = ("tokens_per_s", "aggregate_tokens_per_s", "ttft_s", "first_draft_s", "total_latency_s",
               "memory_bytes", "pass_seconds")
SETUP_FIELDS = ("execution_mode", "interconnect", "sampler", "thinking", "quantised_logits", "ar_baseline",
                "weight_format")


def _mode_summary(mode: ModeEstimate | Unavailable) -> dict[str, Any]:
    return {name: to_json(mode if isinstance(mode, Unavailable) else getattr(mode, name)) for name in MODE_FIELDS}


def summary_json(predictions: Predictions) -> dict[str, Any]:
    """The flat summary `predict --json` prints: the headline scenario, both modes, speedup band, verdict."""
    headline = predictions.headline
    scenario = headline.scenario
    return {
        "hardware": predictions.hardware, "hardware_id": to_json(predictions.ceilings.hardware_id),
        "gpus": scenario.gpus, "origin": predictions.origin, "engine": predictions.engine,
        "engine_reason": predictions.engine_reason, "workload": scenario.workload,
        "precision": scenario.precision, "concurrency": scenario.concurrency,
        "prompt_tokens": scenario.prompt_tokens, "output_tokens": scenario.output_tokens,
        "steps_per_canvas": scenario.steps_per_canvas,
        "setup": {name: to_json(getattr(scenario, name)) for name in SETUP_FIELDS},
        "diffusion": _mode_summary(headline.diffusion), "autoregressive": _mode_summary(headline.autoregressive),
        "speedup": to_json(headline.speedup), "speedup_low": to_json(headline.speedup_low),
        "speedup_high": to_json(headline.speedup_high), "verdict": predictions.verdict.value,
        "reasons": list(predictions.reasons), "advice": list(predictions.advice),
        "basis": [to_json(b) for b in predictions.basis],
        "calibration_max_abs_relative_error": predictions.calibration.max_abs_relative_error,
    }


def _headline_speedup_text(prediction: Prediction) -> str:
    if isinstance(prediction.speedup, Unavailable):
        return str(prediction.verdict)
    return speedup_with_band_text(prediction.speedup, prediction.speedup_low, prediction.speedup_high)


def _modes_table(headline: Prediction) -> list[str]:
    dg, ar = headline.diffusion, headline.autoregressive
    ar_label = "Gemma 4 (AR + MTP)" if headline.scenario.ar_baseline.kind == "mtp" else "Gemma 4 (AR)"
    rows: list[tuple[str, ...]] = [("", "DiffusionGemma", ar_label)]
    for label, name, text in (("tokens/s per request", "tokens_per_s", count_text),
                              ("tokens/s, all requests", "aggregate_tokens_per_s", count_text),
                              ("time to first token", "ttft_s", seconds_text),
                              ("first useful draft", "first_draft_s", seconds_text),
                              ("total latency", "total_latency_s", seconds_text),
                              ("memory needed", "memory_bytes", bytes_text)):
        cells = ["n/a" if isinstance(mode, Unavailable) else text(getattr(mode, name)) for mode in (dg, ar)]
        rows.append((label, *cells))
    return [*text_table(rows), *textwrap.wrap(f"first useful draft: {USEFUL_DRAFT_DEFINITION}", width=110,
                                              initial_indent="  ", subsequent_indent="    ")]


def _pass_lines(estimate: PassEstimate) -> list[str]:
    terms = ", ".join(f"{name} {seconds_text(value)}" for name, value in estimate.critical_seconds.items())
    lines = [f"  {estimate.pass_kind:<11} {seconds_text(estimate.seconds):>9} x {count_text(estimate.count_per_request)}"
             f"  bound by {estimate.bound_by}: {terms}"]
    if isinstance(estimate.hardware_seconds, float):
        added = ", ".join(f"{name} {'-' if value < 0 else '+'}{seconds_text(abs(value))}"
                          for name, value in estimate.engine_added_seconds.items())
        lines.append(f"  {'':<11} hardware {seconds_text(estimate.hardware_seconds)}"
                     + (f"; the engine adds {added}" if added else "") + f" ({estimate.hardware_basis})")
    return lines


def _matrix_lines(predictions: Predictions) -> list[str]:
    """One row per scenario, with the band the verdict rests on; a precision that does not fit at a concurrency
    says so once, with the smallest concurrency it fails at."""
    rows: list[tuple[str, ...]] = [("workload", "precision", "concurrency", "speedup", "band", "verdict")]
    failed: set[tuple[str, str]] = set()
    for p in sorted(predictions.matrix, key=lambda p: (p.scenario.workload != predictions.headline.scenario.workload,
                                                       p.scenario.workload, p.scenario.concurrency)):
        s = p.scenario
        if isinstance(p.speedup, Unavailable):
            if (s.workload, s.precision) not in failed:
                failed.add((s.workload, s.precision))
                rows.append((s.workload, s.precision, f"{s.concurrency}+", "does not fit", "", str(p.verdict)))
            continue
        rows.append((s.workload, s.precision, str(s.concurrency), speedup_text(p.speedup),
                     speedup_band_text(p.speedup_low, p.speedup_high), str(p.verdict)))
    return [*text_table(rows), f"  verdict: {VERDICT_RULES_TEXT}"]


def format_predictions(predictions: Predictions) -> str:
    """The terminal report of `predict` (and of the prediction part of `check`)."""
    headline = predictions.headline
    s = headline.scenario
    lines = [
        f"DiffusionGemma vs autoregressive Gemma 4 on {predictions.hardware}"
        + (f" x {s.gpus}" if s.gpus > 1 else "") + f" ({predictions.origin} limits)",
        f"engine: {predictions.engine}; {predictions.engine_reason}",
        f"headline: {s.workload}, {s.prompt_tokens} prompt + {s.output_tokens} output tokens, "
        f"{count_text(s.steps_per_canvas)} steps per canvas, {s.precision}, concurrency {s.concurrency}",
        f"setup: {setup_text(s)}",
        "",
        *_modes_table(headline),
        "",
        f"speedup (end to end, against {baseline_text(s)}): {_headline_speedup_text(headline)}  ->  "
        f"verdict: {predictions.verdict}",
        "",
        "why:",
        *(f"  - {reason}" for reason in predictions.reasons),
        "advice:",
        *(f"  - {advice}" for advice in predictions.advice),
    ]
    for title, mode in (("DiffusionGemma passes", headline.diffusion), ("AR passes", headline.autoregressive)):
        if isinstance(mode, ModeEstimate) and mode.passes:
            lines += ["", f"{title} (time x count per request):",
                      *(line for p in mode.passes for line in _pass_lines(p))]
    lines += ["", "memory fit (headline concurrency and lengths):",
              *text_table([("precision", "DiffusionGemma", "AR", "fits"),
                       *((m.precision, bytes_text(m.diffusion_needed_bytes), bytes_text(m.autoregressive_needed_bytes),
                          "yes" if m.fits_diffusion and m.engine_runs_it else "no") for m in predictions.memory)]),
              "", "matrix (speedup, band and verdict per scenario):", *_matrix_lines(predictions),
              "", "basis:", *(f"  - {b.quantity}: {b.kind}; {b.source}" for b in predictions.basis),
              f"  - calibration: worst fitted residual {percent_text(predictions.calibration.max_abs_relative_error)}"
              f" over {plural(len(predictions.calibration.runs), 'published run')} in "
              f"{predictions.calibration.data_file}"]
    return "\n".join(lines)


def calibration_table(summary: CalibrationSummary) -> str:
    """Markdown table of every published run against the calibrated model (for the README)."""
    rows = ["| run | engine | figure | published | model | error | fitted |", "|---|---|---|---|---|---|---|"]
    for run in summary.runs:
        for o in run.observables:
            rows.append(f"| {run.run_id} | {run.engine} | {o.name} | {o.published:.4g} | {o.predicted:.4g} | "
                        f"{signed_percent_text(o.relative_error)} | {'yes' if o.used_in_fit else 'no'} |")
        published = "n/a" if isinstance(run.published_speedup, Unavailable) else speedup_text(run.published_speedup)
        verdict = ("n/a" if isinstance(run.published_verdict, Unavailable) else run.published_verdict)
        rows.append(f"| {run.run_id} | {run.engine} | speedup (verdict) | {published} ({verdict}) | "
                    f"{speedup_text(run.predicted_speedup)} ({run.predicted_verdict}) | | |")
    return "\n".join(rows)


def validation_table(validation: TransferValidation) -> str:
    """Markdown table of every published figure predicted by a fit that did not see it (for the README)."""
    rows = ["| run | class | held out | figure | published | predicted | error | 80% band | inside |",
            "|---|---|---|---|---|---|---|---|---|"]
    for c in validation.checks:
        rows.append(f"| {c.run_id} | {c.hardware_class} | {c.held_out} | {c.figure} | {c.published:.4g} | "
                    f"{c.predicted:.4g} | {c.relative_error:+.0%} | {c.low:.4g}-{c.high:.4g} | "
                    f"{'yes' if c.in_band else 'no'} |")
    return "\n".join(rows)
