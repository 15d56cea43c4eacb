"""The compare page: both sides, the account, the tables with their outcome tones, escaping."""

from __future__ import annotations

import result_factory as factory
from bs4 import BeautifulSoup

from dgprofile.analysis.compare import compare
from dgprofile.pages.compare_page import render_compare_html


def test_page_sides_account_tables_and_escaping() -> None:
    c = compare(factory.hostile_result(), factory.predicted_apple_result())
    html = render_compare_html(c)
    assert "<script>alert" not in html
    soup = BeautifulSoup(html, "html.parser")
    assert [s["id"] for s in soup.find_all("section")] == ["machines", "why", "limits", "passes", "predictions",
                                                               "measured"]
    assert soup.find("h1").get_text() == f"H100 {factory.HOSTILE_TEXT} vs Apple M3 Max (40-core GPU)"
    outcomes = {td.get_text() for td in soup.select("section#limits td.tone-worse")}
    assert outcomes == {"worse"}
    assert soup.select_one("section#predictions svg .title").get_text() == "Predicted speedup at concurrency 1"

