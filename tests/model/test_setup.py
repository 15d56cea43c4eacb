"""Setup knobs: the interconnect NVML shows, the sampler and thinking mode's steps, the MTP baseline, formats."""

from __future__ import annotations

import math

import pytest
import result_factory as factory
from fakes import nvml as fake

from dgprofile.errors import UsageError
from dgprofile.model import setup
from dgprofile.model.ceilings import ceilings_from_spec, runs_natively
from dgprofile.model.engines import ENGINES
from dgprofile.model.workloads import MAX_STEPS, WORKLOADS
from dgprofile.probes.gpu_nvidia import probe_nvidia
from dgprofile.records.predictions import ArBaseline, Interconnect, Sampler
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import spec_by_id
from dgprofile.specs.pass_cost import precision_by_name

LONG_FORM = WORKLOADS["long-form-drafting"].steps


def machine_with(scenario: fake.FakeNvml):
    devices = probe_nvidia(scenario, read_host_meminfo=lambda: {"MemTotal": 2**37, "MemAvailable": 2**36},
                           own_pid=1).devices
    return factory.machine(accelerators=devices)


def test_nvlink_pair_is_detected_from_nvml_topology() -> None:
    link = setup.detected_interconnect(machine_with(fake.hgx_h100_pair()), 2)
    assert isinstance(link, Interconnect)
    assert (link.kind, link.bytes_per_s, link.peer_to_peer) == ("nvlink", 450e9, True)
    assert link.basis.startswith("detected from NVML topology")


def test_geforce_pair_is_pcie_through_host_memory() -> None:
    link = setup.detected_interconnect(machine_with(fake.rtx_3090_pair()), 2)
    assert isinstance(link, Interconnect)
    assert (link.kind, link.description, link.peer_to_peer) == ("pcie", "PCIe 4.0 x16 without peer-to-peer", False)
    assert link.all_reduce_latency_seconds > setup.ALL_REDUCE_LATENCY_SECONDS["nvlink"]


def test_a_machine_with_fewer_gpus_falls_back_to_the_datasheet() -> None:
    ceilings = ceilings_from_spec(spec_by_id("h100-sxm"), gpus=4)
    assert isinstance(setup.detected_interconnect(machine_with(fake.hgx_h100_pair()), 4), Unavailable)
    link = setup.interconnect(ceilings, None, machine_with(fake.hgx_h100_pair()))
    assert isinstance(link, Interconnect) and link.basis.startswith("datasheet")


def test_one_gpu_needs_no_link_and_refuses_one() -> None:
    ceilings = ceilings_from_spec(spec_by_id("h100-sxm"))
    assert isinstance(setup.interconnect(ceilings, None, None), Unavailable)
    with pytest.raises(UsageError, match="--gpus 2"):
        setup.interconnect(ceilings, "nvlink", None)


def test_released_sampler_on_full_precision_logits_keeps_the_workload_steps() -> None:
    assert setup.adjusted_steps(LONG_FORM, sampler=Sampler("entropy-bound", 0.1), thinking=False,
                                quantised_logits=False) == LONG_FORM


def test_quantised_logits_raise_entropy_bound_steps_to_the_mlx_evidence() -> None:
    steps = setup.adjusted_steps(LONG_FORM, sampler=Sampler("entropy-bound", 0.1), thinking=False,
                                 quantised_logits=True)
    assert steps.typical == pytest.approx(setup.MLXCEL_ESSAY_STEPS)
    assert steps.low < LONG_FORM.low * setup.QUANTISED_LOGITS_STEPS_FACTOR < steps.high
    assert "mlxcel PR #218" in steps.basis


def test_confidence_threshold_at_the_evidence_point_cuts_the_gap_as_published() -> None:
    """mlxcel #217: on the M1 Ultra (4-bit, compute-bound passes) the AR/DG gap fell from 4.7x to 1.7x."""
    quantised = setup.adjusted_steps(LONG_FORM, sampler=Sampler("entropy-bound", 0.1), thinking=False,
                                     quantised_logits=True)
    confident = setup.adjusted_steps(LONG_FORM, sampler=Sampler("confidence-threshold", 0.6), thinking=False,
                                     quantised_logits=True)
    passes = (2 * quantised.typical + 1) / (2 * confident.typical + 1)
    assert passes == pytest.approx(4.7 / 1.7, rel=0.01)
    stricter = setup.adjusted_steps(LONG_FORM, sampler=Sampler("confidence-threshold", 0.8), thinking=False,
                                    quantised_logits=False)
    assert stricter.typical > confident.typical and stricter.high / stricter.low > confident.high / confident.low


def test_thinking_mode_moves_steps_near_the_cap() -> None:
    steps = setup.adjusted_steps(LONG_FORM, sampler=Sampler("entropy-bound", 0.1), thinking=True,
                                 quantised_logits=False)
    assert (steps.low, steps.high) == (setup.THINKING_STEPS_LOW, MAX_STEPS)
    assert "club-3090" in steps.basis


def test_fixed_steps_ignore_the_sampler() -> None:
    fixed = LONG_FORM.fixed(16, "test")
    assert setup.adjusted_steps(fixed, sampler=Sampler("confidence-threshold", 0.6), thinking=True,
                                quantised_logits=True) == fixed


def test_a_larger_entropy_bound_takes_fewer_steps() -> None:
    loose = setup.adjusted_steps(LONG_FORM, sampler=Sampler("entropy-bound", 0.2), thinking=False,
                                 quantised_logits=False)
    assert loose.typical == pytest.approx(LONG_FORM.typical / 2)


def test_mtp_baseline_yields_the_expected_accepted_run() -> None:
    baseline = setup.ar_baseline("mtp", ENGINES["vllm"], fitted_acceptance=0.7)
    assert (baseline.draft_tokens, baseline.acceptance) == (setup.DEFAULT_MTP_DRAFT_TOKENS, 0.7)
    assert setup.tokens_per_verification(ArBaseline("mtp", 4, 0.8)) == pytest.approx(
        sum(0.8 ** i for i in range(5)))
    assert setup.tokens_per_verification(ArBaseline("plain")) == 1.0
    with pytest.raises(UsageError, match="does not serve Gemma 4 with its MTP drafter"):
        setup.ar_baseline("mtp", ENGINES["mlx"], fitted_acceptance=0.7)
    with pytest.raises(UsageError, match="need --ar-baseline mtp"):
        setup.ar_baseline("plain", ENGINES["vllm"], fitted_acceptance=0.7, acceptance=0.5)


@pytest.mark.parametrize(("hardware", "precision", "words"), [
    ("rtx-3090", "fp8", "W8A16"), ("h100-sxm", "fp8", "native fp8"), ("h100-sxm", "nvfp4", "W4A16"),
    ("b200", "nvfp4", "native fp4"), ("rtx-5090", "nvfp4", "native fp4"), ("l4", "q4_k_m", "weight-only"),
    ("h100-sxm", "int4", "weight-only"), ("m4-max-40gpu", "mlx-4bit", "W4A16"),
])
def test_weight_formats_are_described_as_the_architecture_runs_them(hardware: str, precision: str,
                                                                    words: str) -> None:
    ceilings = ceilings_from_spec(spec_by_id(hardware))
    fmt = precision_by_name(precision)
    assert words in setup.weight_format(ceilings, fmt, runs_natively(ceilings, fmt))


def test_only_mlx_4bit_quantises_the_logits_by_default() -> None:
    quantised = {name for name in ("bf16", "fp8", "int4", "nvfp4", "q4_k_m", "q8_0", "mlx-8bit", "mlx-4bit")
                 if setup.default_quantised_logits(precision_by_name(name))}
    assert quantised == {"mlx-4bit"}


def test_sampler_values_are_checked() -> None:
    assert setup.sampler(None, None) == Sampler("entropy-bound", 0.1)
    assert setup.sampler("confidence-threshold", None) == Sampler("confidence-threshold", 0.6)
    with pytest.raises(UsageError, match="below 1"):
        setup.sampler("confidence-threshold", 1.5)
    assert math.isfinite(setup.CONFIDENCE_STEPS_FACTOR) and 0 < setup.CONFIDENCE_STEPS_FACTOR < 1
