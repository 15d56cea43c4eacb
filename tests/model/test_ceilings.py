"""Ceilings: datasheet figures on the achievable footing, usable memory per memory class, native formats, measured
figures, kernel latency."""

from __future__ import annotations

import pytest

from dgprofile.errors import UsageError
from dgprofile.model.ceilings import (
    APPLE_WORKING_SET_FRACTION,
    DISCRETE_RESERVED_BYTES,
    REFERENCE_MATMUL_FRACTION,
    REFERENCE_STREAM_FRACTION,
    ceilings_from_spec,
    compute_dtype,
    launch_floor_scale,
    matmul_rate,
    measured_rates,
    vector_rate,
)
from dgprofile.specs.hardware import spec_by_id
from dgprofile.specs.pass_cost import precision_by_name

GIB = 1 << 30


def test_discrete_gpu_loses_the_driver_reservation() -> None:
    ceilings = ceilings_from_spec(spec_by_id("h100-sxm"))
    assert ceilings.usable_memory_bytes == spec_by_id("h100-sxm").memory_bytes - DISCRETE_RESERVED_BYTES
    assert ceilings.source == "datasheet"
    assert ceilings.bandwidth_bytes_per_s == pytest.approx(3.35e12 * REFERENCE_STREAM_FRACTION)


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


def test_consumer_cards_carry_their_pcie_link_and_no_peer_to_peer() -> None:
    ceilings = ceilings_from_spec(spec_by_id("rtx-3090"), gpus=2)
    assert ceilings.interconnect_bytes_per_s == 32e9 and not ceilings.peer_to_peer


def test_tensor_parallel_needs_a_gpu_to_gpu_link() -> None:
    with pytest.raises(UsageError, match="no GPU-to-GPU link"):
        ceilings_from_spec(spec_by_id("strix-halo-395"), gpus=2)


@pytest.mark.parametrize(("hardware", "precision", "rate_key", "native"), [
    ("h100-sxm", "fp8", "fp8", True), ("a100-sxm-80gb", "fp8", "bf16", False), ("h100-sxm", "int4", "bf16", False),
    ("b200", "nvfp4", "fp4", True), ("h100-sxm", "nvfp4", "bf16", False), ("m1-ultra-64gpu", "bf16", "fp16", True),
    ("rtx-4090", "int8", "int8", True), ("rtx-5090", "nvfp4", "fp4", True), ("rtx-pro-6000-blackwell", "nvfp4", "fp4", True),
    ("a100-sxm-80gb", "int4", "bf16", False), ("l4", "q4_k_m", "bf16", False), ("m5-max-40gpu", "mlx-4bit", "bf16", False),
])
def test_matmul_rate_is_native_only_where_the_hardware_has_the_format(hardware: str, precision: str,
                                                                      rate_key: str, native: bool) -> None:
    ceilings = ceilings_from_spec(spec_by_id(hardware))
    assert matmul_rate(ceilings, precision_by_name(precision)) == (ceilings.peak_flops_per_s[rate_key], native)


def test_apple_m1_multiplies_in_fp16_and_has_fp32_units() -> None:
    ceilings = ceilings_from_spec(spec_by_id("m1-ultra-64gpu"))
    assert compute_dtype(ceilings) == "fp16"
    assert vector_rate(ceilings) == ceilings.peak_flops_per_s["fp32"]


def test_awq_int4_is_weight_only_even_where_int4_tensor_cores_exist() -> None:
    """A100 and RTX 3090 list int4 tensor-core rates, but AWQ/GPTQ checkpoints are W4A16: Marlin unpacks them."""
    ceilings = ceilings_from_spec(spec_by_id("a100-sxm-80gb"))
    assert "int4" in ceilings.native_precisions
    assert matmul_rate(ceilings, precision_by_name("int4")) == (ceilings.peak_flops_per_s["bf16"], False)


def test_datasheet_rates_are_put_on_the_achievable_footing() -> None:
    ceilings = ceilings_from_spec(spec_by_id("h100-sxm"))
    assert ceilings.peak_flops_per_s["bf16"] == pytest.approx(989.4e12 * REFERENCE_MATMUL_FRACTION)


def test_measured_rates_are_used_as_measured_except_engine_kernel_formats() -> None:
    """torch's int8 GEMM takes a slow path (132 TOP/s on an H100): engines' int8 kernels are not that slow, so
    int8 and fp8 take the datasheet rate scaled by how the measured bf16 rate compares with its footing."""
    datasheet = {"bf16": 989.4e12, "int8": 1978.9e12, "fp8": 1978.9e12, "fp32": 67e12}
    rates = measured_rates({"bf16": 683e12, "int8": 132e12, "fp32": 51.5e12}, datasheet)
    health = 683e12 / (989.4e12 * REFERENCE_MATMUL_FRACTION)
    assert rates["bf16"] == 683e12 and rates["fp32"] == 51.5e12
    assert rates["int8"] == pytest.approx(1978.9e12 * REFERENCE_MATMUL_FRACTION * health)
    assert rates["fp8"] == pytest.approx(rates["int8"])


def test_an_unknown_card_uses_its_measurements_alone() -> None:
    assert measured_rates({"bf16": 1e14, "int8": 5e13}, None) == {"bf16": 1e14, "int8": 5e13}


def test_engine_floors_scale_with_the_measured_launch_latency() -> None:
    import result_factory as factory

    scale, basis = launch_floor_scale(factory.limits(launch_seconds=2.36e-6))
    assert scale == pytest.approx(2.0) and "2.36 us" in basis
    assert launch_floor_scale(None)[0] == 1.0


def test_cpu_only_machine_is_predicted_from_its_measured_limits():
    import result_factory as factory

    from dgprofile.model.ceilings import ceilings_from_machine
    from dgprofile.model.verdict import headline_reasons

    machine = factory.machine(hostname="laptop", accelerators=())
    measured = factory.limits(device="cpu", device_name="cpu", stream_bytes_per_s=20e9, peak_bf16_flops_per_s=3e11)
    ceilings = ceilings_from_machine(machine, measured)
    assert (ceilings.vendor, ceilings.device_type, ceilings.source) == ("cpu", "cpu", "measured")
    assert ceilings.bandwidth_bytes_per_s == pytest.approx(20e9)
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


def test_engine_matmul_rates_price_engine_formats_at_the_datasheet_and_leave_other_devices_as_measured() -> None:
    import dataclasses
    from pathlib import Path

    from dgprofile.model.ceilings import engine_matmul_rates
    from dgprofile.records.results import load

    sample = load(Path(__file__).resolve().parents[2] / "samples" / "h200_20261126.dgprofile.json")
    machine, limits = sample.machine, sample.limits
    rates = engine_matmul_rates(machine, limits)  # type: ignore[arg-type]
    assert rates["bf16"] == limits.peak_flops_per_s["bf16"]  # type: ignore[union-attr]
    assert rates["int8"] > 5 * limits.peak_flops_per_s["int8"]  # type: ignore[union-attr]  # torch's 127 TFLOP/s
    on_cpu = dataclasses.replace(limits, device="cpu")  # type: ignore[type-var]
    assert engine_matmul_rates(machine, on_cpu) == on_cpu.peak_flops_per_s  # type: ignore[arg-type]
