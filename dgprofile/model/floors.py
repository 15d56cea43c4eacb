"""The decode benchmark's passes set against this machine's measured limits, and the precisions it did not run.

A measured pass gets its bandwidth, compute and roofline floors (``dgprofile.records.passes`` defines them) and
its fraction of each. A precision the device cannot run is modelled from the bf16 pass of the same shape: at the
efficiency that pass reached against its floor, with this precision's bytes, FLOPs and (where the hardware lacks
the format) dequantisation work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TypedDict

from dgprofile.records.limits import Limits
from dgprofile.records.passes import PassMeasurement, PassTimes
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import ModelConfig
from dgprofile.specs.pass_cost import PRECISIONS, PassCost, pass_cost
from dgprofile.text.units import factor_text, flops_text

NOT_RUN = Unavailable("modelled, not run")


WIDE_FORMATS = ("bf16", "fp16")  # the 16-bit formats, in the order a quantised pass's other FLOPs take their rate


def matmul_rates(limits: Limits, compute_format: str) -> tuple[float, float] | Unavailable:
    """The measured rates a pass's FLOPs run at: ``compute_format``'s for its quantised components' matmuls, and
    the 16-bit one for the rest (its own for a 16-bit pass, else bf16's, else fp16's): in an fp8 pass the LM head,
    self-conditioning product, router, attention products and sampler."""
    peak = limits.peak_flops_per_s.get(compute_format)
    if not peak:
        return Unavailable(f"no measured {compute_format} matmul rate on this device")
    if compute_format in WIDE_FORMATS:
        return peak, peak
    wide = [rate for name in WIDE_FORMATS if (rate := limits.peak_flops_per_s.get(name))]
    if not wide:
        return Unavailable(f"no measured 16-bit (bf16 or fp16) matmul rate on this device for the {compute_format} "
                           "pass's LM head, router and attention products")
    return peak, wide[0]


def pass_floors(cost: PassCost, limits: Limits, compute_format: str
                ) -> tuple[float | Unavailable, float | Unavailable, float | Unavailable]:
    """The pass's bandwidth, compute and roofline floors at this machine's measured limits, FLOPs at the rates
    ``matmul_rates`` gives."""
    bandwidth = limits.stream_read_bytes_per_s
    bandwidth_floor: float | Unavailable = (cost.total_bytes / bandwidth if not isinstance(bandwidth, Unavailable)
                                            else Unavailable(f"no streaming-read bandwidth: {bandwidth.reason}"))
    rates = matmul_rates(limits, compute_format)
    if isinstance(rates, Unavailable):
        return bandwidth_floor, rates, Unavailable(
            f"needs the streaming-read bandwidth and matmul rates: {rates.reason}")
    quantised_peak, wide_peak = rates
    compute_floor = cost.compute_floor_seconds(quantised_flops_per_s=quantised_peak, wide_flops_per_s=wide_peak)
    if isinstance(bandwidth, Unavailable):
        return bandwidth_floor, compute_floor, Unavailable(
            f"needs the streaming-read bandwidth and matmul rates: no streaming-read bandwidth ({bandwidth.reason})")
    return bandwidth_floor, compute_floor, cost.roofline_floor_seconds(
        bytes_per_s=bandwidth, quantised_flops_per_s=quantised_peak, wide_flops_per_s=wide_peak)


def _fraction(floor: float | Unavailable, seconds: float) -> float | Unavailable:
    return floor if isinstance(floor, Unavailable) else floor / seconds


class FloorFields(TypedDict):
    """The floor fields of a ``PassMeasurement``, set together."""

    bandwidth_floor_seconds: float | Unavailable
    compute_floor_seconds: float | Unavailable
    roofline_floor_seconds: float | Unavailable
    fraction_of_bandwidth_floor: float | Unavailable
    fraction_of_compute_floor: float | Unavailable
    fraction_of_roofline_floor: float | Unavailable


def _floor_fields(cost: PassCost, limits: Limits, compute_format: str, seconds: float) -> FloorFields:
    bandwidth_floor, compute_floor, roofline_floor = pass_floors(cost, limits, compute_format)
    return FloorFields(bandwidth_floor_seconds=bandwidth_floor, compute_floor_seconds=compute_floor,
                       roofline_floor_seconds=roofline_floor,
                       fraction_of_bandwidth_floor=_fraction(bandwidth_floor, seconds),
                       fraction_of_compute_floor=_fraction(compute_floor, seconds),
                       fraction_of_roofline_floor=_fraction(roofline_floor, seconds))


def with_floors(config: ModelConfig, limits: Limits, measured: PassMeasurement) -> PassMeasurement:
    """A measured pass with its floors, and its fraction of each, at this machine's limits."""
    cost = pass_cost(config, kind=measured.pass_kind, precision=measured.precision,
                     concurrency=measured.concurrency, context_tokens=measured.context_tokens,
                     tokens_per_request=measured.tokens_per_request)
    return replace(measured, **_floor_fields(cost, limits, measured.compute_format, measured.seconds))


def modelled_passes(config: ModelConfig, limits: Limits, measured: list[PassMeasurement],
                    precisions: tuple[str, ...], reductions: list[str],
                    engine_rates: Mapping[str, float] | None = None) -> list[PassMeasurement]:
    """Precisions not run here: the bf16 pass of the same shape, at its measured efficiency against its floors,
    with this precision's bytes, FLOPs and (where the hardware lacks the format) dequantisation work. A native
    format's rate is ``engine_rates``' where given (the predictions' rates: for formats engines run in their own
    kernels, the datasheet's scaled by the measured bf16 rate), else the measured one."""
    bandwidth = limits.stream_read_bytes_per_s
    bf16_peak = limits.peak_flops_per_s.get("bf16")
    vector_peak = limits.peak_flops_per_s.get("fp32")
    native_rates = engine_rates if engine_rates is not None else limits.peak_flops_per_s
    base = [m for m in measured if m.precision == "bf16"]
    if not precisions:
        return []
    if isinstance(bandwidth, Unavailable) or not bf16_peak or not base:
        reductions.append(f"{', '.join(precisions)} not modelled: needs the measured bf16 passes, "
                          "streaming-read bandwidth and bf16 matmul rate")
        return []
    results = []
    for precision in precisions:
        fmt = PRECISIONS[precision]
        native_peak = native_rates.get(fmt.native_compute_format)
        if not native_peak and not vector_peak:
            # `check --quick` measures no fp32 rate: a format the GPU multiplies natively is still modelled.
            reductions.append(f"{precision} not modelled: this device has no measured {fmt.native_compute_format} "
                              "matmul rate, and no fp32 rate to price dequantising it to bf16")
            continue
        for m in base:
            floor = max(m.bytes_moved / bandwidth, m.flops / bf16_peak)
            efficiency = m.seconds / floor
            cost = pass_cost(config, kind=m.pass_kind, precision=precision, concurrency=m.concurrency,
                             context_tokens=m.context_tokens, tokens_per_request=m.tokens_per_request)
            if native_peak:
                compute_format = fmt.native_compute_format
                compute = cost.compute_floor_seconds(quantised_flops_per_s=native_peak, wide_flops_per_s=bf16_peak)
                how = (f"{_native_rate_text(compute_format, native_peak, limits)} for its quantised matrices, the "
                       "bf16 rate for the rest")
            elif vector_peak:
                compute_format = "bf16"
                compute = cost.total_flops / bf16_peak + cost.dequant_ops / vector_peak
                how = "dequantised to bf16 (bf16 matmul rate + dequantisation at the fp32 rate)"
            seconds = efficiency * max(cost.total_bytes / bandwidth, compute)
            results.append(PassMeasurement(
                pass_kind=m.pass_kind, precision=precision, concurrency=m.concurrency,
                tokens_per_request=m.tokens_per_request, context_tokens=m.context_tokens, seconds=seconds,
                timing=NOT_RUN, measured=False,
                basis=f"modelled: the bf16 pass measured here ({factor_text(efficiency)} its floor) with {precision} bytes "
                      f"and FLOPs, {how}", layers_measured=0, layers_total=config.backbone.num_layers,
                experts_touched_per_layer=m.experts_touched_per_layer, bytes_moved=cost.total_bytes,
                flops=cost.total_flops, achieved_bytes_per_s=cost.total_bytes / seconds,
                achieved_flops_per_s=cost.total_flops / seconds, breakdown_seconds={},
                relative_spread=m.relative_spread, experts_touched_expected=cost.experts_touched_per_layer,
                compute_format=compute_format,
                **_floor_fields(cost, _with_rate(limits, compute_format, native_peak), compute_format, seconds)))
    return results


def _native_rate_text(compute_format: str, rate: float, limits: Limits) -> str:
    measured = limits.peak_flops_per_s.get(compute_format)
    if measured == rate:
        return f"native {compute_format} matmul rate"
    torch_rate = f"; torch's own {compute_format} GEMM measured {flops_text(measured)}" if measured else ""
    return (f"native {compute_format} matmul rate as engines reach it ({flops_text(rate)}: the datasheet's, "
            f"scaled by the measured bf16 rate{torch_rate})")


def _with_rate(limits: Limits, compute_format: str, rate: float | None) -> Limits:
    """The limits with ``compute_format``'s rate the one the pass was priced at (its floors agree with it)."""
    if not rate or limits.peak_flops_per_s.get(compute_format) == rate:
        return limits
    return replace(limits, peak_flops_per_s={**limits.peak_flops_per_s, compute_format: rate})


def passes_against_limits(config: ModelConfig, limits: Limits, measured: PassTimes,
                          modelled_precisions: tuple[str, ...],
                          engine_rates: Mapping[str, float] | None = None) -> PassTimes:
    """The measured passes with their floors, followed by ``modelled_precisions`` modelled from the bf16 ones
    (native formats at ``engine_rates``, see ``modelled_passes``); a precision that cannot be modelled is named in
    the reductions."""
    passes = [with_floors(config, limits, m) for m in measured.passes]
    reductions = list(measured.reductions)
    modelled = modelled_passes(config, limits, passes, modelled_precisions, reductions, engine_rates)
    return replace(measured, passes=tuple(passes + modelled), reductions=tuple(reductions))
