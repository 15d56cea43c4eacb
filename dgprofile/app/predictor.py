"""Entry points: predictions and verdict for a measured machine (`check`) or a datasheet entry (`predict`).

The headline scenario is interactive: the headline workload (long-form drafting unless ``--workload`` says
otherwise) at concurrency 1 (or ``--concurrency``), the platform's engine, and the *best* precision that fits:
the one with the lowest DiffusionGemma latency among those of 8 bits or more (bf16, fp8, int8) that fit and that
the engine runs; 4-bit formats only when none of those fits (4-bit costs measurable quality, 8-bit far less).
Latencies within ``PRECISION_TIE_TOLERANCE`` tie, and the engine's order of formats (widest first) breaks the tie.

Speedup is end-to-end request latency, AR over DiffusionGemma. Its band combines the workload's range of steps
per canvas (the most steps give the lower band) with the model's own uncertainty: the engine's calibration
residual, never taken below ``MODEL_UNCERTAINTY_FLOOR`` (the published H100 FP8 vLLM figures disagree by 1.7x per
pass between builds), or, for measured passes, their run-to-run spread.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from dgprofile.errors import UsageError
from dgprofile.model.calibration import calibrated_parameters, calibration_summary
from dgprofile.model.ceilings import ceilings_from_machine, ceilings_from_spec
from dgprofile.model.engines import AUTO, Engine, auto_engine, engine_by_name
from dgprofile.model.memory_fit import memory_fit
from dgprofile.model.speedup import (
    PassModel,
    Request,
    autoregressive_estimate,
    diffusion_estimate,
    diffusion_passes,
)
from dgprofile.model.verdict import (
    Evidence,
    SpeedupBand,
    advice_for,
    classify,
    headline_reasons,
    reasons_for,
)
from dgprofile.model.workloads import HEADLINE_WORKLOAD, WORKLOADS, Workload, with_overrides, workload_by_name
from dgprofile.records.limits import Limits
from dgprofile.records.machine import Machine
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import (
    Basis,
    BasisKind,
    Ceilings,
    Curve,
    CurvePoint,
    EngineParameters,
    MemoryFit,
    ModeEstimate,
    Prediction,
    Predictions,
    Scenario,
    Verdict,
)
from dgprofile.records.results import ResultFile, RunInfo, new_result
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec
from dgprofile.specs.model_config import ModelConfig, load_model_config
from dgprofile.specs.pass_cost import PRECISIONS

MODEL_UNCERTAINTY_FLOOR = 0.15  # log-sigma; see the module docstring
MEASURED_UNCERTAINTY_FLOOR = 0.05
MATRIX_REASONS = 2  # matrix cells keep their first reasons (fit, pass cost); the headline keeps all
MATRIX_CONCURRENCIES = (1, 2, 4, 8)  # vLLM caps DiffusionGemma at 4-8 sequences for memory
CURVE_OUTPUT_TOKENS = (32, 64, 128, 256, 512, 768, 1024, 2048, 4096)
CURVE_CONCURRENCIES = (1, 2, 4, 8, 16)
WIDE_PRECISIONS = ("bf16", "fp8", "int8")  # 8 bits or more: preferred for the headline
# Precisions within 5% of the fastest tie; the engine's own order (widest first) breaks the tie.
PRECISION_TIE_TOLERANCE = 0.05


@dataclass(frozen=True)
class PredictOptions:
    """Command-line overrides; ``None`` keeps the default."""

    engine: str = AUTO
    precision: str | None = None
    workload: str | None = None
    steps: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    concurrency: int = 1
    memory_bytes: int | None = None  # per GPU


@dataclass(frozen=True)
class _Setup:
    config: ModelConfig
    ceilings: Ceilings
    model: PassModel
    engine_reason: str
    uncertainty: float


def predict_for_spec(spec: HardwareSpec, *, gpus: int = 1, options: PredictOptions = PredictOptions()
                     ) -> Predictions:
    """Predictions for ``gpus`` accelerators of a datasheet entry: nothing measured."""
    ceilings = ceilings_from_spec(spec, gpus=gpus, memory_bytes=options.memory_bytes)
    return _predict(_setup(ceilings, None, options), options)


def predict_for_machine(machine: Machine, limits: Limits | Unavailable, passes: PassTimes | Unavailable, *,
                        gpus: int = 1, options: PredictOptions = PredictOptions()) -> Predictions:
    """Predictions for a measured machine: measured ceilings for every engine, and the measured passes as the
    ``ideal`` engine (``options.engine="ideal"``)."""
    ceilings = ceilings_from_machine(machine, limits, gpus=gpus)
    if options.memory_bytes is not None:
        ceilings = dataclasses.replace(ceilings, usable_memory_bytes=options.memory_bytes * gpus,
                                       usable_memory_basis="memory given on the command line")
    return _predict(_setup(ceilings, passes if isinstance(passes, PassTimes) else None, options), options)


def validate_options(options: PredictOptions, *, vendor: str | None = None) -> None:
    """Refuse, before anything is measured, options no machine can answer: an engine that does not run the
    precision asked for, a workload override out of range or longer than the model's context, and (given
    ``vendor``, the machine's accelerator vendor) an engine that does not run on it. UsageError naming them."""
    if options.engine != AUTO:
        _check_engine(engine_by_name(options.engine), vendor, options.precision)
    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    workload = with_overrides(workload_by_name(options.workload or HEADLINE_WORKLOAD),
                              prompt_tokens=options.prompt_tokens, output_tokens=options.output_tokens,
                              steps=options.steps)
    context = load_model_config().backbone.max_position_embeddings
    if workload.prompt_tokens + workload.output_tokens > context:
        raise UsageError(f"a {workload.prompt_tokens:,}-token prompt and {workload.output_tokens:,}-token output "
                         f"exceed the model's {context:,}-token context (--prompt-tokens, --output-tokens)")


def _check_engine(engine: Engine, vendor: str | None, precision: str | None) -> None:
    if vendor is not None and vendor not in engine.vendors:
        raise UsageError(f"{engine.name} does not run on {vendor} accelerators (it runs on "
                         f"{', '.join(engine.vendors)})")
    if precision is not None and precision not in engine.precisions:
        raise UsageError(f"{engine.name} does not run {precision}: it runs {', '.join(engine.precisions)}")


def _setup(ceilings: Ceilings, measured: PassTimes | None, options: PredictOptions) -> _Setup:
    if options.engine == AUTO:
        name, reason = auto_engine(vendor=ceilings.vendor, device_type=ceilings.device_type)
    else:
        name, reason = options.engine, "chosen on the command line"
    engine = engine_by_name(name)
    _check_engine(engine, ceilings.vendor, options.precision)
    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    parameters = calibrated_parameters()[name]
    passes_used = measured if name == "ideal" else None
    uncertainty = (_measured_spread(passes_used) if passes_used is not None
                   else max(parameters.rms_log_residual, MODEL_UNCERTAINTY_FLOOR))
    config = load_model_config()
    model = PassModel(config, ceilings, engine, parameters, passes_used)
    return _Setup(config, ceilings, model, reason, uncertainty)


def _measured_spread(measured: PassTimes) -> float:
    spreads = [m.timing.relative_spread for m in measured.passes
               if m.measured and not isinstance(m.timing, Unavailable)]
    return max([MEASURED_UNCERTAINTY_FLOOR, *spreads])


# --- one scenario ----------------------------------------------------------------------------------------------


def _memory(setup: _Setup, precision: str, concurrency: int, workload: Workload) -> MemoryFit:
    return memory_fit(setup.config, setup.ceilings, setup.model.engine, setup.model.parameters,
                      precision=precision, concurrency=concurrency,
                      context_tokens=workload.prompt_tokens + workload.output_tokens)


def predict_scenario(setup: _Setup, workload: Workload, precision: str, concurrency: int, *,
                     detailed: bool = False) -> Prediction:
    """Both modes, the speedup band and the verdict of one scenario; ``detailed`` keeps every pass."""
    scenario = Scenario(workload=workload.name, precision=precision, concurrency=concurrency,
                        engine=setup.model.engine.name, prompt_tokens=workload.prompt_tokens,
                        output_tokens=workload.output_tokens, steps_per_canvas=workload.steps.typical,
                        gpus=setup.ceilings.gpus)
    memory = _memory(setup, precision, concurrency, workload)
    if not (memory.engine_runs_it and memory.fits_diffusion and memory.fits_autoregressive):
        missing = Unavailable(memory.note)
        evidence = Evidence(scenario, None, None, None, memory)
        return Prediction(scenario, missing, missing, missing, missing, missing, classify(None),
                          reasons_for(evidence))
    request = Request(precision, concurrency, workload.prompt_tokens, workload.output_tokens)
    passes = diffusion_passes(setup.model, request)
    dg = diffusion_estimate(passes, request, workload.steps.typical, memory.diffusion_needed_bytes)
    ar = autoregressive_estimate(setup.model, request, memory.autoregressive_needed_bytes)
    slowest = diffusion_estimate(passes, request, workload.steps.high, 0).total_latency_s
    fastest = diffusion_estimate(passes, request, workload.steps.low, 0).total_latency_s
    spread = math.exp(setup.uncertainty)
    band = SpeedupBand(ar.total_latency_s / dg.total_latency_s, ar.total_latency_s / slowest / spread,
                       ar.total_latency_s / fastest * spread)
    reasons = reasons_for(Evidence(scenario, dg, ar, band, memory))
    if not detailed:
        dg, ar, reasons = _lean(dg), _lean(ar), reasons[:MATRIX_REASONS]
    return Prediction(scenario, dg, ar, band.point, band.low, band.high, classify(band), reasons)


def _lean(mode: ModeEstimate) -> ModeEstimate:
    """Matrix cells keep the characteristic pass's time, not every pass (result files stay small)."""
    return dataclasses.replace(mode, passes=(), breakdown_seconds={})


# --- the whole answer ------------------------------------------------------------------------------------------


def _best_precision(setup: _Setup, workload: Workload, concurrency: int, options: PredictOptions) -> str | None:
    if options.precision is not None:
        return options.precision
    engine = setup.model.engine
    candidates = [p for p in engine.precisions if p in PRECISIONS]
    fitting = [p for p in candidates
               if (m := _memory(setup, p, concurrency, workload)).fits_diffusion and m.fits_autoregressive]
    preferred = [p for p in fitting if p in WIDE_PRECISIONS] or fitting
    if not preferred:
        return None

    def latency(precision: str) -> float:
        request = Request(precision, concurrency, workload.prompt_tokens, workload.output_tokens)
        return diffusion_estimate(diffusion_passes(setup.model, request), request, workload.steps.typical,
                                  0).total_latency_s

    latencies = {p: latency(p) for p in preferred}
    fastest = min(latencies.values())
    return next(p for p in preferred if latencies[p] <= fastest * (1 + PRECISION_TIE_TOLERANCE))


def _curve(setup: _Setup, name: str, x_label: str, scenarios: list[tuple[float, Workload, int]], precision: str,
           base: Scenario) -> Curve:
    points = []
    for x, workload, concurrency in scenarios:
        prediction = predict_scenario(setup, workload, precision, concurrency)
        dg, ar = prediction.diffusion, prediction.autoregressive
        points.append(CurvePoint(
            x=x, speedup=prediction.speedup, speedup_low=prediction.speedup_low,
            speedup_high=prediction.speedup_high,
            diffusion_tokens_per_s=dg.tokens_per_s if isinstance(dg, ModeEstimate) else dg,
            autoregressive_tokens_per_s=ar.tokens_per_s if isinstance(ar, ModeEstimate) else ar))
    return Curve(name=name, x_label=x_label, scenario=base, points=tuple(points))


def _basis(setup: _Setup, workload: Workload, parameters: EngineParameters) -> tuple[Basis, ...]:
    ceilings = setup.ceilings
    engine_kind: BasisKind = "measured" if setup.model.measured is not None else (
        "calibrated" if parameters.engine != "ideal" else "assumed")
    return (
        Basis("bandwidth and matmul rates", ceilings.source, "; ".join(ceilings.sources) or ceilings.device_name),
        Basis("usable memory", ceilings.source, ceilings.usable_memory_basis),
        Basis(f"engine behaviour ({parameters.engine})", engine_kind,
              "fitted to " + ", ".join(parameters.runs) if parameters.runs else parameters.priors[0]),
        Basis("bytes and FLOPs per pass", "assumed",
              "dgprofile.specs.pass_cost over the released config (sources in "
              "dgprofile/data/diffusiongemma-26b-a4b.json)"),
        Basis("steps per canvas", "assumed", workload.steps.basis),
        Basis("prompt and output lengths", "assumed", workload.length_basis),
    )


def _predict(setup: _Setup, options: PredictOptions) -> Predictions:
    headline_workload = with_overrides(workload_by_name(options.workload or HEADLINE_WORKLOAD),
                                       prompt_tokens=options.prompt_tokens, output_tokens=options.output_tokens,
                                       steps=options.steps)
    concurrency = options.concurrency
    engine = setup.model.engine
    precision = _best_precision(setup, headline_workload, concurrency, options)
    shown_precision = precision or min(engine.precisions, key=lambda p: _memory(
        setup, p, concurrency, headline_workload).diffusion_needed_bytes)
    headline = predict_scenario(setup, headline_workload, shown_precision, concurrency, detailed=True)
    workloads = [headline_workload] + [w for w in WORKLOADS.values() if w.name != headline_workload.name]
    concurrencies = sorted({*MATRIX_CONCURRENCIES, concurrency})
    matrix = tuple(predict_scenario(setup, w, p, c) for w in workloads for p in engine.precisions
                   for c in concurrencies)
    memory = tuple(_memory(setup, p, concurrency, headline_workload) for p in engine.precisions)
    curves = (
        _curve(setup, "speedup-vs-output-tokens", "output tokens",
               [(n, with_overrides(headline_workload, output_tokens=n,
                                   steps=options.steps), concurrency) for n in CURVE_OUTPUT_TOKENS],
               shown_precision, headline.scenario),
        _curve(setup, "speedup-vs-concurrency", "concurrent requests",
               [(c, headline_workload, c) for c in CURVE_CONCURRENCIES], shown_precision, headline.scenario),
    )
    verdict = headline.verdict if precision is not None else Verdict.CANNOT_RUN
    reasons = headline.reasons + headline_reasons(headline, memory, curves[1], setup.ceilings)
    parameters = setup.model.parameters
    return Predictions(
        model_id=setup.config.id, hardware=setup.ceilings.device_name, origin=setup.ceilings.source,
        engine=engine.name, engine_reason=setup.engine_reason, headline=headline, verdict=verdict,
        reasons=reasons, advice=advice_for(verdict, headline, memory), matrix=matrix, curves=curves,
        memory=memory, ceilings=setup.ceilings, calibration=calibration_summary(),
        basis=_basis(setup, headline_workload, parameters))


def predicted_result(spec: HardwareSpec, predictions: Predictions, *, command: tuple[str, ...],
                     started_at: datetime, finished_at: datetime) -> ResultFile:
    """A result file of a datasheet prediction: nothing measured, labelled ``origin="predicted"``."""
    reason = f"predicted from the datasheet of {spec.name}: nothing was measured"
    run = RunInfo(command=command, origin="predicted", label=spec.id, started_at=_timestamp(started_at),
                  finished_at=_timestamp(finished_at),
                  duration_seconds=(finished_at - started_at).total_seconds(), status="complete",
                  incomplete_reasons=())
    return new_result(run=run, machine=Unavailable(f"predicted from the datasheet of {spec.name}"),
                      limits=Unavailable(reason), passes=Unavailable(reason), predictions=predictions)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
