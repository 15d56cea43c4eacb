"""The result page's multi-GPU section, checked structurally."""

from __future__ import annotations

import dataclasses

import result_factory as factory
from fakes import nvml as fake
from fakes import recorded_all_reduce as recorded
from html_soup import page_soup

from dgprofile.app.predictor import PredictOptions, predict_for_machine
from dgprofile.pages.result_page import render_result_html
from dgprofile.probes.gpu_nvidia import probe_nvidia
from dgprofile.records.multi_gpu import GpuLimits, MultiGpuRun
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import load_model_config


def pair_result(**run_changes: object):
    devices = probe_nvidia(fake.h200_nvlink_pair(), read_host_meminfo=lambda: {"MemTotal": 2**38,
                                                                              "MemAvailable": 2**37},
                           own_pid=1).devices
    machine = factory.machine(accelerators=devices)
    layers = (recorded.split_layer("sliding", whole_seconds=0.5e-3, split_seconds=0.36e-3),
              recorded.split_layer("global", whole_seconds=0.7e-3, split_seconds=0.46e-3))
    run = MultiGpuRun(gpu_indices=(0, 1), backend="nccl",
                      per_gpu_limits=(GpuLimits(0, "cuda:0", factory.limits(device="cuda:0", stream_bytes_per_s=4.5e12)),
                                      GpuLimits(1, "cuda:1", factory.limits(device="cuda:1", stream_bytes_per_s=3.6e12))),
                      all_reduce=recorded.h200_pair_sweep(), tensor_parallel_layers=layers,
                      model_id=load_model_config().id, seconds_taken=40.0)
    run = dataclasses.replace(run, **run_changes)
    predictions = predict_for_machine(machine, factory.limits(), factory.passes(), options=PredictOptions(gpus=2),
                                      multi_gpu=run)
    return dataclasses.replace(factory.result(machine_=machine, predictions_=predictions), multi_gpu=run)


def section_of(result):
    return page_soup(render_result_html(result)).find(id="multi-gpu")


def test_page_shows_the_pair_path_the_spread_the_sweep_the_link_cost_and_the_split_check() -> None:
    section = section_of(pair_result())
    headings = [h.get_text(" ", strip=True) for h in section.find_all("h3")]
    assert headings[:3] == ["Path between each pair of GPUs (NVML)", "Limits of every GPU, measured at once",
                            "All-reduces over 2 GPUs, measured eager NCCL"]
    assert "What the link costs per pass (vllm, 2 GPUs)" in headings
    text = section.get_text(" ", strip=True)
    assert "NVLink, GPU to GPU" in text and "Spread (largest less smallest, over the median): streaming read 22" in text
    tables = section.find_all("table")
    sweep_rows = tables[2].find("tbody").find_all("tr")
    assert len(sweep_rows) == len(recorded.H200_PAIR_MICROSECONDS)
    split = tables[-1].find("tbody").find_all("tr")
    assert [td.get_text(strip=True) for td in split[0].find_all("td")][:3] == ["2 GPUs", "dg-denoise", "1"]


def test_page_says_why_when_the_gpus_were_not_measured() -> None:
    result = dataclasses.replace(pair_result(), multi_gpu=Unavailable("not measured: rank 1: NCCL error"))
    assert "Not measured: not measured: rank 1: NCCL error" in section_of(result).get_text()


def test_one_gpu_run_has_no_multi_gpu_section() -> None:
    assert page_soup(render_result_html(factory.measured_h100_result())).find(id="multi-gpu") is None
