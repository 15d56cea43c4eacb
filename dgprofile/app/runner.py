"""`bench` and `check` end to end: probe, measure limits, time the decode passes, predict, keep what was measured.

The device's benchmark lock is taken first, before probing (its key is the device asked for), so of two runs on one
device the one started first measures and the other waits or refuses. A step that fails, Ctrl-C or SIGTERM ends the
measuring but not the run: the result is still assembled from every measurement that finished, marked incomplete
with the reason, and the prediction falls back to whatever is available (measured limits, else the datasheet).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dgprofile.app.decode_passes import time_decode_passes
from dgprofile.app.machine import anonymized, probe_machine
from dgprofile.app.predictor import PredictOptions, predict_for_machine, validate_options
from dgprofile.errors import BenchmarkBusyError, UsageError
from dgprofile.interrupts import Interrupted, Interruption, interruption_of, sigterm_interrupts
from dgprofile.model.ceilings import machine_vendor
from dgprofile.records.limits import Limits
from dgprofile.records.machine import AmdGpu, IntelGpu, Machine, NvidiaGpu
from dgprofile.records.multi_gpu import ONE_GPU_MEASURED, MultiGpuRun
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import Predictions
from dgprofile.records.results import ResultFile, RunInfo, new_result
from dgprofile.records.values import Unavailable

if TYPE_CHECKING:  # imported where workers start: the precompile module is a probe
    from dgprofile.probes.decode.precompile import Precompile

Progress = Callable[[str], None]
TORCH_MISSING = Unavailable("torch is not installed: pip install 'dgprofile[bench]' to measure this machine")
LIMITS_ONLY = Unavailable("not measured: --limits-only")
NOT_REACHED = Unavailable("not measured: the run ended before this step")


# The passes are bf16 at the real shapes; a CPU engine on such a CPU (llama.cpp) computes in fp32 instead, which
# the model takes from the measured fp32 matmul rate.
NO_BF16_ARITHMETIC = Unavailable(
    "not measured: this CPU has no bf16 arithmetic (AVX512-BF16, AMX or Arm BF16), so torch would emulate the bf16 "
    "passes at a small fraction of the fp32 rate (hours for one run); the prediction rests on the measured limits")


@dataclass(frozen=True)
class MeasureOptions:
    """What the measured steps cover."""

    quick: bool = False
    device: str = "auto"
    anonymize: bool = False
    wait_seconds: float = 0.0
    limits_only: bool = False
    gpus: int | Literal["all"] = 1  # above 1: every one of that many GPUs and the links between them


@dataclass(frozen=True)
class CheckOptions:
    """What `check` measures and predicts."""

    measure: MeasureOptions = field(default_factory=MeasureOptions)
    prediction: PredictOptions = field(default_factory=PredictOptions)


@dataclass(frozen=True)
class MeasuredRunResult:
    """The result, and what interrupted the run, if anything (the CLI exits with its code after writing it)."""

    result: ResultFile
    interruption: Interruption | None


@dataclass(frozen=True)
class _Measured:
    machine: Machine | Unavailable
    device: str
    limits: Limits | Unavailable
    passes: PassTimes | Unavailable
    incomplete: tuple[str, ...]
    interruption: Interruption | None
    multi_gpu: MultiGpuRun | Unavailable = ONE_GPU_MEASURED


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def device_lock_keys(machine: Machine, device: str) -> tuple[str, ...]:
    """The locks a measurement on ``device`` holds: the device as the driver numbers it (what a run takes before
    it probes) and the card's identity (two containers sharing /tmp may number one card differently)."""
    from dgprofile.probes.device_lock import device_lock_key

    return tuple(dict.fromkeys((device_lock_key(device), lock_key(machine, device))))


def lock_key(machine: Machine, device: str) -> str:
    """GPUs are locked by UUID (Intel's by PCI bus id), so `cuda:0` in two containers sharing a card still
    collide; a device without one by its driver number."""
    from dgprofile.probes.device_lock import device_lock_key

    kind, _, index_text = device.partition(":")
    index = int(index_text) if index_text else 0
    for accelerator in machine.accelerators:
        if accelerator.kind == "failed-device" or accelerator.index != index:
            continue
        if kind == "cuda" and isinstance(accelerator, (NvidiaGpu, AmdGpu)) and isinstance(accelerator.uuid, str):
            return accelerator.uuid
        if kind == "xpu" and isinstance(accelerator, IntelGpu) and isinstance(accelerator.pci_bus_id, str):
            return accelerator.pci_bus_id
    return device_lock_key(device)


# The NVIDIA driver's version file: present where a CUDA GPU may be measured (read before anything is probed).
NVIDIA_DRIVER_FILE = Path("/proc/driver/nvidia/version")


def _spawn_compile_workers(options: MeasureOptions) -> Precompile | None:
    """Kernel compile workers started before the probe where the run may time decode passes on an NVIDIA GPU
    (they import torch while the machine is probed); None elsewhere."""
    if (options.limits_only or not (options.device == "auto" or options.device.startswith("cuda"))
            or not NVIDIA_DRIVER_FILE.exists() or importlib.util.find_spec("torch") is None):
        return None
    from dgprofile.probes.decode.precompile import spawn

    return spawn(quick=options.quick)


def _measure(options: MeasureOptions, progress: Progress,
             before_measuring: Callable[[Machine], None] = lambda machine: None) -> _Measured:
    """Lock, probe, then (after ``before_measuring`` has had its say on the machine) measure."""
    from dgprofile.probes.device_lock import device_lock_key, exclusive_devices, requested_lock_keys

    machine: Machine | Unavailable = Unavailable("not probed: the run ended before the probe finished")
    device = options.device
    limits: Limits | Unavailable = NOT_REACHED
    passes: PassTimes | Unavailable = LIMITS_ONLY if options.limits_only else NOT_REACHED
    multi_gpu: MultiGpuRun | Unavailable = ONE_GPU_MEASURED if options.gpus == 1 else NOT_REACHED
    incomplete: list[str] = []
    interruption: Interruption | None = None
    step = "waiting for the device"
    compiling: Precompile | None = None
    with sigterm_interrupts():
        try:
            with exclusive_devices(requested_lock_keys(options.device), wait_seconds=options.wait_seconds,
                                   on_wait=progress) as locks:
                step = "probing the machine"
                progress(step)
                compiling = _spawn_compile_workers(options)
                machine = probe_machine()
                before_measuring(machine)
                if importlib.util.find_spec("torch") is None:
                    return _Measured(machine, device, TORCH_MISSING, TORCH_MISSING, (TORCH_MISSING.reason,), None,
                                     multi_gpu if options.gpus == 1 else TORCH_MISSING)
                from dgprofile.probes.measure_limits import measure_limits
                from dgprofile.probes.torch_devices import resolve_device, undrivable_accelerator

                device = resolve_device(machine, options.device)
                devices = _measured_gpus(machine, options, device)
                if devices:
                    device = devices[0]
                picked = device_lock_key(device)
                locks.keep_only(picked)
                undrivable = undrivable_accelerator(machine, device) if options.device == "auto" else None
                if undrivable is not None:
                    progress(undrivable)
                    skipped = Unavailable(undrivable)
                    return _Measured(machine, device, skipped, skipped, (undrivable,), None,
                                     multi_gpu if options.gpus == 1 else skipped)
                # The card's identity as well: two containers sharing /tmp may number one card differently.
                step = "waiting for the device"
                held = [key for each in devices or (device,) for key in device_lock_keys(machine, each)]
                with exclusive_devices([key for key in dict.fromkeys(held) if key not in locks.keys],
                                       wait_seconds=options.wait_seconds, on_wait=progress):
                    if compiling is not None and device.startswith("cuda"):
                        compiling.aim(device)
                    elif compiling is not None:
                        compiling.stop()
                        compiling = None
                    step = "measuring limits"
                    progress(f"{step} on {device}")
                    limits = measure_limits(device, machine=machine, quick=options.quick, progress=progress)
                    if devices:  # before the decode passes: its failures are kept in the record, never raised
                        step = "measuring every GPU and the links between them"
                        multi_gpu = _measure_gpus(devices, machine, options, progress)
                    if not options.limits_only and device == "cpu" and not machine.cpu.computes_bf16_natively:
                        passes = NO_BF16_ARITHMETIC
                        progress(f"decode passes not timed: {NO_BF16_ARITHMETIC.reason}")
                    elif not options.limits_only:
                        step = "timing decode passes"
                        progress(f"{step} on {device}")
                        passes = time_decode_passes(
                            device=device, limits=limits, quick=options.quick, progress=progress,
                            machine=machine, kernels_ready=compiling.ready if compiling else lambda job: None)
                        if compiling is not None:
                            progress(compiling.finish())
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what the interrupted step finished
            interruption = interruption_of(exc)
            kept = exc.kept if isinstance(exc, Interrupted) else None
            multi_gpu = interrupted_reason(multi_gpu, interruption.value)
            if isinstance(kept, Limits):
                limits = kept
            elif isinstance(kept, PassTimes) and kept.passes:
                passes = kept
            incomplete.append(f"interrupted ({interruption.value}) while {step}"
                              + ("; the measurements that finished are kept" if kept is not None else ""))
        except (BenchmarkBusyError, UsageError):
            raise
        except Exception as exc:  # a failing benchmark must not sink the run: keep what was measured
            incomplete.append(f"{step} failed: {type(exc).__name__}: {exc}")
            multi_gpu = interrupted_reason(multi_gpu, f"{type(exc).__name__}: {exc}")
        finally:
            if compiling is not None:  # whatever ended the run: the workers end with it
                compiling.stop()
    return _Measured(machine, device, limits, passes, tuple(incomplete), interruption, multi_gpu)


def interrupted_reason(multi_gpu: MultiGpuRun | Unavailable, why: str) -> MultiGpuRun | Unavailable:
    """The multi-GPU part of a run that ended early: kept if it finished, else why it did not."""
    if multi_gpu is NOT_REACHED:
        return Unavailable(f"not measured: the run ended ({why}) before every GPU was measured")
    return multi_gpu


def _measured_gpus(machine: Machine, options: MeasureOptions, device: str) -> tuple[str, ...]:
    """The GPUs `--gpus N|all` measures (none for one GPU); UsageError, before any measuring, when the machine
    has fewer or the run was pointed at another device."""
    if options.gpus == 1:
        return ()
    from dgprofile.probes import multi_gpu

    if options.device not in ("auto", "cuda") and not device.startswith("cuda"):
        raise UsageError(f"--gpus {options.gpus} measures GPUs: --device {options.device} is not one")
    return multi_gpu.gpu_devices(machine, options.gpus)


def _measure_gpus(devices: tuple[str, ...], machine: Machine, options: MeasureOptions,
                  progress: Progress) -> MultiGpuRun:
    from dgprofile.probes import multi_gpu

    return multi_gpu.measure_multi_gpu(devices, machine=machine, quick=options.quick,
                                       plan=multi_gpu.collective_plan(options.quick), progress=progress,
                                       measure_limits=multi_gpu.measure_device_limits)


def measured_gpu_count(multi_gpu: MultiGpuRun | Unavailable, options: MeasureOptions) -> int:
    """How many GPUs the prediction splits the model over: the ones measured, else the number asked for."""
    if isinstance(multi_gpu, MultiGpuRun):
        return len(multi_gpu.gpu_indices)
    return options.gpus if isinstance(options.gpus, int) else 1


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
    result = new_result(run=run, machine=measured.machine, limits=measured.limits, passes=measured.passes,
                        multi_gpu=measured.multi_gpu)
    return MeasuredRunResult(result=anonymized(result) if options.anonymize else result,
                             interruption=measured.interruption)


def run_check(options: CheckOptions, *, command: tuple[str, ...], progress: Progress) -> MeasuredRunResult:
    """`dgprofile check`: everything `bench` measures, then the predictions and verdict."""
    started_at, started = _now(), time.monotonic()
    # An engine that does not run on this machine's accelerator is refused before minutes of measuring.
    measured = _measure(options.measure, progress, lambda machine: validate_options(
        options.prediction, vendor=machine_vendor(machine)))
    predictions: Predictions | Unavailable
    if isinstance(measured.machine, Unavailable):
        predictions = Unavailable(f"nothing to predict from: {measured.machine.reason}")
    else:
        progress("predicting")
        prediction = dataclasses.replace(options.prediction,
                                         gpus=measured_gpu_count(measured.multi_gpu, options.measure))
        try:
            predictions = predict_for_machine(measured.machine, measured.limits, measured.passes,
                                              options=prediction, multi_gpu=measured.multi_gpu)
        except UsageError as exc:
            predictions = Unavailable(str(exc))
    run = _run_info(command, f"dgprofile check on {measured.device}", started_at, started, measured.incomplete)
    result = new_result(run=run, machine=measured.machine, limits=measured.limits, passes=measured.passes,
                        predictions=predictions, multi_gpu=measured.multi_gpu)
    return MeasuredRunResult(result=anonymized(result) if options.measure.anonymize else result,
                             interruption=measured.interruption)
