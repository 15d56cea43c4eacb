"""The compare page: two result files side by side, from the ``Comparison`` of ``dgprofile.analysis.compare``."""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup

from dgprofile.analysis.compare import SECTION_TITLES, Comparison, Row, RowOutcome, Side
from dgprofile.analysis.figures import Figure, figure_value_and_basis
from dgprofile.pages import charts
from dgprofile.pages.environment import render_page
from dgprofile.pages.views import (
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
    Tone,
)
from dgprofile.records.values import Unavailable
from dgprofile.text.units import factor_text, number_key, speedup_with_band_text

OUTCOME_TONES: dict[RowOutcome, Tone] = {
    RowOutcome.BETTER: "better", RowOutcome.WORSE: "worse", RowOutcome.SAME: "same", RowOutcome.NOT_SIGNIFICANT: "same",
    RowOutcome.NOT_COMPARABLE: "muted", RowOutcome.ONLY_A: "muted", RowOutcome.ONLY_B: "muted",
    RowOutcome.UNAVAILABLE: "muted"}


def render_compare_html(c: Comparison) -> str:
    """The self-contained compare page."""
    return render_page(comparison_page(c))


def _verdict_label(side: Side) -> str:
    return "no prediction" if isinstance(side.verdict, Unavailable) else side.verdict.label


def _verdict_tone(side: Side) -> Tone:
    return "unknown" if isinstance(side.verdict, Unavailable) else side.verdict.tone


def _side_facts(side: Side) -> tuple[Block, ...]:
    items = [("host", side.hostname), ("hardware", side.hardware), ("memory class", side.memory_class),
             ("basis", side.origin),
             ("verdict", _verdict_label(side)),
             ("headline speedup", speedup_with_band_text(side.speedup, side.speedup_low, side.speedup_high)),
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
        badges=(Badge(f"A: {_verdict_label(c.a)}", _verdict_tone(c.a)), Badge(f"B: {_verdict_label(c.b)}", _verdict_tone(c.b))),
        banners=(), sections=tuple(sections))


_SECTION_INTROS = {
    "limits": "The ceilings each prediction rests on: measured where the file has them, otherwise the datasheet "
              "figures the prediction used.",
    "passes": "Time of one pass of each kind in each machine's headline scenario, and measured passes where both "
              "files have them.",
    "predictions": "Predicted DiffusionGemma/Gemma 4 speedup per workload and concurrency, each machine at its best "
                   "precision (the rule of its headline: the fastest 8-bit or wider format that fits, 4-bit only when "
                   "none does) with its own engine; what each side runs is under its figure.",
    "measured": "What `dgprofile verify` measured with the real models on each machine (the latest run of each "
                "file): medians, with the quartiles as the spread.",
}


def _rows_table(rows: Iterable[Row]) -> TableView:
    cells = tuple(RowView((Cell(r.metric), _figure_cell(r.a, r.unit, r.a_runs), _figure_cell(r.b, r.unit, r.b_runs),
                           Cell(r.outcome.value, tone=OUTCOME_TONES[r.outcome]), Cell(r.summary)))
                  for r in rows)
    return TableView("", ("", "A", "B", "B against A", "difference"), cells)


def _figure_cell(figure: Figure, unit: str, runs: str) -> Cell:
    """A figure with, under it, what it was predicted for ('fp8, vllm') or else its basis ('datasheet')."""
    text, basis = figure_value_and_basis(figure, unit)
    return Cell(text, number_key(figure.value), detail=runs or basis)


def _speedup_chart(c: Comparison) -> Block:
    # Each side at its best precision (the rows that name what each side runs), at concurrency 1.
    rows = [r for r in c.rows if r.scenario and r.concurrency == 1 and (r.a_runs or r.b_runs)]
    usable = [r for r in rows if not (isinstance(r.a.value, Unavailable) and isinstance(r.b.value, Unavailable))]
    if not usable:
        return NoticeView("Speedup chart unavailable: neither file predicts a scenario at concurrency 1.")
    labels = [r.scenario for r in usable]
    svg = charts.bar_svg(
        title="Predicted speedup at concurrency 1, each machine at its best precision", categories=labels,
        value_title="speedup (x)",
        series={f"A: {c.a.hardware}": [None if isinstance(r.a.value, Unavailable) else r.a.value for r in usable],
                f"B: {c.b.hardware}": [None if isinstance(r.b.value, Unavailable) else r.b.value for r in usable]},
        value_formatter=factor_text, horizontal=True)
    return ChartView(Markup(svg), "Each bar is DiffusionGemma's speedup over Gemma 4 on that machine; below 1x it "
                                  "is slower. A missing bar: no precision that machine's engine runs fits there.")
