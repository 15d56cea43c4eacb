"""The fleet page: many result files at once, from the ``Fleet`` that ``dgprofile.analysis.fleet`` loads.

Verdict counts, a sortable, filterable and paged machines table, the speedup per hardware model, one section per
model (the largest ones), and the machines and files skipped with their reasons. For a fleet run, how the files
were gathered comes first. The page stays a few screens tall at 10,000 machines: tables page, and sections are
per hardware model, not per machine.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from markupsafe import Markup

from dgprofile.analysis.figures import Figure, figure_value_and_basis
from dgprofile.analysis.fleet import (
    NO_PREDICTION,
    VERDICT_ORDER,
    Fleet,
    FleetRow,
    FleetRunInfo,
    HardwareGroup,
)
from dgprofile.pages import charts
from dgprofile.pages.environment import render_page
from dgprofile.pages.views import (
    Badge,
    Block,
    Cell,
    ChartView,
    FactsView,
    ListView,
    NoticeView,
    PageView,
    RowView,
    SectionView,
    TableView,
    Tile,
    TilesView,
    Tone,
)
from dgprofile.records.predictions import Verdict
from dgprofile.records.values import Unavailable
from dgprofile.text.units import (
    bandwidth_text,
    count_text,
    factor_text,
    number_key,
    percent_text,
    plural,
    seconds_text,
    speedup_band_text,
    speedup_text,
    tokens_per_s_text,
)

# A group's chart shows one bar per machine up to this many machines, and a histogram of speedups beyond.
BARS_PER_MACHINE_MAX = 30
SPEEDUP_BINS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, float("inf"))
# Rows a paged table shows at a time: about two screens of the machines table.
ROWS_PER_PAGE = 50
# Hardware models with a section of their own, the largest first; the hardware models table lists every one.
GROUP_SECTIONS_MAX = 12


def verdict_label(verdict: Verdict | str) -> str:
    """A verdict's label; 'No prediction' for a file without predictions."""
    return verdict.label if isinstance(verdict, Verdict) else "No prediction"


def verdict_tone(verdict: Verdict | str) -> Tone:
    """A verdict's tone; 'unknown' for a file without predictions."""
    return verdict.tone if isinstance(verdict, Verdict) else "unknown"


def render_fleet_html(fleet: Fleet) -> str:
    """The self-contained fleet page: counts by verdict, the machines table, per-group charts, skipped files."""
    return render_page(fleet_page(fleet))


def fleet_page(fleet: Fleet) -> PageView:
    """The view-model of the fleet page."""
    groups = fleet.groups
    sections = [] if isinstance(fleet.run, Unavailable) else [_run_section(fleet, fleet.run)]
    sections += [_summary_section(fleet), _machines_section(fleet), _groups_overview(groups)]
    sections += [_group_section(i, group) for i, group in enumerate(groups[:GROUP_SECTIONS_MAX], start=1)]
    sections.append(_skipped_section(fleet))
    total = len(fleet.rows) + len(fleet.skipped)
    banners = []
    if fleet.failed:
        banners.append(f"{plural(len(fleet.failed), 'machine')} gave no result: see the last section.")
    if fleet.skipped:
        banners.append(f"{plural(len(fleet.skipped), 'file')} skipped: see the last section.")
    if isinstance(fleet.run, FleetRunInfo):
        heading = f"DiffusionGemma vs Gemma 4 across {count_text(len(fleet.rows))} machines: {fleet.run.label}"
        subtitle = (f"fleet run on {fleet.run.cluster}: {count_text(fleet.run.machines)} asked, "
                    f"{count_text(len(fleet.rows))} shown, {count_text(len(fleet.failed))} without a result, "
                    f"{count_text(len(fleet.skipped))} files skipped; {count_text(len(groups))} hardware models")
    else:
        heading = f"DiffusionGemma vs Gemma 4 across {count_text(len(fleet.rows))} result files"
        subtitle = (f"{count_text(total)} files read, {count_text(len(fleet.rows))} shown, "
                    f"{count_text(len(fleet.skipped))} skipped; {count_text(len(groups))} hardware models")
    return PageView(
        title=f"dgprofile fleet: {len(fleet.rows)} machines",
        heading=heading, subtitle=subtitle,
        badges=tuple(Badge(f"{count} {verdict_label(v).lower()}", verdict_tone(v))
                     for v in VERDICT_ORDER if (count := fleet.verdict_counts.get(v, 0)))
        + ((Badge(f"{len(fleet.failed)} without a result", "warning"),) if fleet.failed else ()),
        banners=tuple(banners),
        sections=tuple(sections))


def _run_section(fleet: Fleet, run: FleetRunInfo) -> SectionView:
    facts = FactsView("", (
        ("fleet", run.label),
        ("cluster", run.cluster),
        ("command on every machine", run.command),
        ("machines asked", count_text(run.machines)),
        ("results received", count_text(len(fleet.rows) + len(fleet.skipped))),
        ("without a result", count_text(len(fleet.failed))),
        ("started", run.started_at),
        ("wall time", seconds_text(run.wall_seconds)),
    ))
    blocks: list[Block] = [facts]
    if run.notes:
        blocks.append(ListView("Notes", run.notes))
    return SectionView("run", "Fleet run", "How the result files below were gathered: one command run on every "
                       "machine of the cluster, each result sent back as it finished.", tuple(blocks))


def _summary_section(fleet: Fleet) -> SectionView:
    counts = fleet.verdict_counts
    total = max(1, len(fleet.rows))
    tiles = tuple(Tile(verdict_label(v), str(counts.get(v, 0)), verdict_tone(v),
                       f"{percent_text(counts.get(v, 0) / total)} of machines")
                  for v in VERDICT_ORDER if v != NO_PREDICTION or counts.get(v))
    measured = sum(row.origin == "measured" for row in fleet.rows)
    return SectionView("summary", "Verdicts", "How many machines get the advertised speedup in their headline "
                       "scenario (concurrency 1, their platform's engine, the best precision that fits).", (
                           TilesView(tiles),
                           FactsView("", (("result files shown", str(len(fleet.rows))),
                                          ("measured / predicted", f"{measured} / {len(fleet.rows) - measured}"),
                                          ("hardware models", str(len(fleet.groups))),
                                          ("skipped files", str(len(fleet.skipped)))))))


def _machines_section(fleet: Fleet) -> SectionView:
    rows = tuple(RowView((
        Cell(row.hostname, detail=row.device), Cell(row.hardware), Cell(row.memory_class), Cell(row.origin),
        # An interrupted or partly failed run keeps a verdict from what it measured: say so under it; a file
        # without predictions says why.
        Cell(verdict_label(row.verdict), tone=verdict_tone(row.verdict),
             detail="; ".join(x for x in ("" if row.status == "complete" else f"{row.status} run",
                                          "" if isinstance(row.verdict, Verdict) else "; ".join(row.reasons)) if x)),
        Cell(speedup_text(row.speedup) if not isinstance(row.speedup, Unavailable) else "",
             number_key(row.speedup), tone=verdict_tone(row.verdict)),
        Cell(speedup_band_text(row.speedup_low, row.speedup_high) if not isinstance(row.speedup_low, Unavailable)
             else "",
             number_key(row.speedup_low),
             detail=f"measured {speedup_text(row.measured_speedup)} ({row.measured_scenario})"
             if not isinstance(row.measured_speedup, Unavailable) else ""),
        Cell(" ".join(x for x in (row.precision, row.engine) if x)),
        Cell(_rate(row.diffusion_tokens_per_s), number_key(row.diffusion_tokens_per_s)),
        Cell(_rate(row.autoregressive_tokens_per_s), number_key(row.autoregressive_tokens_per_s)),
        _figure_cell(row.stream_read_bytes_per_s, row.stream_read_basis, "B/s"),
        _figure_cell(row.usable_memory_bytes, row.usable_memory_basis, "B"),
        Cell(", ".join(row.fitting_precisions)), Cell(row.path, detail=row.created_at)),
        filter_text=f"{row.verdict} {row.status}") for row in fleet.rows)
    # The device measured (which GPU of a host) sits under the host, the time a file was made under its path, a
    # measured speedup (`dgprofile verify`) under the predicted band.
    table = TableView("", ("host, device", "hardware", "memory class", "origin", "verdict", "speedup", "band, measured",
                           "precision, engine", "DG tok/s", "AR tok/s", "streaming read", "usable memory",
                           "fits", "file, created"), rows, sortable=True, filterable=True, table_id="fleet-table",
                      page_size=ROWS_PER_PAGE)
    paging = f" {ROWS_PER_PAGE} rows show at a time." if len(rows) > ROWS_PER_PAGE else ""
    return SectionView("machines", "Machines", "Every readable result file. Click a heading to sort; type in the "
                       "box to filter (all words must match, e.g. 'H100 partial')." + paging, (table,))


def _rate(value: float | Unavailable) -> str:
    return "" if isinstance(value, Unavailable) else tokens_per_s_text(value)


def _figure_cell(value: float | Unavailable, basis: str, unit: str) -> Cell:
    if isinstance(value, Unavailable):
        return Cell("")
    text, shown_basis = figure_value_and_basis(Figure(value, basis=basis), unit)
    return Cell(text, number_key(value), detail=shown_basis)


def _speedups(rows: Iterable[FleetRow]) -> list[float]:
    return [row.speedup for row in rows if not isinstance(row.speedup, Unavailable)]


def _groups_overview(groups: Sequence[HardwareGroup]) -> SectionView:
    intro = "The headline speedup by hardware model: the spread within a model comes from precision, engine and " \
            "each machine's measured limits."
    if len(groups) > GROUP_SECTIONS_MAX:
        intro += (f" The {GROUP_SECTIONS_MAX} largest of the {len(groups)} models have a section of their own "
                  "below; this table lists every one.")
    values = {g.hardware: _speedups(g.rows) for g in groups}
    values = {name: v for name, v in values.items() if v}
    if not values:
        return SectionView("groups", "Hardware models", intro, (NoticeView(
            "Speedup by hardware model unavailable: no file holds a prediction."),))
    svg = charts.range_bar_svg(
        title="Headline speedup by hardware model", value_title="speedup (x)", value_formatter=speedup_text,
        categories=[f"{name} ({plural(len(v), 'machine')})" for name, v in values.items()],
        values=[statistics.median(v) for v in values.values()],
        ranges=[(min(v), max(v)) if len(v) > 1 else None for v in values.values()])
    rows = tuple(RowView((Cell(g.hardware), Cell(str(len(g.rows)), number_key(len(g.rows))),
                          Cell(_median_text(_speedups(g.rows)), _median_key(_speedups(g.rows))),
                          *(Cell(str(g.verdict_counts.get(v, 0)), number_key(g.verdict_counts.get(v, 0)))
                            for v in VERDICT_ORDER)))
                 for g in groups)
    table = TableView("", ("hardware model", "machines", "median speedup",
                           *(verdict_label(v) for v in VERDICT_ORDER)), rows, sortable=True,
                      table_id="groups-table")
    return SectionView("groups", "Hardware models", intro, (ChartView(Markup(svg), "Bar: the median headline "
                       "speedup of the model's machines; whisker: lowest to highest machine (none for one machine)."),
                       table))


def _median_text(values: list[float]) -> str:
    return speedup_text(statistics.median(values)) if values else "no prediction"


def _median_key(values: list[float]) -> str:
    return number_key(statistics.median(values)) if values else ""


def _group_section(index: int, group: HardwareGroup) -> SectionView:
    speedups = _speedups(group.rows)
    bandwidths = [r.stream_read_bytes_per_s for r in group.rows
                  if r.stream_read_basis == "measured" and not isinstance(r.stream_read_bytes_per_s, Unavailable)]
    facts = FactsView("", (
        ("machines", str(len(group.rows))),
        ("memory class", ", ".join(sorted({r.memory_class for r in group.rows}))),
        ("verdicts", ", ".join(f"{n} {verdict_label(v).lower()}"
                               for v in VERDICT_ORDER if (n := group.verdict_counts.get(v, 0)))),
        ("median headline speedup", _median_text(speedups)),
        ("median measured streaming read", bandwidth_text(statistics.median(bandwidths)) if bandwidths
         else "not measured on any machine of this model"),
    ))
    blocks: list[Block] = [facts, _group_chart(group)]
    return SectionView(f"group-{index}", group.hardware, "", tuple(blocks))


def _group_chart(group: HardwareGroup) -> Block:
    rows = sorted(((r.speedup, r) for r in group.rows if not isinstance(r.speedup, Unavailable)),
                  key=lambda pair: pair[0])
    if not rows:
        return NoticeView("Speedup chart unavailable: no file of this hardware model holds a prediction.")
    if len(rows) <= BARS_PER_MACHINE_MAX:
        svg = charts.bar_svg(title=f"Headline speedup per machine: {group.hardware}",
                             categories=[r.hostname for _, r in rows],
                             series={"headline speedup": [speedup for speedup, _ in rows]},
                             value_title="speedup (x)", value_formatter=factor_text, horizontal=True,
                             bar_colours=[charts.TONE_COLOURS[verdict_tone(r.verdict)] for _, r in rows])
        return ChartView(Markup(svg), "Each machine's headline speedup, lowest first, coloured by its verdict.")
    counts = [0] * (len(SPEEDUP_BINS) - 1)
    for speedup, _ in rows:
        counts[next(i for i in range(len(counts)) if speedup < SPEEDUP_BINS[i + 1])] += 1
    labels = [f"{factor_text(lo)} to {factor_text(hi)}" if hi != float("inf") else f"{factor_text(lo)} or more"
              for lo, hi in zip(SPEEDUP_BINS, SPEEDUP_BINS[1:], strict=False)]
    svg = charts.bar_svg(title=f"Machines by headline speedup: {group.hardware}", categories=labels,
                         series={"machines": counts}, value_title="machines",
                         value_formatter=count_text)
    return ChartView(Markup(svg), f"{len(rows)} machines binned by headline speedup.")


def _skipped_section(fleet: Fleet) -> SectionView:
    title = "Skipped machines and files" if not isinstance(fleet.run, Unavailable) else "Skipped files"
    intro = ("Machines the fleet run got no result from, and files left out, each with the reason. Everything "
             "else is shown above.")
    if not fleet.skipped and not fleet.failed:
        return SectionView("skipped", title, intro, (NoticeView("No machine or file was skipped."),))
    rows = tuple(RowView((Cell("machine"), Cell(f.machine), Cell(f.reason)), tone="warning") for f in fleet.failed)
    rows += tuple(RowView((Cell("file"), Cell(s.path), Cell(s.reason)), tone="warning") for s in fleet.skipped)
    return SectionView("skipped", title, intro, (TableView("", ("skipped", "machine or file", "reason"), rows,
                                                           filterable=len(rows) > ROWS_PER_PAGE,
                                                           table_id="skipped-table", page_size=ROWS_PER_PAGE),))
