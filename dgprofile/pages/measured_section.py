"""The result page's measured runs (`dgprofile verify`): measured against predicted per workload, how each
model's drafts converge to its final output, and how the run was made."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup

from dgprofile.pages import charts
from dgprofile.pages.views import (
    Block,
    Cell,
    ChartView,
    FactsView,
    NoticeView,
    RowView,
    SectionView,
    TableView,
    Tone,
)
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import (
    MeasuredFigure,
    MeasuredRun,
    ModelRole,
    ModeStatistics,
    RequestRecord,
    WorkloadStatistics,
)
from dgprofile.text.units import (
    bytes_text,
    count_text,
    number_key,
    seconds_text,
    speedup_text,
    tokens_per_s_text,
    unavailable_text,
)

Formatter = Callable[[float | Unavailable], str]
ROLE_NAMES: dict[ModelRole, str] = {"diffusion": "DiffusionGemma", "autoregressive": "Gemma 4"}
ROLE_COLOURS: dict[ModelRole, str] = {"diffusion": charts.PALETTE[0], "autoregressive": charts.PALETTE[1]}


def _count(value: float | Unavailable) -> str:
    return unavailable_text(value) if isinstance(value, Unavailable) else count_text(value)


MEASURES: tuple[tuple[str, str, Formatter], ...] = (
    ("time to first token", "ttft_seconds", seconds_text),
    ("first useful draft", "first_useful_draft_seconds", seconds_text),
    ("total latency", "total_latency_seconds", seconds_text),
    ("tokens/s", "tokens_per_s", tokens_per_s_text),
    ("pass", "pass_seconds", seconds_text),
    ("steps per canvas", "steps_per_canvas", _count),
    ("peak memory", "peak_memory_bytes", bytes_text),
)


def figure_cell(figure: MeasuredFigure | Unavailable, text: Formatter) -> Cell:
    """Median with quartiles, and the prediction with its residual; the reason when not measured."""
    if isinstance(figure, Unavailable):
        return Cell("not measured" if figure.reason.startswith("not measured") else "-")
    spread = f" ({text(figure.p25)} to {text(figure.p75)})" if figure.samples > 1 else ""
    predicted = ("" if isinstance(figure.predicted, Unavailable) else
                 f"; predicted {text(figure.predicted)}" + ("" if isinstance(figure.residual, Unavailable)
                                                             else f", {figure.residual:+.0%}"))
    # Within 25% of the prediction reads as agreement; further off is worth a look.
    tone: Tone = "" if isinstance(figure.residual, Unavailable) or abs(figure.residual) <= 0.25 else "warning"
    return Cell(f"{text(figure.median)}{spread}{predicted}", number_key(figure.median), tone)


def _measures_table(run: MeasuredRun) -> TableView:
    rows = []
    for stats in run.workloads:
        modes: tuple[tuple[ModelRole, ModeStatistics], ...] = (("diffusion", stats.diffusion),
                                                                ("autoregressive", stats.autoregressive))
        for role, mode in modes:
            cells = [Cell(stats.workload), Cell(str(stats.concurrency), number_key(stats.concurrency)),
                     Cell(ROLE_NAMES[role]), Cell(f"{mode.requests - mode.failed} of {mode.requests}")]
            cells += [figure_cell(getattr(mode, field), text) for _, field, text in MEASURES]
            rows.append(RowView(tuple(cells), filter_text=f"{stats.workload} {ROLE_NAMES[role]}"))
    return TableView("Measured per workload: median (quartiles); the prediction for the same scenario and the "
                     "residual beside it", ("workload", "concurrency", "model", "requests",
                                            *(label for label, _, _ in MEASURES)),
                     tuple(rows), sortable=True, filterable=True, table_id="measured-figures")


def _speedup_table(run: MeasuredRun) -> TableView:
    rows = []
    for stats in run.workloads:
        speedup = stats.speedup
        measured = figure_cell(speedup, speedup_text)
        predicted = ("" if isinstance(stats.predicted_verdict, Unavailable) else str(stats.predicted_verdict))
        verdict = stats.measured_verdict
        distance = stats.edit_distance_between_models
        rows.append(RowView((
            Cell(stats.workload), Cell(str(stats.concurrency), number_key(stats.concurrency)), measured,
            Cell(unavailable_text(verdict) if isinstance(verdict, Unavailable) else verdict.label,
                 tone="" if isinstance(verdict, Unavailable) else verdict.tone),
            Cell(predicted),
            Cell(unavailable_text(distance) if isinstance(distance, Unavailable) else
                 f"{distance.median:.2f} ({distance.minimum:.2f} to {distance.maximum:.2f})"))))
    return TableView("Speedup per prompt (Gemma 4's total latency over DiffusionGemma's) and how different the two "
                     "outputs are (normalised edit distance)",
                     ("workload", "concurrency", "speedup measured", "verdict measured", "verdict predicted",
                      "edit distance between outputs"), tuple(rows), sortable=True)


def _median_request(records: list[RequestRecord]) -> RequestRecord | None:
    timed = sorted((r for r in records if r.drafts and isinstance(r.total_latency_seconds, float)),
                   key=lambda r: r.total_latency_seconds if isinstance(r.total_latency_seconds, float) else 0.0)
    return timed[len(timed) // 2] if timed else None


def convergence_chart(run: MeasuredRun, stats: WorkloadStatistics) -> ChartView | None:
    """Edit distance to the final output against time, both models, for the request of median latency."""
    series = []
    for role in ("diffusion", "autoregressive"):
        records = [r for r in run.requests if r.workload == stats.workload and r.role == role
                   and r.concurrency == stats.concurrency and not r.faults]
        request = _median_request(records)
        if request is None:
            continue
        series.append(charts.Series(f"{ROLE_NAMES[role]} ({request.prompt_id})", tuple(
            charts.ChartPoint(point.seconds, point.edit_distance_to_final,
                              f"{seconds_text(point.seconds)}: {point.edit_distance_to_final:.2f}")
            for point in request.drafts), colour=ROLE_COLOURS[role]))
    if not series:
        return None
    svg = charts.line_svg(title=f"Drafts converging: {stats.workload}, concurrency {stats.concurrency}",
                          x_title="seconds since the request", y_title="edit distance to the final output",
                          series=series, reference=(0.1, "useful draft (0.1)"),
                          x_formatter=lambda x: f"{x:.3g}", y_formatter=lambda y: f"{y:.2f}")
    return ChartView(Markup(svg), "The request of median latency per model. A DiffusionGemma draft is the committed "
                     "text plus the current canvas; Gemma 4's is its prefix. Below the dashed line the user "
                     "already holds a useful draft.")


def _run_facts(run: MeasuredRun) -> FactsView:
    version = unavailable_text(run.engine_version) if isinstance(run.engine_version, Unavailable) else run.engine_version
    settings = run.settings
    steps = (unavailable_text(settings.steps_per_canvas) if isinstance(settings.steps_per_canvas, Unavailable)
             else f"{settings.steps_per_canvas}, fixed")
    items = [("backend", f"{run.backend} ({version})"), ("device", run.device),
             ("when", f"{run.started_at}, {seconds_text(run.duration_seconds)}, {run.status}")]
    items += [(ROLE_NAMES[m.role], f"{m.model_id} ({m.architecture}, {m.dtype}; {m.scaling})") for m in run.models]
    items += [("steps per canvas", steps), ("sampling", f"{settings.sampler}; Gemma 4 {settings.autoregressive_decoding}"),
              ("concurrency", ", ".join(str(c) for c in settings.concurrencies)), ("prompts", settings.prompts_source),
              ("warm-up", settings.warmup), ("predictions beside the figures", run.prediction_basis)]
    items += [("reduced", reduction) for reduction in settings.reductions]
    items += [("incomplete", reason) for reason in run.incomplete_reasons]
    return FactsView("How this run was made", tuple(items))


def measured_section(runs: tuple[MeasuredRun, ...]) -> SectionView:
    """Every measured run of the file, newest first."""
    intro = ("The real models on this machine (`dgprofile verify`): what users feel, beside the prediction for the "
             "same scenario. A measured speedup outranks the predicted one in the verdict.")
    if not runs:
        return SectionView("measured", "Measured on real weights", intro, (NoticeView(
            "No measured run yet: `dgprofile verify --result THIS_FILE` adds one (see the README, \"Verify on real "
            "weights\")."),))
    blocks: list[Block] = []
    for run in reversed(runs):
        blocks += [_run_facts(run), _speedup_table(run), _measures_table(run)]
        blocks += [chart for stats in run.workloads if (chart := convergence_chart(run, stats)) is not None]
    return SectionView("measured", "Measured on real weights", intro, tuple(blocks))

