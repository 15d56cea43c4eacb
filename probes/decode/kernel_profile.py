"""Where a decode pass's time goes, kernel by kernel: one sliding layer, one global layer and the head, traced with
the torch profiler and set against each component's bytes, FLOPs and floor.

The layers are built and tuned exactly as the decode benchmark builds them (same expert and attention methods,
same fused kernels). Each part is timed twice: replayed as a CUDA graph through the harness (what the benchmark
reports) and traced eagerly under ``torch.profiler``, where the layer code's component ranges
(``model.component``) attribute every kernel to the component that launched it. Kernel times do not depend on
how they were launched; the difference between the graph replay and the sum of the kernels is the time the GPU
sat between kernels. On a CPU there are no kernels: the leaf operators' own CPU time stands in for them.
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from dgprofile.probes.decode.autotune import Autotuner
from dgprofile.probes.decode.bench import Autotuners, PassRunner, check_layer_paths, device_capabilities
from dgprofile.probes.decode.head import head_parts
from dgprofile.probes.decode.model import COMPONENT_PREFIX, build_layer, layer_stack, random_tensor
from dgprofile.probes.decode.plan import plan_bench
from dgprofile.probes.harness import timer_for
from dgprofile.records.passes import PassKind
from dgprofile.specs.model_config import DEFAULT_MODEL, LayerType, ModelConfig, load_model_config
from dgprofile.specs.pass_cost import (
    CostTerms,
    component_roofline_seconds,
    head_cost,
    layer_cost,
    pass_shape,
    precision_by_name,
)

PROFILED_CALLS = 3
PART_NAMES = ("sliding layer", "global layer", "head")
UNLABELLED = "unlabelled"
# Chrome-trace categories of work on the device: kernels, and the copies and fills torch issues without one.
DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")


@dataclass(frozen=True)
class KernelTime:
    """One kernel (or, on a CPU, one leaf operator) of a part: its calls and device seconds per part call."""

    part: str
    component: str
    step: str
    kernel: str
    calls: int
    seconds: float


@dataclass(frozen=True)
class ComponentFloor:
    """One component of a part: its kernels' time against its bytes, FLOPs and roofline floor."""

    part: str
    component: str
    seconds: float
    bytes_moved: float
    flops: float
    floor_seconds: float

    @property
    def fraction_of_floor(self) -> float:
        """Time over floor (1.0 is at the floor)."""
        return self.seconds / self.floor_seconds if self.floor_seconds > 0 else float("inf")


@dataclass(frozen=True)
class PartProfile:
    """One part (a layer of one type, or the head): graph replay time, the sum of its kernels, its floor."""

    part: str
    replay_seconds: float
    kernel_seconds: float
    floor_seconds: float


@dataclass(frozen=True)
class KernelProfile:
    """The per-kernel picture of one pass shape and precision; floors at ``bytes_per_s``, the quantised
    components' matmuls at ``flops_per_s`` (the precision's rate) and every other FLOP at ``wide_flops_per_s``
    (the 16-bit rate; the same for a bf16 or fp16 profile)."""

    device: str
    kind: PassKind
    precision: str
    concurrency: int
    context_tokens: int
    bytes_per_s: float
    flops_per_s: float
    wide_flops_per_s: float
    parts: tuple[PartProfile, ...]
    components: tuple[ComponentFloor, ...]
    kernels: tuple[KernelTime, ...]


def short_kernel_name(name: str) -> str:
    """A kernel's name without its template arguments and parameter lists, at most 60 characters."""
    for nested in (r"<[^<>]*>", r"\([^()]*\)"):  # innermost first, so nesting unwinds
        while re.search(nested, name):
            name = re.sub(nested, "", name)
    name = name.removeprefix("void ").replace("::::", "::").strip()
    return name if len(name) <= 60 else name[:57] + "..."


def _innermost_label(ranges: list[tuple[float, float, str]], at: float) -> str:
    """The label of the innermost range (the latest to start) that contains ``at``."""
    inside = [(start, label) for start, end, label in ranges if start <= at <= end]
    return max(inside)[1] if inside else UNLABELLED


def _device_kernel_times(trace: dict[str, Any], part: str, calls: int) -> list[KernelTime]:
    """GPU kernels, copies and fills of a Chrome trace (the format ``torch.profiler`` exports), each attributed
    to the component range open on the host thread when it was launched: a kernel and its launch call share a
    correlation id, whichever API launched it (the CUDA runtime for torch's kernels, the driver for Triton's)."""
    events = trace.get("traceEvents", [])
    ranges: dict[object, list[tuple[float, float, str]]] = defaultdict(list)
    launches: dict[object, tuple[object, float]] = {}
    for event in events:
        category, name = event.get("cat"), str(event.get("name", ""))
        if category == "user_annotation" and name.startswith(COMPONENT_PREFIX):
            ranges[event["tid"]].append((event["ts"], event["ts"] + event["dur"], name.removeprefix(COMPONENT_PREFIX)))
        elif category in ("cuda_runtime", "cuda_driver") and "correlation" in event.get("args", {}):
            launches[event["args"]["correlation"]] = (event["tid"], event["ts"])
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for event in events:
        if event.get("cat") not in DEVICE_CATEGORIES:
            continue
        launch = launches.get(event.get("args", {}).get("correlation"))
        label = _innermost_label(ranges[launch[0]], launch[1]) if launch else UNLABELLED
        total = totals[(label, short_kernel_name(str(event["name"])))]
        total[0] += 1
        total[1] += event["dur"] * 1e-6  # trace times are microseconds
    return _grouped(totals, part, calls)


def _host_operator_times(events: list[Any], part: str, calls: int) -> list[KernelTime]:
    """On a CPU: each operator's own time (without its children's), under the innermost component range."""
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for event in events:
        if event.name.startswith(COMPONENT_PREFIX):
            continue
        label, parent = UNLABELLED, event.cpu_parent
        while parent is not None:
            if parent.name.startswith(COMPONENT_PREFIX):
                label = parent.name.removeprefix(COMPONENT_PREFIX)
                break
            parent = parent.cpu_parent
        total = totals[(label, event.name)]
        total[0] += 1
        total[1] += event.self_cpu_time_total * 1e-6  # profiler times are microseconds
    return _grouped(totals, part, calls)


def _grouped(totals: dict[tuple[str, str], list[float]], part: str, calls: int) -> list[KernelTime]:
    return [KernelTime(part=part, component=step.split(".")[0], step=step, kernel=kernel,
                       calls=round(count / calls), seconds=seconds / calls)
            for (step, kernel), (count, seconds) in totals.items()]


def _trace(fn: object, device: str, part: str, keep: Path | None) -> list[KernelTime]:
    """Kernel times of ``fn`` (a callable on fixed buffers), traced eagerly over ``PROFILED_CALLS`` calls; the
    GPU trace is also written to ``keep`` (Chrome trace format, for Perfetto) when given."""
    from torch.profiler import ProfilerActivity, profile

    on_gpu = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    for _ in range(2):  # compile, allocate and settle before tracing
        fn()  # type: ignore[operator]
    if on_gpu:
        torch.cuda.synchronize(torch.device(device))
    with warnings.catch_warnings():
        # torch warns that a profiler without a schedule keeps only its last cycle: there is one cycle here.
        warnings.filterwarnings("ignore", message=".*Profiler clears events at the end of each cycle.*")
        with profile(activities=activities) as prof:
            for _ in range(PROFILED_CALLS):
                fn()  # type: ignore[operator]
            if on_gpu:
                torch.cuda.synchronize(torch.device(device))
    if not on_gpu:
        return _host_operator_times(list(prof.events()), part, PROFILED_CALLS)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(path))
        trace = json.loads(path.read_text())
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_text(json.dumps(trace))
    return _device_kernel_times(trace, part, PROFILED_CALLS)


def _part_costs(config: ModelConfig, part: str, kind: PassKind, precision: str, concurrency: int,
                context: int) -> dict[str, CostTerms]:
    shape = pass_shape(config, kind=kind, concurrency=concurrency, context_tokens=context)
    fmt = precision_by_name(precision)
    if part == "head":
        return head_cost(config, shape, fmt)
    layer_type: LayerType = "sliding" if part == "sliding layer" else "global"
    return layer_cost(config, layer_type, shape, fmt)


def profile_kernels(*, device: str, kind: PassKind, precision: str, concurrency: int, context_tokens: int,
                    bytes_per_s: float, flops_per_s: float, wide_flops_per_s: float, model: str = DEFAULT_MODEL,
                    config: ModelConfig | None = None, trace_dir: Path | None = None) -> KernelProfile:
    """Trace one sliding layer, one global layer and the head of a pass at full width (or ``config``'s width)
    and set each component against its floor at ``bytes_per_s`` (the machine's measured streaming read), its
    matmuls at ``flops_per_s`` (the measured matmul rate for the precision) where the component is quantised and
    every other FLOP at ``wide_flops_per_s`` (the measured 16-bit rate: in an fp8 pass the LM head,
    self-conditioning, router, attention products and sampler stay 16-bit; a bf16 or fp16 profile passes its own
    rate twice). ``trace_dir`` keeps each part's GPU trace."""
    config = config or load_model_config(model)
    caps = device_capabilities(device, quick=False)
    plan = plan_bench(config, device_kind=caps.kind, free_memory_bytes=caps.free_memory_bytes,
                      native_fp8=caps.native_fp8, precisions=(precision,), concurrencies=(concurrency,),
                      contexts=(context_tokens,))
    if precision not in plan.measured_precisions:
        raise ValueError(f"{precision} is not measured on {device}: {'; '.join(plan.reductions)}")
    plan = replace(plan, sliding_layers=1, global_layers=1, vocab_divisor=1)
    caps = check_layer_paths(config, caps, plan, quick=False)
    tuners = Autotuners(experts=Autotuner(timer=timer_for(device), use_graph=caps.kind == "cuda"),
                        attention=Autotuner(timer=timer_for(device), use_graph=caps.kind == "cuda"),
                        projections=Autotuner(timer=timer_for(device), use_graph=caps.kind == "cuda"))
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    layers = {t: [build_layer(config, t, dtype=dtype, fp8=precision == "fp8", device=device)]
              for t in ("sliding", "global")}
    runner = PassRunner(config, plan, caps, tuners, precision, layers)  # type: ignore[arg-type]
    tokens = 1 if kind == "ar-step" else config.diffusion.canvas_length
    parts: list[PartProfile] = []
    components: list[ComponentFloor] = []
    kernels: list[KernelTime] = []
    for part in PART_NAMES:
        if part == "head":
            fn = head_parts(config, runner.head, kind=kind, concurrency=concurrency, tokens=tokens, split=False,
                            sampler=caps.sampler, device=device,
                            fused=runner.methods.fused)["head"]
        else:
            layer_type: LayerType = "sliding" if part == "sliding layer" else "global"
            states = runner.methods.layer_states(layers[layer_type], kind, concurrency, tokens, context_tokens)
            x = random_tensor((concurrency * tokens, config.backbone.hidden_size), dtype, device, std=1.0)
            fn = layer_stack(config, layers[layer_type], states, x, concurrency)
        replay = runner.time(fn).median_seconds
        keep = (trace_dir / f"{kind}-{precision}-c{concurrency}-{part.replace(' ', '-')}.json"
                if trace_dir is not None else None)
        traced = _trace(fn, device, part, keep)
        kernels += traced
        costs = _part_costs(config, part, kind, precision, concurrency, context_tokens)
        by_component: dict[str, float] = defaultdict(float)
        for k in traced:
            by_component[k.component] += k.seconds
        floors = component_floors(costs, bytes_per_s=bytes_per_s, flops_per_s=flops_per_s,
                                  wide_flops_per_s=wide_flops_per_s)
        for name in dict.fromkeys([*costs, *by_component]):
            terms = costs.get(name, CostTerms())
            components.append(ComponentFloor(part=part, component=name, seconds=by_component.get(name, 0.0),
                                             bytes_moved=terms.total_bytes, flops=terms.total_flops,
                                             floor_seconds=floors.get(name, 0.0)))
        parts.append(PartProfile(part=part, replay_seconds=replay, kernel_seconds=sum(by_component.values()),
                                 floor_seconds=sum(floors.values())))
    return KernelProfile(device=device, kind=kind, precision=precision, concurrency=concurrency,
                         context_tokens=context_tokens, bytes_per_s=bytes_per_s, flops_per_s=flops_per_s,
                         wide_flops_per_s=wide_flops_per_s, parts=tuple(parts), components=tuple(components),
                         kernels=tuple(kernels))


def component_floors(costs: dict[str, CostTerms], *, bytes_per_s: float, flops_per_s: float,
                     wide_flops_per_s: float) -> dict[str, float]:
    """Each component's roofline floor: its bytes at ``bytes_per_s``, a quantised component's matmuls at
    ``flops_per_s`` and every other FLOP at ``wide_flops_per_s`` (``component_roofline_seconds``)."""
    return {name: component_roofline_seconds(name, terms, bytes_per_s=bytes_per_s, quantised_flops_per_s=flops_per_s,
                                             wide_flops_per_s=wide_flops_per_s)
            for name, terms in costs.items()}


def format_kernel_profile(profile: KernelProfile, *, top: int = 6) -> list[str]:
    """The profile as text: per part, graph replay against kernels and floor; per component, time against floor
    with its ``top`` slowest kernels."""
    rates = f"{profile.flops_per_s / 1e12:.0f} TFLOP/s"
    if profile.wide_flops_per_s != profile.flops_per_s:
        rates = (f"{profile.precision} matmuls {rates}, 16-bit FLOPs (LM head, self-conditioning, router, attention "
                 f"products, sampler) {profile.wide_flops_per_s / 1e12:.0f} TFLOP/s")
    lines = [f"{profile.kind} {profile.precision} c={profile.concurrency} context={profile.context_tokens} on "
             f"{profile.device} (floors at {profile.bytes_per_s / 1e12:.2f} TB/s, {rates})"]
    for part in profile.parts:
        gap = part.replay_seconds - part.kernel_seconds
        lines.append(f"  {part.part}: replay {part.replay_seconds * 1e3:.3f} ms = kernels "
                     f"{part.kernel_seconds * 1e3:.3f} ms + between kernels {gap * 1e3:+.3f} ms; floor "
                     f"{part.floor_seconds * 1e3:.3f} ms ({part.replay_seconds / part.floor_seconds:.2f}x)")
        lines.append(f"    {'component':18s} {'time':>9s} {'bytes':>9s} {'GFLOP':>8s} {'floor':>9s} {'x floor':>7s}")
        for c in (c for c in profile.components if c.part == part.part):
            ratio = f"{c.fraction_of_floor:7.2f}" if c.floor_seconds > 0 else "      -"
            lines.append(f"    {c.component:18s} {c.seconds * 1e6:7.1f}us {c.bytes_moved / 1e6:7.2f}MB "
                         f"{c.flops / 1e9:8.2f} {c.floor_seconds * 1e6:7.1f}us {ratio}")
            ranked = sorted((k for k in profile.kernels if k.part == part.part and k.component == c.component),
                            key=lambda k: -k.seconds)
            for k in ranked[:top]:
                lines.append(f"      {k.seconds * 1e6:7.1f}us x{k.calls:<3d} {k.step:24s} {k.kernel}")
    return lines


def summary_lines(profile: KernelProfile) -> list[str]:
    """One line per part: its graph replay against its floor, and the component furthest over its floor (by time
    lost)."""
    lines = []
    for part in profile.parts:
        components = [c for c in profile.components if c.part == part.part and c.floor_seconds > 0]
        worst = max(components, key=lambda c: c.seconds - c.floor_seconds)
        lines.append(f"{profile.kind} {profile.precision} c={profile.concurrency} {part.part}: "
                     f"{part.replay_seconds * 1e3:.3f} ms = {part.replay_seconds / part.floor_seconds:.2f}x floor; "
                     f"most time over its floor: {worst.component} {worst.seconds * 1e6:.0f} us = "
                     f"{worst.fraction_of_floor:.2f}x")
    return lines
