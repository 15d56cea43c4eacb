"""Print, check or rewrite the README's validation tables from `dgprofile.model.validation`.

    python scripts/readme_validation.py           # print the block
    python scripts/readme_validation.py --write   # after a refit: rewrite the README between its markers

The README's block sits between `<!-- validation:begin -->` and `<!-- validation:end -->`; a test fails when it
no longer matches the stored fit.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from pathlib import Path

from dgprofile.model.calibration import stored_validation
from dgprofile.records.predictions import TransferCheck, TransferValidation
from dgprofile.records.values import Unavailable

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- validation:begin -->", "<!-- validation:end -->"


def _number(value: float) -> str:
    return f"{value:.4g}"


def _band(low: float, high: float) -> str:
    return f"{low:.3g}-{high:.3g}"


def _figure(check: TransferCheck) -> str:
    if isinstance(check.published_verdict, Unavailable) or isinstance(check.predicted_verdict, Unavailable):
        return check.figure
    return f"{check.figure} ({check.published_verdict} / {check.predicted_verdict})"


def _percent(value: float) -> str:
    return f"{value:.0%}"


def _run_table(checks: list[TransferCheck]) -> list[str]:
    rows = ["| run | class | figure | published | predicted | error | 80% band | inside |",
            "|---|---|---|---|---|---|---|---|"]
    rows += [f"| {c.run_id} | {c.hardware_class} | {_figure(c)} | {_number(c.published)} | {_number(c.predicted)} "
             f"| {c.relative_error:+.0%} | {_band(c.low, c.high)} | {'yes' if c.in_band else 'no'} |" for c in checks]
    return rows


def _class_table(checks: list[TransferCheck]) -> list[str]:
    by_class: dict[str, list[TransferCheck]] = defaultdict(list)
    for check in checks:
        by_class[check.hardware_class].append(check)
    rows = ["| class left out | runs | median error, figures | speedups (published -> predicted) | inside the band |",
            "|---|---|---|---|---|"]
    for hardware_class, members in by_class.items():
        figures = [abs(c.relative_error) for c in members if isinstance(c.published_verdict, Unavailable)]
        speedups = "; ".join(
            f"{c.run_id} {c.figure.removeprefix('speedup ').split(' (')[0]}: {c.published:.2f}x -> {c.predicted:.2f}x "
            f"({c.published_verdict} -> {c.predicted_verdict})"
            for c in members if not isinstance(c.published_verdict, Unavailable)) or "none published"
        median = _percent(statistics.median(figures)) if figures else "none"
        rows.append(f"| {hardware_class} | {len({c.run_id for c in members})} | {median} | {speedups} "
                    f"| {sum(c.in_band for c in members)}/{len(members)} |")
    return rows


def validation_block(validation: TransferValidation) -> str:
    by_run = [c for c in validation.checks if c.held_out == "run"]
    by_class = [c for c in validation.checks if c.held_out == "hardware-class"]
    lines = [
        f"Leave one run out: median error of the published speedups "
        f"**{validation.median_speedup_error_leave_one_out:.1%}** (a test keeps it at or below 25% and every "
        f"verdict class right), of the other figures {_percent(validation.median_figure_error_leave_one_out)}; "
        f"inside their band: speedups {_percent(validation.speedup_coverage_leave_one_out)}, other figures "
        f"{_percent(validation.figure_coverage_leave_one_out)} (target about 80%).",
        "", *_run_table(by_run), "",
        f"Leave one hardware class out (coverage over all its figures: speedups "
        f"{_percent(validation.speedup_coverage_leave_class_out)}, other figures "
        f"{_percent(validation.figure_coverage_leave_class_out)}):",
        "", *_class_table(by_class)]
    return "\n".join(lines)


def block_in_readme() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()


def main(argv: list[str]) -> int:
    block = validation_block(stored_validation())
    if "--write" in argv:
        text = README.read_text(encoding="utf-8")
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        README.write_text(f"{text[:start]}\n{block}\n{text[end:]}", encoding="utf-8")
        print(f"wrote the validation block of {README}")
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
