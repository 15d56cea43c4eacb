"""`dgprofile verify` end to end: run both models on the workload prompts, then set each figure beside the
prediction for the same scenario on this machine.

Alone, `verify` probes the machine and, for transformers in process, measures its limits quickly (as `bench
--limits-only --quick`), so the prediction rests on this machine's ceilings (servers hold the accelerator, so for
them the prediction falls back to the datasheet); with ``--result`` it reads them from a `check` result and adds
the measured run to that file. In process, each model loads (or is built), runs one warm-up request, then every
prompt, and is freed before the other loads; servers get every prompt at each concurrency level. A Ctrl-C or SIGTERM, or a failing step, ends the measuring but keeps what finished,
marked incomplete with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import os
import statistics
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dgprofile.app.machine import probe_machine
from dgprofile.app.predictor import PredictOptions, predict_for_machine, predict_measured_scenario
from dgprofile.app.runner import MeasureOptions, device_lock_keys, run_bench
from dgprofile.app.verify.headline import headline_from_measured
from dgprofile.app.verify.measures import (
    RequestOutcome,
    edit_distance,
    figure,
    measured_verdict,
    mode_statistics,
    request_outcome,
)
from dgprofile.app.verify.prompts import VerifyPrompt, load_prompts, select_prompts
from dgprofile.app.verify.server import DEFAULT_TIMEOUT_SECONDS, ServerTarget, run_level, server_version
from dgprofile.app.verify.server_watch import ServerWatch
from dgprofile.errors import BenchmarkBusyError, DgprofileError, UsageError
from dgprofile.interrupts import Interruption, interruption_of, sigterm_interrupts
from dgprofile.model.engines import AUTO, ENGINE_NAMES
from dgprofile.model.workloads import MAX_STEPS, MIN_STEPS, with_overrides, workload_by_name
from dgprofile.records.limits import Limits
from dgprofile.records.machine import Machine
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import Prediction, Predictions
from dgprofile.records.results import ResultFile, RunInfo, new_result
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import (
    MeasuredRun,
    ModelRole,
    ModelUnderTest,
    RequestRecord,
    RunSettings,
    ServerObservation,
    WorkloadStatistics,
)
from dgprofile.specs.model_config import ModelConfig, load_model_config

Progress = Callable[[str], None]
ROLES: tuple[ModelRole, ...] = ("diffusion", "autoregressive")
ROLE_NAMES: dict[ModelRole, str] = {"diffusion": "DiffusionGemma", "autoregressive": "Gemma 4"}
VERIFY_MISSING = "the transformers backend needs torch and transformers: pip install 'dgprofile[verify]'"
RANDOM_QUALITY = Unavailable("not measured: random weights never converge, so drafts and outputs mean nothing")
# The precision each weights dtype is predicted at: fp32 weights (a CPU without native bf16) are predicted as bf16
# weights computed at the fp32 rate, the predictor's model of a CPU; the basis says they moved twice the bytes.
DTYPE_PRECISIONS = {"bf16": "bf16", "fp16": "fp16", "fp32": "bf16"}
SAMPLER = "entropy-bound (the checkpoint's generation config)"
SERVER_CONCURRENCIES = (1, 2, 4, 8)
AUTO_DTYPE = "auto"
SERVER_MISSING = "the server backend needs the openai client and httpx: pip install 'dgprofile[verify]'"


@dataclass(frozen=True)
class VerifyOptions:
    """What `verify` runs and how."""

    dg_model: str | None = None
    ar_model: str | None = None
    random_weights: bool = False
    size: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    steps: int | None = None
    workloads: tuple[str, ...] = ()
    prompts_path: Path | None = None
    quick: bool = False
    engine: str = AUTO
    anonymize: bool = False
    wait_seconds: float = 0.0
    seed: int = 0
    dg_url: str | None = None
    dg_served_model: str | None = None
    ar_url: str | None = None
    ar_served_model: str | None = None
    concurrencies: tuple[int, ...] = SERVER_CONCURRENCIES
    precision: str = "bf16"
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @property
    def servers(self) -> bool:
        """True when the models are behind OpenAI-compatible servers."""
        return self.dg_url is not None or self.ar_url is not None


@dataclass(frozen=True)
class VerifyOutcome:
    """The result file to write, the run it holds, and what interrupted it, if anything."""

    result: ResultFile
    run: MeasuredRun
    interruption: Interruption | None


@dataclass(frozen=True)
class _Request:
    prompt: VerifyPrompt
    max_new_tokens: int
    prompt_tokens: int
    steps: int | None


def warmup_prompt_lengths(requests: list[_Request], device: str) -> tuple[int, ...]:
    """The prompt lengths to warm up at on an accelerator: every length the measured requests use, since the
    first request of a new length there paid seconds of one-time cost (an H200 in bf16: 3.3 s to the first
    canvas at 512 tokens against 0.86 s predicted, and 4.8 s against 3.4 s at 1024, none at the lengths that
    followed). None on a CPU, where one short request does, which keeps quick runs quick."""
    return () if device == "cpu" else tuple(sorted({request.prompt_tokens for request in requests}))


def _warmup_text(requests: list[_Request], device: str) -> str:
    lengths = warmup_prompt_lengths(requests, device)
    if not lengths:
        return "one short request per model before the measured ones"
    shown = ", ".join(str(length) for length in lengths)
    return f"one short request per model at each measured prompt length ({shown} tokens) before the measured ones"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_server_options(options: VerifyOptions) -> None:
    if options.random_weights or options.dg_model is not None or options.ar_model is not None:
        raise UsageError("--dg-url/--ar-url measure servers: drop --dg-model, --ar-model and --random-weights")
    if None in (options.dg_url, options.dg_served_model, options.ar_url, options.ar_served_model):
        raise UsageError("give --dg-url with --dg-served-model and --ar-url with --ar-served-model")
    if not options.concurrencies or min(options.concurrencies) < 1:
        raise UsageError("--concurrency levels must be at least 1")
    if importlib.util.find_spec("openai") is None or importlib.util.find_spec("httpx") is None:
        raise DgprofileError(SERVER_MISSING)


def _check_options(options: VerifyOptions) -> None:
    if options.servers:
        _check_server_options(options)
        return
    checkpoints = options.dg_model is not None or options.ar_model is not None
    if options.random_weights and checkpoints:
        raise UsageError("--random-weights builds both models: drop --dg-model and --ar-model")
    if not options.random_weights and (options.dg_model is None or options.ar_model is None):
        raise UsageError("give both --dg-model and --ar-model (checkpoint directories or hub ids in the local cache), "
                         "or --random-weights")
    if options.size is not None and not options.random_weights:
        raise UsageError("--size applies to --random-weights only")
    if options.steps is not None and not MIN_STEPS <= options.steps <= MAX_STEPS:
        raise UsageError(f"--steps must be between {MIN_STEPS} and {MAX_STEPS} (the sampler's limits)")
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
        raise DgprofileError(VERIFY_MISSING)


def _requests(options: VerifyOptions, prompts: tuple[VerifyPrompt, ...]) -> list[_Request]:
    """Each prompt's budget: random weights take the workload's lengths and its typical steps (fixed, as random
    weights never converge); checkpoints take the prompt's own text and budget, steps fixed only by --steps."""
    requests = []
    for prompt in prompts:
        workload = workload_by_name(prompt.workload)
        if options.random_weights and not options.servers:
            steps = options.steps or max(MIN_STEPS, round(workload.steps.typical))
            requests.append(_Request(prompt, workload.output_tokens, workload.prompt_tokens, steps))
        else:
            requests.append(_Request(prompt, prompt.max_new_tokens, 0, options.steps))
    return requests


@dataclass
class _Collected:
    outcomes: list[tuple[_Request, RequestOutcome]]
    models: list[ModelUnderTest]
    configs: dict[ModelRole, ModelConfig]
    incomplete: list[str]
    interruption: Interruption | None
    engine_version: str | Unavailable
    device: str
    dtype: str
    servers: list[ServerObservation] = dataclasses.field(default_factory=list)


def _weights_dtype(requested: str, machine: Machine, device: str) -> str:
    """``requested``, or for "auto" bf16 where the device computes it natively and fp32 on other CPUs."""
    if requested != AUTO_DTYPE:
        return requested
    if device != "cpu" or machine.cpu.computes_bf16_natively:
        return "bf16"
    return "fp32"


def _run_models(options: VerifyOptions, machine: Machine, requests: list[_Request], progress: Progress
                ) -> _Collected:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded, not even a config
    os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
    from dgprofile.probes.device_lock import exclusive_devices
    from dgprofile.probes.torch_devices import resolve_device
    from dgprofile.probes.verify import transformers_run as backend
    from dgprofile.probes.verify.plan import MODEL_SIZES, plan_size

    device = resolve_device(machine, options.device)
    dtype = _weights_dtype(options.dtype, machine, device)
    collected = _Collected([], [], {}, [], None, backend.engine_version(), device, dtype)
    released = load_model_config()
    step = "waiting for the device"
    loaded: Any = None
    try:
        with sigterm_interrupts(), exclusive_devices(device_lock_keys(machine, device),
                                                       wait_seconds=options.wait_seconds, on_wait=progress):
            for role in ROLES:
                name = ROLE_NAMES[role]
                step = f"loading {name}"
                progress(f"{step} on {device}")
                if options.random_weights:
                    requested = next((s for s in MODEL_SIZES if s == options.size), None)
                    plan = plan_size(released, model=role, device_kind=backend.device_kind(device),
                                     free_memory_bytes=backend.free_memory_bytes(device), quick=options.quick,
                                     requested=requested)
                    loaded = backend.build_random(role, plan, device=device, dtype=dtype, seed=options.seed)
                    collected.configs[role] = plan.config
                else:
                    checkpoint = options.dg_model if role == "diffusion" else options.ar_model
                    assert checkpoint is not None  # _check_options
                    loaded = backend.load_checkpoint(role, checkpoint, device=device, dtype=dtype)
                    collected.configs[role] = released
                collected.models.append(loaded.under_test)
                for length in warmup_prompt_lengths(requests, device) or (backend.WARMUP_PROMPT_TOKENS,):
                    step = f"warming up {name} ({length}-token prompt)"
                    progress(step)
                    backend.warm_up(loaded, length)
                for index, request in enumerate(requests, start=1):
                    prompt = request.prompt
                    step = f"{name}: {prompt.workload}, request {index} of {len(requests)} ({prompt.prompt_id})"
                    progress(step)
                    trace = backend.generate_one(loaded, backend.PromptInput(
                        text=None if options.random_weights else prompt.text,
                        prompt_tokens=request.prompt_tokens, max_new_tokens=request.max_new_tokens,
                        steps=request.steps, ignore_eos=options.random_weights,
                        seed=options.seed + zlib.crc32(prompt.prompt_id.encode())))
                    collected.outcomes.append((request, request_outcome(
                        trace, workload=prompt.workload, prompt_id=prompt.prompt_id, role=role, concurrency=1)))
                backend.unload(loaded)
                loaded = None
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the requests that finished are kept
        collected.interruption = interruption_of(exc)
        collected.incomplete.append(f"interrupted ({collected.interruption.value}) while {step}")
    except (BenchmarkBusyError, UsageError):
        raise
    except Exception as exc:  # a failing step must not lose the requests that finished
        collected.incomplete.append(f"{step} failed: {type(exc).__name__}: {exc}")
    finally:
        if loaded is not None:
            backend.unload(loaded)
    return collected


def _run_servers(options: VerifyOptions, requests: list[_Request], progress: Progress) -> _Collected:
    targets: dict[ModelRole, ServerTarget] = {
        "diffusion": ServerTarget("diffusion", options.dg_url or "", options.dg_served_model or ""),
        "autoregressive": ServerTarget("autoregressive", options.ar_url or "", options.ar_served_model or "")}
    versions = {role: server_version(target) for role, target in targets.items()}
    version = next((v for v in versions.values() if isinstance(v, str)), versions["diffusion"])
    collected = _Collected([], [], {}, [], None, version, f"servers at {targets['diffusion'].root} and "
                                                           f"{targets['autoregressive'].root}", options.precision)
    released = load_model_config()
    for role, target in targets.items():
        collected.models.append(ModelUnderTest(
            role=role, model_id=target.served_model, revision=Unavailable("not reported by the server"),
            source="server", architecture=Unavailable("not reported by the server").reason,
            dtype=options.precision, layers_run=released.backbone.num_layers,
            layers_total=released.backbone.num_layers, vocab_run=released.backbone.vocab_size,
            vocab_total=released.backbone.vocab_size, scaling="none: whatever the server runs"))
        collected.configs[role] = released
    step = "starting"
    by_text = [(r.prompt.text, r.max_new_tokens) for r in requests]
    watches = {role: ServerWatch.start(target) for role, target in targets.items()}
    try:
        with sigterm_interrupts():
            for role, target in targets.items():
                watch = watches[role]
                for concurrency in options.concurrencies:
                    step = f"{ROLE_NAMES[role]} at {target.api_base}, {concurrency} concurrent stream(s)"
                    progress(step)
                    before = watch.read_metrics()

                    def done(index: int, trace: Any, role: ModelRole = role, concurrency: int = concurrency) -> None:
                        prompt = requests[index].prompt
                        collected.outcomes.append((requests[index], request_outcome(
                            trace, workload=prompt.workload, prompt_id=prompt.prompt_id, role=role,
                            concurrency=concurrency)))
                        progress(f"{ROLE_NAMES[role]}: {prompt.workload} ({prompt.prompt_id}), "
                                 f"{len(collected.outcomes)} requests done")

                    asyncio.run(run_level(target, by_text, concurrency, timeout_seconds=options.timeout_seconds,
                                          on_done=done))
                    watch.after_level(before, concurrency, [
                        o.record for _, o in collected.outcomes
                        if o.record.role == role and o.record.concurrency == concurrency])
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the requests that finished are kept
        collected.interruption = interruption_of(exc)
        collected.incomplete.append(f"interrupted ({collected.interruption.value}) while {step}")
    collected.servers = [watch.observation() for watch in watches.values()]
    failed = sum(1 for _, o in collected.outcomes if o.record.faults)
    if failed:
        collected.incomplete.append(f"{failed} of {len(collected.outcomes)} requests failed (each says why)")
    return collected


# --- statistics beside the prediction ---------------------------------------------------------------------------


def _median_int(values: list[int | Unavailable]) -> int | None:
    numbers = [v for v in values if isinstance(v, int)]
    return max(1, round(statistics.median(numbers))) if numbers else None


def _prediction(machine: Machine, limits: Limits | Unavailable, passes: PassTimes | Unavailable,
                records: list[RequestRecord], workload_name: str, *, precision: str | Unavailable, engine: str,
                config: ModelConfig | Unavailable, concurrency: int) -> Prediction | Unavailable:
    """The prediction for the scenario that ran: the workload at the measured median prompt and output lengths
    and DiffusionGemma's measured steps per canvas."""
    if isinstance(precision, Unavailable):
        return precision
    if isinstance(config, Unavailable):
        return config
    finished = [r for r in records if not r.faults]
    dg = [r for r in finished if r.role == "diffusion"]
    steps = [r.steps_per_canvas for r in dg if isinstance(r.steps_per_canvas, float)]
    prompt_tokens = _median_int([r.prompt_tokens for r in (dg or finished)])
    output_tokens = _median_int([r.output_tokens for r in finished])
    if prompt_tokens is None or output_tokens is None:
        return Unavailable("no request finished")
    workload = with_overrides(
        workload_by_name(workload_name), prompt_tokens=prompt_tokens, output_tokens=output_tokens,
        steps=min(MAX_STEPS, max(MIN_STEPS, statistics.median(steps))) if steps else None)
    try:
        return predict_measured_scenario(machine, limits, passes, workload=workload, precision=precision,
                                         concurrency=concurrency, engine=engine, config=config)
    except UsageError as exc:
        return Unavailable(f"not predicted: {exc}")


def _pairs(outcomes: list[tuple[_Request, RequestOutcome]]) -> tuple[int, list[tuple[RequestOutcome, RequestOutcome]]]:
    """(prompts, the i-th DiffusionGemma request of each prompt paired with its i-th Gemma 4 request)."""
    by_prompt: dict[str, dict[ModelRole, list[RequestOutcome]]] = {}
    for _, outcome in outcomes:
        by_prompt.setdefault(outcome.record.prompt_id, {}).setdefault(outcome.record.role, []).append(outcome)
    pairs = [pair for of_prompt in by_prompt.values()
             for pair in zip(of_prompt.get("diffusion", []), of_prompt.get("autoregressive", []), strict=False)]
    return len(by_prompt), pairs


def _workload_statistics(outcomes: list[tuple[_Request, RequestOutcome]], workload_name: str, concurrency: int,
                         prediction: Prediction | Unavailable, *, quality: Unavailable | None) -> WorkloadStatistics:
    records = [o.record for _, o in outcomes]
    prompts, pairs = _pairs(outcomes)
    speedups: list[float | Unavailable] = []
    distances: list[float | Unavailable] = []
    for dg, ar in pairs:
        if dg.record.faults or ar.record.faults:
            continue
        dg_total, ar_total = dg.record.total_latency_seconds, ar.record.total_latency_seconds
        if isinstance(dg_total, float) and isinstance(ar_total, float) and dg_total > 0:
            speedups.append(ar_total / dg_total)
        if isinstance(dg.text, Unavailable):
            distances.append(dg.text)
        elif isinstance(ar.text, Unavailable):
            distances.append(ar.text)
        else:
            distances.append(edit_distance(dg.text, ar.text))
    workload = workload_by_name(workload_name)
    predicted_speedup = (prediction if isinstance(prediction, Unavailable) else prediction.speedup)
    speedup = figure(speedups, predicted_speedup) if speedups else Unavailable("no prompt finished on both models")
    distance = (quality if quality is not None else
                figure(distances, Unavailable("the model predicts speed, not output")) if distances
                else Unavailable("no prompt finished on both models"))
    dg_records = [r for r in records if r.role == "diffusion"]
    ar_records = [r for r in records if r.role == "autoregressive"]
    dg_stats = mode_statistics(dg_records, "diffusion", prediction, predicted_steps=workload.steps.typical)
    ar_stats = mode_statistics(ar_records, "autoregressive", prediction, predicted_steps=workload.steps.typical)
    if quality is not None:
        dg_stats = dataclasses.replace(dg_stats, first_useful_draft_seconds=quality)
        ar_stats = dataclasses.replace(ar_stats, first_useful_draft_seconds=quality)
    return WorkloadStatistics(
        workload=workload_name, concurrency=concurrency, prompts=prompts,
        scenario=prediction if isinstance(prediction, Unavailable) else prediction.scenario,
        diffusion=dg_stats, autoregressive=ar_stats, speedup=speedup, edit_distance_between_models=distance,
        measured_verdict=measured_verdict(speedup),
        predicted_verdict=prediction if isinstance(prediction, Unavailable) else prediction.verdict)


def _drop_quality(outcome: RequestOutcome) -> RequestOutcome:
    record = dataclasses.replace(outcome.record, first_useful_draft_seconds=RANDOM_QUALITY, drafts=())
    return RequestOutcome(record, RANDOM_QUALITY)


def _settings(options: VerifyOptions, requests: list[_Request], models: list[ModelUnderTest],
              precision: str | Unavailable, dtype: str, device: str) -> RunSettings:
    reductions: list[str] = []
    if options.quick:
        reductions.append("quick: one prompt per workload")
    if dtype == "fp32" and options.dtype == AUTO_DTYPE:
        reductions.append("fp32 weights: this CPU computes bf16 only by emulation (no AVX512-BF16, AMX or Arm "
                          "BF16), an order of magnitude slower")
    reductions += [f"{ROLE_NAMES[m.role]}: {m.scaling}" for m in models if m.source == "random-weights"]
    steps = sorted({r.steps for r in requests if r.steps is not None})
    fixed: int | Unavailable = (steps[0] if len(steps) == 1 else Unavailable(
        "fixed per workload: " + ", ".join(f"{r.prompt.workload} {r.steps}" for r in requests
                                           if r.steps is not None)) if steps
        else Unavailable("adaptive: the checkpoint's stopping rule decides"))
    if options.random_weights:
        source = "the workloads' lengths as random token ids (random weights need no text)"
    else:
        source = str(options.prompts_path) if options.prompts_path else "the prompts shipped with dgprofile"
    if options.servers:
        return RunSettings(
            dtype=precision if isinstance(precision, str) else options.precision,
            steps_per_canvas=Unavailable("set by the server"), sampler="the server's (temperature 0 requested)",
            autoregressive_decoding="temperature 0", concurrencies=options.concurrencies, ignore_eos=False,
            quick=options.quick, prompts_source=source, warmup="none: the server is already warm",
            reductions=tuple(reductions))
    return RunSettings(
        dtype=dtype, steps_per_canvas=fixed, sampler=SAMPLER, autoregressive_decoding="greedy",
        concurrencies=(1,), ignore_eos=options.random_weights, quick=options.quick, prompts_source=source,
        warmup=_warmup_text(requests, device), reductions=tuple(reductions))


def _measured_run(options: VerifyOptions, machine: Machine, limits: Limits | Unavailable,
                  passes: PassTimes | Unavailable, requests: list[_Request], collected: _Collected,
                  started_at: str, started: float) -> MeasuredRun:
    if options.servers:
        detected = "vllm" if isinstance(collected.engine_version, str) else AUTO
        engine = detected if options.engine == AUTO else options.engine
        precision: str | Unavailable = options.precision
    else:
        engine = "transformers" if options.engine == AUTO else options.engine
        precision = (DTYPE_PRECISIONS[collected.dtype] if collected.dtype in DTYPE_PRECISIONS
                     else Unavailable(f"{collected.dtype} is not a precision the model predicts"))
    outcomes = collected.outcomes
    if options.random_weights:
        outcomes = [(request, _drop_quality(outcome)) for request, outcome in outcomes]
    config: ModelConfig | Unavailable = collected.configs.get("diffusion", Unavailable("DiffusionGemma never ran"))
    released = load_model_config()
    for model in collected.models:
        if model.source == "checkpoint" and (model.layers_total, model.vocab_total) != (
                released.backbone.num_layers, released.backbone.vocab_size):
            config = Unavailable(f"not predicted: {model.model_id} is not the released architecture "
                                 f"({model.layers_total} layers, vocabulary {model.vocab_total:,})")
    workloads = []
    concurrencies = options.concurrencies if options.servers else (1,)
    for name in dict.fromkeys(request.prompt.workload for request in requests):
        for concurrency in concurrencies:
            of_workload = [(r, o) for r, o in outcomes
                           if r.prompt.workload == name and o.record.concurrency == concurrency]
            if not of_workload:
                continue
            prediction = _prediction(machine, limits, passes, [o.record for _, o in of_workload], name,
                                     precision=precision, engine=engine, config=config, concurrency=concurrency)
            workloads.append(_workload_statistics(of_workload, name, concurrency, prediction,
                                                  quality=RANDOM_QUALITY if options.random_weights else None))
    if isinstance(config, ModelConfig) and engine == AUTO:
        engine = next((w.scenario.engine for w in workloads if not isinstance(w.scenario, Unavailable)), engine)
    if isinstance(config, Unavailable):
        basis = config.reason
    elif isinstance(precision, Unavailable):
        basis = f"not predicted: {precision.reason}"
    else:
        basis = (f"{engine} engine on this machine's "
                 f"{'measured limits' if isinstance(limits, Limits) else 'datasheet'}, for {config.name} at {precision}"
                 + (" (the run held fp32 weights, which move twice the bytes)" if collected.dtype == "fp32" else ""))
    incomplete = tuple(collected.incomplete)
    return MeasuredRun(
        backend="openai-server" if options.servers else "transformers",
        engine=engine if engine != AUTO else "unknown OpenAI-compatible server",
        engine_version=collected.engine_version,
        device=collected.device, started_at=started_at, duration_seconds=round(time.monotonic() - started, 3),
        status="incomplete" if incomplete else "complete", incomplete_reasons=incomplete,
        models=tuple(collected.models), predicted_model=config.id if isinstance(config, ModelConfig) else config,
        settings=_settings(options, requests, collected.models, precision, collected.dtype, collected.device), prediction_basis=basis,
        workloads=tuple(workloads), requests=tuple(o.record for _, o in outcomes), servers=tuple(collected.servers))


LIMITS_INTERRUPTED = "while measuring this machine's limits: no model ran"


def _base_measurements(options: VerifyOptions, base: ResultFile | None, command: tuple[str, ...],
                       progress: Progress
                       ) -> tuple[Machine, Limits | Unavailable, PassTimes | Unavailable, Interruption | None]:
    """The machine, its limits and passes, and what interrupted measuring them, if anything."""
    if base is not None:
        if not isinstance(base.machine, Machine):
            raise UsageError("--result must be a measured result (from `dgprofile check`), not a prediction")
        return base.machine, base.limits, base.passes, None
    if options.servers:  # the servers hold the accelerator: its limits come from a `check` run (--result)
        return (probe_machine(anonymize=options.anonymize),
                Unavailable("not measured: the servers hold the accelerator (pass a `check` result with --result)"),
                Unavailable("not measured"), None)
    bench = run_bench(MeasureOptions(quick=True, device=options.device, anonymize=options.anonymize,
                                     wait_seconds=options.wait_seconds, limits_only=True),
                      command=command, progress=progress)
    machine = bench.result.machine
    if not isinstance(machine, Machine):
        machine = probe_machine(anonymize=options.anonymize)
    return (machine, bench.result.limits, Unavailable("not measured: `verify` ran the real models instead"),
            bench.interruption)


def run_verify(options: VerifyOptions, *, base: ResultFile | None, command: tuple[str, ...],
               progress: Progress) -> VerifyOutcome:
    """Run both models, build the measured run, and return the result file that holds it (``base`` with the run
    added, or a new one)."""
    _check_options(options)
    prompts = select_prompts(load_prompts(options.prompts_path), workloads=options.workloads,
                             per_workload=1 if options.quick else None)
    started_at, started = _now(), time.monotonic()
    machine, limits, passes, interruption = _base_measurements(options, base, command, progress)
    requests = _requests(options, prompts)
    if interruption is not None:  # keep what was measured and run nothing more
        collected = _Collected([], [], {}, [f"interrupted ({interruption.value}) {LIMITS_INTERRUPTED}"],
                               interruption, Unavailable("no model ran"), options.device, options.dtype)
    else:
        collected = (_run_servers(options, requests, progress) if options.servers
                     else _run_models(options, machine, requests, progress))
    progress("setting the measured figures beside the prediction")
    run = _measured_run(options, machine, limits, passes, requests, collected, started_at, started)
    engine = run.engine
    if base is not None:
        predictions = base.predictions
        runs = base.measured_runs + (run,)
        result = dataclasses.replace(base, measured_runs=runs, predictions=(
            headline_from_measured(predictions, runs) if isinstance(predictions, Predictions) else predictions))
        return VerifyOutcome(result, run, collected.interruption)
    try:
        precision = options.precision if options.servers else DTYPE_PRECISIONS.get(run.settings.dtype)
        engine_name = engine if engine in ENGINE_NAMES else AUTO
        whole: Predictions | Unavailable = headline_from_measured(
            predict_for_machine(machine, limits, passes,
                                options=PredictOptions(engine=engine_name, precision=precision)), (run,))
    except UsageError as exc:
        whole = Unavailable(str(exc))
    info = RunInfo(command=command, origin="measured", label=f"dgprofile verify on {collected.device}",
                   started_at=started_at, finished_at=_now(), duration_seconds=round(time.monotonic() - started, 3),
                   status=run.status, incomplete_reasons=run.incomplete_reasons)
    result = new_result(run=info, machine=machine, limits=limits, passes=passes, predictions=whole,
                        measured_runs=(run,))
    return VerifyOutcome(result, run, collected.interruption)
