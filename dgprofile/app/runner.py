"""`bench` and `check` end to end: probe, measure limits, time the decode passes, predict, keep what was measured.

The measured steps run under the device's benchmark lock. A step that fails, or a Ctrl-C, ends the measuring but
not the run: the result is still assembled from what was measured, marked incomplete with the reason, and the
prediction falls back to whatever is available (measured limits, else the datasheet).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from dgprofile.app.decode_passes import time_decode_passes
from dgprofile.app.machine import probe_machine
from dgprofile.app.predictor import PredictOptions, predict_for_machine
from dgprofile.errors import BenchmarkBusyError, UsageError
from dgprofile.records.limits import Limits
from dgprofile.records.machine import AmdGpu, IntelGpu, Machine, NvidiaGpu
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import Predictions
from dgprofile.records.results import ResultFile, RunInfo, new_result
from dgprofile.records.values import Unavailable

Progress = Callable[[str], None]
TORCH_MISSING = Unavailable("torch is not installed: pip install 'dgprofile[bench]' to measure this machine")
LIMITS_ONLY = Unavailable("not measured: --limits-only")


@dataclass(frozen=True)
class MeasureOptions:
    """What the measured steps cover."""

    quick: bool = False
    device: str = "auto"
    anonymize: bool = False
    wait_seconds: float = 0.0
    limits_only: bool = False


@dataclass(frozen=True)
class CheckOptions:
    """What `check` measures and predicts."""

    measure: MeasureOptions = field(default_factory=MeasureOptions)
    prediction: PredictOptions = field(default_factory=PredictOptions)


@dataclass(frozen=True)
class MeasuredRunResult:
    """The result, and whether the user interrupted the run (the CLI exits 130 after writing it)."""

    result: ResultFile
    interrupted: bool


@dataclass(frozen=True)
class _Measured:
    machine: Machine
    device: str
    limits: Limits | Unavailable
    passes: PassTimes | Unavailable
    incomplete: tuple[str, ...]
    interrupted: bool


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def lock_key(machine: Machine, device: str) -> str:
    """GPUs are locked by UUID (Intel's by PCI bus id), so `cuda:0` in two containers sharing a card still
    collide."""
    kind, _, index_text = device.partition(":")
    index = int(index_text) if index_text else 0
    for accelerator in machine.accelerators:
        if accelerator.kind == "failed-device" or accelerator.index != index:
            continue
        if kind == "cuda" and isinstance(accelerator, (NvidiaGpu, AmdGpu)) and isinstance(accelerator.uuid, str):
            return accelerator.uuid
        if kind == "xpu" and isinstance(accelerator, IntelGpu) and isinstance(accelerator.pci_bus_id, str):
            return accelerator.pci_bus_id
    return device


def _measure(options: MeasureOptions, progress: Progress) -> _Measured:
    progress("probing the machine")
    machine = probe_machine(anonymize=options.anonymize)
    if importlib.util.find_spec("torch") is None:
        return _Measured(machine, options.device, TORCH_MISSING, TORCH_MISSING, (TORCH_MISSING.reason,), False)

    from dgprofile.probes.device_lock import exclusive_device
    from dgprofile.probes.measure_limits import measure_limits
    from dgprofile.probes.torch_devices import resolve_device, undrivable_accelerator

    device = resolve_device(machine, options.device)
    undrivable = undrivable_accelerator(machine, device) if options.device == "auto" else None
    if undrivable is not None:
        progress(undrivable)
        skipped = Unavailable(undrivable)
        return _Measured(machine, device, skipped, skipped, (undrivable,), False)
    not_reached = Unavailable("not measured: the run ended before this step")
    limits: Limits | Unavailable = not_reached
    passes: PassTimes | Unavailable = LIMITS_ONLY if options.limits_only else not_reached
    incomplete: list[str] = []
    interrupted = False
    step = "waiting for the device"
    try:
        with exclusive_device(lock_key(machine, device), wait_seconds=options.wait_seconds, on_wait=progress):
            step = "measuring limits"
            progress(f"{step} on {device}")
            limits = measure_limits(device, machine=machine, quick=options.quick, progress=progress)
            if not options.limits_only:
                step = "timing decode passes"
                progress(f"{step} on {device}")
                passes = time_decode_passes(device=device, limits=limits, quick=options.quick, progress=progress)
    except KeyboardInterrupt:
        interrupted = True
        incomplete.append(f"interrupted (Ctrl-C) while {step}")
    except (BenchmarkBusyError, UsageError):
        raise
    except Exception as exc:  # a failing benchmark must not sink the run: keep what was measured
        incomplete.append(f"{step} failed: {type(exc).__name__}: {exc}")
    return _Measured(machine, device, limits, passes, tuple(incomplete), interrupted)


def _run_info(command: tuple[str, ...], label: str, started_at: str, started: float,
              incomplete: tuple[str, ...]) -> RunInfo:
    return RunInfo(command=command, origin="measured", label=label, started_at=started_at, finished_at=_now(),
                   duration_seconds=round(time.monotonic() - started, 3),
                   status="incomplete" if incomplete else "complete", incomplete_reasons=incomplete)


def run_bench(options: MeasureOptions, *, command: tuple[str, ...], progress: Progress) -> MeasuredRunResult:
    """`dgprofile bench`: the machine, its limits and (unless limits_only) its decode passes; no prediction."""
    started_at, started = _now(), time.monotonic()
    measured = _measure(options, progress)
    run = _run_info(command, f"dgprofile bench on {measured.device}", started_at, started, measured.incomplete)
    result = new_result(run=run, machine=measured.machine, limits=measured.limits, passes=measured.passes)
    return MeasuredRunResult(result=result, interrupted=measured.interrupted)


def run_check(options: CheckOptions, *, command: tuple[str, ...], progress: Progress) -> MeasuredRunResult:
    """`dgprofile check`: everything `bench` measures, then the predictions and verdict."""
    started_at, started = _now(), time.monotonic()
    measured = _measure(options.measure, progress)
    progress("predicting")
    try:
        predictions: Predictions | Unavailable = predict_for_machine(
            measured.machine, measured.limits, measured.passes, options=options.prediction)
    except UsageError as exc:
        predictions = Unavailable(str(exc))
    run = _run_info(command, f"dgprofile check on {measured.device}", started_at, started, measured.incomplete)
    result = new_result(run=run, machine=measured.machine, limits=measured.limits, passes=measured.passes,
                        predictions=predictions)
    return MeasuredRunResult(result=result, interrupted=measured.interrupted)
