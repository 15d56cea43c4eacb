"""Memory fit: what fits where, per precision, for both models."""

from __future__ import annotations

import pytest

from dgprofile.model.calibration import calibrated_parameters
from dgprofile.model.ceilings import ceilings_from_spec
from dgprofile.model.engines import ENGINES
from dgprofile.model.memory_fit import memory_fit
from dgprofile.records.predictions import MemoryFit
from dgprofile.specs.hardware import spec_by_id
from dgprofile.specs.model_config import load_model_config

CONFIG = load_model_config()
GIB = 1 << 30


def fit(hardware: str, engine: str, precision: str, *, concurrency: int = 1, memory_bytes: int | None = None,
        gpus: int = 1) -> MemoryFit:
    ceilings = ceilings_from_spec(spec_by_id(hardware), gpus=gpus, memory_bytes=memory_bytes)
    return memory_fit(CONFIG, ceilings, ENGINES[engine], calibrated_parameters()[engine], precision=precision,
                      concurrency=concurrency, context_tokens=2048)


def fitting(hardware: str, engine: str, **kwargs: int) -> set[str]:
    return {p for p in ENGINES[engine].precisions if fit(hardware, engine, p, **kwargs).fits_diffusion}


def test_rtx_4090_fits_only_4bit() -> None:
    assert fitting("rtx-4090", "vllm") == {"int4", "nvfp4"}
    assert fitting("rtx-4090", "llama.cpp") == {"q4_k_m"}


def test_a_16gb_mac_cannot_run_any_precision() -> None:
    assert fitting("m4-10gpu", "mlx", memory_bytes=16 * GIB) == set()


def test_h100_fits_fp8_and_bf16() -> None:
    assert {"bf16", "fp8"} <= fitting("h100-sxm", "vllm")


def test_two_rtx_3090s_fit_8bit_weights_tensor_parallel() -> None:
    assert "fp8" not in fitting("rtx-3090", "vllm")
    assert "fp8" in fitting("rtx-3090", "vllm", gpus=2)


def test_diffusion_needs_more_than_ar_and_says_what_takes_it() -> None:
    result = fit("h100-sxm", "vllm", "fp8")
    assert result.diffusion_needed_bytes > result.autoregressive_needed_bytes


def test_memory_need_includes_the_activation_headroom_so_the_table_and_the_stacked_bar_agree() -> None:
    result = fit("h100-sxm", "vllm", "fp8")
    parts = (result.weights_bytes + result.diffusion_kv_cache_bytes + result.diffusion_buffers_bytes
             + result.activation_headroom_bytes)
    assert result.diffusion_needed_bytes == pytest.approx(parts, abs=4)
    # vLLM's recipe lets weights, cache and buffers fill 85% of what it takes; the rest is the headroom.
    assert result.activation_headroom_bytes == pytest.approx(result.diffusion_needed_bytes * 0.15, rel=1e-6)


def test_one_h100_states_one_usable_figure_and_compares_the_need_with_it() -> None:
    result = fit("h100-sxm", "vllm", "bf16", concurrency=8)
    assert "66.9 GiB" not in result.note
    assert result.note.endswith(", 78.6 GiB usable")
    assert result.fits_diffusion == (result.diffusion_needed_bytes <= result.usable_bytes)


def test_max_concurrency_is_the_largest_that_fits() -> None:
    best = fit("h100-sxm", "vllm", "bf16").max_diffusion_concurrency
    assert best >= 1
    assert fit("h100-sxm", "vllm", "bf16", concurrency=best).fits_diffusion
    assert not fit("h100-sxm", "vllm", "bf16", concurrency=best + 1).fits_diffusion


def test_eager_transformers_needs_its_fitted_denoise_workspace() -> None:
    eager = fit("h200", "transformers", "bf16")
    assert eager.diffusion_needed_bytes > 1.8 * eager.weights_bytes


def test_a_precision_the_engine_does_not_run_is_flagged() -> None:
    result = fit("m3-max-40gpu", "mlx", "fp8")
    assert not result.engine_runs_it and "does not run" in result.note
