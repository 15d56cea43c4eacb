"""One place for per-file figures: for every sample file, the fleet row, the compare page and the result page show
the same hardware name, bandwidth, ridge and usable memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from html_soup import page_soup

from dgprofile.analysis.compare import compare
from dgprofile.analysis.figures import (
    evidence,
    figure_text,
    hardware_name,
    ridge,
    stream_bandwidth,
    usable_accelerator_memory,
)
from dgprofile.analysis.fleet import Fleet, summarise
from dgprofile.pages.compare_page import render_compare_html
from dgprofile.pages.fleet_page import render_fleet_html
from dgprofile.pages.result_page import render_result_html
from dgprofile.records.results import load
from dgprofile.terminal.format_predictions import format_predictions
from dgprofile.text.units import speedup_text

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").rglob("*.json"))  # the fleet sample's files too


def cell_text(td) -> str:
    """A table cell as figure_text writes it: the value, and its basis (shown under it) in parentheses."""
    detail = td.select_one(".cell-detail")
    basis = detail.extract().get_text() if detail is not None else ""
    value = td.get_text().replace("\xa0", " ")
    return f"{value} ({basis})" if basis else value


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_fleet_compare_and_result_page_show_the_same_figures(path: Path) -> None:
    result = load(path)
    e = evidence(result)
    bandwidth, machine_ridge, usable = stream_bandwidth(e), ridge(e), usable_accelerator_memory(e)

    row = summarise(path.read_bytes(), source=str(path))
    assert (row.hardware, row.stream_read_bytes_per_s, row.stream_read_basis) == (
        hardware_name(e), bandwidth.value, bandwidth.basis)
    assert (row.ridge_flop_per_byte, row.ridge_basis) == (machine_ridge.value, machine_ridge.basis)
    assert (row.usable_memory_bytes, row.usable_memory_basis) == (usable.value, usable.basis)
    fleet = page_soup(render_fleet_html(Fleet(rows=(row,), skipped=())))
    fleet_cells = [cell_text(td) for td in fleet.select("#fleet-table tr")[1].find_all("td")]
    assert fleet_cells[1] == hardware_name(e)
    for figure, unit in ((bandwidth, "B/s"), (usable, "B")):
        assert (figure_text(figure, unit) if figure.basis else "") in fleet_cells

    page = page_soup(render_compare_html(compare(result, result)))
    limits = {tr.find_all("td")[0].get_text(): cell_text(tr.find_all("td")[1])
              for tr in page.select("section#limits tr") if tr.find_all("td")}
    assert limits["streaming read bandwidth"] == figure_text(bandwidth, "B/s")
    assert limits["memory usable by the accelerator"] == figure_text(usable, "B")
    assert next(v for k, v in limits.items() if k.startswith("ridge")) == figure_text(machine_ridge, "FLOP/byte")
    assert page.find("h1").get_text() == f"{hardware_name(e)} vs {hardware_name(e)}"

    facts = page_soup(render_result_html(result)).select_one("section#basis")
    text = " ".join(facts.get_text(" ").split())
    for shown in (hardware_name(e), figure_text(bandwidth, "B/s"), figure_text(machine_ridge, "FLOP/byte"),
                  figure_text(usable, "B")):
        assert " ".join(shown.split()) in text


def test_the_cpu_headline_speedup_reads_the_same_on_every_surface_and_in_the_readme() -> None:
    path = next(p for p in SAMPLES if p.name.startswith("cpu-"))
    result = load(path)
    shown = speedup_text(result.predictions.headline.speedup)
    assert shown == "0.11x"
    assert f"speedup (end to end, against plain Gemma 4): {shown} (" in format_predictions(result.predictions)
    assert f"from {shown})" in " ".join(result.predictions.reasons)
    verdict = page_soup(render_result_html(result)).select_one("section#verdict .verdict-band").get_text()
    assert f"Speedup {shown}," in verdict
    row = summarise(path.read_bytes(), source=str(path))
    fleet = page_soup(render_fleet_html(Fleet(rows=(row,), skipped=())))
    assert fleet.select("#fleet-table tr")[1].find_all("td")[5].get_text() == shown
    compared = page_soup(render_compare_html(compare(result, result)))
    headline = next(tr for tr in compared.select("section#predictions tr") if "headline" in tr.get_text())
    assert cell_text(headline.find_all("td")[1]).startswith(shown)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"`does-not-apply` ({shown}:" in readme
