"""The result page's measured runs: measured against predicted, the convergence chart, how the run was made."""

from __future__ import annotations

import result_factory as factory
from bs4 import BeautifulSoup
from html_soup import page_soup

from dgprofile.pages.result_page import render_result_html


def section(html: str) -> BeautifulSoup:
    found = page_soup(html).find(id="measured")
    assert found is not None
    return found


def test_measured_run_shows_each_figure_beside_its_prediction_and_the_drafts_converging():
    result = factory.measured_h100_result(measured_runs=(factory.measured_run(),))
    measured = section(render_result_html(result))
    tables = measured.find_all("table")
    assert len(tables) == 2
    speedup_row = [td.get_text(" ", strip=True) for td in tables[0].find("tbody").find_all("tr")[0].find_all("td")]
    assert speedup_row[0] == "long-form-drafting" and "predicted 5.1x" in speedup_row[2]
    figures = tables[1].find("tbody").find_all("tr")
    assert [tr.find_all("td")[2].get_text(strip=True) for tr in figures] == ["DiffusionGemma", "Gemma 4"]
    latency = figures[0].find_all("td")[6].get_text(" ", strip=True)
    assert "predicted" in latency and "+20%" in latency
    svg = measured.find("svg")
    assert svg is not None and "Drafts converging" in svg.get_text()
    assert "vllm 0.31.0" in measured.get_text()


def test_without_a_measured_run_the_section_says_how_to_get_one():
    text = section(render_result_html(factory.measured_h100_result())).get_text(" ", strip=True)
    assert "No measured run yet" in text and "dgprofile verify --result" in text


def test_hostile_strings_in_a_measured_run_are_escaped():
    run = factory.measured_run(hostile="<script>alert(1)</script>")
    html = render_result_html(factory.measured_h100_result(measured_runs=(run,)))
    assert "<script>alert(1)</script>" not in html
