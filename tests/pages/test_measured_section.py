"""The result page's measured runs: measured against predicted, the convergence chart, how the run was made."""

from __future__ import annotations

import dataclasses

import result_factory as factory
from bs4 import BeautifulSoup
from html_soup import page_soup

from dgprofile.pages.result_page import render_result_html
from dgprofile.records.verification import TimingAgreement


def section(html: str) -> BeautifulSoup:
    found = page_soup(html).find(id="measured")
    assert found is not None
    return found


def test_measured_run_shows_each_figure_beside_its_prediction_and_the_drafts_converging():
    result = factory.measured_h100_result(measured_runs=(factory.measured_run(),))
    measured = section(render_result_html(result))
    tables = measured.find_all("table")
    assert len(tables) == 3  # speedups, figures, and the servers' own timing
    speedup_row = [td.get_text(" ", strip=True) for td in tables[0].find("tbody").find_all("tr")[0].find_all("td")]
    assert speedup_row[0] == "long-form-drafting" and "predicted 5.1x" in speedup_row[2]
    figures = tables[1].find("tbody").find_all("tr")
    assert [tr.find_all("td")[2].get_text(strip=True) for tr in figures] == ["DiffusionGemma", "Gemma 4"]
    latency = figures[0].find_all("td")[6].get_text(" ", strip=True)
    assert "predicted" in latency and "+20%" in latency
    svg = measured.find("svg")
    assert svg is not None and "Drafts converging" in svg.get_text()
    assert "vllm 0.31.0" in measured.get_text()


def test_server_timing_sits_beside_the_clients_and_memory_in_the_run_facts():
    measured = section(render_result_html(factory.measured_h100_result(measured_runs=(factory.measured_run(),))))
    table = measured.find(id="server-timing")
    assert table is not None
    rows = [[td.get_text(" ", strip=True) for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]
    (dg, ar) = rows
    assert dg[:4] == ["DiffusionGemma", "http://127.0.0.1:8000", "1", "3 / 3"]
    assert dg[4] == "260 ms; server 250 ms, +4%" and "-2%" in dg[6]
    assert ar[0] == "Gemma 4" and "/metrics answered 404" in ar[4]
    # Within the 10% bound no cell is marked; the agreement note names the bound.
    assert not table.find_all(class_="tone-warning") and "Within 10%" in measured.get_text()
    facts = measured.get_text(" ", strip=True)
    assert "DiffusionGemma server's GPU memory" in facts and "python3 (pid 4242) on GPU 0: 27.9 GiB" in facts
    assert "VLLM::EngineCore (pid 4250) on GPU 0: not reported" in facts
    assert "NVML sees this machine's GPUs only" in facts


def test_a_client_time_to_first_token_a_third_above_the_servers_is_marked():
    run = factory.measured_run()
    (level,) = run.servers[0].timing
    slow = dataclasses.replace(level, ttft_seconds=TimingAgreement(client=0.4, server=0.3, relative_difference=1 / 3))
    run = dataclasses.replace(run, servers=(dataclasses.replace(run.servers[0], timing=(slow,)), run.servers[1]))
    table = section(render_result_html(factory.measured_h100_result(measured_runs=(run,)))).find(id="server-timing")
    (marked,) = table.find_all(class_="tone-warning")
    assert marked.get_text(" ", strip=True) == "400 ms; server 300 ms, +33%"


def test_a_measured_run_in_process_has_no_server_timing_table():
    run = factory.measured_run(backend="transformers", engine="transformers")
    measured = section(render_result_html(factory.measured_h100_result(measured_runs=(run,))))
    assert measured.find(id="server-timing") is None and "server's GPU memory" not in measured.get_text()


def test_without_a_measured_run_the_section_says_how_to_get_one():
    text = section(render_result_html(factory.measured_h100_result())).get_text(" ", strip=True)
    assert "No measured run yet" in text and "dgprofile verify --result" in text


def test_hostile_strings_in_a_measured_run_are_escaped():
    run = factory.measured_run(hostile="<script>alert(1)</script>")
    html = render_result_html(factory.measured_h100_result(measured_runs=(run,)))
    assert "<script>alert(1)</script>" not in html
