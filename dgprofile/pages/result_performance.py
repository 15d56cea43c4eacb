"""The result page's sections on performance: measured limits, roofline, speedup, pass times and memory fit.

Each function returns one section's view-model; ``dgprofile.pages.result_page`` puts them in order.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from dgprofile.analysis.instability import limits_timings, unstable_groups
from dgprofile.model.verdict import VERDICT_RULES_TEXT
from dgprofile.pages import charts
from dgprofile.pages.views import (
    Block,
    Cell,
    ChartView,
    FactsView,
    ListView,
    NoticeView,
    RowView,
    SectionView,
    TableView,
    unavailable_notice,
)
from dgprofile.records.limits import Limits
from dgprofile.records.passes import PassMeasurement, PassTimes
from dgprofile.records.predictions import Curve, CurvePoint, PassEstimate, Prediction, Predictions
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable
from dgprofile.text.units import (
    PASS_LABELS,
    bandwidth_text,
    bytes_text,
    count_text,
    factor_text,
    flop_count_text,
    flops_text,
    intensity_text,
    number_key,
    percent_text,
    seconds_text,
    significant_text,
    speedup_band_text,
    speedup_text,
    tokens_per_s_text,
)

# One colour per term of a pass or of the memory need, the same in every chart of every page.
TERM_COLOURS = {"weights": "#2563eb", "compute": "#dc2626", "overhead": "#16a34a", "step-overhead": "#15803d",
                "sampler": "#ea580c", "kv-cache": "#9333ea", "activations": "#0891b2", "dequantisation": "#ca8a04",
                "interconnect": "#4b5563", "KV cache": "#9333ea", "DG sampler and self-conditioning": "#ea580c",
                "activation headroom": "#0891b2", "usable by the accelerator": "#9ca3af"}

def timing_cells(t: Timing | Unavailable) -> tuple[Cell, ...]:
    """Median, IQR, CV, samples and flags of a timing, as four cells."""
    if isinstance(t, Unavailable):
        return (Cell(f"not timed ({t.reason})"), Cell(""), Cell(""), Cell(""))
    flags = "; ".join(f"{f.code}: {f.message}" for f in t.unstable) or "stable"
    return (Cell(seconds_text(t.median_seconds), number_key(t.median_seconds)),
            Cell(f"{seconds_text(t.iqr_seconds)}, CV {percent_text(t.coefficient_of_variation)}",
                 number_key(t.coefficient_of_variation)),
            Cell(f"{t.samples} x {t.loops} loops, {t.timer}"),
            Cell(flags, tone="warning" if t.unstable else ""))


TIMING_HEADERS = ("median", "IQR (CV)", "samples", "stability")


def limits_section(limits: Limits | Unavailable) -> SectionView:
    intro = ("Measured ceilings with their spread: median of repeated samples, interquartile range and coefficient "
             "of variation; unstable measurements are flagged with advice.")
    if isinstance(limits, Unavailable):
        return SectionView("limits", "Measured limits", intro, (unavailable_notice("Measured limits", limits),))
    summary = [("device", f"{limits.device_name} ({limits.device})"),
               ("streaming read", bandwidth_text(limits.stream_read_bytes_per_s)),
               ("copy", bandwidth_text(limits.copy_bytes_per_s)),
               ("launch floor", seconds_text(limits.launch_floor_seconds))]
    summary += [(f"peak {dtype} matmul", flops_text(rate)) for dtype, rate in limits.peak_flops_per_s.items()]
    summary += [(f"{dtype} ridge", f"{intensity_text(ridge)}; extra tokens stop being free at about "
                                   f"{limits.ridge_tokens.get(dtype, 'an unmeasured count of')} tokens per pass")
                for dtype, ridge in limits.ridge_flop_per_byte.items()]
    blocks: list[Block] = [FactsView("Summary", tuple(summary))]
    bandwidth_rows = tuple(
        RowView((Cell(f.name), Cell(f.method), Cell(bandwidth_text(f.bytes_per_s), number_key(f.bytes_per_s)),
                 Cell(percent_text(f.fraction_of_theoretical)), Cell(bytes_text(f.buffer_bytes)),
                 *timing_cells(f.timing)), tone="warning" if f.timing.unstable else "")
        for f in (*limits.bandwidth, *limits.host_transfer))
    blocks.append(TableView("Memory bandwidth", ("pattern", "method", "rate", "of theoretical", "buffer",
                                                 *TIMING_HEADERS), bandwidth_rows))
    matmul_rows = tuple(
        RowView((Cell(m.label), Cell(m.dtype), Cell(f"{m.m} x {m.k} @ {m.k} x {m.n}"),
                 Cell(flops_text(m.flops_per_s), number_key(m.flops_per_s)), *timing_cells(m.timing)),
                tone="warning" if m.timing.unstable else "")
        for m in limits.matmul)
    blocks.append(TableView("Matrix products", ("shape", "dtype", "m x k @ k x n", "rate", *TIMING_HEADERS),
                            matmul_rows))
    latency_rows = tuple(RowView((Cell(x.name), Cell(seconds_text(x.seconds)), *timing_cells(x.timing)))
                         for x in limits.latency)
    blocks.append(TableView("Latency floor", ("operation", "per call", *TIMING_HEADERS), latency_rows))
    advice = _instability_advice(limits)
    if advice:
        blocks.append(ListView("Unstable measurements", advice, tone="warning"))
    if limits.notes:
        blocks.append(ListView("Notes", limits.notes))
    return SectionView("limits", "Measured limits", intro, tuple(blocks))


def _instability_advice(limits: Limits) -> tuple[str, ...]:
    return tuple(group.text() for group in unstable_groups(limits_timings(limits)))


def _headline_precision(headline: Prediction | None, passes: PassTimes) -> str:
    measured = {p.precision for p in passes.passes}
    if headline is not None and headline.scenario.precision in measured:
        return headline.scenario.precision
    return "bf16" if "bf16" in measured else sorted(measured)[0]


def _pass(passes: PassTimes, kind: str, precision: str, concurrency: int) -> PassMeasurement | None:
    return next((p for p in passes.passes
                 if p.pass_kind == kind and p.precision == precision and p.concurrency == concurrency), None)


def roofline_section(limits: Limits | Unavailable, passes: PassTimes | Unavailable,
                      predictions: Predictions | Unavailable) -> SectionView:
    intro = ("Attainable FLOP/s against arithmetic intensity (FLOP per byte moved). Left of the ridge a pass is bound "
             "by memory bandwidth, right of it by compute. An AR step sits far left; a 256-token denoise pass moves "
             "right with every concurrent request.")
    headline = predictions.headline if isinstance(predictions, Predictions) else None
    if isinstance(limits, Limits) and isinstance(passes, PassTimes) and passes.passes and \
            not isinstance(limits.stream_read_bytes_per_s, Unavailable) and limits.peak_flops_per_s:
        return SectionView("roofline", "Roofline", intro, (_measured_roofline(limits, passes, headline),))
    if isinstance(predictions, Predictions) and predictions.ceilings.peak_flops_per_s:
        missing = limits.reason if isinstance(limits, Unavailable) else (
            passes.reason if isinstance(passes, Unavailable) else "the run has no measured passes")
        return SectionView("roofline", "Roofline", intro, (
            NoticeView(f"Measured roofline unavailable: {missing}. Shown instead: the {predictions.ceilings.source} "
                       "limits the prediction used, and its predicted passes.", tone="warning"),
            _predicted_roofline(predictions)))
    for what, value in (("Measured limits", limits), ("Measured passes", passes), ("Predictions", predictions)):
        if isinstance(value, Unavailable):
            return SectionView("roofline", "Roofline", intro, (unavailable_notice(what, value),))
    return SectionView("roofline", "Roofline", intro, (NoticeView(
        "Roofline unavailable: the run has no streaming bandwidth, matmul peak or passes."),))


ROOF_TOLERANCE = 1.05  # a point this far above the roof is called out, not rounding noise


def _peak_dtype(peaks: dict[str, float], wanted: Sequence[str]) -> str:
    """The first wanted dtype that has a measured peak; else the fastest, so no measured point can sit above the
    roof merely because its format has no peak of its own (int4 computed in fp32 on a CPU)."""
    for dtype in wanted:
        if dtype in peaks:
            return dtype
    return max(peaks, key=peaks.__getitem__)


def _roofline_chart(*, bandwidth: float, peaks: dict[str, float], dtype: str, points: list[charts.ChartPoint],
                    what: str) -> ChartView:
    ridge = peaks[dtype] / bandwidth
    svg = charts.roofline_svg(title=f"Roofline: {dtype} matmul peak over {what} bandwidth",
                              bandwidth_bytes_per_s=bandwidth, peak_flops_per_s=peaks[dtype], points=points,
                              roof_label=f"roof: {what} bandwidth, {dtype} peak")
    caption = (f"Ridge at {intensity_text(ridge)}: {flops_text(peaks[dtype])} over {bandwidth_text(bandwidth)}. "
               "Points sit at each pass's achieved rate; c is the number of concurrent requests in one pass.")
    above = [p.label for p in points if p.y > ROOF_TOLERANCE * min(bandwidth * p.x, peaks[dtype])]
    if above:
        caption += (f" Above the roof: {', '.join(above)}. The pass ran faster than the {dtype} matmul peak measured "
                    "at the square shape, so that peak understates this machine (a different kernel path or shape).")
    return ChartView(Markup(svg), caption)


def _measured_roofline(limits: Limits, passes: PassTimes, headline: Prediction | None) -> ChartView:
    precision = _headline_precision(headline, passes)
    concurrencies = sorted({p.concurrency for p in passes.passes})
    points = []
    for kind, cs in (("ar-step", concurrencies[:1]), ("dg-denoise", concurrencies)):
        for c in cs:
            p = _pass(passes, kind, precision, c)
            if p is not None and p.bytes_moved > 0 and p.flops > 0:
                basis = "measured" if p.measured else "modelled from the measured passes"
                points.append(charts.ChartPoint(p.flops / p.bytes_moved, p.achieved_flops_per_s,
                                                f"{PASS_LABELS[kind]}, {precision}, c={c} ({basis})"))
    assert not isinstance(limits.stream_read_bytes_per_s, Unavailable)
    denoise = _pass(passes, "dg-denoise", precision, concurrencies[0])
    formats = [denoise.compute_format] if denoise is not None and denoise.compute_format else []
    dtype = _peak_dtype(limits.peak_flops_per_s, [*formats, precision])
    return _roofline_chart(bandwidth=limits.stream_read_bytes_per_s, peaks=limits.peak_flops_per_s, dtype=dtype,
                           points=points, what="measured streaming-read")


def _predicted_roofline(predictions: Predictions) -> ChartView:
    h = predictions.headline
    points = []
    for mode in (h.autoregressive, h.diffusion):
        if isinstance(mode, Unavailable):
            continue
        for p in mode.passes:
            if p.pass_kind in ("ar-step", "dg-denoise") and p.bytes_moved > 0 and p.flops > 0 and p.seconds > 0:
                points.append(charts.ChartPoint(p.flops / p.bytes_moved, p.flops / p.seconds,
                                                f"{PASS_LABELS[p.pass_kind]}, {h.scenario.precision}, "
                                                f"c={h.scenario.concurrency} (predicted)"))
    c = predictions.ceilings
    return _roofline_chart(bandwidth=c.bandwidth_bytes_per_s, peaks=c.peak_flops_per_s,
                           dtype=_peak_dtype(c.peak_flops_per_s, [h.scenario.precision, "bf16", "fp16"]),
                           points=points, what=f"{c.source}")


def speedup_section(predictions: Predictions | Unavailable) -> SectionView:
    intro = ("Predicted DiffusionGemma/Gemma 4 speedup as one quantity varies and the rest of the headline scenario "
             "stays fixed. An output shorter than a canvas still pays a whole 256-token canvas; concurrent requests "
             "share one pass, which turns compute-bound.")
    if isinstance(predictions, Unavailable):
        return SectionView("speedup", "Speedup", intro, (unavailable_notice("Predictions", predictions),))
    blocks: list[Block] = [_curve_chart(c) for c in predictions.curves]
    if not predictions.curves:
        blocks.append(NoticeView("Speedup curves unavailable: the predictions hold none."))
    if predictions.matrix:
        blocks.append(_matrix_table(predictions.matrix))
    return SectionView("speedup", "Speedup", intro, tuple(blocks))


CURVE_TITLES = {"speedup-vs-output-tokens": "Speedup against output length",
                "speedup-vs-concurrency": "Speedup against concurrency"}


def _curve_chart(curve: Curve) -> Block:
    title = CURVE_TITLES.get(curve.name, curve.name)
    s = curve.scenario
    fixed = f"{s.workload}, {s.precision}, {s.engine}" + (
        "" if curve.name == "speedup-vs-concurrency" else f", concurrency {s.concurrency}")
    points = [(p, p.speedup) for p in curve.points if not isinstance(p.speedup, Unavailable)]
    if len({p.x for p, _ in points}) < 2:
        missing = "; ".join(sorted({p.speedup.reason for p in curve.points if isinstance(p.speedup, Unavailable)}))
        return NoticeView(f"{title}: unavailable (fewer than two points could be predicted{': ' + missing if missing else ''}).")

    def label(p: CurvePoint) -> str:
        return (f"{curve.x_label} {count_text(p.x)}: {speedup_text(p.speedup)} "
                f"({speedup_band_text(p.speedup_low, p.speedup_high)})")

    series = [charts.Series("predicted speedup", tuple(charts.ChartPoint(p.x, speedup, label(p))
                                                       for p, speedup in points))]
    for name, attr in (("band, low", "speedup_low"), ("band, high", "speedup_high")):
        band = [p for p, _ in points if not isinstance(getattr(p, attr), Unavailable)]
        if band:
            series.append(charts.Series(name, tuple(charts.ChartPoint(p.x, getattr(p, attr), label(p)) for p in band),
                                        dashed=True, colour=charts.BAND_COLOUR))
    svg = charts.line_svg(title=f"{title} ({fixed})", x_title=curve.x_label, y_title="speedup (x)",
                          series=series, log2_x=True, reference=(1.0, "equal speed (1x)"),
                          x_formatter=lambda v: count_text(round(v)), y_formatter=factor_text)
    return ChartView(Markup(svg), f"{title}, {fixed}. Above the dashed 1x line DiffusionGemma is faster.")


def _matrix_table(matrix: Sequence[Prediction]) -> TableView:
    rows = []
    for p in matrix:
        s = p.scenario
        dg, ar = p.diffusion, p.autoregressive
        rows.append(RowView((
            Cell(s.workload), Cell(s.precision), Cell(str(s.concurrency), number_key(s.concurrency)),
            Cell(s.engine), Cell(speedup_text(p.speedup), number_key(p.speedup), tone=p.verdict.tone),
            Cell(speedup_band_text(p.speedup_low, p.speedup_high), number_key(p.speedup_low)),
            Cell(p.verdict.label, tone=p.verdict.tone),
            Cell(tokens_per_s_text(dg) if isinstance(dg, Unavailable) else tokens_per_s_text(dg.tokens_per_s),
                 "" if isinstance(dg, Unavailable) else number_key(dg.tokens_per_s)),
            Cell(tokens_per_s_text(ar) if isinstance(ar, Unavailable) else tokens_per_s_text(ar.tokens_per_s),
                 "" if isinstance(ar, Unavailable) else number_key(ar.tokens_per_s)),
            Cell("; ".join(p.reasons)),
        ), filter_text=f"{s.workload} {s.precision} {s.engine} {p.verdict}"))
    return TableView("The scenario matrix (click a heading to sort)",
                     ("workload", "precision", "concurrency", "engine", "speedup", "band", "verdict",
                      "DG tok/s", "AR tok/s", "reasons"), tuple(rows), sortable=True, filterable=True,
                     table_id="matrix-table", collapsed_summary=f"All {len(rows)} predicted scenarios",
                     note=f"The verdict rests on the band: {VERDICT_RULES_TEXT}.")


def passes_section(passes: PassTimes | Unavailable, predictions: Predictions | Unavailable) -> SectionView:
    intro = ("Each decode pass at the real 26B-A4B shapes, split into the terms on its critical path: streaming the "
             "weights, compute beyond that, the engine's fixed overhead and the sampler.")
    blocks: list[Block] = []
    if isinstance(predictions, Predictions):
        blocks.append(_predicted_breakdown(predictions.headline))
        blocks.append(_hardware_and_engine_table(predictions.headline))
    if isinstance(passes, Unavailable):
        blocks.append(unavailable_notice("Measured passes", passes))
    elif not passes.passes:
        blocks.append(NoticeView("No passes were measured."))
    else:
        headline = predictions.headline if isinstance(predictions, Predictions) else None
        if not isinstance(predictions, Predictions):
            blocks.append(_measured_breakdown(passes, _headline_precision(headline, passes)))
        blocks.append(_passes_table(passes))
        if passes.methods:
            blocks.append(ListView("How the passes were measured", passes.methods))
        if passes.reductions:
            blocks.append(ListView("What the benchmark reduced to fit this machine", passes.reductions,
                                   tone="warning"))
    return SectionView("passes", "Pass times", intro, tuple(blocks))


def _breakdown_chart(title: str, labels: list[str], parts: list[dict[str, float]], caption: str) -> ChartView:
    names = list(dict.fromkeys(k for part in parts for k in part))
    longest = max((sum(part.values()) for part in parts), default=0.0)
    scale, unit = (1e3, "milliseconds") if longest < 2 else (1.0, "seconds")
    stacks = {name: [part.get(name, 0.0) * scale for part in parts] for name in names}
    svg = charts.stacked_bar_svg(title=title, categories=labels, stacks=stacks, value_title=unit,
                                 value_formatter=significant_text,
                                 colours=TERM_COLOURS)
    return ChartView(Markup(svg), caption)


def _predicted_breakdown(h: Prediction) -> Block:
    estimates: list[tuple[str, PassEstimate]] = [
        (model, p) for model, mode in (("Gemma 4", h.autoregressive), ("DiffusionGemma", h.diffusion))
        if not isinstance(mode, Unavailable) for p in mode.passes]
    # Prefill runs once per request and would dwarf the per-token passes on the same axis: it goes in the caption.
    decode = [(model, p) for model, p in estimates if p.pass_kind != "prefill"]
    if not decode:
        return NoticeView("Per-pass breakdown unavailable: the headline prediction holds no pass estimates.")
    labels = [f"{model}: {PASS_LABELS[p.pass_kind]} (bound by {p.bound_by})" for model, p in decode]
    prefill = "; ".join(f"{model} prefill {seconds_text(p.seconds)}" for model, p in estimates
                        if p.pass_kind == "prefill")
    s = h.scenario
    return _breakdown_chart(f"Time per pass, {s.precision}, concurrency {s.concurrency}, {s.engine}", labels,
                            [p.critical_seconds for _, p in decode],
                            "Predicted for the headline scenario; the segments are the terms on each pass's critical "
                            "path and add up to its time. Passes per request: " + ", ".join(
                                f"{model} {count_text(p.count_per_request)} x {PASS_LABELS[p.pass_kind]}"
                                for model, p in estimates) + (f". Once per request: {prefill}." if prefill else "."))


ENGINE_ADDITIONS = ("kernels", "floor", "step-overhead", "interconnect", "mtp-drafter")


def _hardware_and_engine_table(h: Prediction) -> Block:
    """Per predicted pass: the hardware side (what was measured on this machine, or the device's roofline) and
    what the engine adds to it."""
    estimates = [(model, p) for model, mode in (("DiffusionGemma", h.diffusion), ("Gemma 4", h.autoregressive))
                 if not isinstance(mode, Unavailable) for p in mode.passes]
    if not estimates:
        return NoticeView("What the engine adds is unavailable: the headline prediction holds no pass estimates.")

    def added(p: PassEstimate, name: str) -> Cell:
        value = p.engine_added_seconds.get(name, 0.0)
        return Cell(("-" if value < 0 else "+") + seconds_text(abs(value)) if value else "", number_key(value))

    rows = tuple(RowView((
        Cell(f"{model}: {PASS_LABELS[p.pass_kind]}"), Cell(seconds_text(p.seconds), number_key(p.seconds)),
        Cell(seconds_text(p.hardware_seconds), number_key(p.hardware_seconds)), Cell(p.hardware_basis),
        *(added(p, name) for name in ENGINE_ADDITIONS))) for model, p in estimates)
    return TableView(f"What was measured and what {h.scenario.engine} adds, per pass", (
        "pass", "predicted", "hardware side", "hardware basis", "engine kernels", "engine floor", "step overhead",
        "interconnect", "MTP drafter"), rows)


def _measured_breakdown(passes: PassTimes, precision: str) -> Block:
    chosen = [p for kind in PASS_LABELS if (p := _pass(passes, kind, precision, 1)) is not None]
    if not chosen:
        return NoticeView(f"Per-pass breakdown unavailable: no {precision} pass at concurrency 1 was measured.")
    return _breakdown_chart(f"Time per pass, {precision}, concurrency 1 (measured)",
                            [PASS_LABELS[p.pass_kind] for p in chosen], [p.breakdown_seconds for p in chosen],
                            "Measured passes split by the benchmark into its named terms.")


def _passes_table(passes: PassTimes) -> TableView:
    rows = tuple(
        RowView((Cell(PASS_LABELS[p.pass_kind]), Cell(p.precision),
                 Cell(str(p.concurrency), number_key(p.concurrency)),
                 Cell(seconds_text(p.seconds), number_key(p.seconds)),
                 Cell(f"±{percent_text(p.relative_spread)}" if p.measured else "modelled",
                      number_key(p.relative_spread) if p.measured else ""),
                 Cell(bytes_text(p.bytes_moved), number_key(p.bytes_moved)),
                 Cell(flop_count_text(p.flops), number_key(p.flops)),
                 Cell(bandwidth_text(p.achieved_bytes_per_s), number_key(p.achieved_bytes_per_s)),
                 Cell(flops_text(p.achieved_flops_per_s), number_key(p.achieved_flops_per_s)),
                 Cell(percent_text(p.fraction_of_bandwidth_floor), number_key(p.fraction_of_bandwidth_floor)),
                 Cell(percent_text(p.fraction_of_compute_floor), number_key(p.fraction_of_compute_floor)),
                 Cell(percent_text(p.fraction_of_roofline_floor), number_key(p.fraction_of_roofline_floor)),
                 Cell(p.basis if p.basis.startswith(("measured", "modelled")) else
                      f"{'measured' if p.measured else 'modelled'}: {p.basis}")),
                tone="" if p.measured else "muted")
        for p in passes.passes)
    return TableView(f"Measured passes on {passes.device} (full 30-layer estimates)", (
        "pass", "precision", "concurrency", "time", "spread", "bytes moved", "FLOPs", "achieved bandwidth",
        "achieved FLOP/s", "of bandwidth floor", "of compute floor", "of roofline floor", "basis"), rows, sortable=True,
        table_id="passes-table", collapsed_summary=f"All {len(rows)} measured passes")


def _fit_text(fits: bool, engine_runs_it: bool) -> Cell:
    if not engine_runs_it:
        return Cell("engine cannot run it", tone="cannot-run")
    return Cell("fits", tone="applies") if fits else Cell("does not fit", tone="cannot-run")


def memory_section(predictions: Predictions | Unavailable) -> SectionView:
    intro = ("Memory each precision needs against the memory usable here: the model fits when its need is at most "
             "the usable memory. The need is weights, KV cache and DiffusionGemma's sampler and self-conditioning "
             "buffers, plus the engine's activation headroom (what it keeps free beside them).")
    if isinstance(predictions, Unavailable):
        return SectionView("memory", "Memory fit", intro, (unavailable_notice("Predictions", predictions),))
    if not predictions.memory:
        return SectionView("memory", "Memory fit", intro, (NoticeView("Memory fit unavailable: none was predicted."),))
    rows = tuple(RowView((
        Cell(m.precision), Cell(f"{m.gpus} x {m.concurrency}"),
        Cell(bytes_text(m.weights_bytes), number_key(m.weights_bytes)),
        Cell(bytes_text(m.diffusion_needed_bytes), number_key(m.diffusion_needed_bytes)),
        Cell(bytes_text(m.autoregressive_needed_bytes), number_key(m.autoregressive_needed_bytes)),
        Cell(bytes_text(m.usable_bytes), number_key(m.usable_bytes)),
        _fit_text(m.fits_diffusion, m.engine_runs_it), _fit_text(m.fits_autoregressive, m.engine_runs_it),
        Cell(str(m.max_diffusion_concurrency), number_key(m.max_diffusion_concurrency))))
        for m in predictions.memory)
    gib = float(2 ** 30)
    parts = {"weights": [m.weights_bytes / gib for m in predictions.memory],
             "KV cache": [m.diffusion_kv_cache_bytes / gib for m in predictions.memory],
             "DG sampler and self-conditioning": [m.diffusion_buffers_bytes / gib for m in predictions.memory],
             "activation headroom": [m.activation_headroom_bytes / gib for m in predictions.memory]}
    # The usable memory is drawn as its own bar, so a need longer than it visibly does not fit.
    usable = max(m.usable_bytes for m in predictions.memory)
    parts = {name: [*values, 0.0] for name, values in parts.items()}
    parts["usable by the accelerator"] = [0.0] * len(predictions.memory) + [usable / gib]
    svg = charts.stacked_bar_svg(title="DiffusionGemma's need per precision against the usable memory (GiB)",
                                 categories=[*(m.precision for m in predictions.memory), "usable here"],
                                 stacks=parts, value_title="GiB", value_formatter=lambda v: f"{count_text(v)} GiB",
                                 colours=TERM_COLOURS)
    return SectionView("memory", "Memory fit", intro, (
        TableView("Per precision", ("precision", "GPUs x requests", "weights", "DiffusionGemma needs",
                                    "Gemma 4 needs", "usable here", "DiffusionGemma", "Gemma 4", "max DG concurrency"),
                  rows, note=f"Usable here: {bytes_text(usable)}, {predictions.memory[0].usable_basis}."),
        ChartView(Markup(svg), "What takes the memory, at the concurrency in the table; each bar adds up to the "
                               "need in the table.")))
