"""Two result files side by side (typically a dedicated GPU against Apple Silicon), and why they differ.

``compare(a, b)`` is pure: it reads two result objects and returns a ``Comparison`` whose every row carries an
explicit ``RowOutcome`` for B against A, with the direction of "better" declared per metric (pyperf / asv style).
A difference smaller than ``SAME_WITHIN`` is ``SAME``; one inside the two values' combined spread (measurement
IQR, prediction bands) is ``NOT_SIGNIFICANT``. Values that could not be obtained keep their reason. The machine
figures come from ``dgprofile.analysis.figures``, as on the fleet and result pages.

Two machines rarely run the same precision with the same engine (an H100 runs fp8 in vLLM, a Mac int8 in MLX),
so predicted speedups are compared per workload and concurrency with each side at its best precision
(``dgprofile.model.best_precision``, the headline's rule) and its own engine; each row names what each side runs.
Where both files were predicted for the same engine, every precision is compared like for like as well.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from dgprofile.analysis.figures import (
    Evidence,
    Figure,
    evidence,
    figure_text,
    half_precision,
    hardware_name,
    host_name,
    matmul_peak,
    memory_class_text,
    ridge,
    stream_bandwidth,
    usable_accelerator_memory,
)
from dgprofile.model.best_precision import best_precision
from dgprofile.records.limits import Limits
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import ModeEstimate, PassEstimate, Prediction, Predictions, Verdict
from dgprofile.records.results import ResultFile
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import MeasuredFigure, MeasuredRun, WorkloadStatistics
from dgprofile.text.units import PASS_LABELS, bytes_text, factor_text, intensity_text, speedup_relation

SAME_WITHIN = 0.05  # B within 5% of A reads as the same
NOISE_FACTOR = 2.0  # a difference must exceed twice the combined relative spread to count
SECTION_TITLES = {"limits": "Limits", "passes": "Pass times", "predictions": "Predicted speedups",
                  "measured": "Measured on real weights"}


class RowOutcome(str, enum.Enum):
    """What one row says about B against A."""

    BETTER = "better"
    WORSE = "worse"
    SAME = "same"
    NOT_SIGNIFICANT = "not significant"
    NOT_COMPARABLE = "not comparable"
    ONLY_A = "only in A"
    ONLY_B = "only in B"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Row:
    """One compared quantity. ``ratio`` is B over A; ``summary`` says it in words. A row about a scenario of the
    matrix names it (``scenario``: workload and precision) and its ``concurrency``, a measured pass its
    concurrency; the rest (machine figures, each side's own headline) have no one concurrency: None."""

    section: str
    metric: str
    unit: str
    higher_is_better: bool
    a: Figure
    b: Figure
    ratio: float | Unavailable
    outcome: RowOutcome
    summary: str
    concurrency: int | None = None
    scenario: str = ""
    a_runs: str = ""
    b_runs: str = ""


@dataclass(frozen=True)
class Side:
    """One of the two machines, as the comparison names it."""

    label: str
    hostname: str
    hardware: str
    memory_class: str
    origin: str
    verdict: Verdict | Unavailable
    speedup: float | Unavailable
    speedup_low: float | Unavailable
    speedup_high: float | Unavailable
    engine: str
    precision: str
    created_at: str


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``compare``: both sides, every row, and a plain-words account of the difference."""

    a: Side
    b: Side
    rows: tuple[Row, ...]
    explanations: tuple[str, ...]


def _row(section: str, metric: str, unit: str, a: Figure, b: Figure, *, higher_is_better: bool,
         comparable: str = "", concurrency: int | None = None, scenario: str = "", a_runs: str = "",
         b_runs: str = "") -> Row:
    """Decide one row's outcome; ``comparable`` (non-empty) names why the two values should not be compared."""
    def row(ratio: float | Unavailable, outcome: RowOutcome, summary: str) -> Row:
        return Row(section, metric, unit, higher_is_better, a, b, ratio, outcome, summary, concurrency, scenario,
                   a_runs, b_runs)

    av, bv = a.value, b.value
    if isinstance(av, Unavailable) or isinstance(bv, Unavailable):
        outcome = (RowOutcome.UNAVAILABLE if isinstance(av, Unavailable) and isinstance(bv, Unavailable)
                   else RowOutcome.ONLY_B if isinstance(av, Unavailable) else RowOutcome.ONLY_A)
        missing = "both" if outcome is RowOutcome.UNAVAILABLE else "A" if outcome is RowOutcome.ONLY_B else "B"
        reason = next(v.reason for v in (av, bv) if isinstance(v, Unavailable))
        return row(Unavailable(f"missing in {missing}"), outcome, reason)
    if av <= 0 or bv <= 0:
        return row(Unavailable("a value is zero"), RowOutcome.NOT_COMPARABLE, "a value is zero")
    ratio = bv / av
    if comparable:
        return row(ratio, RowOutcome.NOT_COMPARABLE, comparable)
    change = abs(math.log(ratio))
    noise = NOISE_FACTOR * math.hypot(a.relative_spread, b.relative_spread)
    if change <= math.log1p(SAME_WITHIN):
        outcome = RowOutcome.SAME
    elif change <= noise:
        outcome = RowOutcome.NOT_SIGNIFICANT
    else:
        outcome = RowOutcome.BETTER if (ratio > 1) == higher_is_better else RowOutcome.WORSE
    factor = max(ratio, 1 / ratio)
    direction = "higher" if ratio > 1 else "lower"
    summary = "about the same" if outcome is RowOutcome.SAME else f"B {factor_text(factor)} {direction}" + (
        " (within the spread)" if outcome is RowOutcome.NOT_SIGNIFICANT else "")
    return row(ratio, outcome, summary)


def _timing_spread(timing: Timing | Unavailable) -> float:
    return 0.0 if isinstance(timing, Unavailable) else timing.relative_spread


def _band_spread(p: Prediction) -> float:
    """Half the relative width of a prediction's speedup band."""
    if any(isinstance(v, Unavailable) for v in (p.speedup, p.speedup_low, p.speedup_high)):
        return 0.0
    return (p.speedup_high - p.speedup_low) / (2 * p.speedup) if p.speedup > 0 else 0.0  # type: ignore[operator]


def _side(label: str, result: ResultFile) -> Side:
    p = result.predictions
    headline = p.headline if isinstance(p, Predictions) else None
    missing = p if isinstance(p, Unavailable) else Unavailable("no prediction")
    e = evidence(result)
    return Side(
        label=label, hostname=host_name(result.machine, result.run.label), hardware=hardware_name(e),
        memory_class=memory_class_text(e), origin=result.run.origin,
        verdict=p.verdict if isinstance(p, Predictions) else missing,
        speedup=headline.speedup if headline else missing, speedup_low=headline.speedup_low if headline else missing,
        speedup_high=headline.speedup_high if headline else missing,
        engine=headline.scenario.engine if headline else "", precision=headline.scenario.precision if headline else "",
        created_at=result.created_at)


def _launch_floor(result: ResultFile) -> Figure:
    if isinstance(result.limits, Limits):
        return Figure(result.limits.launch_floor_seconds, 0.0, "measured")
    return Figure(result.limits)


def _predicted_passes(result: ResultFile) -> dict[str, PassEstimate]:
    p = result.predictions
    if not isinstance(p, Predictions):
        return {}
    found: dict[str, PassEstimate] = {}
    for mode in (p.headline.autoregressive, p.headline.diffusion):
        if not isinstance(mode, Unavailable):
            found.update({e.pass_kind: e for e in mode.passes if e.pass_kind != "prefill"})
    return found


def _matrix(result: ResultFile) -> dict[tuple[str, str, int], Prediction]:
    """The side's own-engine scenarios by (workload, precision, concurrency)."""
    p = result.predictions
    if not isinstance(p, Predictions):
        return {}
    return {(x.scenario.workload, x.scenario.precision, x.scenario.concurrency): x for x in p.matrix
            if x.scenario.engine == p.engine}


def _missing_prediction(result: ResultFile) -> Unavailable:
    return result.predictions if isinstance(result.predictions, Unavailable) else Unavailable("not in the file")


# ---------------------------------------------------------------------------------------------------------------
# compare

def compare(a: ResultFile, b: ResultFile) -> Comparison:
    """Compare B against A: limits, pass times, predicted speedups per scenario, and why they differ."""
    rows = [*_limit_rows(evidence(a), evidence(b), a, b), *_pass_rows(a, b), *_prediction_rows(a, b),
            *_measured_rows(a, b)]
    return Comparison(a=_side("A", a), b=_side("B", b), rows=tuple(rows), explanations=_explain(a, b))


def _limit_rows(ea: Evidence, eb: Evidence, a: ResultFile, b: ResultFile) -> list[Row]:
    da, db = half_precision(ea), half_precision(eb)
    dtype_note = "" if da == db else f" ({da} on A, {db} on B)"
    rows = [
        _row("limits", "streaming read bandwidth", "B/s", stream_bandwidth(ea), stream_bandwidth(eb),
             higher_is_better=True),
        _row("limits", f"half-precision matmul peak{dtype_note}", "FLOP/s", matmul_peak(ea, da), matmul_peak(eb, db),
             higher_is_better=True),
        # A higher ridge keeps a 256-token denoise pass bandwidth-bound, which is what DiffusionGemma needs.
        _row("limits", f"ridge: FLOP per byte at the matmul peak{dtype_note}", "FLOP/byte", ridge(ea), ridge(eb),
             higher_is_better=True),
        _row("limits", "memory usable by the accelerator", "B", usable_accelerator_memory(ea),
             usable_accelerator_memory(eb), higher_is_better=True),
        _row("limits", "launch floor per kernel", "s", _launch_floor(a), _launch_floor(b), higher_is_better=False),
    ]
    fp8_a, fp8_b = matmul_peak(ea, "fp8"), matmul_peak(eb, "fp8")
    if not isinstance(fp8_a.value, Unavailable) or not isinstance(fp8_b.value, Unavailable):
        rows.insert(2, _row("limits", "fp8 matmul peak", "FLOP/s", fp8_a, fp8_b, higher_is_better=True))
    return rows


def _pass_rows(a: ResultFile, b: ResultFile) -> list[Row]:
    rows = []
    pa, pb = _predicted_passes(a), _predicted_passes(b)
    for kind in ("ar-step", "dg-denoise", "dg-commit"):
        if kind not in pa and kind not in pb:
            continue
        va = Figure(pa[kind].seconds, 0.0, pa[kind].basis) if kind in pa else Figure(_missing_prediction(a))
        vb = Figure(pb[kind].seconds, 0.0, pb[kind].basis) if kind in pb else Figure(_missing_prediction(b))
        rows.append(_row("passes", f"{PASS_LABELS[kind]}, headline scenario (predicted)", "s", va, vb,
                         higher_is_better=False, comparable=_precision_mismatch(a, b),
                         a_runs=_headline_runs(a), b_runs=_headline_runs(b)))
    if isinstance(a.passes, PassTimes) and isinstance(b.passes, PassTimes):
        measured_b = {(m.pass_kind, m.precision, m.concurrency): m for m in b.passes.passes if m.measured}
        for m in a.passes.passes:
            other = measured_b.get((m.pass_kind, m.precision, m.concurrency))
            if m.measured and other is not None and m.concurrency == 1:
                rows.append(_row("passes", f"{PASS_LABELS[m.pass_kind]}, {m.precision}, concurrency 1 (measured)",
                                 "s", Figure(m.seconds, _timing_spread(m.timing), "measured"),
                                 Figure(other.seconds, _timing_spread(other.timing), "measured"),
                                 higher_is_better=False, concurrency=1))
    return rows


def _headline_runs(result: ResultFile) -> str:
    """'fp8, vllm': the precision and engine of a file's headline scenario ('' without predictions)."""
    p = result.predictions
    return f"{p.headline.scenario.precision}, {p.engine}" if isinstance(p, Predictions) else ""


def _precision_mismatch(a: ResultFile, b: ResultFile) -> str:
    if not (isinstance(a.predictions, Predictions) and isinstance(b.predictions, Predictions)):
        return ""
    pa, pb = a.predictions.headline.scenario.precision, b.predictions.headline.scenario.precision
    return "" if pa == pb else f"different precisions ({pa} on A, {pb} on B)"


def _prediction_rows(a: ResultFile, b: ResultFile) -> list[Row]:
    sa, sb = _side("A", a), _side("B", b)
    band_a = _band_spread(a.predictions.headline) if isinstance(a.predictions, Predictions) else 0.0
    band_b = _band_spread(b.predictions.headline) if isinstance(b.predictions, Predictions) else 0.0
    rows = [_row("predictions", "headline speedup (each machine's own headline scenario)", "x",
                 Figure(sa.speedup, band_a, "predicted"), Figure(sb.speedup, band_b, "predicted"),
                 higher_is_better=True, a_runs=_headline_runs(a), b_runs=_headline_runs(b))]
    ma, mb = _matrix(a), _matrix(b)
    best_a, best_b = _best_per_scenario(a, ma), _best_per_scenario(b, mb)
    for workload, concurrency in sorted(set(best_a) | set(best_b), key=lambda k: (k[1], k[0])):
        pa, pb = best_a.get((workload, concurrency)), best_b.get((workload, concurrency))
        rows.append(_row("predictions", f"speedup: {workload}, concurrency {concurrency}, best precision each", "x",
                         _best_figure(pa, a, concurrency), _best_figure(pb, b, concurrency), higher_is_better=True,
                         concurrency=concurrency, scenario=workload, a_runs=_runs(pa, a), b_runs=_runs(pb, b)))
    if sa.engine and sa.engine == sb.engine:
        for key in sorted(set(ma) | set(mb), key=lambda k: (k[2], k[0], k[1])):
            workload, precision, concurrency = key
            rows.append(_row("predictions", f"speedup: {workload}, {precision}, concurrency {concurrency}", "x",
                             _speedup_figure(ma.get(key), a), _speedup_figure(mb.get(key), b), higher_is_better=True,
                             concurrency=concurrency, scenario=f"{workload}, {precision}"))
    return rows


# (metric, which model, field, unit, higher is better): what `verify` measured, compared run against run.
MEASURED_METRICS: tuple[tuple[str, str, str, str, bool], ...] = (
    ("DiffusionGemma tokens/s", "diffusion", "tokens_per_s", "tok/s", True),
    ("Gemma 4 tokens/s", "autoregressive", "tokens_per_s", "tok/s", True),
    ("DiffusionGemma time to first token", "diffusion", "ttft_seconds", "s", False),
    ("DiffusionGemma time to first useful draft", "diffusion", "first_useful_draft_seconds", "s", False),
    ("Gemma 4 time to first useful draft", "autoregressive", "first_useful_draft_seconds", "s", False),
    ("DiffusionGemma total latency", "diffusion", "total_latency_seconds", "s", False),
)


def _measured_figure(value: MeasuredFigure | Unavailable) -> Figure:
    if isinstance(value, Unavailable):
        return Figure(value)
    spread = (value.p75 - value.p25) / (2 * value.median) if value.median > 0 else 0.0
    return Figure(value.median, spread, "measured")


def _latest_workloads(result: ResultFile) -> tuple[MeasuredRun | None, dict[tuple[str, int], WorkloadStatistics]]:
    if not result.measured_runs:
        return None, {}
    run = result.measured_runs[-1]
    return run, {(w.workload, w.concurrency): w for w in run.workloads}


def _measured_rows(a: ResultFile, b: ResultFile) -> list[Row]:
    """The latest measured run of each file, workload by workload: speedup, rates and latencies."""
    run_a, wa = _latest_workloads(a)
    run_b, wb = _latest_workloads(b)
    if run_a is None and run_b is None:
        return []
    engines = "" if run_a is None or run_b is None or run_a.engine == run_b.engine else (
        f"different engines ({run_a.engine} on A, {run_b.engine} on B)")
    missing_a = Unavailable("no measured run of this workload in A")
    missing_b = Unavailable("no measured run of this workload in B")
    rows = []
    for key in sorted(set(wa) | set(wb), key=lambda k: (k[1], k[0])):
        workload, concurrency = key
        sa, sb = wa.get(key), wb.get(key)
        label = f"{workload}, concurrency {concurrency}"
        rows.append(_row("measured", f"speedup: {label}", "x",
                         _measured_figure(sa.speedup if sa else missing_a),
                         _measured_figure(sb.speedup if sb else missing_b), higher_is_better=True,
                         comparable=engines, concurrency=concurrency, scenario=workload))
        for metric, role, field, unit, higher in MEASURED_METRICS:
            fa = getattr(getattr(sa, role), field) if sa else missing_a
            fb = getattr(getattr(sb, role), field) if sb else missing_b
            rows.append(_row("measured", f"{metric}: {label}", unit, _measured_figure(fa), _measured_figure(fb),
                             higher_is_better=higher, comparable=engines, concurrency=concurrency,
                             scenario=workload))
    return rows
def _best_per_scenario(result: ResultFile, matrix: dict[tuple[str, str, int], Prediction]
                       ) -> dict[tuple[str, int], Prediction | None]:
    """Per (workload, concurrency), the prediction at the precision the side would run: the best of those that fit,
    by the headline's rule; None where none fits."""
    order = tuple(dict.fromkeys(precision for _, precision, _ in matrix))  # the engine's own order of formats
    fitting: dict[tuple[str, int], dict[str, tuple[float, Prediction]]] = {}
    for (workload, precision, concurrency), p in matrix.items():
        scenarios = fitting.setdefault((workload, concurrency), {})
        if isinstance(p.diffusion, ModeEstimate) and not isinstance(p.speedup, Unavailable):
            scenarios[precision] = (p.diffusion.total_latency_s, p)
    best: dict[tuple[str, int], Prediction | None] = {}
    for key, by_precision in fitting.items():
        chosen = best_precision({precision: latency for precision, (latency, _) in by_precision.items()}, order)
        best[key] = by_precision[chosen][1] if chosen is not None else None
    return best


def _best_figure(p: Prediction | None, result: ResultFile, concurrency: int) -> Figure:
    if p is None:
        if not isinstance(result.predictions, Predictions):
            return Figure(_missing_prediction(result))
        return Figure(Unavailable(f"no precision {result.predictions.engine} runs fits at concurrency {concurrency}"))
    return Figure(p.speedup, _band_spread(p), "predicted")


def _runs(p: Prediction | None, result: ResultFile) -> str:
    engine = result.predictions.engine if isinstance(result.predictions, Predictions) else ""
    return f"{p.scenario.precision}, {engine}" if p is not None else ""


def _speedup_figure(p: Prediction | None, result: ResultFile) -> Figure:
    if p is None:
        engine = result.predictions.engine if isinstance(result.predictions, Predictions) else "no engine"
        return Figure(Unavailable(f"scenario not predicted for {engine}"))
    return Figure(p.speedup, _band_spread(p), "predicted")


# ---------------------------------------------------------------------------------------------------------------
# Why they differ, in words

def _explain(a: ResultFile, b: ResultFile) -> tuple[str, ...]:
    sa, sb = _side("A", a), _side("B", b)
    ea, eb = evidence(a), evidence(b)
    lines = [_headline_sentence(sa, sb)]
    bw_a, bw_b = stream_bandwidth(ea), stream_bandwidth(eb)
    if not isinstance(bw_a.value, Unavailable) and not isinstance(bw_b.value, Unavailable):
        lines.append(_bandwidth_sentence(bw_a, bw_b))
    lines += _ridge_sentences(a, b)
    fit = _fit_sentence(a, b)
    if fit:
        lines.append(fit)
    if sa.memory_class != sb.memory_class:
        lines.append(f"Memory: A is {sa.memory_class}, B is {sb.memory_class}; usable by the accelerator: "
                     f"{figure_text(usable_accelerator_memory(ea), 'B')} on A, "
                     f"{figure_text(usable_accelerator_memory(eb), 'B')} on B. On a shared-physical "
                     "machine the GPU shares RAM with the CPU and only part of it is usable.")
    if sa.engine and sb.engine and sa.engine != sb.engine:
        lines.append(f"Engines: A is predicted with {sa.engine}, B with {sb.engine} (each platform's usual engine); "
                     "their per-pass overhead and kernel efficiency differ and are calibrated to published runs.")
    if sa.origin != sb.origin:
        lines.append(f"Basis: A is {sa.origin}, B is {sb.origin}; figures marked 'datasheet' were not measured.")
    return tuple(lines)


def _bandwidth_sentence(bw_a: Figure, bw_b: Figure) -> str:
    assert not isinstance(bw_a.value, Unavailable) and not isinstance(bw_b.value, Unavailable)
    rates = f"A streams memory at {figure_text(bw_a, 'B/s')}, B at {figure_text(bw_b, 'B/s')}"
    if abs(math.log(bw_b.value / bw_a.value)) <= math.log1p(SAME_WITHIN):
        return (f"Bandwidth: {rates}, about the same, so a denoise pass, which streams nearly every weight of the "
                "model, costs about as much on both.")
    (low, slow), (high, fast) = sorted(((bw_a.value, "A"), (bw_b.value, "B")))
    return (f"Bandwidth: {rates}. A denoise pass streams nearly every weight of the model, so on {slow} each pass "
            f"takes at least {factor_text(high / low)} longer than on {fast}; an AR step reads only the active "
            "experts.")


def _headline_sentence(sa: Side, sb: Side) -> str:
    def one(side: Side) -> str:
        if isinstance(side.speedup, Unavailable) or isinstance(side.verdict, Unavailable):
            reason = side.speedup.reason if isinstance(side.speedup, Unavailable) else "no verdict"
            return f"on {side.label} ({side.hardware}) nothing was predicted ({reason})"
        return (f"on {side.label} ({side.hardware}) DiffusionGemma is {speedup_relation(side.speedup)} "
                f"({side.verdict.label.lower()}, {side.precision}, {side.engine})")
    text = f"Headline: {one(sa)}; {one(sb)}."
    return text[0].upper() + text[1:]


def _denoise_intensity(result: ResultFile) -> float | None:
    denoise = _predicted_passes(result).get("dg-denoise")
    if denoise is not None and denoise.bytes_moved > 0:
        return denoise.flops / denoise.bytes_moved
    if isinstance(result.passes, PassTimes):
        for m in result.passes.passes:
            if m.pass_kind == "dg-denoise" and m.concurrency == 1 and m.bytes_moved > 0:
                return m.flops / m.bytes_moved
    return None


def _ridge_sentences(a: ResultFile, b: ResultFile) -> list[str]:
    lines = []
    for label, result in (("A", a), ("B", b)):
        machine_ridge = ridge(evidence(result))
        intensity = _denoise_intensity(result)
        if isinstance(machine_ridge.value, Unavailable) or intensity is None:
            continue
        if intensity < machine_ridge.value:
            state = ("sits below it, so the pass is bandwidth-bound: its 256 tokens cost little more than one, "
                     "which is where DiffusionGemma's speedup comes from")
        else:
            state = ("sits above it, so the pass is compute-bound: the machine pays for the arithmetic of all 256 "
                     "canvas tokens on every pass, and the speedup shrinks or turns into a slowdown")
        lines.append(f"Ridge on {label}: {intensity_text(machine_ridge.value)}; a denoise pass "
                     f"({intensity_text(intensity)} in the headline scenario) {state}.")
    return lines


def _fit_sentence(a: ResultFile, b: ResultFile) -> str:
    parts = []
    for label, result in (("A", a), ("B", b)):
        if not isinstance(result.predictions, Predictions) or not result.predictions.memory:
            continue
        fits = [m.precision for m in result.predictions.memory if m.fits_diffusion and m.engine_runs_it]
        misses = [f"{m.precision} (needs {bytes_text(m.diffusion_needed_bytes)}, {bytes_text(m.usable_bytes)} usable)"
                  for m in result.predictions.memory if not m.fits_diffusion]
        text = f"on {label} DiffusionGemma fits in {', '.join(fits) or 'no precision'}"
        parts.append(text + (f" but not in {', '.join(misses)}" if misses else ""))
    return ("Fit: " + "; ".join(parts) + ".") if parts else ""
