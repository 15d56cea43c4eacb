"""The compare page: both sides, the account, the tables with their outcome tones, escaping."""

from __future__ import annotations

from pathlib import Path

import result_factory as factory
from html_soup import page_soup

from dgprofile.analysis.compare import compare
from dgprofile.pages.compare_page import render_compare_html
from dgprofile.records.results import load


def test_page_sides_account_tables_and_escaping() -> None:
    c = compare(factory.hostile_result(), factory.predicted_apple_result())
    html = render_compare_html(c)
    assert "<script>alert" not in html
    soup = page_soup(html)
    assert [s["id"] for s in soup.find_all("section")] == ["machines", "why", "limits", "passes", "predictions",
                                                               "measured"]
    assert soup.find("h1").get_text() == f"H100 {factory.HOSTILE_TEXT} vs Apple M3 Max (40-core GPU)"
    outcomes = {td.get_text() for td in soup.select("section#limits td.tone-worse")}
    assert outcomes == {"worse"}
    assert soup.select_one("section#predictions svg .title").get_text() == (
        "Predicted speedup at concurrency 1, each machine at its best precision")


def test_h100_against_m3_max_compares_every_scenario_at_each_sides_best_precision() -> None:
    samples = Path(__file__).resolve().parents[2] / "samples"
    c = compare(load(samples / "h100-sxm_20261126.dgprofile.json"),
                load(samples / "predicted-m3-max-40gpu-64gb_20261126.dgprofile.json"))
    soup = page_soup(render_compare_html(c))
    rows = [[td for td in tr.find_all("td")] for tr in soup.select("section#predictions tbody tr")]
    outcomes = {row[3].get_text() for row in rows}
    assert outcomes == {"worse"}, "every scenario gets an answer, none reads 'only in A' or 'only in B'"
    long_form = next(row for row in rows if row[0].get_text().startswith("speedup: long-form-drafting, concurrency 1"))
    assert long_form[1].select_one(".cell-detail").get_text() == "fp8, vllm"
    assert long_form[2].select_one(".cell-detail").get_text() == "mlx-8bit, mlx"

