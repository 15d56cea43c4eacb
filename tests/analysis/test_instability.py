"""Unstable measurements grouped by flag, with advice for the platform the timing ran on."""

from __future__ import annotations

import dataclasses

import result_factory as factory

from dgprofile.analysis.instability import unstable_groups
from dgprofile.records.timing import InstabilityFlag

OLD_GPU_ADVICE = ("another process may be using the device (a busy GPU): check nvidia-smi or Activity Monitor, "
                  "stop other jobs and rerun")


def flagged(timer: str, code: str = "high-variation", advice: str = OLD_GPU_ADVICE):
    flag = InstabilityFlag(code, "samples vary by 12.0%, threshold 5.0%", advice)
    return dataclasses.replace(factory.timing(1e-3), timer=timer, unstable=(flag,))


def test_twenty_five_flagged_measurements_make_one_line_per_reason() -> None:
    timings = [(f"matmul {i}", flagged("perf-counter")) for i in range(25)]
    timings.append(("copy", flagged("perf-counter", code="few-samples", advice="raise the time budget")))
    groups = unstable_groups(timings)
    assert [g.code for g in groups] == ["high-variation", "few-samples"]
    assert groups[0].text().startswith("25 measurements flagged high-variation (matmul 0, matmul 1, matmul 2 and "
                                       "22 more): ")
    assert groups[1].text() == "copy: samples vary by 12.0%, threshold 5.0%; raise the time budget"


def test_a_cpu_only_file_written_with_gpu_advice_reads_cpu_advice() -> None:
    (group,) = unstable_groups([("stream-read", flagged("perf-counter"))])
    assert "nvidia-smi" not in group.advice and "Activity Monitor" not in group.advice
    assert "top" in group.advice


def test_each_platform_gets_its_own_tool() -> None:
    advice = {timer: unstable_groups([("x", flagged(timer))])[0].advice
              for timer in ("cuda-events", "xpu-events", "mps-events", "perf-counter")}
    assert "nvidia-smi" in advice["cuda-events"] and "Activity Monitor" not in advice["cuda-events"]
    assert "amd-smi" in advice["cuda-events"]  # ROCm builds of torch time AMD GPUs through torch.cuda's events
    assert "Activity Monitor" in advice["mps-events"] and "nvidia-smi" not in advice["mps-events"]
    assert "xpu-smi" in advice["xpu-events"] and "nvidia-smi" not in advice["xpu-events"]
