"""Engines: what each runs and where, the platform default, and the stated priors."""

from __future__ import annotations

import pytest

from dgprofile.errors import UsageError
from dgprofile.model.engines import ENGINE_NAMES, ENGINES, FITTED_PARAMETERS, auto_engine, engine_by_name
from dgprofile.specs.pass_cost import PRECISIONS


@pytest.mark.parametrize(("vendor", "device_type", "name", "expected"), [
    ("nvidia", "discrete-gpu", "NVIDIA H100 80GB HBM3", "vllm"), ("nvidia", "superchip-gpu", "NVIDIA GH200", "vllm"),
    ("nvidia", "soc-gpu", "NVIDIA GB10", "vllm"), ("amd", "discrete-gpu", "AMD Instinct MI300X", "vllm"),
    ("amd", "discrete-gpu", "AMD Instinct MI325X 256GB", "vllm"),
    ("amd", "discrete-gpu", "AMD Radeon RX 7900 XTX", "llama.cpp"), ("apple", "soc-gpu", "Apple M3 Max", "mlx"),
    ("amd", "apu-gpu", "AMD Radeon Graphics", "llama.cpp"), ("intel", "discrete-gpu", "Intel Arc B580", "llama.cpp"),
    ("intel", "apu-gpu", "Intel Arc Graphics 140V", "llama.cpp"), ("cpu", "cpu", "Intel Xeon", "llama.cpp"),
])
def test_auto_picks_what_users_of_the_platform_run(vendor: str, device_type: str, name: str, expected: str) -> None:
    engine, reason = auto_engine(vendor=vendor, device_type=device_type, device_name=name)
    assert engine == expected and reason
    assert vendor in ENGINES[engine].vendors


@pytest.mark.parametrize("name", [n for n in ENGINE_NAMES if n != "ideal"])
def test_every_fitted_engine_states_a_prior_for_every_parameter(name: str) -> None:
    priors = ENGINES[name].priors
    assert set(priors) == set(FITTED_PARAMETERS)
    assert all(p.median > 0 and p.log_sigma > 0 and p.reason for p in priors.values())


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_engine_precisions_are_known_formats(name: str) -> None:
    assert set(ENGINES[name].precisions) <= set(PRECISIONS)
    assert 0 < ENGINES[name].memory_utilization <= 1


def test_the_ideal_engine_is_not_fitted() -> None:
    assert ENGINES["ideal"].priors == {}


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="vllm"):
        engine_by_name("tensorrt")
