"""Ceilings: datasheet figures, usable memory per memory class, native formats, measured figures' footing."""

from __future__ import annotations

import pytest

from dgprofile.errors import UsageError
from dgprofile.model.ceilings import (
    APPLE_WORKING_SET_FRACTION,
    DISCRETE_RESERVED_BYTES,
    REFERENCE_STREAM_FRACTION,
    ceilings_from_spec,
    compute_dtype,
    datasheet_footing,
    matmul_rate,
    vector_rate,
)
from dgprofile.specs.hardware import spec_by_id
from dgprofile.specs.pass_cost import precision_by_name

GIB = 1 << 30


def test_discrete_gpu_loses_the_driver_reservation() -> None:
    ceilings = ceilings_from_spec(spec_by_id("h100-sxm"))
    assert ceilings.usable_memory_bytes == spec_by_id("h100-sxm").memory_bytes - DISCRETE_RESERVED_BYTES
    assert (ceilings.source, ceilings.bandwidth_bytes_per_s) == ("datasheet", 3.35e12)


def test_apple_uses_the_recommended_working_set_of_the_given_memory() -> None:
    ceilings = ceilings_from_spec(spec_by_id("m3-max-40gpu"), memory_bytes=48 * GIB)
    assert ceilings.usable_memory_bytes == int(48 * GIB * APPLE_WORKING_SET_FRACTION)
    assert "working set" in ceilings.usable_memory_basis and "command line" in ceilings.usable_memory_basis


def test_other_shared_pools_leave_room_for_the_os() -> None:
    ceilings = ceilings_from_spec(spec_by_id("dgx-spark"))
    assert ceilings.usable_memory_bytes < spec_by_id("dgx-spark").memory_bytes
    assert "OS" in ceilings.usable_memory_basis


def test_several_gpus_add_their_memory() -> None:
    one, two = (ceilings_from_spec(spec_by_id("rtx-3090"), gpus=g) for g in (1, 2))
    assert two.usable_memory_bytes == 2 * one.usable_memory_bytes


def test_tensor_parallel_needs_a_gpu_to_gpu_link() -> None:
    with pytest.raises(UsageError, match="no GPU-to-GPU link"):
        ceilings_from_spec(spec_by_id("strix-halo-395"), gpus=2)


@pytest.mark.parametrize(("hardware", "precision", "rate_key", "native"), [
    ("h100-sxm", "fp8", "fp8", True), ("a100-sxm-80gb", "fp8", "bf16", False), ("h100-sxm", "int4", "bf16", False),
    ("b200", "nvfp4", "fp4", True), ("h100-sxm", "nvfp4", "bf16", False), ("m1-ultra-64gpu", "bf16", "fp16", True),
    ("rtx-4090", "int8", "int8", True),
])
def test_matmul_rate_is_native_only_where_the_hardware_has_the_format(hardware: str, precision: str,
                                                                      rate_key: str, native: bool) -> None:
    ceilings = ceilings_from_spec(spec_by_id(hardware))
    assert matmul_rate(ceilings, precision_by_name(precision)) == (ceilings.peak_flops_per_s[rate_key], native)


def test_apple_m1_multiplies_in_fp16_and_has_fp32_units() -> None:
    ceilings = ceilings_from_spec(spec_by_id("m1-ultra-64gpu"))
    assert compute_dtype(ceilings) == "fp16"
    assert vector_rate(ceilings) == ceilings.peak_flops_per_s["fp32"]


def test_a_healthy_measured_card_predicts_like_its_datasheet() -> None:
    assert datasheet_footing(3.07e12, REFERENCE_STREAM_FRACTION, 3.35e12) == pytest.approx(3.35e12)
    assert datasheet_footing(3.3e12, REFERENCE_STREAM_FRACTION, 3.35e12) == 3.35e12  # capped


def test_a_throttled_card_predicts_from_what_it_measured() -> None:
    assert datasheet_footing(2.0e12, REFERENCE_STREAM_FRACTION, 3.35e12) == pytest.approx(
        2.0e12 / REFERENCE_STREAM_FRACTION)


def test_an_unknown_card_uses_its_measurement_alone() -> None:
    assert datasheet_footing(1.0e12, REFERENCE_STREAM_FRACTION, None) == pytest.approx(1e12 / REFERENCE_STREAM_FRACTION)


def test_cpu_only_machine_is_predicted_from_its_measured_limits():
    import result_factory as factory

    from dgprofile.model.ceilings import ceilings_from_machine
    from dgprofile.model.verdict import headline_reasons

    machine = factory.machine(hostname="laptop", accelerators=())
    measured = factory.limits(device="cpu", device_name="cpu", stream_bytes_per_s=20e9, peak_bf16_flops_per_s=3e11)
    ceilings = ceilings_from_machine(machine, measured)
    assert (ceilings.vendor, ceilings.device_type, ceilings.source) == ("cpu", "cpu", "measured")
    assert ceilings.bandwidth_bytes_per_s == pytest.approx(20e9 / REFERENCE_STREAM_FRACTION)
    assert ceilings.usable_memory_bytes == machine.cpu.ram_available_bytes
    reasons = headline_reasons(factory.prediction(), (), None, ceilings)
    assert any(r.startswith("no GPU: the CPU runs the model from host RAM") for r in reasons)


def test_cpu_only_machine_without_measured_limits_cannot_be_predicted():
    import result_factory as factory

    from dgprofile.model.ceilings import ceilings_from_machine
    from dgprofile.records.values import Unavailable

    with pytest.raises(UsageError, match="CPU-only machine without measured limits \\(torch is not installed"):
        ceilings_from_machine(factory.machine(accelerators=()), Unavailable("torch is not installed"))


def test_cpu_without_bf16_units_multiplies_in_its_fastest_wide_format():
    import dataclasses

    import result_factory as factory

    slow_bf16 = dataclasses.replace(factory.ceilings(device_name="cpu"), peak_flops_per_s={"bf16": 1e10, "fp32": 8e10})
    assert compute_dtype(slow_bf16) == "fp32"
