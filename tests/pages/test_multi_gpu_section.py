"""The result page's multi-GPU section, checked structurally."""

from __future__ import annotations

import dataclasses

import result_factory as factory
from fakes import recorded_all_reduce as recorded
from fakes.multi_gpu_result import h200_pair_result
from html_soup import page_soup

from dgprofile.pages.result_page import render_result_html
from dgprofile.records.values import Unavailable


def section_of(result):
    return page_soup(render_result_html(result)).find(id="multi-gpu")


def test_page_shows_the_pair_path_the_spread_the_sweep_the_link_cost_and_the_split_check() -> None:
    section = section_of(h200_pair_result())
    headings = [h.get_text(" ", strip=True) for h in section.find_all("h3")]
    assert headings[:3] == ["Path between each pair of GPUs (NVML)", "Limits of every GPU, measured at once",
                            "All-reduces over 2 GPUs (NCCL), launched one at a time"]
    assert "All-reduces over 2 GPUs (NCCL), replayed from CUDA graphs" in headings
    assert "What the link costs per pass (vllm, 2 GPUs)" in headings
    text = section.get_text(" ", strip=True)
    assert "NVLink, GPU to GPU" in text and "Spread (largest less smallest, over the median): streaming read 22" in text
    tables = section.find_all("table")
    sweep_rows = tables[2].find("tbody").find_all("tr")
    assert len(sweep_rows) == len(recorded.H200_PAIR_MICROSECONDS)
    graph_rows = tables[3].find("tbody").find_all("tr")
    assert len(graph_rows) == len(recorded.H200_PAIR_GRAPH_MICROSECONDS)
    split = tables[-1].find("tbody").find_all("tr")
    assert [[td.get_text(strip=True) for td in row.find_all("td")][:4] for row in split] == [
        ["2 GPUs", "ar-step", "1", "replayed from CUDA graphs"], ["2 GPUs", "dg-denoise", "1", "replayed from CUDA graphs"],
        ["2 GPUs", "dg-denoise", "4", "replayed from CUDA graphs"]]


def test_page_says_why_when_the_gpus_were_not_measured() -> None:
    result = dataclasses.replace(h200_pair_result(), multi_gpu=Unavailable("not measured: rank 1: NCCL error"))
    assert "Not measured: not measured: rank 1: NCCL error" in section_of(result).get_text()


def test_one_gpu_run_has_no_multi_gpu_section() -> None:
    assert page_soup(render_result_html(factory.measured_h100_result())).find(id="multi-gpu") is None


def test_link_cost_rows_name_their_model_so_the_two_prefills_are_told_apart() -> None:
    section = section_of(h200_pair_result())
    table = next(t for t in section.find_all("table") if "What the link costs" in t.find_previous("h3").text)
    passes = [row.find("td").text for row in table.find("tbody").find_all("tr")]
    assert "DiffusionGemma prefill" in passes and "Gemma 4 prefill" in passes
    assert len(passes) == len(set(passes))


def test_peer_to_peer_reads_yes_or_no_not_a_python_bool() -> None:
    text = section_of(h200_pair_result()).get_text(" ")
    assert "reads yes, over NVLink yes" in text
    assert "True" not in text
