"""Two result files side by side (typically a dedicated GPU against Apple Silicon), and why they differ.

``compare(a, b)`` is pure: it reads two result objects and returns a ``Comparison`` whose every row carries an
explicit ``Outcome`` for B against A, with the direction of "better" declared per metric (pyperf / asv style).
A difference smaller than ``SAME_WITHIN`` is ``SAME``; one inside the two values' combined spread (measurement
IQR, prediction bands) is ``NOT_SIGNIFICANT``. Values that could not be obtained keep their reason.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from markupsafe import Markup

from dgprofile.pages import charts
from dgprofile.pages.result_page import (
    PASS_LABELS,
    VERDICT_LABELS,
    Badge,
    Block,
    Cell,
    ChartView,
    ColumnsView,
    FactsView,
    ListView,
    NoticeView,
    PageView,
    RowView,
    SectionView,
    TableView,
    band_text,
    host_name,
    render_page,
    result_hardware,
    speedup_text,
    speedup_words,
    tokens_per_s_text,
    usable_memory,
    verdict_tone,
)
from dgprofile.records.limits import Limits
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import PassEstimate, Prediction, Predictions
from dgprofile.records.results import ResultFile
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable
from dgprofile.text.units import bandwidth_text, bytes_text, flops_text, seconds_text

SAME_WITHIN = 0.05  # B within 5% of A reads as the same
NOISE_FACTOR = 2.0  # a difference must exceed twice the combined relative spread to count


class Outcome(str, enum.Enum):
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
class Value:
    """One side of a row: the number (or why there is none), its relative spread and where it comes from."""

    value: float | Unavailable
    relative_spread: float = 0.0
    basis: str = ""


@dataclass(frozen=True)
class Row:
    """One compared quantity. ``ratio`` is B over A; ``summary`` says it in words."""

    section: str
    metric: str
    unit: str
    higher_is_better: bool
    a: Value
    b: Value
    ratio: float | Unavailable
    outcome: Outcome
    summary: str


@dataclass(frozen=True)
class Side:
    """One of the two machines, as the comparison names it."""

    label: str
    hostname: str
    hardware: str
    memory_class: str
    origin: str
    verdict: str
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


UNITS: dict[str, Callable[[float], str]] = {
    "B/s": bandwidth_text,
    "FLOP/s": flops_text,
    "FLOP/byte": lambda v: f"{v:.0f} FLOP/byte",
    "s": seconds_text,
    "B": bytes_text,
    "x": speedup_text,
    "tok/s": tokens_per_s_text,
}


def value_text(value: Value, unit: str) -> str:
    """A row value as text, with its basis when it is not measured."""
    if isinstance(value.value, Unavailable):
        return f"unavailable ({value.value.reason})"
    text = UNITS[unit](value.value)
    return f"{text} ({value.basis})" if value.basis and value.basis != "measured" else text


def _row(section: str, metric: str, unit: str, a: Value, b: Value, *, higher_is_better: bool,
         comparable: str = "") -> Row:
    """Decide one row's outcome; ``comparable`` (non-empty) names why the two values should not be compared."""
    av, bv = a.value, b.value
    if isinstance(av, Unavailable) or isinstance(bv, Unavailable):
        outcome = (Outcome.UNAVAILABLE if isinstance(av, Unavailable) and isinstance(bv, Unavailable)
                   else Outcome.ONLY_B if isinstance(av, Unavailable) else Outcome.ONLY_A)
        missing = "both" if outcome is Outcome.UNAVAILABLE else "A" if outcome is Outcome.ONLY_B else "B"
        reason = next(v.reason for v in (av, bv) if isinstance(v, Unavailable))
        return Row(section, metric, unit, higher_is_better, a, b, Unavailable(f"missing in {missing}"), outcome,
                   reason)
    if av <= 0 or bv <= 0:
        return Row(section, metric, unit, higher_is_better, a, b, Unavailable("a value is zero"),
                   Outcome.NOT_COMPARABLE, "a value is zero")
    ratio = bv / av
    if comparable:
        return Row(section, metric, unit, higher_is_better, a, b, ratio, Outcome.NOT_COMPARABLE, comparable)
    change = abs(math.log(ratio))
    noise = NOISE_FACTOR * math.hypot(a.relative_spread, b.relative_spread)
    if change <= math.log1p(SAME_WITHIN):
        outcome = Outcome.SAME
    elif change <= noise:
        outcome = Outcome.NOT_SIGNIFICANT
    else:
        outcome = Outcome.BETTER if (ratio > 1) == higher_is_better else Outcome.WORSE
    factor = max(ratio, 1 / ratio)
    direction = "higher" if ratio > 1 else "lower"
    summary = "about the same" if outcome is Outcome.SAME else f"B {factor:.2g}x {direction}" + (
        " (within the spread)" if outcome is Outcome.NOT_SIGNIFICANT else "")
    return Row(section, metric, unit, higher_is_better, a, b, ratio, outcome, summary)


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
    hardware, memory_class = result_hardware(result)
    return Side(
        label=label, hostname=host_name(result.machine, result.run.label), hardware=hardware,
        memory_class=memory_class,
        origin=result.run.origin, verdict=p.verdict if isinstance(p, Predictions) else "no prediction",
        speedup=headline.speedup if headline else missing, speedup_low=headline.speedup_low if headline else missing,
        speedup_high=headline.speedup_high if headline else missing,
        engine=headline.scenario.engine if headline else "", precision=headline.scenario.precision if headline else "",
        created_at=result.created_at)


# ---------------------------------------------------------------------------------------------------------------
# Figures each row reads from a result (measured where the file has them, else what the prediction used)

def _bandwidth(result: ResultFile) -> Value:
    if isinstance(result.limits, Limits) and not isinstance(result.limits.stream_read_bytes_per_s, Unavailable):
        spread = next((_timing_spread(f.timing) for f in result.limits.bandwidth if f.name == "stream-read"), 0.0)
        return Value(result.limits.stream_read_bytes_per_s, spread, "measured")
    if isinstance(result.predictions, Predictions):
        c = result.predictions.ceilings
        return Value(c.bandwidth_bytes_per_s, 0.0, c.source)
    return Value(_reason(result.limits, result.predictions))


def _reason(*values: object) -> Unavailable:
    reasons = [v.reason for v in values if isinstance(v, Unavailable)]
    return Unavailable(reasons[0] if reasons else "not in the file")


def _peak(result: ResultFile, dtype: str) -> Value:
    if isinstance(result.limits, Limits) and dtype in result.limits.peak_flops_per_s:
        return Value(result.limits.peak_flops_per_s[dtype], 0.0, "measured")
    if isinstance(result.predictions, Predictions) and dtype in result.predictions.ceilings.peak_flops_per_s:
        c = result.predictions.ceilings
        return Value(c.peak_flops_per_s[dtype], 0.0, c.source)
    return Value(Unavailable(f"no {dtype} matmul rate"))


def _half_precision(result: ResultFile) -> str:
    """bf16 where the machine has a bf16 rate, else fp16 (Apple GPUs are rated in fp16)."""
    for dtype in ("bf16", "fp16"):
        if not isinstance(_peak(result, dtype).value, Unavailable):
            return dtype
    return "bf16"


def _ridge(result: ResultFile, dtype: str) -> Value:
    peak, bandwidth = _peak(result, dtype), _bandwidth(result)
    if isinstance(peak.value, Unavailable) or isinstance(bandwidth.value, Unavailable):
        return Value(peak.value if isinstance(peak.value, Unavailable) else bandwidth.value)
    basis = "measured" if peak.basis == bandwidth.basis == "measured" else peak.basis or bandwidth.basis
    return Value(peak.value / bandwidth.value, bandwidth.relative_spread, basis)


def _usable(result: ResultFile) -> Value:
    if isinstance(result.predictions, Predictions):
        c = result.predictions.ceilings
        return Value(float(c.usable_memory_bytes), 0.0, "measured" if c.source == "measured" else c.source)
    usable = usable_memory(result.machine)
    return Value(usable if isinstance(usable, Unavailable) else float(usable), 0.0, "probed")


def _launch_floor(result: ResultFile) -> Value:
    if isinstance(result.limits, Limits):
        return Value(result.limits.launch_floor_seconds, 0.0, "measured")
    return Value(_reason(result.limits))


def _predicted_passes(result: ResultFile) -> dict[str, PassEstimate]:
    p = result.predictions
    if not isinstance(p, Predictions):
        return {}
    found = {}
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


# ---------------------------------------------------------------------------------------------------------------
# compare

def compare(a: ResultFile, b: ResultFile) -> Comparison:
    """Compare B against A: limits, pass times, predicted speedups per scenario, and why they differ."""
    rows = [*_limit_rows(a, b), *_pass_rows(a, b), *_prediction_rows(a, b)]
    return Comparison(a=_side("A", a), b=_side("B", b), rows=tuple(rows), explanations=_explain(a, b))


def _limit_rows(a: ResultFile, b: ResultFile) -> list[Row]:
    da, db = _half_precision(a), _half_precision(b)
    dtype_note = "" if da == db else f" ({da} on A, {db} on B)"
    rows = [
        _row("limits", "streaming read bandwidth", "B/s", _bandwidth(a), _bandwidth(b), higher_is_better=True),
        _row("limits", f"half-precision matmul peak{dtype_note}", "FLOP/s", _peak(a, da), _peak(b, db),
             higher_is_better=True),
        # A higher ridge keeps a 256-token denoise pass bandwidth-bound, which is what DiffusionGemma needs.
        _row("limits", f"ridge: FLOP per byte at the matmul peak{dtype_note}", "FLOP/byte", _ridge(a, da),
             _ridge(b, db), higher_is_better=True),
        _row("limits", "memory usable by the accelerator", "B", _usable(a), _usable(b), higher_is_better=True),
        _row("limits", "launch floor per kernel", "s", _launch_floor(a), _launch_floor(b), higher_is_better=False),
    ]
    if not isinstance(_peak(a, "fp8").value, Unavailable) or not isinstance(_peak(b, "fp8").value, Unavailable):
        rows.insert(2, _row("limits", "fp8 matmul peak", "FLOP/s", _peak(a, "fp8"), _peak(b, "fp8"),
                            higher_is_better=True))
    return rows


def _pass_rows(a: ResultFile, b: ResultFile) -> list[Row]:
    rows = []
    pa, pb = _predicted_passes(a), _predicted_passes(b)
    for kind in ("ar-step", "dg-denoise", "dg-commit"):
        if kind not in pa and kind not in pb:
            continue
        va = Value(pa[kind].seconds, 0.0, pa[kind].basis) if kind in pa else Value(_reason(a.predictions))
        vb = Value(pb[kind].seconds, 0.0, pb[kind].basis) if kind in pb else Value(_reason(b.predictions))
        rows.append(_row("passes", f"{PASS_LABELS[kind]}, headline scenario (predicted)", "s", va, vb,
                         higher_is_better=False, comparable=_precision_mismatch(a, b)))
    if isinstance(a.passes, PassTimes) and isinstance(b.passes, PassTimes):
        measured_b = {(m.pass_kind, m.precision, m.concurrency): m for m in b.passes.passes if m.measured}
        for m in a.passes.passes:
            other = measured_b.get((m.pass_kind, m.precision, m.concurrency))
            if m.measured and other is not None and m.concurrency == 1:
                rows.append(_row("passes", f"{PASS_LABELS.get(m.pass_kind, m.pass_kind)}, {m.precision}, "
                                           "concurrency 1 (measured)", "s",
                                 Value(m.seconds, _timing_spread(m.timing), "measured"),
                                 Value(other.seconds, _timing_spread(other.timing), "measured"),
                                 higher_is_better=False))
    return rows


def _precision_mismatch(a: ResultFile, b: ResultFile) -> str:
    if not (isinstance(a.predictions, Predictions) and isinstance(b.predictions, Predictions)):
        return ""
    pa, pb = a.predictions.headline.scenario.precision, b.predictions.headline.scenario.precision
    return "" if pa == pb else f"different precisions ({pa} on A, {pb} on B)"


def _prediction_rows(a: ResultFile, b: ResultFile) -> list[Row]:
    rows = []
    sa, sb = _side("A", a), _side("B", b)
    band_a = _band_spread(a.predictions.headline) if isinstance(a.predictions, Predictions) else 0.0
    band_b = _band_spread(b.predictions.headline) if isinstance(b.predictions, Predictions) else 0.0
    rows.append(_row("predictions", "headline speedup (each machine's own headline scenario)", "x",
                     Value(sa.speedup, band_a, "predicted"), Value(sb.speedup, band_b, "predicted"),
                     higher_is_better=True))
    ma, mb = _matrix(a), _matrix(b)
    for key in sorted(set(ma) | set(mb), key=lambda k: (k[2], k[0], k[1])):
        workload, precision, concurrency = key
        va = _speedup_value(ma.get(key), a)
        vb = _speedup_value(mb.get(key), b)
        rows.append(_row("predictions", f"speedup: {workload}, {precision}, concurrency {concurrency}", "x", va, vb,
                         higher_is_better=True))
    return rows


def _speedup_value(p: Prediction | None, result: ResultFile) -> Value:
    if p is None:
        engine = result.predictions.engine if isinstance(result.predictions, Predictions) else "no engine"
        return Value(Unavailable(f"scenario not predicted for {engine}"))
    return Value(p.speedup, _band_spread(p), "predicted")


# ---------------------------------------------------------------------------------------------------------------
# Why they differ, in words

def _explain(a: ResultFile, b: ResultFile) -> tuple[str, ...]:
    sa, sb = _side("A", a), _side("B", b)
    lines = [_headline_sentence(sa, sb)]
    bw_a, bw_b = _bandwidth(a), _bandwidth(b)
    if not isinstance(bw_a.value, Unavailable) and not isinstance(bw_b.value, Unavailable):
        lo, hi = sorted(((bw_a.value, "A"), (bw_b.value, "B")))
        lines.append(
            f"Bandwidth: A streams memory at {value_text(bw_a, 'B/s')}, B at {value_text(bw_b, 'B/s')}. A denoise "
            f"pass streams nearly every weight of the model, so on {lo[1]} each pass takes at least "
            f"{hi[0] / lo[0]:.1f}x longer than on {hi[1]}; an AR step reads only the active experts.")
    lines += _ridge_sentences(a, b)
    fit = _fit_sentence(a, b)
    if fit:
        lines.append(fit)
    if sa.memory_class != sb.memory_class:
        lines.append(f"Memory: A is {sa.memory_class}, B is {sb.memory_class}; usable by the accelerator: "
                     f"{value_text(_usable(a), 'B')} on A, {value_text(_usable(b), 'B')} on B. On a shared-physical "
                     "machine the GPU shares RAM with the CPU and only part of it is usable.")
    if sa.engine and sb.engine and sa.engine != sb.engine:
        lines.append(f"Engines: A is predicted with {sa.engine}, B with {sb.engine} (each platform's usual engine); "
                     "their per-pass overhead and kernel efficiency differ and are calibrated to published runs.")
    if sa.origin != sb.origin:
        lines.append(f"Basis: A is {sa.origin}, B is {sb.origin}; figures marked 'datasheet' were not measured.")
    return tuple(lines)


def _headline_sentence(sa: Side, sb: Side) -> str:
    def one(side: Side) -> str:
        if isinstance(side.speedup, Unavailable):
            return f"on {side.label} ({side.hardware}) nothing was predicted ({side.speedup.reason})"
        verdict = VERDICT_LABELS.get(side.verdict, side.verdict).lower()
        words = speedup_words(side.speedup).replace("DiffusionGemma is ", "").replace(
            " than autoregressive Gemma 4", "")
        return f"on {side.label} ({side.hardware}) DiffusionGemma is {words} ({verdict}, {side.precision}, " \
               f"{side.engine})"
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
        ridge = _ridge(result, _half_precision(result))
        intensity = _denoise_intensity(result)
        if isinstance(ridge.value, Unavailable) or intensity is None:
            continue
        if intensity < ridge.value:
            state = ("sits below it, so the pass is bandwidth-bound: its 256 tokens cost little more than one, "
                     "which is where DiffusionGemma's speedup comes from")
        else:
            state = ("sits above it, so the pass is compute-bound: the machine pays for the arithmetic of all 256 "
                     "canvas tokens on every pass, and the speedup shrinks or turns into a slowdown")
        lines.append(f"Ridge on {label}: {ridge.value:.0f} FLOP/byte; a denoise pass ({intensity:.0f} FLOP/byte in "
                     f"the headline scenario) {state}.")
    return lines


def _fit_sentence(a: ResultFile, b: ResultFile) -> str:
    parts = []
    for label, result in (("A", a), ("B", b)):
        if not isinstance(result.predictions, Predictions) or not result.predictions.memory:
            continue
        fits = [m.precision for m in result.predictions.memory if m.fits_diffusion and m.engine_runs_it]
        misses = [f"{m.precision} (needs {bytes_text(m.diffusion_needed_bytes)} of {bytes_text(m.usable_bytes)})"
                  for m in result.predictions.memory if not m.fits_diffusion]
        text = f"on {label} DiffusionGemma fits in {', '.join(fits) or 'no precision'}"
        parts.append(text + (f" but not in {', '.join(misses)}" if misses else ""))
    return ("Fit: " + "; ".join(parts) + ".") if parts else ""


# ---------------------------------------------------------------------------------------------------------------
# Text rendering (the terminal)

SECTION_TITLES = {"limits": "Limits", "passes": "Pass times", "predictions": "Predicted speedups"}
OUTCOME_MARKS = {Outcome.BETTER: "+", Outcome.WORSE: "-", Outcome.SAME: "=", Outcome.NOT_SIGNIFICANT: "~",
                 Outcome.NOT_COMPARABLE: "x", Outcome.ONLY_A: "A", Outcome.ONLY_B: "B", Outcome.UNAVAILABLE: "?"}


def _short(value: Value, unit: str) -> str:
    if isinstance(value.value, Unavailable):
        return "unavailable"
    text = UNITS[unit](value.value)
    return text + (" (ds)" if value.basis == "datasheet" else "")


def render_comparison_text(c: Comparison, *, all_scenarios: bool = False) -> str:
    """The comparison for a terminal: both verdicts, why they differ, and the rows (predicted speedups at
    concurrency 1 unless ``all_scenarios``)."""
    lines = [f"A: {c.a.hostname} - {c.a.hardware} ({c.a.memory_class}, {c.a.origin})",
             f"B: {c.b.hostname} - {c.b.hardware} ({c.b.memory_class}, {c.b.origin})", "", "Why they differ:"]
    lines += [f"  * {text}" for text in c.explanations]
    hidden = 0
    for section, title in SECTION_TITLES.items():
        rows = [r for r in c.rows if r.section == section]
        if section == "predictions" and not all_scenarios:
            shown = [r for r in rows if "concurrency" not in r.metric or r.metric.endswith("concurrency 1")]
            hidden += len(rows) - len(shown)
            rows = shown
        if not rows:
            continue
        width = max(len(r.metric) for r in rows)
        lines += ["", f"{title}:", f"  {'':{width}}  {'A':>18}  {'B':>18}  B against A"]
        for r in rows:
            lines.append(f"  {r.metric:{width}}  {_short(r.a, r.unit):>18}  {_short(r.b, r.unit):>18}  "
                         f"{OUTCOME_MARKS[r.outcome]} {r.outcome.value}: {r.summary}")
    if hidden:
        lines += ["", f"{hidden} more scenarios (concurrency 2 and up) are in the HTML page (-o compare.html)."]
    lines += ["", "Marks: + B better, - B worse, = same (within 5%), ~ not significant, x not comparable, "
                  "A/B only one side has it; (ds) datasheet figure."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# The compare page

OUTCOME_TONES = {Outcome.BETTER: "better", Outcome.WORSE: "worse", Outcome.SAME: "same",
                 Outcome.NOT_SIGNIFICANT: "same", Outcome.NOT_COMPARABLE: "muted", Outcome.ONLY_A: "muted",
                 Outcome.ONLY_B: "muted", Outcome.UNAVAILABLE: "muted"}


def render_compare_html(c: Comparison) -> str:
    """The self-contained compare page."""
    return render_page(comparison_page(c))


def _side_facts(side: Side) -> tuple[Block, ...]:
    items = [("host", side.hostname), ("hardware", side.hardware), ("memory class", side.memory_class),
             ("basis", side.origin),
             ("verdict", VERDICT_LABELS.get(side.verdict, side.verdict)),
             ("headline speedup", f"{speedup_text(side.speedup)} ({band_text(side.speedup_low, side.speedup_high)})"
              if not isinstance(side.speedup, Unavailable) else speedup_text(side.speedup)),
             ("engine, precision", f"{side.engine or 'none'}, {side.precision or 'none'}"),
             ("result file created", side.created_at)]
    return (FactsView("", tuple(items)),)


def comparison_page(c: Comparison) -> PageView:
    """The view-model of the compare page."""
    sections = [
        SectionView("machines", "The two machines", "Each machine's headline verdict, in its own headline scenario.",
                    (ColumnsView(((f"A: {c.a.hardware}", _side_facts(c.a)),
                                  (f"B: {c.b.hardware}", _side_facts(c.b)))),)),
        SectionView("why", "Why they differ", "The physics behind the two verdicts, in plain words.",
                    (ListView("", c.explanations),)),
    ]
    for section, title in SECTION_TITLES.items():
        rows = [r for r in c.rows if r.section == section]
        blocks: list[Block] = []
        if section == "predictions":
            blocks.append(_speedup_chart(c))
        blocks.append(_rows_table(rows) if rows else NoticeView(f"{title}: nothing to compare in these files."))
        sections.append(SectionView(section, title, _SECTION_INTROS[section], tuple(blocks)))
    return PageView(
        title=f"dgprofile compare: {c.a.hardware} vs {c.b.hardware}",
        heading=f"{c.a.hardware} vs {c.b.hardware}",
        subtitle=f"A: {c.a.hostname} ({c.a.origin}) · B: {c.b.hostname} ({c.b.origin}) · B compared against A",
        badges=(Badge(f"A: {VERDICT_LABELS.get(c.a.verdict, c.a.verdict)}", verdict_tone(c.a.verdict)),
                Badge(f"B: {VERDICT_LABELS.get(c.b.verdict, c.b.verdict)}", verdict_tone(c.b.verdict))),
        banners=(), sections=tuple(sections))


_SECTION_INTROS = {
    "limits": "The ceilings each prediction rests on: measured where the file has them, otherwise the datasheet "
              "figures the prediction used.",
    "passes": "Time of one pass of each kind in each machine's headline scenario, and measured passes where both "
              "files have them.",
    "predictions": "Predicted DiffusionGemma/Gemma 4 speedup per scenario, each machine with its own engine.",
}


def _rows_table(rows: Iterable[Row]) -> TableView:
    cells = tuple(RowView((Cell(r.metric), Cell(value_text(r.a, r.unit)), Cell(value_text(r.b, r.unit)),
                           Cell(r.outcome.value, tone=OUTCOME_TONES[r.outcome]), Cell(r.summary)))
                  for r in rows)
    return TableView("", ("", "A", "B", "B against A", "difference"), cells)


def _speedup_chart(c: Comparison) -> Block:
    rows = [r for r in c.rows if r.section == "predictions" and r.metric.endswith("concurrency 1")]
    usable = [r for r in rows if not (isinstance(r.a.value, Unavailable) and isinstance(r.b.value, Unavailable))]
    if not usable:
        return NoticeView("Speedup chart unavailable: neither file predicts a scenario at concurrency 1.")
    labels = [r.metric.removeprefix("speedup: ").removesuffix(", concurrency 1") for r in usable]
    svg = charts.bar_svg(
        title="Predicted speedup at concurrency 1", categories=labels, value_title="speedup (x)",
        series={f"A: {c.a.hardware}": [None if isinstance(r.a.value, Unavailable) else r.a.value for r in usable],
                f"B: {c.b.hardware}": [None if isinstance(r.b.value, Unavailable) else r.b.value for r in usable]},
        value_formatter=lambda v: f"{v:.2g}x", horizontal=True)
    return ChartView(Markup(svg), "Each bar is DiffusionGemma's speedup over Gemma 4 on that machine; below 1x it "
                                  "is slower. A missing bar: the scenario was not predicted there (it does not fit or "
                                  "the engine cannot run that precision).")
