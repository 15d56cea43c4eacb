"""Fit each engine's behaviour to the published runs, reproducibly, and report how well each run is reproduced.

The data file is ``dgprofile/data/calibration-runs.json``: the published runs as their sources gave them, and a
``structured`` section restating each as model inputs (hardware entry, engine, precision, request shape) and the
figures it must reproduce. For each engine, the parameters of ``dgprofile.model.engines.FITTED_PARAMETERS`` minimise

    sum over fitted figures of (log(predicted / published) / OBSERVATION_LOG_SIGMA)^2
    + sum over parameters of ((log(value) - log(prior median)) / prior log sigma)^2

(maximum a posteriori with log-normal priors), by Levenberg-Marquardt from the prior medians and from points two
prior sigmas away: deterministic code over the data file. The result is stored in ``dgprofile/data/
engine-parameters.json`` (``python -m dgprofile.model.calibration`` rewrites it; a test checks it matches a fresh fit),
so `predict` answers without refitting. A parameter counts as *fitted* when the
data carry more information about it than its prior (the squared sensitivity of the data residuals exceeds the
prior's precision); otherwise its value is the prior's, as stated. Eager transformers' denoise workspace is the one
closed-form fit: its published peak memory less weights, KV cache and sampler buffers. The hardware ceilings of
each run are those of its ``dgprofile/data/hardware.json`` entry, the same figures `predict` uses.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from dgprofile.model.ceilings import ceilings_from_spec
from dgprofile.model.engines import ENGINES, FITTED_PARAMETERS, IDEAL_PARAMETERS, Prior
from dgprofile.model.memory_fit import diffusion_needed_bytes, memory_fit
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
    CalibrationSummary,
    EngineParameters,
    ObservableResidual,
    RunReproduction,
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
CONVERGED_IMPROVEMENT = 1e-6  # relative cost decrease below which the fit has converged

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
    """The run's DG-over-AR figure and how it was counted."""

    metric: SpeedupMetric
    value: float
    dg_output_tokens: int
    ar_output_tokens: int
    note: str


@dataclass(frozen=True)
class CalibrationRun:
    """One published run as model inputs and the figures it must reproduce."""

    id: str
    engine: str
    hardware_id: str
    precision: str
    concurrency: int
    prompt_tokens: int
    output_tokens: int
    steps_per_canvas: float
    diffusion_step_overhead: bool
    observables: tuple[Observable, ...]
    speedup: PublishedSpeedup | Unavailable
    assumptions: tuple[str, ...]


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


def _run_model(config: ModelConfig, run: CalibrationRun, parameters: EngineParameters) -> PassModel:
    if not run.diffusion_step_overhead:
        parameters = dataclasses.replace(parameters, diffusion_step_overhead_seconds=0.0)
    return PassModel(config, ceilings_from_spec(spec_by_id(run.hardware_id)), ENGINES[run.engine], parameters)


def _request(run: CalibrationRun, output_tokens: int) -> Request:
    return Request(run.precision, run.concurrency, run.prompt_tokens, output_tokens or run.output_tokens)


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


def predict_speedup(config: ModelConfig, run: CalibrationRun, parameters: EngineParameters) -> float:
    """The model's DG-over-AR figure for the run, counted as the run counts it (end to end when unpublished)."""
    model = _run_model(config, run, parameters)
    published = run.speedup
    dg_tokens = published.dg_output_tokens if isinstance(published, PublishedSpeedup) else run.output_tokens
    ar_tokens = published.ar_output_tokens if isinstance(published, PublishedSpeedup) else run.output_tokens
    dg_request, ar_request = _request(run, dg_tokens), _request(run, ar_tokens)
    dg = diffusion_estimate(diffusion_passes(model, dg_request), dg_request, run.steps_per_canvas, 0)
    ar = autoregressive_estimate(model, ar_request, 0)
    if isinstance(published, PublishedSpeedup) and published.metric == "generation-rate":
        return dg.tokens_per_s / ar.tokens_per_s
    return ar.total_latency_s / dg.total_latency_s


# --- the fit ---------------------------------------------------------------------------------------------------


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the systems here are 4 x 4)."""
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


def levenberg_marquardt(residuals: Callable[[list[float]], list[float]], start: list[float]) -> list[float]:
    """Minimise the sum of squared ``residuals`` from ``start`` (deterministic; numeric derivatives)."""
    x, damping = start[:], 1e-3
    current = residuals(x)
    cost = sum(r * r for r in current)
    for _ in range(MAX_ITERATIONS):
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
                rms: float) -> EngineParameters:
    priors = ENGINES[engine].priors
    return EngineParameters(
        engine=engine, pass_floor_seconds=values["pass_floor_seconds"],
        diffusion_step_overhead_seconds=values["diffusion_step_overhead_seconds"],
        bandwidth_efficiency=values["bandwidth_efficiency"], compute_efficiency=values["compute_efficiency"],
        diffusion_workspace_fraction=workspace, fitted=fitted,
        priors=tuple(f"{name}: prior median {priors[name].median:g} (log sigma {priors[name].log_sigma:g}): "
                     f"{priors[name].reason}" for name in FITTED_PARAMETERS if name not in fitted),
        runs=tuple(run.id for run in load_runs() if run.engine == engine), rms_log_residual=rms)


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


def _starts(priors: dict[str, Prior]) -> list[list[float]]:
    """The prior medians, and each parameter moved START_SIGMAS prior sigmas either way: the roofline's max()
    makes the objective piecewise, so a term that does not bound a pass at the prior would never move."""
    centre = [math.log(priors[name].median) for name in FITTED_PARAMETERS]
    starts = [centre]
    for j, name in enumerate(FITTED_PARAMETERS):
        for sign in (-1, 1):
            moved = centre[:]
            moved[j] += sign * START_SIGMAS * priors[name].log_sigma
            starts.append(moved)
    return starts


def fit_engine(engine: str, config: ModelConfig | None = None) -> EngineParameters:
    """Fit one engine's parameters to its runs (see the module docstring)."""
    config = config or load_model_config()
    if engine == "ideal":
        return EngineParameters(
            engine="ideal", diffusion_workspace_fraction=0.0, fitted=(), runs=(), rms_log_residual=0.0,
            priors=("not fitted: the measured passes, or the device's ceilings with no overhead",),
            **IDEAL_PARAMETERS)
    runs = tuple(run for run in load_runs() if run.engine == engine)
    workspace = _workspace_fraction(config, runs)
    timed = [(run, o) for run in runs for o in run.observables if o.fit and not o.name.endswith("_bytes")]
    priors = ENGINES[engine].priors

    def unpack(x: list[float]) -> EngineParameters:
        values = {name: math.exp(v) for name, v in zip(FITTED_PARAMETERS, x, strict=True)}
        return _parameters(engine, values, workspace, (), 0.0)

    def data_residuals(x: list[float]) -> list[float]:
        parameters = unpack(x)
        return [math.log(predict_observable(config, run, o, parameters) / o.value) / OBSERVATION_LOG_SIGMA
                for run, o in timed]

    def residuals(x: list[float]) -> list[float]:
        prior_terms = [(v - math.log(priors[name].median)) / priors[name].log_sigma
                       for name, v in zip(FITTED_PARAMETERS, x, strict=True)]
        return data_residuals(x) + prior_terms

    best = min((levenberg_marquardt(residuals, start) for start in _starts(priors)),
               key=lambda x: sum(r * r for r in residuals(x)))
    base = data_residuals(best)
    sensitivity = _jacobian(data_residuals, best, base)
    fitted = tuple(name for j, name in enumerate(FITTED_PARAMETERS)
                   if sum(row[j] ** 2 for row in sensitivity) > priors[name].log_sigma ** -2)
    rms = math.sqrt(sum((r * OBSERVATION_LOG_SIGMA) ** 2 for r in base) / len(base)) if base else 0.0
    values = {name: math.exp(v) for name, v in zip(FITTED_PARAMETERS, best, strict=True)}
    return _parameters(engine, values, workspace, fitted, rms)


def fit_all_engines() -> dict[str, EngineParameters]:
    """Every engine's parameters, fitted now (about half a second; `predict` reads the stored result)."""
    config = load_model_config()
    return {name: fit_engine(name, config) for name in ENGINES}


def write_fitted_parameters(path: Path) -> None:
    """Store ``fit_all_engines()`` where ``calibrated_parameters`` reads it (run after changing the data)."""
    document = {"about": f"Written by `python -m dgprofile.model.calibration` from {DATA_FILE}; a test checks that "
                         "re-running the fit reproduces it.",
                "engines": [to_json(parameters) for parameters in fit_all_engines().values()]}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@cache
def calibrated_parameters() -> dict[str, EngineParameters]:
    """Every engine's fitted parameters, as stored by ``write_fitted_parameters``."""
    text = resources.files("dgprofile.data").joinpath(FITTED_FILE).read_text(encoding="utf-8")
    engines = (from_json(EngineParameters, entry, f"{FITTED_FILE}[{i}]")
               for i, entry in enumerate(json.loads(text)["engines"]))
    return {parameters.engine: parameters for parameters in engines}


def reproduce_run(config: ModelConfig, run: CalibrationRun, parameters: EngineParameters) -> RunReproduction:
    """Every published figure of ``run`` against the model, and the verdict class each implies."""
    residuals = tuple(
        ObservableResidual(name=o.name if not o.output_tokens else f"{o.name} ({o.output_tokens} tokens)",
                           published=o.value, predicted=(p := predict_observable(config, run, o, parameters)),
                           relative_error=p / o.value - 1.0, used_in_fit=o.fit)
        for o in run.observables)
    predicted_speedup = predict_speedup(config, run, parameters)
    published = run.speedup
    return RunReproduction(
        run_id=run.id, engine=run.engine, hardware=spec_by_id(run.hardware_id).name, observables=residuals,
        published_speedup=published.value if isinstance(published, PublishedSpeedup) else published,
        predicted_speedup=predicted_speedup,
        published_verdict=(classify_point(published.value) if isinstance(published, PublishedSpeedup)
                           else Unavailable(published.reason)),
        predicted_verdict=classify_point(predicted_speedup))


@cache
def calibration_summary() -> CalibrationSummary:
    """The fitted engines and the reproduction of every run."""
    config = load_model_config()
    parameters = calibrated_parameters()
    runs = tuple(reproduce_run(config, run, parameters[run.engine]) for run in load_runs())
    worst = max(abs(o.relative_error) for run in runs for o in run.observables if o.used_in_fit)
    return CalibrationSummary(data_file=f"dgprofile/data/{DATA_FILE}", engines=tuple(parameters.values()),
                              runs=runs, max_abs_relative_error=worst)


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "data" / FITTED_FILE
    write_fitted_parameters(target)
    print(f"wrote {target}")
