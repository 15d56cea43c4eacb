"""`dgprofile compare` as terminal text: concurrency 1 by default, the rest counted."""

from __future__ import annotations

import pytest
import result_factory as factory

from dgprofile.analysis.compare import compare
from dgprofile.terminal.format_comparison import format_comparison


@pytest.fixture(scope="module")
def gpu_vs_mac():
    return compare(factory.measured_h100_result(), factory.predicted_apple_result())


def test_text_shows_concurrency_one_and_counts_the_rest(gpu_vs_mac) -> None:
    text = format_comparison(gpu_vs_mac)
    assert text.startswith("A: gpu-node-01 - NVIDIA H100 80GB HBM3 (discrete, measured)\n"
                           "B: predicted: m3-max-40 - Apple M3 Max (40-core GPU) (shared-physical, predicted)\n")
    line = next(x for x in text.splitlines() if "speedup: long-form-drafting, concurrency 1" in x)
    assert "5.1x (fp8, vllm)" in line and "0.18x (fp8, mlx)" in line
    assert "concurrency 4" not in text
    assert "12 more scenarios (concurrency 2 and up)" in text
    line = next(x for x in text.splitlines() if x.strip().startswith("streaming read bandwidth"))
    assert line.endswith("- worse: B 7.7x lower")
    assert "concurrency 4" in format_comparison(gpu_vs_mac, all_scenarios=True)
