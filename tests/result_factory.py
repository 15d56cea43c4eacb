"""Realistic ResultFile objects built in code, for tests of pages, fleets and comparisons.

The figures are plausible for the machines they describe (datasheet bandwidths, the pass sizes that
``dgprofile.specs.pass_cost`` gives), not measurements: tests check how results are shown, never what they say
about real hardware. Every builder takes keyword overrides so a test states only what it is about.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from dgprofile import __version__
from dgprofile.records.limits import BandwidthFigure, LatencyFigure, Limits, MatmulFigure
from dgprofile.records.machine import (
    AppleGpu,
    CpuInfo,
    Identity,
    Machine,
    MemoryClass,
    NvidiaGpu,
    Software,
)
from dgprofile.records.passes import PassMeasurement, PassTimes
from dgprofile.records.predictions import (
    Basis,
    CalibrationSummary,
    Ceilings,
    Curve,
    CurvePoint,
    EngineParameters,
    MemoryFit,
    ModeEstimate,
    ObservableResidual,
    PassEstimate,
    Prediction,
    Predictions,
    RunReproduction,
    Scenario,
    Verdict,
)
from dgprofile.records.results import FORMAT_NAME, SCHEMA_VERSION, ResultFile, RunInfo, dumps
from dgprofile.records.timing import InstabilityFlag, Timing
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import (
    DraftPoint,
    MeasuredFigure,
    MeasuredRun,
    ModelUnderTest,
    ModeStatistics,
    ProcessGpuMemory,
    RequestRecord,
    RunSettings,
    ServerLevelTiming,
    ServerObservation,
    TimingAgreement,
    WorkloadStatistics,
)

GIB = 1 << 30
HOSTILE_TEXT = "<script>alert('x')</script>\"quoted\" & 'single'"

WORKLOADS = {  # name -> (prompt tokens, output tokens, steps per canvas)
    "short-completion": (256, 64, 12.0),
    "structured-rewrite": (1024, 256, 14.0),
    "code-infill": (2048, 128, 12.0),
    "long-form-drafting": (512, 1024, 16.0),
}


def timing(median_seconds: float, *, cv: float = 0.01, samples: int = 15,
           unstable: tuple[InstabilityFlag, ...] = ()) -> Timing:
    """A timing with a symmetric spread of ``cv`` around the median."""
    return Timing(median_seconds=median_seconds, iqr_seconds=median_seconds * cv * 1.35,
                  min_seconds=median_seconds * (1 - 2 * cv), max_seconds=median_seconds * (1 + 3 * cv),
                  coefficient_of_variation=cv, samples=samples, loops=4, warmup_runs=3,
                  timer="cuda-graph-events" if median_seconds < 1 else "perf-counter", unstable=unstable)


def busy_gpu_flag() -> InstabilityFlag:
    """The instability flag a busy GPU raises."""
    return InstabilityFlag(code="busy-gpu", message="another process used the GPU during the measurement",
                           advice="stop other GPU work and rerun")


def cpu(*, model: str = "AMD EPYC 9654 96-Core Processor", ram_bytes: int = 2048 * GIB) -> CpuInfo:
    """A host CPU."""
    return CpuInfo(model=model, architecture="x86_64", physical_cores=96, logical_cores=192,
                   inference_flags=("avx2", "avx512f", "avx512_bf16"), l3_cache_bytes=384 << 20,
                   ram_total_bytes=ram_bytes, ram_available_bytes=int(ram_bytes * 0.8),
                   theoretical_bandwidth_bytes_per_s=460.8e9, theoretical_bandwidth_basis="12 channels DDR5-4800",
                   numa_nodes=2)


def software(*, torch_version: str | Unavailable = "2.13.0") -> Software:
    """A software stack."""
    return Software(python_version="3.11.7", os_name="Linux", os_release="6.8.0", torch_version=torch_version,
                    torch_cuda_version="12.8", torch_mps_available=False, triton_version="3.5.0",
                    transformers_version=Unavailable("not installed"), vllm_version=Unavailable("not installed"),
                    nvidia_ml_py_version="12.575.51")


def nvidia_gpu(*, name: str = "NVIDIA H100 80GB HBM3", memory_bytes: int = 85520809984,
               bandwidth_bytes_per_s: float = 3.352e12, spec_id: str = "h100-sxm") -> NvidiaGpu:
    """A discrete NVIDIA GPU as the NVML probe describes it."""
    return NvidiaGpu(
        kind="nvidia-gpu", index=0, name=name, uuid="GPU-5d3f1c2a-0000-4000-8000-000000000001",
        pci_bus_id="00000000:18:00.0", architecture="Hopper", compute_capability="9.0",
        driver_version="570.124.06", cuda_driver_version="12.8", nvml_version="12.570.124.06",
        memory_total_bytes=memory_bytes, memory_free_bytes=memory_bytes - GIB, memory_used_bytes=GIB,
        memory_bus_width_bits=5120, memory_clock_max_hz=2.619e9,
        nvml_derived_bandwidth_bytes_per_s=bandwidth_bytes_per_s, datasheet_bandwidth_bytes_per_s=3.35e12,
        bandwidth_disagrees_with_datasheet=False, theoretical_bandwidth_bytes_per_s=bandwidth_bytes_per_s,
        theoretical_bandwidth_basis="5120-bit bus x 2619 MHz x 2 (HBM double data rate)", sm_count=132,
        sm_count_basis="NVML",
        sm_clock_max_hz=1.98e9, power_limit_w=700.0, pcie_generation=5, pcie_width=16, mig_mode="disabled",
        ecc_mode="enabled", utilization_percent=0, other_processes=(),
        memory_class=MemoryClass(kind="discrete", signals=("NVML reports dedicated framebuffer memory",),
                                 usable_bytes=memory_bytes - GIB, usable_basis="NVML free memory"),
        spec_id=spec_id, warnings=())


def apple_gpu(*, chip: str = "Apple M3 Max", gpu_cores: int = 40, memory_bytes: int = 64 * GIB) -> AppleGpu:
    """An Apple Silicon GPU sharing unified memory with the CPU."""
    return AppleGpu(
        kind="apple-gpu", index=0, name=f"{chip} ({gpu_cores}-core GPU)", chip=chip, gpu_cores=gpu_cores,
        unified_memory_bytes=memory_bytes, recommended_working_set_bytes=int(memory_bytes * 0.75),
        theoretical_bandwidth_bytes_per_s=400e9, theoretical_bandwidth_basis="datasheet (chip + GPU-core bin)",
        macos_version="15.3",
        memory_class=MemoryClass(kind="shared-physical", signals=("Apple Silicon: one unified memory pool",),
                                 usable_bytes=int(memory_bytes * 0.75),
                                 usable_basis="Metal recommendedMaxWorkingSetSize"),
        spec_id="m3-max-40", verified_on_hardware=False, warnings=())


def machine(*, hostname: str = "gpu-node-01", accelerators: tuple | None = None, cpu_info: CpuInfo | None = None,
            warnings: tuple[str, ...] = ()) -> Machine:
    """A machine; by default one H100."""
    return Machine(identity=Identity(hostname=hostname, anonymized=False), cpu=cpu_info or cpu(),
                   accelerators=(nvidia_gpu(),) if accelerators is None else accelerators, software=software(), probe_seconds=0.41,
                   warnings=warnings, probe_notes=())


def limits(*, device: str = "cuda:0", device_name: str = "NVIDIA H100 80GB HBM3",
           stream_bytes_per_s: float = 3.07e12, peak_bf16_flops_per_s: float = 7.2e14,
           launch_seconds: float = 2.4e-6, unstable: tuple[InstabilityFlag, ...] = ()) -> Limits:
    """Measured ceilings of one device; the fp8 rate is twice the bf16 rate, as on Hopper."""
    peaks = {"bf16": peak_bf16_flops_per_s, "fp8": 2 * peak_bf16_flops_per_s}
    ridges = {dtype: rate / stream_bytes_per_s for dtype, rate in peaks.items()}
    buffer_bytes = 8 * GIB
    read = BandwidthFigure(name="stream-read", method="torch sum over a bf16 buffer", buffer_bytes=buffer_bytes,
                           bytes_moved_per_call=buffer_bytes, bytes_per_s=stream_bytes_per_s,
                           timing=timing(buffer_bytes / stream_bytes_per_s, unstable=unstable),
                           fraction_of_theoretical=0.916)
    copy = BandwidthFigure(name="copy", method="torch copy_", buffer_bytes=buffer_bytes,
                           bytes_moved_per_call=2 * buffer_bytes, bytes_per_s=stream_bytes_per_s * 0.96,
                           timing=timing(2 * buffer_bytes / (stream_bytes_per_s * 0.96)),
                           fraction_of_theoretical=0.88)
    matmuls = (
        MatmulFigure(label="square 8192", dtype="bf16", m=8192, n=8192, k=8192,
                     flops_per_s=peak_bf16_flops_per_s, timing=timing(2 * 8192 ** 3 / peak_bf16_flops_per_s)),
        MatmulFigure(label="decode M=1 expert", dtype="bf16", m=1, n=704, k=2816,
                     flops_per_s=peak_bf16_flops_per_s / 400, timing=timing(4e-6, cv=0.04)),
        MatmulFigure(label="canvas M=256 expert", dtype="bf16", m=256, n=704, k=2816,
                     flops_per_s=peak_bf16_flops_per_s / 9, timing=timing(8e-6, cv=0.02)),
    )
    return Limits(device=device, device_name=device_name, stream_read_bytes_per_s=stream_bytes_per_s,
                  copy_bytes_per_s=stream_bytes_per_s * 0.96, bandwidth=(read, copy), host_transfer=(),
                  matmul=matmuls, peak_flops_per_s=peaks, ridge_flop_per_byte=ridges,
                  ridge_tokens={dtype: round(ridge / 2) for dtype, ridge in ridges.items()},
                  latency=(LatencyFigure(name="graph-launch", seconds=launch_seconds, timing=timing(launch_seconds,
                                                                                                  cv=0.05)),),
                  launch_floor_seconds=launch_seconds, seconds_taken=9.8, notes=())


def pass_measurement(kind: str, *, precision: str = "bf16", concurrency: int = 1, bytes_moved: float,
                     flops: float, bandwidth_bytes_per_s: float, flops_per_s: float,
                     overhead_seconds: float, sampler_seconds: float = 0.0) -> PassMeasurement:
    """One pass whose time is the larger of its bandwidth and compute floors plus overhead and sampler."""
    weights = bytes_moved / bandwidth_bytes_per_s
    compute = flops / flops_per_s
    seconds = max(weights, compute) + overhead_seconds + sampler_seconds
    tokens = {"ar-step": 1, "prefill": 1024}.get(kind, 256)
    return PassMeasurement(
        pass_kind=kind, precision=precision, concurrency=concurrency, tokens_per_request=tokens,
        context_tokens=1024, seconds=seconds, timing=timing(seconds / 5), measured=True,
        basis="sampled 6 of 30 layers at full width, scaled to 30", layers_measured=6, layers_total=30,
        experts_touched_per_layer=8.0 if kind == "ar-step" else 128.0, bytes_moved=bytes_moved, flops=flops,
        achieved_bytes_per_s=bytes_moved / seconds, achieved_flops_per_s=flops / seconds,
        bandwidth_floor_seconds=weights, compute_floor_seconds=compute,
        fraction_of_bandwidth_floor=weights / seconds, fraction_of_compute_floor=compute / seconds,
        roofline_floor_seconds=max(weights, compute), fraction_of_roofline_floor=max(weights, compute) / seconds,
        breakdown_seconds={"weights": weights, "compute": max(0.0, compute - weights),
                           "overhead": overhead_seconds, "sampler": sampler_seconds})


def passes(*, bandwidth_bytes_per_s: float = 3.07e12, flops_per_s: float = 7.2e14,
           overhead_seconds: float = 2.5e-3, precisions: Iterable[str] = ("bf16",),
           concurrencies: Iterable[int] = (1, 2, 4)) -> PassTimes:
    """AR step, DG denoise, DG commit and prefill at the pass sizes ``dgprofile.specs.pass_cost`` gives, their
    layers run in the fused Triton kernels as on a GPU."""
    precisions = tuple(precisions)
    bytes_per_param = {"bf16": 2.0, "fp8": 1.0, "int4": 0.56}
    measurements = []
    for precision in precisions:
        scale = bytes_per_param[precision] / 2.0
        for c in concurrencies:
            common = {"precision": precision, "concurrency": c, "bandwidth_bytes_per_s": bandwidth_bytes_per_s,
                      "flops_per_s": flops_per_s}
            measurements += [
                pass_measurement("ar-step", bytes_moved=7.6e9 * scale * min(c, 3), flops=7.6e9 * c,
                                 overhead_seconds=overhead_seconds, **common),
                pass_measurement("dg-denoise", bytes_moved=52e9 * scale, flops=2.38e12 * c,
                                 overhead_seconds=overhead_seconds / 4, sampler_seconds=4e-4 * c, **common),
                pass_measurement("dg-commit", bytes_moved=49e9 * scale, flops=1.58e12 * c,
                                 overhead_seconds=overhead_seconds / 4, **common),
                pass_measurement("prefill", bytes_moved=49e9 * scale, flops=6.2e12 * c,
                                 overhead_seconds=overhead_seconds / 4, **common),
            ]
    return PassTimes(model_id="diffusiongemma-26b-a4b", device="cuda:0", passes=tuple(measurements),
                     reductions=(), seconds_taken=21.5, fused_layers=precisions)


def pass_estimate(kind: str, *, seconds: float, count: float, weights_share: float = 0.7,
                  bound_by: str = "weights") -> PassEstimate:
    """One predicted pass whose critical path is weights streaming, overhead and (for denoise) the sampler."""
    sampler = 0.06 * seconds if kind == "dg-denoise" else 0.0
    weights = (seconds - sampler) * weights_share
    overhead = seconds - sampler - weights
    terms = {"weights": weights, "kv-cache": weights * 0.02, "compute": weights * 0.4, "sampler": sampler,
             "overhead": overhead}
    return PassEstimate(pass_kind=kind, count_per_request=count, seconds=seconds, bound_by=bound_by,
                        terms_seconds=terms,
                        critical_seconds={"weights": weights, "sampler": sampler, "overhead": overhead},
                        bytes_moved=27.5e9 if kind != "ar-step" else 4.1e9,
                        flops=2.38e12 if kind != "ar-step" else 7.6e9, basis="calibrated")


def mode(*, tokens_per_s: float, pass_seconds: float, output_tokens: int, memory_bytes: int,
         ttft_s: float, concurrency: int = 1, diffusion: bool) -> ModeEstimate:
    """One decoding mode's estimate; latency follows from the rate."""
    total = ttft_s + output_tokens / tokens_per_s
    if diffusion:
        estimates = (pass_estimate("prefill", seconds=0.09, count=1),
                     pass_estimate("dg-denoise", seconds=pass_seconds, count=16),
                     pass_estimate("dg-commit", seconds=pass_seconds * 0.9, count=1))
    else:
        estimates = (pass_estimate("prefill", seconds=0.05, count=1),
                     pass_estimate("ar-step", seconds=pass_seconds, count=output_tokens, weights_share=0.25,
                                   bound_by="overhead"))
    characteristic = estimates[1]
    return ModeEstimate(tokens_per_s=tokens_per_s, aggregate_tokens_per_s=tokens_per_s * concurrency,
                        ttft_s=ttft_s, first_draft_s=ttft_s * 0.6, total_latency_s=total,
                        memory_bytes=memory_bytes, pass_seconds=pass_seconds,
                        breakdown_seconds=dict(characteristic.critical_seconds), passes=estimates)


def prediction(*, workload: str = "short-completion", precision: str = "fp8", concurrency: int = 1,
               engine: str = "vllm", speedup: float = 5.1, band: float = 0.15,
               verdict: Verdict | None = None, reasons: tuple[str, ...] = (),
               ar_tokens_per_s: float = 197.0, memory_bytes: int = 31 * GIB,
               output_tokens: int | None = None) -> Prediction:
    """Both modes in one scenario; DG's rate is AR's times ``speedup``."""
    prompt, output, steps = WORKLOADS[workload]
    output = output_tokens or output
    if verdict is None:
        verdict = verdict_for(speedup * (1 - band), speedup)
    scenario = Scenario(workload=workload, precision=precision, concurrency=concurrency, engine=engine,
                        prompt_tokens=prompt, output_tokens=output, steps_per_canvas=steps)
    dg = mode(tokens_per_s=ar_tokens_per_s * speedup, pass_seconds=256 / (ar_tokens_per_s * speedup) / (steps + 1),
              output_tokens=output, memory_bytes=memory_bytes + 2 * GIB, ttft_s=0.3, concurrency=concurrency,
              diffusion=True)
    ar = mode(tokens_per_s=ar_tokens_per_s, pass_seconds=1 / ar_tokens_per_s, output_tokens=output,
              memory_bytes=memory_bytes, ttft_s=0.05, concurrency=concurrency, diffusion=False)
    return Prediction(scenario=scenario, diffusion=dg, autoregressive=ar, speedup=speedup,
                      speedup_low=speedup * (1 - band), speedup_high=speedup * (1 + band), verdict=verdict,
                      reasons=reasons or (f"a denoise pass costs {dg.pass_seconds / ar.pass_seconds:.1f}x an AR step",))


def verdict_for(low: float, speedup: float) -> Verdict:
    """The verdict class ``dgprofile.model.verdict``'s thresholds give (lower band >= 3x applies)."""
    return Verdict.APPLIES if low >= 3 else Verdict.PARTIAL if speedup > 1.2 else Verdict.DOES_NOT_APPLY


def curve(name: str, x_label: str, scenario: Scenario, points: Iterable[tuple[float, float]],
          ar_tokens_per_s: float, band: float = 0.15) -> Curve:
    """A speedup curve through (x, speedup) points."""
    return Curve(name=name, x_label=x_label, scenario=scenario, points=tuple(
        CurvePoint(x=x, speedup=s, speedup_low=s * (1 - band), speedup_high=s * (1 + band),
                   diffusion_tokens_per_s=ar_tokens_per_s * s, autoregressive_tokens_per_s=ar_tokens_per_s)
        for x, s in points))


def memory_fit(precision: str, *, usable_bytes: int, weights_bytes: int, engine_runs_it: bool = True) -> MemoryFit:
    """Whether a precision fits, with the KV cache and DG sampler buffers of one short request."""
    kv, buffers, headroom = 400 << 20, int(2.5 * GIB), 2 * GIB
    dg_need, ar_need = weights_bytes + kv + buffers + headroom, weights_bytes + kv + headroom
    return MemoryFit(precision=precision, gpus=1, concurrency=1, usable_bytes=usable_bytes,
                     usable_basis="probed usable memory", weights_bytes=weights_bytes, diffusion_kv_cache_bytes=kv,
                     autoregressive_kv_cache_bytes=kv, diffusion_buffers_bytes=buffers,
                     activation_headroom_bytes=headroom, diffusion_needed_bytes=dg_need,
                     autoregressive_needed_bytes=ar_need, fits_diffusion=dg_need <= usable_bytes,
                     fits_autoregressive=ar_need <= usable_bytes,
                     max_diffusion_concurrency=max(0, (usable_bytes - weights_bytes - headroom) // (buffers + kv)),
                     engine_runs_it=engine_runs_it,
                     note="" if engine_runs_it else f"the engine does not run {precision} here")


def ceilings(*, source: str = "measured", device_name: str = "NVIDIA H100 80GB HBM3",
             hardware_id: str = "h100-sxm", memory_class: str = "discrete", bandwidth_bytes_per_s: float = 3.07e12,
             peak_flops_per_s: dict[str, float] | None = None, usable_bytes: int = 84 * GIB) -> Ceilings:
    """The limits a prediction used."""
    return Ceilings(source=source, device_name=device_name, hardware_id=hardware_id,
                    vendor="apple" if memory_class == "shared-physical" else "nvidia",
                    device_type="soc-gpu" if memory_class == "shared-physical" else "discrete-gpu", gpus=1,
                    memory_class=memory_class, bandwidth_bytes_per_s=bandwidth_bytes_per_s,
                    peak_flops_per_s=peak_flops_per_s or {"bf16": 7.2e14, "fp8": 1.44e15},
                    native_precisions=("bf16", "fp8"), usable_memory_bytes=usable_bytes,
                    usable_memory_basis="probed usable memory", interconnect_bytes_per_s=Unavailable("one GPU"),
                    launch_floor_seconds=2.4e-6,
                    sources=("measured on this machine" if source == "measured" else "dgprofile/data/hardware.json",))


def calibration() -> CalibrationSummary:
    """The engine fit and how it reproduces one published run."""
    engine = EngineParameters(engine="vllm", pass_floor_seconds=4.1e-3, diffusion_step_overhead_seconds=1.2e-3,
                              bandwidth_efficiency=0.82, compute_efficiency=0.55, diffusion_workspace_fraction=0.0,
                              fitted=("pass_floor_seconds",),
                              priors=("bandwidth_efficiency",), runs=("vllm-blog-h100-fp8",), rms_log_residual=0.06)
    run = RunReproduction(run_id="vllm-blog-h100-fp8", engine="vllm", hardware="h100-sxm", observables=(
        ObservableResidual(name="dg_tokens_per_s", published=1008.0, predicted=1050.0, relative_error=0.042,
                           used_in_fit=True),), published_speedup=5.12, predicted_speedup=5.3,
        published_verdict=Verdict.APPLIES, predicted_verdict=Verdict.APPLIES)
    return CalibrationSummary(data_file="calibration-runs.json", engines=(engine,), runs=(run,),
                              max_abs_relative_error=0.042)


def predictions(*, speedup: float = 5.1, engine: str = "vllm", precisions: tuple[str, ...] = ("fp8", "bf16"),
                ar_tokens_per_s: float = 197.0, verdict: Verdict | None = None,
                reasons: tuple[str, ...] = (), ceilings_: Ceilings | None = None,
                weights_bytes: dict[str, int] | None = None) -> Predictions:
    """A headline (first precision, long-form drafting, concurrency 1), a matrix over workloads, precisions and
    concurrencies 1, 2, 4, 8, both curves and the memory fit; the speedup falls with concurrency as the pass turns
    compute-bound and for outputs shorter than a canvas."""
    ceil = ceilings_ or ceilings()
    weights = weights_bytes or {"bf16": 48 * GIB, "fp8": 27 * GIB, "int4": 15 * GIB}

    def scaled(p: str, w: str, c: int) -> float:
        return speedup * (1.0 if p == precisions[0] else 0.8) / (1 + 0.45 * (c - 1)) * (
            0.6 if WORKLOADS[w][1] < 256 else 1.0)

    matrix = tuple(prediction(workload=w, precision=p, concurrency=c, engine=engine, ar_tokens_per_s=ar_tokens_per_s,
                              speedup=scaled(p, w, c), memory_bytes=weights[p] + 3 * GIB)
                   for p in precisions for w in WORKLOADS for c in (1, 2, 4, 8))
    headline = prediction(workload="long-form-drafting", precision=precisions[0], engine=engine, speedup=speedup,
                          ar_tokens_per_s=ar_tokens_per_s, verdict=verdict, reasons=reasons,
                          memory_bytes=weights[precisions[0]] + 3 * GIB)
    curves = (
        curve("speedup-vs-output-tokens", "output tokens", headline.scenario,
              [(n, speedup * min(1.0, n / 256) ** 0.5) for n in (32, 64, 128, 256, 512, 1024, 2048)], ar_tokens_per_s),
        curve("speedup-vs-concurrency", "concurrent requests", headline.scenario,
              [(c, speedup / (1 + 0.45 * (c - 1))) for c in (1, 2, 4, 8)], ar_tokens_per_s),
    )
    memory = tuple(memory_fit(p, usable_bytes=ceil.usable_memory_bytes, weights_bytes=weights[p])
                   for p in ("bf16", "fp8", "int4"))
    final_verdict = headline.verdict
    return Predictions(
        model_id="diffusiongemma-26b-a4b", hardware=ceil.device_name, origin=ceil.source, engine=engine,
        engine_reason=f"{engine} is what a user of this platform would run", headline=headline,
        verdict=final_verdict, reasons=headline.reasons,
        advice=("verify on real weights with the vLLM commands below",), matrix=matrix, curves=curves,
        memory=memory, ceilings=ceil, calibration=calibration(),
        basis=(Basis(quantity="bandwidth and matmul peak", kind=ceil.source, source=ceil.sources[0]),
               Basis(quantity="engine overhead", kind="calibrated",
                     source="calibration-runs.json: vllm-blog-h100-fp8"),
               Basis(quantity="steps per canvas", kind="calibrated",
                     source="calibration-runs.json denoising_steps_evidence")))


def run_info(*, origin: str = "measured", label: str = "", finished_at: str = "2026-11-20T10:15:00Z",
             status: str = "complete", incomplete_reasons: tuple[str, ...] = ()) -> RunInfo:
    """How a run came to be."""
    command = ("dgprofile", "check") if origin == "measured" else ("dgprofile", "predict", "--hardware", label)
    return RunInfo(command=command, origin=origin, label=label, started_at="2026-11-20T10:14:00Z",
                   finished_at=finished_at, duration_seconds=58.2, status=status,
                   incomplete_reasons=incomplete_reasons)


def result(*, run: RunInfo | None = None, machine_: Machine | Unavailable | None = None,
           limits_: Limits | Unavailable | None = None, passes_: PassTimes | Unavailable | None = None,
           predictions_: Predictions | Unavailable | None = None) -> ResultFile:
    """A whole result file; by default a complete measured H100 run."""
    run = run or run_info()
    return ResultFile(format=FORMAT_NAME, schema_version=SCHEMA_VERSION, tool_version=__version__,
                      created_at=run.finished_at, run=run,
                      machine=machine_ if machine_ is not None else machine(),
                      limits=limits_ if limits_ is not None else limits(),
                      passes=passes_ if passes_ is not None else passes(precisions=("bf16", "fp8")),
                      predictions=predictions_ if predictions_ is not None else predictions())


def measured_h100_result(**overrides: object) -> ResultFile:
    """A complete `dgprofile check` on an H100: the advertised speedup applies."""
    return dataclasses.replace(result(), **overrides) if overrides else result()


def predicted_apple_result() -> ResultFile:
    """`dgprofile predict --hardware m3-max-40`, shaped as `predict` writes it: no machine was probed, nothing
    measured, datasheet ceilings; DiffusionGemma slower than AR."""
    datasheet = "predicted from the datasheet of Apple M3 Max (40-core GPU)"
    return result(run=run_info(origin="predicted", label="m3-max-40"),
                  machine_=Unavailable(datasheet),
                  limits_=Unavailable(f"{datasheet}: nothing was measured"),
                  passes_=Unavailable(f"{datasheet}: nothing was measured"),
                  predictions_=predictions(
                      speedup=0.22, engine="mlx", precisions=("int4", "fp8"), ar_tokens_per_s=70.0,
                      reasons=("compute-bound: a denoise pass costs 60x an AR step here",),
                      ceilings_=ceilings(source="datasheet", device_name="Apple M3 Max (40-core GPU)",
                                         hardware_id="m3-max-40", memory_class="shared-physical",
                                         bandwidth_bytes_per_s=400e9, peak_flops_per_s={"fp16": 28.4e12},
                                         usable_bytes=48 * GIB)))


def apple_laptop_result(*, hostname: str = "m3-max-laptop") -> ResultFile:
    """A probed Apple Silicon laptop whose predictions rest on its datasheet (nothing benchmarked)."""
    predicted = predicted_apple_result()
    return dataclasses.replace(predicted, run=run_info(origin="measured"),
                               machine=machine(hostname=hostname, accelerators=(apple_gpu(),),
                                               cpu_info=cpu(model="Apple M3 Max", ram_bytes=64 * GIB)))


def probe_only_result(*, hostname: str = "cpu-box") -> ResultFile:
    """`dgprofile probe` on a CPU-only machine: no limits, passes or predictions."""
    return result(run=run_info(status="incomplete", incomplete_reasons=("probe only",)),
                  machine_=machine(hostname=hostname, accelerators=(),
                                   cpu_info=cpu(model="Intel(R) Xeon(R) CPU @ 2.20GHz", ram_bytes=24 * GIB)),
                  limits_=Unavailable("probe only: limits were not measured"),
                  passes_=Unavailable("probe only: passes were not measured"),
                  predictions_=Unavailable("probe only: nothing was predicted"))


def hostile_result() -> ResultFile:
    """A result whose hostname and GPU name carry markup and quotes, as a hostile or careless file might."""
    gpu = nvidia_gpu(name=f"H100 {HOSTILE_TEXT}")
    return result(machine_=machine(hostname=f"host{HOSTILE_TEXT}", accelerators=(gpu,)),
                  limits_=limits(device_name=gpu.name))


def with_identity(base: ResultFile, *, hostname: str, created_at: str) -> ResultFile:
    """``base`` as if run on another host at another time (for fleets)."""
    assert isinstance(base.machine, Machine)
    new_machine = dataclasses.replace(base.machine, identity=Identity(hostname=hostname, anonymized=False))
    return dataclasses.replace(base, machine=new_machine, created_at=created_at,
                               run=dataclasses.replace(base.run, finished_at=created_at))


# ---------------------------------------------------------------------------------------------------------------
# Directories of result files, for the fleet

def write_result(path: Path, result: ResultFile) -> Path:
    path.write_text(dumps(result), encoding="utf-8")
    return path


def write_mixed_fleet(directory: Path) -> Path:
    """Three good files, plus a truncated one, one of another schema and one of a newer schema version."""
    write_result(directory / "h100.json", measured_h100_result())
    write_result(directory / "m3.json", predicted_apple_result())
    write_result(directory / "cpu.json", probe_only_result())
    (directory / "truncated.json").write_text(dumps(measured_h100_result())[:700], encoding="utf-8")
    (directory / "other-schema.json").write_text(json.dumps({"benchmarks": [], "version": "4.0"}), encoding="utf-8")
    newer = json.loads(dumps(measured_h100_result()))
    newer["schema_version"] = SCHEMA_VERSION + 1
    (directory / "newer.json").write_text(json.dumps(newer), encoding="utf-8")
    (directory / "notes.txt").write_text("not a result", encoding="utf-8")
    return directory


def generate_fleet(directory: Path, count: int) -> None:
    """``count`` distinct result files, a mix of measured H100, predicted Apple and probe-only runs."""
    bases = [dumps(measured_h100_result()), dumps(predicted_apple_result()), dumps(probe_only_result())]
    created = '"created_at": "2026-11-20T10:15:00Z"'
    for i in range(count):
        text = bases[i % 3].replace(created, f'"created_at": "2026-11-{1 + i // 60 % 28:02d}T10:{i % 60:02d}:00Z"')
        text = text.replace('"hostname": "gpu-node-01"', f'"hostname": "node-{i:04d}"')
        (directory / f"r{i:04d}.json").write_text(text, encoding="utf-8")


# --- measured runs (`dgprofile verify`) ------------------------------------------------------------------------


def measured_figure(median: float, predicted: float | Unavailable, *, spread: float = 0.1,
                    samples: int = 3) -> MeasuredFigure:
    """A figure's median and quartiles (``spread`` either side) beside its prediction."""
    residual = median / predicted - 1 if isinstance(predicted, float) else predicted
    return MeasuredFigure(median=median, p25=median * (1 - spread), p75=median * (1 + spread),
                          minimum=median * (1 - 2 * spread), maximum=median * (1 + 2 * spread), samples=samples,
                          predicted=predicted, residual=residual)


def mode_statistics(role: str, mode_: ModeEstimate, *, factor: float, output_tokens: int) -> ModeStatistics:
    """One model's measured figures: the prediction's times ``factor`` (slower above 1)."""
    pass_kind = "dg-denoise" if role == "diffusion" else "ar-step"
    pass_seconds = next(p.seconds for p in mode_.passes if p.pass_kind == pass_kind)
    rate = output_tokens / mode_.total_latency_s
    return ModeStatistics(
        role=role, requests=3, failed=0,
        output_tokens=measured_figure(output_tokens, Unavailable("set by the request, not predicted"), spread=0),
        ttft_seconds=measured_figure(mode_.ttft_s * factor, mode_.ttft_s),
        first_useful_draft_seconds=measured_figure(mode_.first_draft_s * factor, mode_.first_draft_s),
        total_latency_seconds=measured_figure(mode_.total_latency_s * factor, mode_.total_latency_s),
        tokens_per_s=measured_figure(rate / factor, rate),
        pass_seconds=measured_figure(pass_seconds * factor, pass_seconds),
        steps_per_canvas=(measured_figure(16.0, 15.7, spread=0) if role == "diffusion"
                          else Unavailable("autoregressive: one token per forward, no canvases")),
        tokens_per_forward=measured_figure(16.0 if role == "diffusion" else 1.0, Unavailable("not predicted"),
                                           spread=0),
        peak_memory_bytes=measured_figure(mode_.memory_bytes * 0.9, float(mode_.memory_bytes), spread=0.01))


def measured_run(*, prediction_: Prediction | None = None, dg_factor: float = 1.2, ar_factor: float = 0.9,
                 engine: str = "vllm", backend: str = "openai-server", started_at: str = "2026-11-20T11:00:00Z",
                 hostile: str = "") -> MeasuredRun:
    """A verify run of the prediction's scenario: DiffusionGemma ``dg_factor`` x its predicted times, Gemma 4
    ``ar_factor`` x; the measured speedup follows."""
    p = prediction_ or prediction(workload="long-form-drafting", precision="bf16", engine=engine)
    assert isinstance(p.diffusion, ModeEstimate) and isinstance(p.autoregressive, ModeEstimate)
    output = p.scenario.output_tokens
    dg = mode_statistics("diffusion", p.diffusion, factor=dg_factor, output_tokens=output)
    ar = mode_statistics("autoregressive", p.autoregressive, factor=ar_factor, output_tokens=output)
    speedup = (p.autoregressive.total_latency_s * ar_factor) / (p.diffusion.total_latency_s * dg_factor)
    stats = WorkloadStatistics(
        workload=p.scenario.workload, concurrency=p.scenario.concurrency, prompts=3, scenario=p.scenario,
        diffusion=dg, autoregressive=ar, speedup=measured_figure(speedup, p.speedup, spread=0.05),
        edit_distance_between_models=measured_figure(0.42, Unavailable("the model predicts speed, not output")),
        measured_verdict=verdict_for(speedup * 0.95, speedup), predicted_verdict=p.verdict)
    requests = tuple(
        RequestRecord(workload=p.scenario.workload, prompt_id=f"{p.scenario.workload}-{i}{hostile}", role=role,
                      concurrency=p.scenario.concurrency, faults=(), prompt_tokens=p.scenario.prompt_tokens,
                      output_tokens=output, ttft_seconds=stats_.ttft_seconds.median,
                      first_useful_draft_seconds=stats_.first_useful_draft_seconds.median,
                      total_latency_seconds=stats_.total_latency_seconds.median,
                      tokens_per_s=stats_.tokens_per_s.median, pass_seconds=stats_.pass_seconds.median,
                      steps_per_canvas=16.0 if role == "diffusion" else Unavailable("autoregressive"),
                      tokens_per_forward=16.0 if role == "diffusion" else 1.0,
                      peak_memory_bytes=stats_.peak_memory_bytes.median,
                      drafts=tuple(DraftPoint(stats_.total_latency_seconds.median * k / 4, 1 - k / 4)
                                   for k in range(5)))
        for i in range(3) for role, stats_ in (("diffusion", dg), ("autoregressive", ar)))
    models = tuple(ModelUnderTest(role=role, model_id=f"{repo}{hostile}", revision="0123abcd", source="server",
                                  architecture=arch, dtype="bf16", layers_run=30, layers_total=30,
                                  vocab_run=262144, vocab_total=262144, scaling="none: the checkpoint as published")
                   for role, repo, arch in (("diffusion", "google/diffusiongemma-26B-A4B-it",
                                             "DiffusionGemmaForBlockDiffusion"),
                                            ("autoregressive", "google/gemma-4-26B-A4B-it",
                                             "Gemma4ForConditionalGeneration")))
    settings = RunSettings(dtype="bf16", steps_per_canvas=16, sampler="entropy-bound", autoregressive_decoding="greedy",
                           concurrencies=(1,), ignore_eos=False, quick=False, prompts_source="shipped prompts",
                           warmup="one short request per model", reductions=())
    return MeasuredRun(backend=backend, engine=engine, engine_version=f"{engine} 0.31.0", device="cuda:0",
                       started_at=started_at, duration_seconds=312.0, status="complete", incomplete_reasons=(),
                       models=models, predicted_model="diffusiongemma-26b-a4b", settings=settings,
                       prediction_basis=f"{engine} engine on this machine's measured limits",
                       workloads=(stats,), requests=requests,
                       servers=server_observations(hostile) if backend == "openai-server" else ())


def server_observations(hostile: str = "") -> tuple[ServerObservation, ...]:
    """A local DiffusionGemma server that publishes its timing (client 4% slower to the first token, as the
    network and HTTP layer add) and holds two GPU processes; a remote Gemma 4 server with no /metrics."""
    timing = ServerLevelTiming(
        concurrency=1, client_requests=3, server_requests=3,
        ttft_seconds=TimingAgreement(client=0.26, server=0.25, relative_difference=0.26 / 0.25 - 1),
        e2e_latency_seconds=TimingAgreement(client=1.02, server=1.0, relative_difference=0.02),
        generated_tokens=TimingAgreement(client=3072.0, server=3072.0, relative_difference=0.0),
        tokens_per_s=TimingAgreement(client=1004.0, server=1024.0, relative_difference=1004 / 1024 - 1))
    processes = (ProcessGpuMemory(pid=4242, process_name=f"python3{hostile}", gpu_index=0, used_bytes=30e9),
                 ProcessGpuMemory(pid=4250, process_name="VLLM::EngineCore", gpu_index=0,
                                  used_bytes=Unavailable("NVML does not report this process's memory")))
    return (ServerObservation(role="diffusion", url="http://127.0.0.1:8000", metrics_url="http://127.0.0.1:8000/metrics",
                              timing=(timing,), gpu_memory=processes,
                              gpu_memory_bytes=Unavailable("NVML did not report every process's memory")),
            ServerObservation(role="autoregressive", url="http://gpu-box:8001", metrics_url="http://gpu-box:8001/metrics",
                              timing=Unavailable("the server reports no timing: /metrics answered 404"),
                              gpu_memory=Unavailable("the server runs on another host (gpu-box): NVML sees this "
                                                     "machine's GPUs only"),
                              gpu_memory_bytes=Unavailable("the server runs on another host (gpu-box)")))
