"""Memory planning shrinks the benchmark in a fixed order, from figures computed before anything is allocated."""

from __future__ import annotations

import pytest

from dgprofile.probes.decode.plan import (
    CPU_CONTEXT_CAP,
    CPU_VOCAB_DIVISOR,
    DEFAULT_SAMPLE,
    MIN_SAMPLE,
    memory_needed_bytes,
    plan_bench,
)
from dgprofile.specs.model_config import load_model_config

GB = 1e9


@pytest.fixture(scope="module")
def config():
    return load_model_config()


def plan(config, free_gb, **options):
    options.setdefault("native_fp8", True)
    options.setdefault("device_kind", "cuda")
    return plan_bench(config, free_memory_bytes=free_gb * GB, **options)


def test_an_80_gb_gpu_runs_the_whole_request_unreduced_but_fp16(config):
    p = plan(config, 80)
    assert p.measured_precisions == ("bf16", "fp8")
    assert [r for r in p.reductions if r.startswith("fp16 not measured on CUDA")]
    assert p.modelled_precisions == ("int8", "int4", "nvfp4")
    assert p.concurrencies == (1, 2, 4, 8)
    assert (p.sliding_layers, p.global_layers) == DEFAULT_SAMPLE
    assert p.vocab_divisor == 1 and len(p.reductions) == 1
    assert p.memory_needed_bytes <= p.memory_budget_bytes


def test_a_24_gb_gpu_shrinks_the_sample_before_dropping_concurrency(config):
    p = plan(config, 24)
    assert (p.sliding_layers, p.global_layers) == MIN_SAMPLE
    assert p.reductions[1].startswith("memory: layer sample shrunk to 1 sliding + 1 global")
    assert p.concurrencies == (1, 2, 4)
    assert "concurrency 8 dropped" in p.reductions[2]


def test_a_small_gpu_keeps_only_the_precisions_whose_layers_fit(config):
    p = plan(config, 3)
    assert p.measured_precisions == ("fp8",)
    assert any("bf16 not measured" in r for r in p.reductions)
    assert p.vocab_divisor == 64 and p.contexts == (256,)


def test_nothing_fits_in_a_tiny_memory_and_the_plan_says_so(config):
    p = plan(config, 0.5)
    assert p.measured_precisions == ()
    assert p.memory_needed_bytes == 0.0
    assert any("fp8 not measured" in r for r in p.reductions)


@pytest.mark.parametrize("free_gb", [2, 5, 8, 12, 20, 40, 80, 140])
def test_the_plan_never_exceeds_its_memory_budget(config, free_gb):
    p = plan(config, free_gb, full_depth=True)
    assert memory_needed_bytes(config, p) <= p.memory_budget_bytes


def test_full_depth_needs_the_whole_model_and_is_skipped_when_it_does_not_fit(config):
    assert plan(config, 80, full_depth=True).full_depth
    small = plan(config, 40, full_depth=True)
    assert not small.full_depth
    assert small.reductions[1].startswith("memory: full-depth measurement skipped")


def test_fp8_is_modelled_without_native_support(config):
    p = plan(config, 80, native_fp8=False)
    assert "fp8" not in p.measured_precisions and "fp8" in p.modelled_precisions
    assert any("no native fp8" in r for r in p.reductions)


def test_quick_measures_one_concurrency_without_fp16(config):
    p = plan(config, 80, quick=True)
    assert p.concurrencies == (1,) and "fp16" not in p.measured_precisions
    assert (p.sliding_layers, p.global_layers) == MIN_SAMPLE


def test_quick_models_fp8_even_where_the_gpu_runs_it(config):
    p = plan(config, 80, quick=True, native_fp8=True)
    assert p.measured_precisions == ("bf16",) and p.modelled_precisions[0] == "fp8"
    assert "quick: fp8 modelled from the bf16 passes, not measured" in p.reductions


def test_cpu_plan_reduces_for_time_and_says_what(config):
    p = plan(config, 20, device_kind="cpu", native_fp8=False, contexts=(4096,))
    assert p.measured_precisions == ("bf16",)
    assert p.concurrencies == (1,) and p.contexts == (CPU_CONTEXT_CAP,)
    assert p.vocab_divisor == CPU_VOCAB_DIVISOR
    text = " | ".join(p.reductions)
    assert "fp16 not measured" in text and "concurrency 1 only" in text and "capped at 256" in text


def test_fp16_runs_at_the_first_concurrency_only(config):
    p = plan(config, 80, device_kind="xpu")
    assert p.measured_precisions == ("bf16", "fp16", "fp8")
    assert p.concurrencies_for("dg-denoise", "fp16") == (1,)
    assert p.concurrencies_for("dg-denoise", "bf16") == (1, 2, 4, 8)
    assert p.concurrencies_for("prefill", "bf16") == (1,)


def test_unknown_precision_is_refused(config):
    with pytest.raises(ValueError, match="unknown precision 'fp6'"):
        plan(config, 80, precisions=("fp6",))
