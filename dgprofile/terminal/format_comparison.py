"""A comparison of two result files as terminal text (`dgprofile compare`)."""

from __future__ import annotations

from dgprofile.analysis.compare import SECTION_TITLES, Comparison, Row, RowOutcome
from dgprofile.analysis.figures import UNIT_TEXTS, Figure
from dgprofile.records.values import Unavailable
from dgprofile.text.units import plural

OUTCOME_MARKS = {RowOutcome.BETTER: "+", RowOutcome.WORSE: "-", RowOutcome.SAME: "=", RowOutcome.NOT_SIGNIFICANT: "~",
                 RowOutcome.NOT_COMPARABLE: "x", RowOutcome.ONLY_A: "A", RowOutcome.ONLY_B: "B",
                 RowOutcome.UNAVAILABLE: "?"}


def _short(figure: Figure, unit: str, runs: str) -> str:
    """A figure in a narrow column: '410 GB/s (ds)' for a datasheet figure, '5.1x (fp8, vllm)' for a speedup
    predicted at that precision with that engine."""
    if isinstance(figure.value, Unavailable):
        return "unavailable"
    return (UNIT_TEXTS[unit](figure.value) + (" (ds)" if figure.basis == "datasheet" else "")
            + (f" ({runs})" if runs else ""))


def _beyond_concurrency_one(row: Row) -> bool:
    return bool(row.scenario) and row.concurrency != 1


def format_comparison(c: Comparison, *, all_scenarios: bool = False) -> str:
    """The comparison for a terminal: both sides, why they differ, and the rows (the scenario matrix at
    concurrency 1 only, unless ``all_scenarios``)."""
    lines = [f"A: {c.a.hostname} - {c.a.hardware} ({c.a.memory_class}, {c.a.origin})",
             f"B: {c.b.hostname} - {c.b.hardware} ({c.b.memory_class}, {c.b.origin})", "", "Why they differ:"]
    lines += [f"  * {text}" for text in c.explanations]
    hidden = 0
    for section, title in SECTION_TITLES.items():
        rows = [r for r in c.rows if r.section == section]
        if not all_scenarios:
            shown = [r for r in rows if not _beyond_concurrency_one(r)]
            hidden += len(rows) - len(shown)
            rows = shown
        if not rows:
            continue
        cells = [(r.metric, _short(r.a, r.unit, r.a_runs), _short(r.b, r.unit, r.b_runs)) for r in rows]
        width, a_width, b_width = (max(len(c[i]) for c in cells) for i in range(3))
        lines += ["", f"{title}:", f"  {'':{width}}  {'A':>{a_width}}  {'B':>{b_width}}  B against A"]
        for (metric, a, b), r in zip(cells, rows, strict=True):
            lines.append(f"  {metric:{width}}  {a:>{a_width}}  {b:>{b_width}}  "
                         f"{OUTCOME_MARKS[r.outcome]} {r.outcome.value}: {r.summary}")
    if hidden:
        lines += ["", f"{plural(hidden, 'more scenario')} (concurrency 2 and up) in the HTML page (-o compare.html) "
                      "or with --all-scenarios."]
    lines += ["", "Marks: + B better, - B worse, = same (within 5%), ~ not significant, x not comparable, "
                  "A/B only one side has it; (ds) datasheet figure."]
    return "\n".join(lines) + "\n"
