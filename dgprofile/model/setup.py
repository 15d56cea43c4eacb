"""Setup knobs that published runs show to matter, their defaults, and what each changes in the model.

* **Execution mode** (``cuda-graphs`` or ``eager``): with graphs off, every kernel is launched from the host, so a
  pass cannot take less than its kernels' host launches (``dgprofile.model.speedup``). Default: the engine's own
  (vLLM and llama.cpp capture CUDA graphs; MLX and eager transformers launch op by op).
* **Interconnect** under tensor parallelism: the link the two all-reduces per layer cross (NVLink, or PCIe of a
  generation and width, with or without peer-to-peer). Detected from NVML's topology on a measured machine; the
  datasheet's link otherwise; ``--interconnect`` overrides either.
* **Sampler** and **thinking mode** move the steps per canvas (``adjusted_steps``), from the published evidence
  in ``calibration-runs.json`` (``denoising_steps_evidence``); so do **quantised logits** (a model whose embedding
  and LM head are 4-bit, as MLX's conversions are) under the entropy-bound sampler.
* **AR baseline**: plain Gemma 4, or Gemma 4 with its MTP drafter (``draft_tokens`` proposed a step, each accepted
  with probability ``acceptance``).

Each assumption carries a log-standard deviation that widens the speedup band where it is used.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from dgprofile.errors import UsageError
from dgprofile.model.engines import Engine
from dgprofile.model.workloads import MAX_STEPS, MIN_STEPS, WORKLOADS, StepsPerCanvas
from dgprofile.records.machine import Machine, NvidiaGpu
from dgprofile.records.multi_gpu import AllReduceSweep, MultiGpuRun
from dgprofile.records.predictions import (
    ONE_GPU,
    ArBaseline,
    ArBaselineKind,
    Ceilings,
    ExecutionMode,
    Interconnect,
    InterconnectSource,
    LinkKind,
    Sampler,
    SamplerKind,
)
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import architecture_of, spec_by_id
from dgprofile.specs.pass_cost import Precision

# --- steps per canvas ------------------------------------------------------------------------------------------

RELEASED_ENTROPY_BOUND = 0.1  # the released generation config's EntropyBoundSamplerConfig (nats)
# lablup/mlxcel issue #217: a confidence-threshold sampler at 0.6 narrowed the AR/DG gap on an M1 Ultra from
# about 4.7x to 1.7x on the same long-form prompt. Its denoise passes cost the same either way (compute-bound), so
# the passes fell 4.7 / 1.7 times: from 2 canvases x 26.5 steps + 1 commit (mlxcel PR #218) to 19.5.
CONFIDENCE_EVIDENCE_THRESHOLD = 0.6
MLXCEL_ESSAY_STEPS = 26.5  # 53 steps over 2 canvases (lablup/mlxcel PR #218)
_MLXCEL_PASSES = 2 * MLXCEL_ESSAY_STEPS + 1
CONFIDENCE_STEPS_AT_EVIDENCE = ((_MLXCEL_PASSES * 1.7 / 4.7) - 1) / 2 / MLXCEL_ESSAY_STEPS
# Blaizzy/mlx-vlm PR #1359: 4-bit models took many more entropy-bound passes on quantised logits. The M1 Ultra's
# 4-bit essays took 26-28 steps a canvas against the long-form workload's typical figure at full precision.
QUANTISED_LOGITS_STEPS_FACTOR = MLXCEL_ESSAY_STEPS / WORKLOADS["long-form-drafting"].steps.typical
QUANTISED_LOGITS_LOG_SIGMA = 0.3  # the long-form range (12-20 steps) against one prompt's 26.5
# A confidence threshold changes the steps the same way whatever the weights: that was mlx-vlm's reason to switch
# to it. Relative to full-precision entropy-bound steps it is therefore the evidence's ratio times the quantised
# factor the evidence run carried.
CONFIDENCE_STEPS_FACTOR = CONFIDENCE_STEPS_AT_EVIDENCE * QUANTISED_LOGITS_STEPS_FACTOR
CONFIDENCE_LOG_SIGMA = 0.3  # one prompt on one machine
# Thinking mode: 30-98 denoising steps per request against 5-6 for the same coding prompts with thinking off
# (club-3090 notes in calibration-runs.json): near the 48-step cap for every canvas.
THINKING_STEPS_LOW = 30.0
THINKING_BASIS = ("thinking mode: 30-98 steps per request where thinking off took 5-6 (club-3090 notes, "
                  "https://github.com/noonghunna/club-3090): 30 to the 48-step cap per canvas")


@dataclass(frozen=True)
class StepsAdjustment:
    """What the setup does to a workload's steps per canvas: a factor, its uncertainty, and why."""

    factor: float
    log_sigma: float
    basis: tuple[str, ...]


def sampler_adjustment(sampler: Sampler, quantised_logits: bool) -> StepsAdjustment:
    """Steps relative to the released entropy-bound sampler on full-precision logits."""
    if sampler.kind == "entropy-bound":
        factor = RELEASED_ENTROPY_BOUND / sampler.value
        # First order: the accepted prefix's entropies sum to at most the bound, so it grows with the bound.
        sigma = 0.5 * abs(math.log(factor))
        basis = [] if factor == 1 else [f"entropy bound {sampler.value:g} nats: steps x{factor:.2f} against the "
                                        f"released {RELEASED_ENTROPY_BOUND:g} (assumed proportional)"]
        if quantised_logits:
            factor *= QUANTISED_LOGITS_STEPS_FACTOR
            sigma = math.hypot(sigma, QUANTISED_LOGITS_LOG_SIGMA)
            basis.append(f"quantised logits: entropy-bound steps x{QUANTISED_LOGITS_STEPS_FACTOR:.2f} (4-bit essays "
                         f"took {MLXCEL_ESSAY_STEPS:g} steps a canvas on an M1 Ultra, lablup/mlxcel PR #218; "
                         "Blaizzy/mlx-vlm PR #1359)")
        return StepsAdjustment(factor, sigma, tuple(basis))
    if not 0 < sampler.value < 1:
        raise UsageError("a confidence threshold must lie between 0 and 1")
    # Assumed: a position is accepted when its top probability clears the threshold, and top probabilities are
    # spread evenly, so the share accepted per step goes as (1 - threshold).
    distance = (1 - CONFIDENCE_EVIDENCE_THRESHOLD) / (1 - sampler.value)
    factor = CONFIDENCE_STEPS_FACTOR * distance
    return StepsAdjustment(factor, math.hypot(CONFIDENCE_LOG_SIGMA, abs(math.log(distance))), (
        f"confidence threshold {sampler.value:g}: steps x{factor:.2f} against the entropy-bound sampler (at "
        f"{CONFIDENCE_EVIDENCE_THRESHOLD:g} the AR/DG gap on an M1 Ultra fell from 4.7x to 1.7x, lablup/mlxcel "
        "issue #217; insensitive to quantised logits, the reason Blaizzy/mlx-vlm PR #1359 switched to it)",))


def adjusted_steps(steps: StepsPerCanvas, *, sampler: Sampler, thinking: bool, quantised_logits: bool
                   ) -> StepsPerCanvas:
    """The workload's steps per canvas under this setup, its range widened by the adjustment's uncertainty.
    Exact steps (``--steps``: early stopping off) are taken as they are: they replace the sampler's choice."""
    if steps.exact:
        return steps
    base = steps
    if thinking:
        base = StepsPerCanvas(THINKING_STEPS_LOW, math.sqrt(THINKING_STEPS_LOW * MAX_STEPS), MAX_STEPS,
                              THINKING_BASIS)
    adjustment = sampler_adjustment(sampler, quantised_logits)
    if adjustment.factor == 1 and not thinking:
        return steps

    def clamp(value: float) -> float:
        return min(MAX_STEPS, max(MIN_STEPS, value))

    spread = math.exp(adjustment.log_sigma)
    return StepsPerCanvas(clamp(base.low * adjustment.factor / spread), clamp(base.typical * adjustment.factor),
                          clamp(base.high * adjustment.factor * spread), "; ".join((base.basis, *adjustment.basis)))


def default_quantised_logits(precision: Precision) -> bool:
    """Whether a format's logits come from a quantised LM head of 4-5 bits (MLX 4-bit conversions), the case
    the published evidence covers; bf16 heads (FP8, NVFP4, AWQ checkpoints) and GGUF's Q6_K head are not."""
    return precision.head_weight_bytes <= 5 / 8


# --- execution mode --------------------------------------------------------------------------------------------


GRAPH_VENDORS = ("nvidia", "amd")  # CUDA graphs, and HIP graphs on ROCm


def execution_mode(engine: Engine, requested: ExecutionMode | None, vendor: str) -> ExecutionMode:
    """The engine's default mode (eager where there are no CUDA or HIP graphs: Apple, CPUs), or the requested one
    if the engine runs it there."""
    if requested is None:
        return engine.default_mode if vendor in GRAPH_VENDORS or "eager" not in engine.execution_modes else "eager"
    check_execution_mode(requested, engine=engine, vendor=vendor)
    return requested


def check_execution_mode(requested: ExecutionMode | None, *, engine: Engine | None, vendor: str | None) -> None:
    """UsageError when the requested mode does not exist on the vendor's devices or in the engine (each checked
    when known: before probing, neither may be)."""
    if requested == "cuda-graphs" and vendor is not None and vendor not in GRAPH_VENDORS:
        raise UsageError(f"{vendor} devices have no CUDA graphs: use --execution-mode eager")
    if requested is not None and engine is not None and requested not in engine.execution_modes:
        raise UsageError(f"{engine.name} runs {' or '.join(engine.execution_modes)}, not {requested}")


# --- AR baseline -----------------------------------------------------------------------------------------------

# The vLLM blog's MTP run proposed 4 tokens a step (MTP4); the acceptance where none is given is the one fitted to
# the published MTP runs (``EngineParameters.mtp_acceptance`` of vLLM, the engine they ran on).
DEFAULT_MTP_DRAFT_TOKENS = 4


def check_mtp_options(kind: ArBaselineKind, *, draft_tokens: int | None, acceptance: float | None) -> None:
    """UsageError when MTP figures are given without the MTP baseline (they would be silently ignored)."""
    if kind == "plain" and (draft_tokens is not None or acceptance is not None):
        raise UsageError("--mtp-draft-tokens and --mtp-acceptance need --ar-baseline mtp")


def check_mtp_engine(engine: Engine) -> None:
    """UsageError when the engine does not serve Gemma 4 with its MTP drafter."""
    if not engine.runs_mtp:
        raise UsageError(f"{engine.name} does not serve Gemma 4 with its MTP drafter: use --ar-baseline plain")


def ar_baseline(kind: ArBaselineKind, engine: Engine, *, fitted_acceptance: float, draft_tokens: int | None = None,
                acceptance: float | None = None) -> ArBaseline:
    """The baseline DiffusionGemma is compared with."""
    check_mtp_options(kind, draft_tokens=draft_tokens, acceptance=acceptance)
    if kind == "plain":
        return ArBaseline("plain")
    check_mtp_engine(engine)
    tokens = DEFAULT_MTP_DRAFT_TOKENS if draft_tokens is None else draft_tokens
    accepted = fitted_acceptance if acceptance is None else acceptance
    if tokens < 1:
        raise UsageError("--mtp-draft-tokens must be at least 1")
    if not 0 <= accepted < 1:
        raise UsageError("--mtp-acceptance must be at least 0 and below 1")
    return ArBaseline("mtp", tokens, accepted)


def mtp_basis(baseline: ArBaseline, *, given: bool) -> str:
    """Where the drafter's figures come from, in words."""
    if baseline.kind == "plain":
        return "plain Gemma 4: one token per decoding step"
    source = "given on the command line" if given else (
        f"{DEFAULT_MTP_DRAFT_TOKENS} draft tokens as in the vLLM blog's MTP4 run, acceptance fitted to the "
        "published MTP runs (calibration-runs.json)")
    return f"Gemma 4 with its MTP drafter: {plain_number(baseline.draft_tokens)} draft tokens a step, " \
           f"acceptance {plain_number(baseline.acceptance)} ({source}); the drafter's own weights are not counted " \
           "in the memory fit"


def plain_number(value: float | int | Unavailable) -> str:
    """A number as written in a basis line, or why there is none."""
    return value.reason if isinstance(value, Unavailable) else f"{value:g}"


def tokens_per_verification(baseline: ArBaseline) -> float:
    """Tokens one MTP step yields on average: the accepted prefix of the drafts plus the target's own token,
    (1 - a^(k+1)) / (1 - a) for k drafts each accepted with probability a (speculative decoding's expectation)."""
    if baseline.kind == "plain" or isinstance(baseline.draft_tokens, Unavailable) \
            or isinstance(baseline.acceptance, Unavailable):
        return 1.0
    a, k = baseline.acceptance, baseline.draft_tokens
    return float(k + 1) if a == 1 else (1 - a ** (k + 1)) / (1 - a)


# --- interconnect ----------------------------------------------------------------------------------------------

# Usable bytes per second per lane and direction after line encoding (8b/10b, then 128b/130b from gen 3).
PCIE_LANE_BYTES_PER_S = {3: 0.985e9, 4: 1.969e9, 5: 3.938e9, 6: 7.563e9}
# Pinned host copies reached 55.1 of 63 GB/s over PCIe 5.0 x16 on the H100 SXM of samples/: packet overhead.
PCIE_PAYLOAD_FRACTION = 55.1 / 63.0
# NVLink bandwidth per link and direction by version (NVIDIA's NVLink pages: 18 NVLink 4 links give 900 GB/s
# both ways on an H100, 18 NVLink 5 links 1.8 TB/s on a B200).
NVLINK_LINK_BYTES_PER_S = {1: 20e9, 2: 25e9, 3: 25e9, 4: 25e9, 5: 50e9}
# Latency of one small all-reduce (two per layer: after attention and after the MLPs). Assumed orders of
# magnitude, not measured here: NCCL or vLLM's custom all-reduce over NVLink, NCCL over PCIe with peer-to-peer,
# and NCCL staging through host memory where GeForce drivers refuse peer-to-peer.
ALL_REDUCE_LATENCY_SECONDS = {"nvlink": 15e-6, "infinity-fabric": 15e-6, "pcie": 25e-6, "pcie-host": 40e-6,
                              "network": 30e-6}
LINK_LATENCY_LOG_SIGMA = 0.5
LINK_ASSUMPTION = "all-reduce latency assumed, not measured"
_PCIE_PATTERN = re.compile(r"pcie(?P<generation>[3-6])x(?P<width>1|2|4|8|16)(?P<host>-no-p2p)?")
INTERCONNECT_CHOICES = "nvlink, pcie<gen>x<width> or pcie<gen>x<width>-no-p2p (e.g. pcie4x16-no-p2p)"


def pcie_link(generation: int, width: int, *, peer_to_peer: bool, basis: str,
              source: InterconnectSource) -> Interconnect:
    """A PCIe link; without peer-to-peer every all-reduce is staged through host memory (two crossings)."""
    raw = PCIE_LANE_BYTES_PER_S[generation] * width
    usable = raw * PCIE_PAYLOAD_FRACTION / (1 if peer_to_peer else 2)
    return Interconnect(
        kind="pcie", description=f"PCIe {generation}.0 x{width}" + ("" if peer_to_peer else " without peer-to-peer"),
        bytes_per_s=usable,
        all_reduce_latency_seconds=ALL_REDUCE_LATENCY_SECONDS["pcie" if peer_to_peer else "pcie-host"],
        peer_to_peer=peer_to_peer, basis=basis, source=source)


def _nvlink(bytes_per_s: float, description: str, basis: str, source: InterconnectSource) -> Interconnect:
    return Interconnect(kind="nvlink", description=description, bytes_per_s=bytes_per_s,
                        all_reduce_latency_seconds=ALL_REDUCE_LATENCY_SECONDS["nvlink"], peer_to_peer=True,
                        basis=basis, source=source)


def datasheet_interconnect(ceilings: Ceilings) -> Interconnect:
    """The link of the datasheet entry (NVLink, Infinity Fabric, PCIe of its generation, a network)."""
    if isinstance(ceilings.hardware_id, Unavailable) or isinstance(ceilings.interconnect_bytes_per_s,
                                                                   Unavailable):
        raise UsageError(f"{ceilings.device_name}: no GPU-to-GPU link is known; give one with --interconnect "
                         f"({INTERCONNECT_CHOICES})")
    spec = spec_by_id(ceilings.hardware_id)
    text = spec.interconnect if isinstance(spec.interconnect, str) else ""
    basis = f"datasheet: {text}"
    if text.startswith("NVLink"):
        return _nvlink(ceilings.interconnect_bytes_per_s, text.split(":")[0], basis, "datasheet")
    match = re.match(r"PCIe (?P<generation>\d)\.0 x(?P<width>\d+)", text)
    if match:
        return pcie_link(int(match["generation"]), int(match["width"]), peer_to_peer=spec.peer_to_peer,
                         basis=basis + ("" if spec.peer_to_peer else "; the driver refuses peer-to-peer"),
                         source="datasheet")
    kind: LinkKind = "infinity-fabric" if text.startswith("Infinity Fabric") else "network"
    return Interconnect(kind=kind, description=text.split(":")[0], bytes_per_s=ceilings.interconnect_bytes_per_s,
                        all_reduce_latency_seconds=ALL_REDUCE_LATENCY_SECONDS[kind], peer_to_peer=kind != "network",
                        basis=basis, source="datasheet")


def requested_interconnect(text: str, ceilings: Ceilings) -> Interconnect:
    """The link named on the command line."""
    basis = "given on the command line (--interconnect)"
    if text == "nvlink":
        try:
            link = datasheet_interconnect(ceilings)
        except UsageError:
            link = None
        if link is None or link.kind != "nvlink":
            raise UsageError(f"{ceilings.device_name} has no NVLink figure: give a PCIe link ({INTERCONNECT_CHOICES})")
        return _nvlink(link.bytes_per_s, link.description, basis, "command-line")
    match = _PCIE_PATTERN.fullmatch(text)
    if match is None:
        raise UsageError(f"unknown interconnect '{text}': give {INTERCONNECT_CHOICES}")
    return pcie_link(int(match["generation"]), int(match["width"]), peer_to_peer=match["host"] is None, basis=basis,
                     source="command-line")


def detected_interconnect(machine: Machine, gpus: int) -> Interconnect | Unavailable:
    """The link between this machine's first ``gpus`` NVIDIA GPUs, from NVML's topology: NVLink when every pair
    is joined by it (at the slowest GPU's NVLink bandwidth), else PCIe at the slowest GPU's link, peer-to-peer
    only if the driver allows it between every pair."""
    devices = [d for d in machine.accelerators if isinstance(d, NvidiaGpu)][:gpus]
    if len(devices) < gpus:
        return Unavailable(f"this machine has {len(devices)} NVIDIA GPU(s), not {gpus}")
    indices = {d.index for d in devices}
    pairs = []
    for device in devices:
        if isinstance(device.peer_links, Unavailable):
            return device.peer_links
        pairs += [link for link in device.peer_links if link.peer_index in indices]
    basis = f"detected from NVML topology on this machine ({len(devices)} GPUs)"
    nvlinks = [d.nvlink for d in devices]
    if pairs and all(p.nvlink for p in pairs) and all(not isinstance(n, Unavailable) for n in nvlinks):
        rates = [n.bytes_per_s for n in nvlinks if not isinstance(n, Unavailable)]
        if all(isinstance(r, float) for r in rates):
            slowest = min(r for r in rates if isinstance(r, float))
            links = min(n.active_links for n in nvlinks if not isinstance(n, Unavailable))
            return _nvlink(slowest, f"NVLink, {links} links", basis, "nvml-topology")
    generations = [d.pcie_generation for d in devices]
    widths = [d.pcie_width for d in devices]
    if any(isinstance(v, Unavailable) for v in (*generations, *widths)):
        return Unavailable("NVML did not report every GPU's PCIe link")
    peer_to_peer = all(p.peer_to_peer is True for p in pairs)
    generation = min(g for g in generations if isinstance(g, int))
    width = min(w for w in widths if isinstance(w, int))
    return pcie_link(min(generation, max(PCIE_LANE_BYTES_PER_S)), width, peer_to_peer=peer_to_peer,
                     basis=basis + ("" if peer_to_peer else ": the driver reports no peer-to-peer between them"),
                     source="nvml-topology")


@dataclass(frozen=True)
class AllReduceFit:
    """An all-reduce's time as ``latency_seconds`` plus its ring bytes (2 (n - 1) / n of the message, what each
    GPU sends) at ``bus_bytes_per_s``: least squares over a measured sweep."""

    latency_seconds: float
    bus_bytes_per_s: float
    sizes: int
    basis: str


def fit_all_reduce(sweep: AllReduceSweep) -> AllReduceFit | Unavailable:
    """The latency and bus bandwidth that explain the sweep's medians, robust to an outlying size. Where the
    times do not grow with the size (every message too small to show the link's bandwidth), the largest message's
    bus bandwidth stands for it: a lower bound."""
    n = sweep.world_size
    points = [(2 * (n - 1) / n * p.message_bytes, p.timing.median_seconds) for p in sweep.points]
    if len({x for x, _ in points}) < 2:
        return Unavailable("fewer than two all-reduce sizes were measured: latency and bandwidth cannot be told "
                           "apart")
    # Theil-Sen: the median of the slopes between every two sizes, then the median intercept. One all-reduce
    # launched from Python that waited on the host (an H200 pair's 8-token size took 160 us among 37-41 us
    # neighbours) turns a least-squares slope negative; it moves these medians little.
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points) for x2, y2 in points[i + 1:] if x2 != x1]
    slope = statistics.median(slopes)
    largest = max(sweep.points, key=lambda p: p.message_bytes)
    what = (f"{sweep.launch_mode} {sweep.backend.upper()} all-reduce of {sweep.dtype} [tokens x "
            f"{sweep.hidden_size}] over {n} GPUs, {len(points)} sizes of {min(p.tokens for p in sweep.points)} "
            f"to {max(p.tokens for p in sweep.points)} tokens")
    if slope <= 0:
        latency = min(y for _, y in points)
        return AllReduceFit(latency, largest.bus_bytes_per_s, len(points),
                            f"{what}: time did not grow with size, so the largest message's bus bandwidth is used")
    intercept = statistics.median(y - slope * x for x, y in points)
    if intercept <= 0:  # noise at the small sizes: the smallest message's time is nearly all latency
        return AllReduceFit(min(y for _, y in points), 1 / slope, len(points),
                            f"{what}, median slope; latency the fastest all-reduce's")
    return AllReduceFit(intercept, 1 / slope, len(points), f"{what}, median slope and intercept (Theil-Sen)")


def measured_sweeps(run: MultiGpuRun) -> tuple[AllReduceSweep, ...]:
    """The all-reduce sweeps a multi-GPU run measured (eager, and replayed from CUDA graphs where it could)."""
    return tuple(s for s in (run.all_reduce, run.all_reduce_in_graphs) if isinstance(s, AllReduceSweep))


def sweep_for_mode(sweeps: Sequence[AllReduceSweep], mode: ExecutionMode) -> AllReduceSweep | None:
    """The measured sweep launched as an engine of ``mode`` launches its all-reduces (replayed from CUDA graphs,
    or one call at a time), else the other one; None when nothing was measured."""
    wanted = "cuda-graph" if mode == "cuda-graphs" else "eager"
    return next((s for s in sweeps if s.launch_mode == wanted), next(iter(sweeps), None))


def measured_interconnect(sweep: AllReduceSweep, path: Interconnect | Unavailable,
                          mode: ExecutionMode) -> Interconnect | Unavailable:
    """The link as the measured all-reduces show it. Its bandwidth is the measured bus bandwidth; its latency the
    measured one where the engine launches all-reduces as the sweep did (``mode``). An engine that captures CUDA
    graphs, priced from an eager sweep, gets the prior for the link's kind (``ALL_REDUCE_LATENCY_SECONDS``) unless
    the measured latency is lower still; an eager engine priced from a graph sweep gets that sweep's latency, a
    lower bound. ``path`` is the link NVML's topology or the datasheet names."""
    fit = fit_all_reduce(sweep)
    if isinstance(fit, Unavailable):
        return fit
    kind: LinkKind = path.kind if isinstance(path, Interconnect) else "pcie"
    peer_to_peer = path.peer_to_peer if isinstance(path, Interconnect) else True
    key = kind if kind != "pcie" or peer_to_peer else "pcie-host"
    prior = ALL_REDUCE_LATENCY_SECONDS[key]
    measured = (f"measured on this machine ({fit.basis}): {fit.latency_seconds * 1e6:.3g} us + ring bytes at "
                f"{fit.bus_bytes_per_s / 1e9:.3g} GB/s")
    bandwidth = fit.bus_bytes_per_s
    if isinstance(path, Interconnect) and bandwidth > path.bytes_per_s:
        # Where latency dominates every measured size (11 MiB took 59 us against 46 us for 1.4 MiB on an H200
        # pair), the slope is too shallow to show the bandwidth: the fit alone gave 1.9 TB/s over 450 GB/s NVLink.
        measured += (f"; that is above the link's {path.bytes_per_s / 1e9:.3g} GB/s (the measured messages are "
                     "too small to show its bandwidth), so the link's figure is used")
        bandwidth = path.bytes_per_s
    in_graphs = sweep.launch_mode == "cuda-graph"
    if in_graphs == (mode == "cuda-graphs") or (not in_graphs and fit.latency_seconds <= prior):
        latency, latency_basis = fit.latency_seconds, "the engine launches all-reduces as the measurement did"
    elif in_graphs:
        latency, latency_basis = fit.latency_seconds, (
            "the engine launches all-reduces one at a time: the latency replayed from CUDA graphs is a lower bound")
    else:
        latency, latency_basis = prior, (
            f"the engine captures CUDA graphs with its own all-reduce: {prior * 1e6:.3g} us per all-reduce "
            "assumed (engine prior), not the measured eager figure")
    described = path.description if isinstance(path, Interconnect) else "GPU-to-GPU link"
    return Interconnect(kind=kind, description=f"{described}, measured", bytes_per_s=bandwidth,
                        all_reduce_latency_seconds=latency, peer_to_peer=peer_to_peer,
                        basis=f"{measured}; {latency_basis}", source="measured-all-reduce",
                        measured_latency_seconds=fit.latency_seconds)


def check_interconnect_request(requested: str | None, gpus: int) -> None:
    """UsageError for an --interconnect that names no link, or is given for one GPU (which has no link)."""
    if requested is None:
        return
    if gpus == 1:
        raise UsageError("--interconnect needs --gpus 2 or more")
    if requested != "nvlink" and _PCIE_PATTERN.fullmatch(requested) is None:
        raise UsageError(f"unknown interconnect '{requested}': give {INTERCONNECT_CHOICES}")


def interconnect(ceilings: Ceilings, requested: str | None, machine: Machine | None, *,
                 sweeps: Sequence[AllReduceSweep] = (), mode: ExecutionMode = "cuda-graphs"
                 ) -> Interconnect | Unavailable:
    """The link of this scenario: none on one GPU; the requested one; the all-reduces measured over as many GPUs
    (``sweeps``: the one launched as the engine launches, where both were measured); the one NVML shows; the
    datasheet's."""
    check_interconnect_request(requested, ceilings.gpus)
    if ceilings.gpus == 1:
        return ONE_GPU
    if requested is not None:
        return requested_interconnect(requested, ceilings)
    detected = detected_interconnect(machine, ceilings.gpus) if machine is not None else ONE_GPU
    sweep = sweep_for_mode([s for s in sweeps if s.world_size == ceilings.gpus], mode)
    if sweep is not None:
        path: Interconnect | Unavailable = detected
        if isinstance(path, Unavailable):
            try:
                path = datasheet_interconnect(ceilings)
            except UsageError as exc:
                path = Unavailable(str(exc))
        measured = measured_interconnect(sweep, path, mode)
        if isinstance(measured, Interconnect):
            return measured
    if isinstance(detected, Interconnect):
        return detected
    return datasheet_interconnect(ceilings)


def weight_format(ceilings: Ceilings, precision: Precision, native: bool) -> str:
    """How the weight format runs on this device, in words (e.g. FP8 on Ampere as W8A16 through Marlin)."""
    if precision.name in ("bf16", "fp16"):
        return f"{precision.name} weights and math"
    if native:
        return f"native {precision.native_compute_format} math (weights and activations)"
    if not isinstance(ceilings.hardware_id, Unavailable):
        architecture = architecture_of(spec_by_id(ceilings.hardware_id))
        if not isinstance(architecture, Unavailable) and precision.name in architecture.runs_as:
            return architecture.runs_as[precision.name]
    return f"weight-only: {precision.name} weights unpacked to 16 bits inside the GEMM"


SAMPLER_KINDS: tuple[SamplerKind, ...] = ("entropy-bound", "confidence-threshold")
DEFAULT_SAMPLER_VALUES: dict[SamplerKind, float] = {"entropy-bound": RELEASED_ENTROPY_BOUND,
                                                    "confidence-threshold": CONFIDENCE_EVIDENCE_THRESHOLD}


def sampler(kind: SamplerKind | None, value: float | None) -> Sampler:
    """The sampler of the scenario: the released entropy bound unless told otherwise."""
    chosen: SamplerKind = kind or "entropy-bound"
    if value is not None and value <= 0:
        raise UsageError("--sampler-value must be positive")
    if chosen == "confidence-threshold" and value is not None and value >= 1:
        raise UsageError("a confidence threshold (--sampler-value) must be below 1")
    return Sampler(chosen, DEFAULT_SAMPLER_VALUES[chosen] if value is None else value)
