"""Fit each engine's behaviour to the published runs, reproducibly, and report how well each run is reproduced.

The data file is ``dgprofile/data/calibration-runs.json``: the published runs as their sources gave them, and a
``structured`` section restating each as model inputs (hardware entry, engine, precision, request shape) and the
figures it must reproduce. For each engine, the parameters of ``dgprofile.model.engines.FITTED_PARAMETERS`` minimise

    sum over fitted figures of (log(predicted / published) / OBSERVATION_LOG_SIGMA)^2
    + sum over parameters of ((log(value) - log(prior median)) / prior log sigma)^2

(maximum a posteriori with log-normal priors), by Levenberg-Marquardt from the prior medians and from points two
prior sigmas away: deterministic code over the data file. The result is stored in ``dgprofile/data/
engine-parameters.json`` (``python -m dgprofile.model.calibration`` rewrites it, with the transfer validation of
``dgprofile.model.validation``; a test checks both match a fresh run), so `predict` answers without refitting. A
parameter counts as *fitted* when the data carry more information about it than its prior (the squared
sensitivity of the data residuals exceeds the prior's precision); otherwise its value is the prior's, as stated.
Eager transformers' denoise workspace is the one closed-form fit: its published peak memory less weights, KV cache
and sampler buffers. The hardware side of each run is its ``dgprofile/data/hardware.json`` entry on the achievable
footing, the same figures `predict` uses; each run states the execution mode and MTP drafter it was made with.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from dgprofile.model.ceilings import ceilings_from_spec
from dgprofile.model.engines import ENGINES, FITTED_PARAMETERS, IDEAL_PARAMETERS, Prior
from dgprofile.model.memory_fit import diffusion_needed_bytes, memory_fit
from dgprofile.model.setup import DEFAULT_MTP_DRAFT_TOKENS
from dgprofile.model.speedup import (
    PassModel,
    Request,
    autoregressive_estimate,
    diffusion_estimate,
    diffusion_passes,
)
from dgprofile.model.verdict import classify_point
from dgprofile.records.codec import from_json, to_json
from dgprofile.records.predictions import (
    ArBaseline,
    ArBaselineKind,
    CalibrationSummary,
    Ceilings,
    EngineParameters,
    ExecutionMode,
    ObservableResidual,
    RunReproduction,
    TransferValidation,
)
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import spec_by_id
from dgprofile.specs.model_config import ModelConfig, load_model_config

DATA_FILE = "calibration-runs.json"
FITTED_FILE = "engine-parameters.json"
OBSERVATION_LOG_SIGMA = 0.05  # published figures repeat within a few percent (e.g. mlxcel's two runs: +-4%)
MAX_ITERATIONS = 200
DERIVATIVE_STEP = 1e-4
START_SIGMAS = 2.0
SCOUT_ITERATIONS = 6  # every start runs this far; only the best is followed to convergence
CONVERGED_IMPROVEMENT = 1e-4  # relative cost decrease below which the fit has converged

SpeedupMetric = Literal["generation-rate", "end-to-end", "output-rate"]


@dataclass(frozen=True)
class Observable:
    """One published figure of a run; ``output_tokens`` / ``steps_per_canvas`` override the run's (0: same)."""

    name: str
    value: float
    fit: bool
    note: str
    output_tokens: int = 0
    steps_per_canvas: float = 0.0


@dataclass(frozen=True)
class PublishedSpeedup:
    """A DG-over-AR figure of the run, against which AR baseline, and how it was counted."""

    baseline: ArBaselineKind
    metric: SpeedupMetric
    value: float
    dg_output_tokens: int
    ar_output_tokens: int
    note: str


@dataclass(frozen=True)
class MtpSetting:
    """The MTP drafter a run used: draft tokens a step and the acceptance per token."""

    draft_tokens: int
    acceptance: float
    basis: str


HardwareClass = Literal["datacenter-gpu", "consumer-gpu", "unified-memory-apu", "apple"]
HARDWARE_CLASSES: tuple[HardwareClass, ...] = ("datacenter-gpu", "consumer-gpu", "unified-memory-apu", "apple")


@dataclass(frozen=True)
class CalibrationRun:
    """One published run as model inputs and the figures it must reproduce."""

    id: str
    engine: str
    hardware_id: str
    hardware_class: HardwareClass
    precision: str
    concurrency: int
    prompt_tokens: int
    output_tokens: int
    steps_per_canvas: float
    diffusion_step_overhead: bool
    execution_mode: ExecutionMode
    observables: tuple[Observable, ...]
    speedups: tuple[PublishedSpeedup, ...]
    assumptions: tuple[str, ...]
    mtp: MtpSetting | Unavailable = Unavailable("no MTP figure in this run")
    no_speedup: str = "no published speedup"


@dataclass(frozen=True)
class StructuredCalibration:
    """The ``structured`` section of the data file."""

    about: str
    runs: tuple[CalibrationRun, ...]


@cache
def load_runs() -> tuple[CalibrationRun, ...]:
    """The structured runs of the data file."""
    text = resources.files("dgprofile.data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return from_json(StructuredCalibration, json.loads(text)["structured"], f"{DATA_FILE}:structured").runs


@cache
def _run_ceilings(hardware_id: str) -> Ceilings:
    return ceilings_from_spec(spec_by_id(hardware_id))


def _run_model(config: ModelConfig, run: CalibrationRun, parameters: EngineParameters) -> PassModel:
    if not run.diffusion_step_overhead:
        parameters = dataclasses.replace(parameters, diffusion_step_overhead_seconds=0.0)
    return PassModel(config, _run_ceilings(run.hardware_id), ENGINES[run.engine], parameters,
                     mode=run.execution_mode)


def _request(run: CalibrationRun, output_tokens: int) -> Request:
    return Request(run.precision, run.concurrency, run.prompt_tokens, output_tokens or run.output_tokens)


def run_baseline(run: CalibrationRun, parameters: EngineParameters) -> ArBaseline:
    """The MTP drafter of the run as stated, or the default draft length and the fitted acceptance."""
    if isinstance(run.mtp, MtpSetting):
        return ArBaseline("mtp", run.mtp.draft_tokens, run.mtp.acceptance)
    return ArBaseline("mtp", DEFAULT_MTP_DRAFT_TOKENS, parameters.mtp_acceptance)


def predict_observable(config: ModelConfig, run: CalibrationRun, observable: Observable,
                       parameters: EngineParameters) -> float:
    """The model's value of one published figure under ``parameters``."""
    model = _run_model(config, run, parameters)
    request = _request(run, observable.output_tokens)
    steps = observable.steps_per_canvas or run.steps_per_canvas
    name = observable.name
    if name.endswith("_peak_memory_bytes"):
        fit = memory_fit(config, model.ceilings, model.engine, parameters, precision=run.precision,
                         concurrency=run.concurrency, context_tokens=request.prompt_tokens + request.output_tokens)
        # A published peak is what was allocated: the need less the activation headroom the fit rule adds.
        if name.startswith("dg_"):
            return float(fit.diffusion_needed_bytes - fit.activation_headroom_bytes)
        return fit.autoregressive_needed_bytes * model.engine.memory_utilization
    if name == "ar_mtp_generation_tokens_per_s":
        return autoregressive_estimate(model, request, 0, run_baseline(run, parameters)).tokens_per_s
    if name.startswith("ar_"):
        ar = autoregressive_estimate(model, request, 0)
        return {"ar_generation_tokens_per_s": ar.tokens_per_s,
                "ar_output_tokens_per_s": request.output_tokens / ar.total_latency_s,
                "ar_total_latency_seconds": ar.total_latency_s,
                "ar_step_seconds": ar.pass_seconds}[name]
    passes = diffusion_passes(model, request)
    dg = diffusion_estimate(passes, request, steps, 0)
    return {"dg_generation_tokens_per_s": dg.tokens_per_s,
            "dg_output_tokens_per_s": request.output_tokens / dg.total_latency_s,
            "dg_ttft_seconds": dg.ttft_s,
            "dg_total_latency_seconds": dg.total_latency_s,
            "dg_canvas_seconds": steps * passes.denoise.seconds + passes.commit.seconds,
            "dg_denoise_pass_seconds": passes.denoise.seconds,
            "dg_prefill_seconds": passes.prefill.seconds}[name]


def predict_speedup(config: ModelConfig, run: CalibrationRun, published: PublishedSpeedup,
                    parameters: EngineParameters) -> float:
    """The model's DG-over-AR figure for one published speedup of the run, counted as the run counts it."""
    model = _run_model(config, run, parameters)
    dg_request, ar_request = _request(run, published.dg_output_tokens), _request(run, published.ar_output_tokens)
    baseline = run_baseline(run, parameters) if published.baseline == "mtp" else ArBaseline("plain")
    dg = diffusion_estimate(diffusion_passes(model, dg_request), dg_request, run.steps_per_canvas, 0)
    ar = autoregressive_estimate(model, ar_request, 0, baseline)
    if published.metric == "generation-rate":
        return dg.tokens_per_s / ar.tokens_per_s
    return ar.total_latency_s / dg.total_latency_s


# --- the fit ---------------------------------------------------------------------------------------------------


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the systems here are 7 x 7)."""
    size = len(vector)
    rows = [row[:] + [value] for row, value in zip(matrix, vector, strict=True)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, size):
            factor = rows[r][col] / rows[col][col]
            rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    solution = [0.0] * size
    for r in reversed(range(size)):
        solution[r] = (rows[r][size] - sum(rows[r][c] * solution[c] for c in range(r + 1, size))) / rows[r][r]
    return solution


def _jacobian(residuals: Callable[[list[float]], list[float]], x: list[float], base: list[float]
              ) -> list[list[float]]:
    columns = []
    for j in range(len(x)):
        shifted = x[:]
        shifted[j] += DERIVATIVE_STEP
        columns.append([(a - b) / DERIVATIVE_STEP for a, b in zip(residuals(shifted), base, strict=True)])
    return [list(row) for row in zip(*columns, strict=True)]


def levenberg_marquardt(residuals: Callable[[list[float]], list[float]], start: list[float], *,
                        iterations: int = MAX_ITERATIONS) -> list[float]:
    """Minimise the sum of squared ``residuals`` from ``start`` (deterministic; numeric derivatives), for at most
    ``iterations`` steps."""
    x, damping = start[:], 1e-3
    current = residuals(x)
    cost = sum(r * r for r in current)
    for _ in range(iterations):
        jac = _jacobian(residuals, x, current)
        normal = [[sum(row[i] * row[j] for row in jac) for j in range(len(x))] for i in range(len(x))]
        gradient = [sum(row[i] * r for row, r in zip(jac, current, strict=True)) for i in range(len(x))]
        improved = False
        while damping < 1e10:
            damped = [[normal[i][j] + (damping * (normal[i][i] + 1e-9) if i == j else 0.0)
                       for j in range(len(x))] for i in range(len(x))]
            step = _solve(damped, [-g for g in gradient])
            trial = [a + b for a, b in zip(x, step, strict=True)]
            trial_residuals = residuals(trial)
            trial_cost = sum(r * r for r in trial_residuals)
            if trial_cost < cost:
                improved = cost - trial_cost > CONVERGED_IMPROVEMENT * max(cost, 1.0)
                x, current, cost, damping = trial, trial_residuals, trial_cost, damping / 3
                break
            damping *= 4
        if not improved:
            break
    return x


def _parameters(engine: str, values: dict[str, float], workspace: float, fitted: tuple[str, ...],
                rms: float, runs: tuple[CalibrationRun, ...]) -> EngineParameters:
    priors = ENGINES[engine].priors
    return EngineParameters(
        engine=engine, pass_floor_seconds=values["pass_floor_seconds"],
        diffusion_step_overhead_seconds=values["diffusion_step_overhead_seconds"],
        bandwidth_efficiency=values["bandwidth_efficiency"], compute_efficiency=values["compute_efficiency"],
        diffusion_workspace_fraction=workspace, fitted=fitted,
        priors=tuple(f"{name}: prior median {priors[name].median:g} (log sigma {priors[name].log_sigma:g}): "
                     f"{priors[name].reason}" for name in FITTED_PARAMETERS if name not in fitted),
        runs=tuple(run.id for run in runs), rms_log_residual=rms,
        mtp_draft_step_fraction=values["mtp_draft_step_fraction"], mtp_acceptance=values["mtp_acceptance"],
        eager_host_factor=values["eager_host_factor"], calibrated_mode=ENGINES[engine].default_mode)


def _workspace_fraction(config: ModelConfig, runs: tuple[CalibrationRun, ...]) -> float:
    """Denoise workspace as a share of the weights, from a published peak memory (0 when none is published)."""
    for run in runs:
        for observable in run.observables:
            if observable.name == "dg_peak_memory_bytes" and observable.fit:
                weights, kv, buffers, _ = diffusion_needed_bytes(
                    config, run.precision, concurrency=run.concurrency,
                    context_tokens=run.prompt_tokens + run.output_tokens, workspace_fraction=0.0)
                return max(0.0, (observable.value - weights - kv - buffers) / weights)
    return 0.0


# The parameters that set where a pass sits against max(floor, memory, compute): the objective is piecewise in
# them, so the fit starts from points that move each of them.
ROOFLINE_PARAMETERS = ("pass_floor_seconds", "diffusion_step_overhead_seconds", "bandwidth_efficiency",
                       "compute_efficiency")


def _starts(priors: dict[str, Prior], active: tuple[str, ...]) -> list[list[float]]:
    """The prior medians, and each roofline parameter moved START_SIGMAS prior sigmas either way: the max() makes
    the objective piecewise, so a term that does not bound a pass at the prior would never move."""
    centre = [math.log(priors[name].median) for name in active]
    starts = [centre]
    for j, name in enumerate(active):
        if name not in ROOFLINE_PARAMETERS:
            continue
        for sign in (-1, 1):
            moved = centre[:]
            moved[j] += sign * START_SIGMAS * priors[name].log_sigma
            starts.append(moved)
    return starts


def _active_parameters(engine: str, runs: tuple[CalibrationRun, ...]) -> tuple[str, ...]:
    """The parameters the runs' fitted figures can depend on; the others keep their prior."""
    fitted = [(run, o) for run in runs for o in run.observables if o.fit]
    mtp = [run for run, o in fitted if o.name == "ar_mtp_generation_tokens_per_s"]
    used = set(ROOFLINE_PARAMETERS)
    if mtp:
        used.add("mtp_draft_step_fraction")
    if any(isinstance(run.mtp, Unavailable) for run in mtp):
        used.add("mtp_acceptance")
    if any(run.execution_mode != ENGINES[engine].default_mode for run, _ in fitted):
        used.add("eager_host_factor")
    return tuple(name for name in FITTED_PARAMETERS if name in used)


def fit_engine(engine: str, config: ModelConfig | None = None, *, leave_out: Collection[str] = ()
               ) -> EngineParameters:
    """Fit one engine's parameters to its runs, without the runs named in ``leave_out`` (see the module
    docstring). Leaving out a run that fits nothing of this engine gives the same fit, so fits are shared."""
    fitting = frozenset(run.id for run in load_runs() if run.engine == engine and run.id in leave_out
                        and any(o.fit for o in run.observables))
    return _fit_engine(engine, (config or load_model_config()).id, fitting)


@cache
def _fit_engine(engine: str, model_id: str, leave_out: frozenset[str]) -> EngineParameters:
    config = load_model_config(model_id)
    if engine == "ideal":
        return EngineParameters(
            engine="ideal", diffusion_workspace_fraction=0.0, fitted=(), runs=(), rms_log_residual=0.0,
            priors=("not fitted: the measured passes, or the device's ceilings with no overhead",),
            pass_floor_seconds=IDEAL_PARAMETERS["pass_floor_seconds"],
            diffusion_step_overhead_seconds=IDEAL_PARAMETERS["diffusion_step_overhead_seconds"],
            bandwidth_efficiency=IDEAL_PARAMETERS["bandwidth_efficiency"],
            compute_efficiency=IDEAL_PARAMETERS["compute_efficiency"],
            mtp_draft_step_fraction=IDEAL_PARAMETERS["mtp_draft_step_fraction"],
            mtp_acceptance=IDEAL_PARAMETERS["mtp_acceptance"],
            eager_host_factor=IDEAL_PARAMETERS["eager_host_factor"], calibrated_mode="cuda-graphs")
    runs = tuple(run for run in load_runs() if run.engine == engine and run.id not in leave_out
                 and any(o.fit for o in run.observables))
    workspace = _workspace_fraction(config, runs)
    timed = [(run, o) for run in runs for o in run.observables if o.fit and not o.name.endswith("_bytes")]
    priors = ENGINES[engine].priors
    active = _active_parameters(engine, runs)

    def unpack(x: list[float]) -> EngineParameters:
        values = {name: priors[name].median for name in FITTED_PARAMETERS}
        values.update({name: math.exp(v) for name, v in zip(active, x, strict=True)})
        return _parameters(engine, values, workspace, (), 0.0, runs)

    def data_residuals(x: list[float]) -> list[float]:
        parameters = unpack(x)
        return [math.log(predict_observable(config, run, o, parameters) / o.value) / OBSERVATION_LOG_SIGMA
                for run, o in timed]

    def residuals(x: list[float]) -> list[float]:
        prior_terms = [(v - math.log(priors[name].median)) / priors[name].log_sigma
                       for name, v in zip(active, x, strict=True)]
        return data_residuals(x) + prior_terms

    scouted = min((levenberg_marquardt(residuals, start, iterations=SCOUT_ITERATIONS)
                   for start in _starts(priors, active)), key=lambda x: sum(r * r for r in residuals(x)))
    best = levenberg_marquardt(residuals, scouted)
    base = data_residuals(best)
    sensitivity = _jacobian(data_residuals, best, base) if base else []
    fitted = tuple(name for j, name in enumerate(active)
                   if sum(row[j] ** 2 for row in sensitivity) > priors[name].log_sigma ** -2)
    rms = math.sqrt(sum((r * OBSERVATION_LOG_SIGMA) ** 2 for r in base) / len(base)) if base else 0.0
    values = {name: priors[name].median for name in FITTED_PARAMETERS}
    values.update({name: math.exp(v) for name, v in zip(active, best, strict=True)})
    return _parameters(engine, values, workspace, fitted, rms, runs)


def fit_all_engines(*, leave_out: Collection[str] = ()) -> dict[str, EngineParameters]:
    """Every engine's parameters, fitted now without the runs in ``leave_out`` (`predict` reads the stored
    result)."""
    config = load_model_config()
    return {name: fit_engine(name, config, leave_out=leave_out) for name in ENGINES}


def write_fitted_parameters(path: Path) -> None:
    """Store ``fit_all_engines()`` and the transfer validation where ``calibrated_parameters`` and
    ``stored_validation`` read them (run after changing the data or the model)."""
    from dgprofile.model.validation import transfer_validation

    document = {"about": f"Written by `python -m dgprofile.model.calibration` from {DATA_FILE}; a test checks that "
                         "re-running the fit and the validation reproduces it.",
                "engines": [to_json(parameters) for parameters in fit_all_engines().values()],
                "validation": to_json(transfer_validation())}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@cache
def _stored() -> dict[str, object]:
    text = resources.files("dgprofile.data").joinpath(FITTED_FILE).read_text(encoding="utf-8")
    document: dict[str, object] = json.loads(text)
    return document


@cache
def calibrated_parameters() -> dict[str, EngineParameters]:
    """Every engine's fitted parameters, as stored by ``write_fitted_parameters``."""
    entries = _stored()["engines"]
    assert isinstance(entries, list)
    engines = (from_json(EngineParameters, entry, f"{FITTED_FILE}[{i}]") for i, entry in enumerate(entries))
    return {parameters.engine: parameters for parameters in engines}


@cache
def stored_validation() -> TransferValidation:
    """The transfer validation stored beside the fit."""
    return from_json(TransferValidation, _stored()["validation"], f"{FITTED_FILE}:validation")


def reproduce_run(config: ModelConfig, run: CalibrationRun, parameters: EngineParameters) -> RunReproduction:
    """Every published figure of ``run`` against the model, and the verdict class its first published speedup
    implies (against the AR baseline that speedup names)."""
    residuals = tuple(
        ObservableResidual(name=o.name if not o.output_tokens else f"{o.name} ({o.output_tokens} tokens)",
                           published=o.value, predicted=(p := predict_observable(config, run, o, parameters)),
                           relative_error=p / o.value - 1.0, used_in_fit=o.fit)
        for o in run.observables)
    if run.speedups:
        published = run.speedups[0]
        predicted = predict_speedup(config, run, published, parameters)
        return RunReproduction(
            run_id=run.id, engine=run.engine, hardware=spec_by_id(run.hardware_id).name, observables=residuals,
            published_speedup=published.value, predicted_speedup=predicted,
            published_verdict=classify_point(published.value), predicted_verdict=classify_point(predicted),
            ar_baseline=published.baseline)
    model = _run_model(config, run, parameters)
    request = _request(run, 0)
    dg = diffusion_estimate(diffusion_passes(model, request), request, run.steps_per_canvas, 0)
    predicted = autoregressive_estimate(model, request, 0).total_latency_s / dg.total_latency_s
    return RunReproduction(
        run_id=run.id, engine=run.engine, hardware=spec_by_id(run.hardware_id).name, observables=residuals,
        published_speedup=Unavailable(run.no_speedup), predicted_speedup=predicted,
        published_verdict=Unavailable(run.no_speedup), predicted_verdict=classify_point(predicted))


@cache
def calibration_summary() -> CalibrationSummary:
    """The fitted engines, the reproduction of every run, and the stored transfer validation."""
    config = load_model_config()
    parameters = calibrated_parameters()
    runs = tuple(reproduce_run(config, run, parameters[run.engine]) for run in load_runs())
    worst = max(abs(o.relative_error) for run in runs for o in run.observables if o.used_in_fit)
    return CalibrationSummary(data_file=f"dgprofile/data/{DATA_FILE}", engines=tuple(parameters.values()),
                              runs=runs, max_abs_relative_error=worst, validation=stored_validation())


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "data" / FITTED_FILE
    write_fitted_parameters(target)
    print(f"wrote {target}")
