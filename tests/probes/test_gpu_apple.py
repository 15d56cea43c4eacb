"""The Apple probe against fake macOS command outputs (tests/fakes/apple.py)."""

from __future__ import annotations

import pytest
from fakes import apple

from dgprofile.probes import gpu_apple
from dgprofile.probes.gpu_apple import gpu_core_count, probe_apple
from dgprofile.records.machine import AppleGpu
from dgprofile.records.values import Unavailable


def only_gpu(outputs, working_set=lambda: Unavailable("torch is not installed")) -> AppleGpu:
    result = probe_apple(apple.runner(outputs), working_set)
    (gpu,) = result.devices
    return gpu


def test_m3_max_40_core() -> None:
    gpu = only_gpu(apple.M3_MAX, lambda: apple.M3_MAX_WORKING_SET)
    assert (gpu.chip, gpu.gpu_cores, gpu.name) == ("Apple M3 Max", 40, "Apple M3 Max (40-core GPU)")
    assert gpu.unified_memory_bytes == 64 << 30
    assert gpu.recommended_working_set_bytes == apple.M3_MAX_WORKING_SET
    assert gpu.spec_id == "m3-max-40gpu"
    assert gpu.theoretical_bandwidth_bytes_per_s == 409.6e9
    assert gpu.macos_version == "14.5"
    assert gpu.memory_class.kind == "shared-physical"
    assert gpu.memory_class.usable_bytes == apple.M3_MAX_WORKING_SET
    assert gpu.verified_on_hardware is False
    assert gpu.warnings == ()


def test_binned_m3_max_has_less_bandwidth() -> None:
    outputs = apple.mac("Apple M3 Max", cores=30, memsize=36 << 30, macos="14.5", bf16_i8mm=1)
    gpu = only_gpu(outputs)
    assert (gpu.spec_id, gpu.theoretical_bandwidth_bytes_per_s) == ("m3-max-30gpu", 307.2e9)


def test_m1_base() -> None:
    gpu = only_gpu(apple.M1, lambda: apple.M1_WORKING_SET)
    assert (gpu.gpu_cores, gpu.spec_id, gpu.theoretical_bandwidth_bytes_per_s) == (8, "m1-8gpu", 68.25e9)
    assert gpu.macos_version == "13.6.7"


def test_text_report_is_used_when_json_fails() -> None:
    outputs = dict(apple.M1)
    del outputs[("system_profiler", "SPDisplaysDataType", "-json")]
    assert gpu_core_count(apple.runner(outputs)) == 8


def test_unknown_core_count_chooses_by_memory_and_warns() -> None:
    outputs = {k: v for k, v in apple.M3_MAX.items() if k[0] != "system_profiler"}
    gpu = only_gpu(outputs)
    assert isinstance(gpu.gpu_cores, Unavailable)
    assert gpu.name == "Apple M3 Max"
    assert "chosen by memory size" in gpu.theoretical_bandwidth_basis
    assert any("binned variants" in w for w in gpu.warnings)


def test_chip_missing_from_table() -> None:
    outputs = apple.mac("Apple M9 Ultra", cores=99, memsize=1 << 40, macos="30.0", bf16_i8mm=1)
    gpu = only_gpu(outputs)
    assert isinstance(gpu.spec_id, Unavailable)
    assert isinstance(gpu.theoretical_bandwidth_bytes_per_s, Unavailable)


def test_without_torch_usable_memory_is_unavailable() -> None:
    gpu = only_gpu(apple.M3_MAX)
    assert isinstance(gpu.memory_class.usable_bytes, Unavailable)
    assert "torch" in gpu.memory_class.usable_bytes.reason


def test_intel_mac_is_a_note() -> None:
    result = probe_apple(apple.runner(apple.INTEL_MAC))
    assert result.devices == ()
    assert "Intel Mac" in result.notes[0]


def test_torch_working_set_reader_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_apple.importlib.util, "find_spec", lambda name: None)
    assert "install torch" in gpu_apple.torch_recommended_working_set().reason
