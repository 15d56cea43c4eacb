"""The figures of one result file that every page shows: hardware name, streaming bandwidth, matmul peak, ridge and
usable memory, each worked out once here so the fleet table, the compare page and the result page agree.

The rule for every figure: measured (or probed) on the machine first, then the datasheet figure the prediction
used, then ``Unavailable`` with the reason the file gives. A ``Figure`` keeps the value with its basis.

The figures read an ``Evidence``: the few parts of a file they need. ``evidence(result)`` takes them from a loaded
file; the fleet decodes only these parts of each file, since decoding a whole file costs more than its budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dgprofile.model.ceilings import MEMORY_FROM_COMMAND_LINE
from dgprofile.records.limits import Limits
from dgprofile.records.machine import DescribedAccelerator, FailedDevice, Machine
from dgprofile.records.predictions import Ceilings, Predictions
from dgprofile.records.results import ResultFile
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import all_specs
from dgprofile.text.units import (
    bandwidth_text,
    bytes_text,
    flops_text,
    intensity_text,
    plain_text,
    seconds_text,
    speedup_text,
    tokens_per_s_text,
    unavailable_text,
)

HALF_PRECISIONS = ("bf16", "fp16")  # Apple GPUs are rated in fp16 only


@dataclass(frozen=True)
class MeasuredCeilings:
    """What a run measured that the figures read: the streaming read (with the relative spread of its timing) and
    the matmul peak per dtype."""

    stream_read_bytes_per_s: float | Unavailable
    stream_read_spread: float
    peak_flops_per_s: dict[str, float]


@dataclass(frozen=True)
class Evidence:
    """The parts of a result file its figures come from: the machine as probed, the measured ceilings, and the
    ceilings the prediction used (each ``Unavailable`` with the reason when the file lacks it)."""

    machine: Machine | Unavailable
    measured: MeasuredCeilings | Unavailable
    ceilings: Ceilings | Unavailable


@dataclass(frozen=True)
class Figure:
    """A number (or why there is none), its relative spread and where it comes from ('measured', 'probed',
    'datasheet', 'predicted')."""

    value: float | Unavailable
    relative_spread: float = 0.0
    basis: str = ""


def measured_ceilings(limits: Limits | Unavailable) -> MeasuredCeilings | Unavailable:
    """The figures' part of a run's measured limits."""
    if isinstance(limits, Unavailable):
        return limits
    stream = next((f for f in limits.bandwidth if f.name == "stream-read"), None)
    spread = stream.timing.relative_spread if stream is not None else 0.0
    return MeasuredCeilings(limits.stream_read_bytes_per_s, spread, limits.peak_flops_per_s)


def evidence(result: ResultFile) -> Evidence:
    """The evidence of a loaded result file."""
    p = result.predictions
    return Evidence(machine=result.machine, measured=measured_ceilings(result.limits),
                    ceilings=p.ceilings if isinstance(p, Predictions) else p)


def _reason(*values: object) -> Unavailable:
    reasons = [v.reason for v in values if isinstance(v, Unavailable)]
    return Unavailable(reasons[0] if reasons else "not in the file")


# ---------------------------------------------------------------------------------------------------------------
# The machine

def primary_accelerator(machine: Machine) -> DescribedAccelerator | None:
    """The device the run measured or predicted for: the first described accelerator."""
    described: list[DescribedAccelerator] = [a for a in machine.accelerators if not isinstance(a, FailedDevice)]
    return described[0] if described else None


def hardware_name(e: Evidence) -> str:
    """The hardware model, for grouping and headings: the first accelerator, else the CPU; for a file with no
    machine description (a `predict` run), the hardware the prediction is for."""
    if isinstance(e.machine, Unavailable):
        return e.ceilings.device_name if isinstance(e.ceilings, Ceilings) else "unknown machine"
    device = primary_accelerator(e.machine)
    return device.name if device is not None else f"CPU only: {plain_text(e.machine.cpu.model)}"


def hardware_model(e: Evidence) -> str:
    """The hardware model a file belongs to, for grouping: the name of the datasheet entry its accelerator matched,
    so a measured 'NVIDIA H100 80GB HBM3' and a predicted 'NVIDIA H100 SXM5 80GB' fall in one group; the hardware
    name where no entry matched (and for CPU-only machines)."""
    spec_id: str | Unavailable = Unavailable("no datasheet entry")
    if isinstance(e.machine, Machine):
        device = primary_accelerator(e.machine)
        spec_id = device.spec_id if device is not None else spec_id
    elif isinstance(e.ceilings, Ceilings):
        spec_id = e.ceilings.hardware_id
    spec = next((s for s in all_specs() if s.id == spec_id), None) if isinstance(spec_id, str) else None
    return spec.name if spec is not None else hardware_name(e)


def memory_class_text(e: Evidence) -> str:
    """The unified-memory class of the primary accelerator ('discrete', 'shared-physical', ...) or 'CPU only'."""
    if isinstance(e.machine, Unavailable):
        return e.ceilings.memory_class if isinstance(e.ceilings, Ceilings) else "unknown"
    device = primary_accelerator(e.machine)
    return device.memory_class.kind if device is not None else "CPU only"


def host_name(machine: Machine | Unavailable, run_label: str) -> str:
    """The host a result describes; a `predict` run has none, and is named by its label."""
    if isinstance(machine, Machine):
        return machine.identity.hostname
    return f"predicted: {run_label}" if run_label else "unknown host"


def datasheet_sources(spec_id: str | Unavailable) -> str:
    """The datasheet entry a probed device matched, with its sources ('' when it matched none)."""
    if isinstance(spec_id, Unavailable):
        return ""
    spec = next((s for s in all_specs() if s.id == spec_id), None)
    return f"{spec.name}: {'; '.join(spec.sources)}" if spec is not None else ""


# ---------------------------------------------------------------------------------------------------------------
# Ceilings

def stream_bandwidth(e: Evidence) -> Figure:
    """The streaming read bandwidth: measured, else the bandwidth the prediction used."""
    if isinstance(e.measured, MeasuredCeilings) and not isinstance(e.measured.stream_read_bytes_per_s, Unavailable):
        return Figure(e.measured.stream_read_bytes_per_s, e.measured.stream_read_spread, "measured")
    if isinstance(e.ceilings, Ceilings):
        return Figure(e.ceilings.bandwidth_bytes_per_s, 0.0, e.ceilings.source)
    return Figure(_reason(e.measured, e.ceilings))


def matmul_peak(e: Evidence, dtype: str) -> Figure:
    """The matmul peak in ``dtype``: measured, else the peak the prediction used."""
    if isinstance(e.measured, MeasuredCeilings) and dtype in e.measured.peak_flops_per_s:
        return Figure(e.measured.peak_flops_per_s[dtype], 0.0, "measured")
    if isinstance(e.ceilings, Ceilings) and dtype in e.ceilings.peak_flops_per_s:
        return Figure(e.ceilings.peak_flops_per_s[dtype], 0.0, e.ceilings.source)
    return Figure(Unavailable(f"no {dtype} matmul rate"))


def half_precision(e: Evidence) -> str:
    """The half-precision format the machine has a matmul peak for: bf16, else fp16 (bf16 when it has neither)."""
    return next((dtype for dtype in HALF_PRECISIONS if not isinstance(matmul_peak(e, dtype).value, Unavailable)),
                HALF_PRECISIONS[0])


def ridge(e: Evidence) -> Figure:
    """FLOP per byte at which a pass turns compute-bound: the half-precision matmul peak over the streaming
    bandwidth, each taken by the rule above."""
    peak, bandwidth = matmul_peak(e, half_precision(e)), stream_bandwidth(e)
    if isinstance(peak.value, Unavailable) or isinstance(bandwidth.value, Unavailable):
        return Figure(peak.value if isinstance(peak.value, Unavailable) else bandwidth.value)
    basis = "measured" if peak.basis == bandwidth.basis == "measured" else peak.basis or bandwidth.basis
    return Figure(peak.value / bandwidth.value, bandwidth.relative_spread, basis)


def usable_accelerator_memory(e: Evidence) -> Figure:
    """The memory the model may use (README, "Memory fit"): the figure the prediction's memory fit used, so a page
    never shows one figure beside a verdict decided on another; without a prediction, the probe's reading (RAM
    available on a CPU-only machine)."""
    if isinstance(e.ceilings, Ceilings):
        c = e.ceilings
        basis = ("command line" if MEMORY_FROM_COMMAND_LINE in c.usable_memory_basis
                 else "probed" if c.source == "measured" else c.source)
        return Figure(float(c.usable_memory_bytes), 0.0, basis)
    if isinstance(e.machine, Machine):
        device = primary_accelerator(e.machine)
        usable = device.memory_class.usable_bytes if device is not None else e.machine.cpu.ram_available_bytes
        if not isinstance(usable, Unavailable):
            return Figure(float(usable), 0.0, "probed")
    return Figure(_reason(e.machine, e.ceilings))


# ---------------------------------------------------------------------------------------------------------------
# Figures as text

UNIT_TEXTS: dict[str, Callable[[float], str]] = {
    "B/s": bandwidth_text,
    "FLOP/s": flops_text,
    "FLOP/byte": intensity_text,
    "s": seconds_text,
    "B": bytes_text,
    "x": speedup_text,
    "tok/s": tokens_per_s_text,
}


def figure_value_and_basis(figure: Figure, unit: str) -> tuple[str, str]:
    """A figure's value as text and its basis when that is worth saying (not 'measured'): ('410 GB/s',
    'datasheet'); an unavailable figure gives its reason as the value."""
    if isinstance(figure.value, Unavailable):
        return unavailable_text(figure.value), ""
    return UNIT_TEXTS[unit](figure.value), figure.basis if figure.basis != "measured" else ""


def figure_text(figure: Figure, unit: str) -> str:
    """A figure as text, with its basis when it was not measured: '3.07 TB/s', '400 GB/s (datasheet)'."""
    value, basis = figure_value_and_basis(figure, unit)
    return f"{value} ({basis})" if basis else value
