"""Entry points: predictions and verdict for a measured machine (`check`), a datasheet entry (`predict`), or the
measured limits and passes of a result file (`predict --from-result`).

The headline scenario is interactive: the headline workload (long-form drafting unless ``--workload`` says
otherwise) at concurrency 1 (or ``--concurrency``), the platform's engine, and the best precision that fits
(``dgprofile.model.best_precision``).

Speedup is end-to-end request latency, AR (plain, or with the MTP drafter) over DiffusionGemma. Its band
combines the workload's range of steps per canvas (the most steps give the lower band) with the model's own
uncertainty, at ``BAND_Z`` sigmas (an 80% band): the speedup's transfer error measured leave-one-out over the
published runs (``dgprofile.model.validation``), or, for the ``ideal`` engine's measured passes, their run-to-run
spread; widened by every assumption the scenario rests on (the setup knobs' evidence, derived datasheet figures).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from dgprofile.errors import UsageError
from dgprofile.model import setup as knobs
from dgprofile.model.best_precision import best_precision
from dgprofile.model.calibration import calibrated_parameters, calibration_summary, stored_validation
from dgprofile.model.ceilings import (
    MEMORY_FROM_COMMAND_LINE,
    ceilings_from_machine,
    ceilings_from_spec,
    runs_natively,
)
from dgprofile.model.engines import AUTO, Engine, auto_engine, engine_by_name
from dgprofile.model.memory_fit import memory_fit
from dgprofile.model.speedup import (
    PassModel,
    Request,
    autoregressive_estimate,
    diffusion_estimate,
    diffusion_passes,
    with_measured_passes,
)
from dgprofile.model.validation import BAND_Z
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
from dgprofile.records.multi_gpu import ONE_GPU_MEASURED, AllReduceSweep, MultiGpuRun
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import (
    ArBaseline,
    ArBaselineKind,
    Basis,
    BasisKind,
    Ceilings,
    Curve,
    CurvePoint,
    EngineParameters,
    ExecutionMode,
    Interconnect,
    MemoryFit,
    ModeEstimate,
    Prediction,
    Predictions,
    Sampler,
    SamplerKind,
    Scenario,
    Verdict,
)
from dgprofile.records.results import ResultFile, RunInfo, new_result
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec
from dgprofile.specs.model_config import ModelConfig, load_model_config
from dgprofile.specs.pass_cost import PRECISIONS, precision_by_name

MEASURED_UNCERTAINTY_FLOOR = 0.05
MATRIX_REASONS = 2  # matrix cells keep their first reasons (fit, pass cost); the headline keeps all
MATRIX_CONCURRENCIES = (1, 2, 4, 8)  # vLLM caps DiffusionGemma at 4-8 sequences for memory
CURVE_OUTPUT_TOKENS = (32, 64, 128, 256, 512, 768, 1024, 2048, 4096)
CURVE_CONCURRENCIES = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class PredictOptions:
    """Command-line overrides; ``None`` keeps the default (README, "Setup knobs")."""

    engine: str = AUTO
    precision: str | None = None
    workload: str | None = None
    steps: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    concurrency: int = 1
    memory_bytes: int | None = None  # per GPU
    gpus: int = 1
    execution_mode: ExecutionMode | None = None
    interconnect: str | None = None
    sampler: SamplerKind | None = None
    sampler_value: float | None = None
    thinking: bool = False
    quantised_logits: bool | None = None
    ar_baseline: ArBaselineKind = "plain"
    mtp_draft_tokens: int | None = None
    mtp_acceptance: float | None = None


@dataclass(frozen=True)
class _Setup:
    config: ModelConfig
    ceilings: Ceilings
    model: PassModel
    engine_reason: str
    uncertainty: float
    options: PredictOptions
    sampler: Sampler
    baseline: ArBaseline
    interconnect: Interconnect | Unavailable
    assumptions: tuple[tuple[str, float], ...]  # (what, log-sigma) widening every band


def predict_for_spec(spec: HardwareSpec, *, options: PredictOptions = PredictOptions()) -> Predictions:
    """Predictions for ``options.gpus`` accelerators of a datasheet entry: nothing measured."""
    ceilings = ceilings_from_spec(spec, gpus=options.gpus, memory_bytes=options.memory_bytes)
    return _predict(_setup(ceilings, None, None, options), options)


def predict_for_machine(machine: Machine, limits: Limits | Unavailable, passes: PassTimes | Unavailable, *,
                        options: PredictOptions = PredictOptions(),
                        multi_gpu: MultiGpuRun | Unavailable = ONE_GPU_MEASURED) -> Predictions:
    """Predictions for a measured machine: measured ceilings, and what its measured passes say about its kernels,
    for every engine; the measured passes themselves as the ``ideal`` engine (``options.engine="ideal"``). Under
    tensor parallelism the link is the one ``multi_gpu``'s all-reduces measured, where they were."""
    ceilings = ceilings_from_machine(machine, limits, gpus=options.gpus)
    if options.memory_bytes is not None:
        ceilings = dataclasses.replace(ceilings, usable_memory_bytes=options.memory_bytes * options.gpus,
                                       usable_memory_basis=MEMORY_FROM_COMMAND_LINE)
    measured = passes if isinstance(passes, PassTimes) else None
    sweeps = knobs.measured_sweeps(multi_gpu) if isinstance(multi_gpu, MultiGpuRun) else ()
    return _predict(_setup(ceilings, measured, machine, options, sweeps=sweeps), options)


def predict_measured_scenario(machine: Machine, limits: Limits | Unavailable, passes: PassTimes | Unavailable, *,
                              workload: Workload, precision: str, concurrency: int, engine: str,
                              config: ModelConfig | None = None) -> Prediction:
    """The prediction for one scenario that `verify` measured on this machine (every pass kept), for the released
    model or for ``config`` (the miniature a quick CPU run builds)."""
    options = PredictOptions(engine=engine, precision=precision, concurrency=concurrency)
    setup = _setup(ceilings_from_machine(machine, limits), passes if isinstance(passes, PassTimes) else None,
                   machine, options, config)
    return predict_scenario(setup, workload, precision, concurrency, detailed=True)


def predict_for_result(result: ResultFile, *, options: PredictOptions = PredictOptions()) -> Predictions:
    """Predictions from the measured limits and passes a result file holds, with this dgprofile's model."""
    if isinstance(result.machine, Unavailable) or result.run.origin != "measured":
        raise UsageError("the result file holds no measured machine "
                         f"({result.machine.reason if isinstance(result.machine, Unavailable) else 'predicted'}): "
                         "use predict --hardware for a datasheet entry")
    return predict_for_machine(result.machine, result.limits, result.passes, options=options,
                               multi_gpu=result.multi_gpu)


def validate_options(options: PredictOptions, *, vendor: str | None = None) -> None:
    """Refuse, before anything is measured, options no machine can answer: an engine that does not run the
    precision, execution mode or AR baseline asked for, a workload override out of range or longer than the
    model's context, setup knobs that do not go together (an interconnect for one GPU or none named, MTP figures
    without the MTP baseline, a sampler value outside its rule's range), and (given ``vendor``, the machine's
    accelerator vendor) an engine or execution mode that does not run on it. UsageError naming them."""
    engine = engine_by_name(options.engine) if options.engine != AUTO else None
    if engine is not None:
        _check_engine(engine, vendor, options.precision)
        if options.ar_baseline == "mtp":
            knobs.check_mtp_engine(engine)
    knobs.check_execution_mode(options.execution_mode, engine=engine, vendor=vendor)
    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    knobs.check_interconnect_request(options.interconnect, options.gpus)
    knobs.check_mtp_options(options.ar_baseline, draft_tokens=options.mtp_draft_tokens,
                            acceptance=options.mtp_acceptance)
    knobs.sampler(options.sampler, options.sampler_value)
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


def _setup(ceilings: Ceilings, measured: PassTimes | None, machine: Machine | None,
           options: PredictOptions, config: ModelConfig | None = None, *,
           sweeps: tuple[AllReduceSweep, ...] = ()) -> _Setup:
    if options.engine == AUTO:
        name, reason = auto_engine(vendor=ceilings.vendor, device_type=ceilings.device_type,
                                   device_name=ceilings.device_name)
    else:
        name, reason = options.engine, "chosen on the command line"
    engine = engine_by_name(name)
    _check_engine(engine, ceilings.vendor, options.precision)
    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    config = config or load_model_config()
    parameters = calibrated_parameters()[name]
    mode = knobs.execution_mode(engine, options.execution_mode, ceilings.vendor)
    link = knobs.interconnect(ceilings, options.interconnect, machine, sweeps=sweeps, mode=mode)
    sampler = knobs.sampler(options.sampler, options.sampler_value)
    baseline = knobs.ar_baseline(options.ar_baseline, engine,
                                 fitted_acceptance=calibrated_parameters()["vllm"].mtp_acceptance,
                                 draft_tokens=options.mtp_draft_tokens, acceptance=options.mtp_acceptance)
    ceilings = with_measured_passes(config, ceilings, measured)
    passes_used = measured if name == "ideal" else None
    model = PassModel(config, ceilings, engine, parameters, passes_used, mode=mode, interconnect=link)
    assumptions = _assumptions(engine, parameters, mode, link, baseline, options, ceilings.vendor)
    base = _measured_spread(passes_used) if passes_used is not None else stored_validation().speedup_log_sigma
    return _Setup(config, ceilings, model, reason, base, options, sampler, baseline, link, assumptions)


def _assumptions(engine: Engine, parameters: EngineParameters, mode: ExecutionMode,
                 link: Interconnect | Unavailable, baseline: ArBaseline, options: PredictOptions, vendor: str
                 ) -> tuple[tuple[str, float], ...]:
    """The scenario's assumptions beyond the calibration, each with the log-sigma it adds to the band."""
    found: list[tuple[str, float]] = []
    if mode != engine.default_mode and vendor in knobs.GRAPH_VENDORS:
        found.append((f"{mode} launches: host cost per kernel {parameters.eager_host_factor:g}x a bare torch op "
                      "(prior, no published run)", engine.priors["eager_host_factor"].log_sigma))
    if isinstance(link, Interconnect) and link.all_reduce_latency_seconds != link.measured_latency_seconds:
        found.append((f"{link.description}: {knobs.LINK_ASSUMPTION}", knobs.LINK_LATENCY_LOG_SIGMA / 2))
    if baseline.kind == "mtp" and options.mtp_acceptance is None:
        found.append(("MTP acceptance fitted to the published runs, not to this workload's text",
                      engine.priors["mtp_acceptance"].log_sigma / 2))
    return tuple(found)


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
    fmt = precision_by_name(precision)
    options = setup.options
    quantised = knobs.default_quantised_logits(fmt) if options.quantised_logits is None else options.quantised_logits
    steps = knobs.adjusted_steps(workload.steps, sampler=setup.sampler, thinking=options.thinking,
                                 quantised_logits=quantised)
    scenario = Scenario(workload=workload.name, precision=precision, concurrency=concurrency,
                        engine=setup.model.engine.name, prompt_tokens=workload.prompt_tokens,
                        output_tokens=workload.output_tokens, steps_per_canvas=steps.typical,
                        gpus=setup.ceilings.gpus, execution_mode=setup.model.mode, interconnect=setup.interconnect,
                        sampler=setup.sampler, thinking=options.thinking, quantised_logits=quantised,
                        ar_baseline=setup.baseline,
                        weight_format=knobs.weight_format(setup.ceilings, fmt, runs_natively(setup.ceilings, fmt)))
    memory = _memory(setup, precision, concurrency, workload)
    if not (memory.engine_runs_it and memory.fits_diffusion and memory.fits_autoregressive):
        missing = Unavailable(memory.note)
        evidence = Evidence(scenario, None, None, None, memory)
        return Prediction(scenario, missing, missing, missing, missing, missing, classify(None),
                          reasons_for(evidence))
    request = Request(precision, concurrency, workload.prompt_tokens, workload.output_tokens)
    passes = diffusion_passes(setup.model, request)
    dg = diffusion_estimate(passes, request, steps.typical, memory.diffusion_needed_bytes)
    ar = autoregressive_estimate(setup.model, request, memory.autoregressive_needed_bytes, setup.baseline)
    slowest = diffusion_estimate(passes, request, steps.high, 0).total_latency_s
    fastest = diffusion_estimate(passes, request, steps.low, 0).total_latency_s
    sigma = math.hypot(setup.uncertainty, *(s for _, s in setup.assumptions))
    spread = math.exp(BAND_Z * sigma)
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

    def latency(precision: str) -> float:
        request = Request(precision, concurrency, workload.prompt_tokens, workload.output_tokens)
        return diffusion_estimate(diffusion_passes(setup.model, request), request, workload.steps.typical,
                                  0).total_latency_s

    return best_precision({p: latency(p) for p in fitting}, engine.precisions)


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


def _hardware_sigma(setup: _Setup, workload: Workload, precision: str, concurrency: int) -> tuple[str, float] | None:
    """How much the derived (approximate) datasheet figures the prediction uses move the headline speedup: each
    figure moved by its stated log-sigma, the log changes added in quadrature."""
    ceilings = setup.ceilings
    if not ceilings.approximate:
        return None
    base = predict_scenario(setup, workload, precision, concurrency).speedup
    if not isinstance(base, float):
        return None
    changes = []
    for figure, sigma in ceilings.approximate.items():
        if sigma <= 0 or figure == "memory_bytes":
            continue
        if figure == "memory_bandwidth_bytes_per_s":
            moved = dataclasses.replace(ceilings, bandwidth_bytes_per_s=ceilings.bandwidth_bytes_per_s * math.exp(sigma))
        else:
            dtypes = [figure.split(".", 1)[1]] if "." in figure else list(ceilings.peak_flops_per_s)
            rates = {d: r * (math.exp(sigma) if d in dtypes else 1.0) for d, r in ceilings.peak_flops_per_s.items()}
            moved = dataclasses.replace(ceilings, peak_flops_per_s=rates)
        shifted = dataclasses.replace(setup, ceilings=moved, model=dataclasses.replace(setup.model, ceilings=moved))
        speedup = predict_scenario(shifted, workload, precision, concurrency).speedup
        if isinstance(speedup, float):
            changes.append(math.log(speedup / base))
    if not changes:
        return None
    figures = ", ".join(f for f, s in ceilings.approximate.items() if s > 0 and f != "memory_bytes")
    return f"derived datasheet figures ({figures})", math.sqrt(sum(c * c for c in changes))


def _basis(setup: _Setup, workload: Workload, parameters: EngineParameters) -> tuple[Basis, ...]:
    ceilings = setup.ceilings
    model = setup.model
    options = setup.options
    engine_kind: BasisKind = "measured" if model.measured is not None else (
        "calibrated" if parameters.engine != "ideal" else "assumed")
    mode_source = "the engine's default" if options.execution_mode is None else "given on the command line"
    if model.engine.name == "vllm" and ceilings.gpus > 1 and model.mode == "cuda-graphs" and not ceilings.peer_to_peer:
        mode_source += ("; consumer multi-GPU rigs often run vLLM with --enforce-eager (calibration-runs.json "
                        "engine notes): if yours does, give --execution-mode eager")
    summary = calibration_summary()
    validation = summary.validation
    band = ("speedup band: the leave-one-out transfer error of the published speedups "
            f"(log-sigma {validation.speedup_log_sigma:.2f}) at {BAND_Z:g} sigma, an 80% band (README, "
            "\"Validation\")" if not isinstance(validation, Unavailable) else validation.reason)
    widened = "; ".join(f"{what} (log-sigma {sigma:.2f})" for what, sigma in setup.assumptions)
    quantised = options.quantised_logits
    return (
        Basis("bandwidth and matmul rates", ceilings.source, "; ".join(ceilings.sources) or ceilings.device_name),
        Basis("kernel latency (engine floors scale with it)", ceilings.source, ceilings.floor_scale_basis),
        Basis("what the measured passes add", "measured" if ceilings.pass_factors else "assumed",
              ceilings.pass_factors_basis),
        Basis("usable memory", ceilings.source, ceilings.usable_memory_basis),
        Basis(f"engine behaviour ({parameters.engine})", engine_kind,
              "fitted to " + ", ".join(parameters.runs) if parameters.runs else parameters.priors[0]),
        Basis("execution mode", "assumed", f"{model.mode} ({mode_source})"),
        Basis("interconnect", "measured" if isinstance(setup.interconnect, Interconnect)
              and setup.interconnect.source in ("measured-all-reduce", "nvml-topology") else "assumed",
              (setup.interconnect.basis + ((
                  "" if setup.interconnect.source == "measured-all-reduce" else f"; {knobs.LINK_ASSUMPTION}") + (
                  "; vLLM runs this model tensor-parallel only from https://github.com/vllm-project/vllm/pull/46177 "
                  "on (it crashed before)" if model.engine.name == "vllm" else "")))
              if isinstance(setup.interconnect, Interconnect) else setup.interconnect.reason),
        Basis("sampler", "assumed", f"{setup.sampler.kind} {setup.sampler.value:g}"
              + (" (the released default)" if options.sampler is None and options.sampler_value is None
                 else " (given on the command line)")),
        Basis("thinking mode", "assumed", "on (given on the command line)" if options.thinking else
              "off (the default)"),
        Basis("quantised logits", "assumed", "per format: on for formats that quantise the LM head to 4-5 bits "
              "(MLX 4-bit), off otherwise" if quantised is None else
              f"{'on' if quantised else 'off'} for every format (given on the command line)"),
        Basis("AR baseline", "calibrated" if setup.baseline.kind == "mtp" else "assumed",
              knobs.mtp_basis(setup.baseline, given=options.mtp_acceptance is not None)),
        Basis("bytes and FLOPs per pass", "assumed",
              "dgprofile.specs.pass_cost over the released config (sources in "
              "dgprofile/data/diffusiongemma-26b-a4b.json)"),
        Basis("steps per canvas", "assumed", workload.steps.basis),
        Basis("prompt and output lengths", "assumed", workload.length_basis),
        Basis("uncertainty", "calibrated", band + (f"; widened by {widened}" if widened else "")),
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
    hardware = _hardware_sigma(setup, headline_workload, shown_precision, concurrency)
    if hardware is not None:
        setup = dataclasses.replace(setup, assumptions=(*setup.assumptions, hardware))
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
        reasons=reasons, advice=advice_for(verdict, headline, memory, setup.ceilings), matrix=matrix, curves=curves,
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
