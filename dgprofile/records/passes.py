"""Measured decode passes at the real model shapes: AR step, DG denoise, DG commit, prefill.

Timed by ``dgprofile.probes.decode.run_decode_bench``; ``dgprofile.model.floors`` adds the floors and the modelled
precisions. A pass is timed in parts (a sample of sliding layers, a sample of global layers, the head: embedding,
LM head, self-conditioning, sampler); ``seconds`` is the full-depth estimate, the sum of each part's median times
its ``scale``. Floors and fractions compare the pass with the machine's measured limits: ``bandwidth_floor_seconds`` = bytes moved / streaming-read bandwidth,
``compute_floor_seconds`` = FLOPs at the measured matmul rates: the quantised components' matmuls (attention
projections, dense MLP, experts) at the rate of the pass's compute format, every other FLOP (router, LM head,
self-conditioning, attention's score and value products, sampler: 16-bit in fp8 checkpoints too) at the 16-bit
rate (the pass's own for a bf16 or fp16 pass, else bf16's, else fp16's); ``roofline_floor_seconds`` = the pass's
components (attention, MLPs, experts, LM head, ...) run one after another, each at the larger of its two floors at
those rates (``PassCost.roofline_floor_seconds``), and each fraction is floor / seconds (1.0 = at the floor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable

PassKind = Literal["prefill", "ar-step", "dg-denoise", "dg-commit"]
PassPartName = Literal["sliding-layers", "global-layers", "head", "head-vocab", "head-rest", "full-pass"]
NOT_FULL_DEPTH = Unavailable("not measured at full depth (run with --full-depth on a device that holds the model)")
ROOFLINE_NOT_RECORDED = Unavailable("not recorded: the result was written before dgprofile recorded roofline floors")


@dataclass(frozen=True)
class PassPart:
    """One timed piece of a pass: ``layers`` layers (0 for the head); its median counts ``scale`` times toward
    the full pass (e.g. 25 sliding layers / 2 timed, or the vocabulary divisor for ``head-vocab``)."""

    name: PassPartName
    layers: int
    scale: float
    timing: Timing


@dataclass(frozen=True)
class PassMeasurement:
    """One pass kind at one precision and concurrency; ``seconds`` is the full 30-layer estimate."""

    pass_kind: PassKind
    precision: str
    concurrency: int
    tokens_per_request: int
    context_tokens: int
    seconds: float
    timing: Timing | Unavailable
    measured: bool
    basis: str
    layers_measured: int
    layers_total: int
    experts_touched_per_layer: float
    bytes_moved: float
    flops: float
    achieved_bytes_per_s: float
    achieved_flops_per_s: float
    bandwidth_floor_seconds: float | Unavailable
    compute_floor_seconds: float | Unavailable
    fraction_of_bandwidth_floor: float | Unavailable
    fraction_of_compute_floor: float | Unavailable
    breakdown_seconds: dict[str, float]
    relative_spread: float = 0.0
    experts_touched_expected: float = 0.0
    compute_format: str = ""
    parts: tuple[PassPart, ...] = ()
    full_depth_seconds: float | Unavailable = NOT_FULL_DEPTH
    roofline_floor_seconds: float | Unavailable = ROOFLINE_NOT_RECORDED
    fraction_of_roofline_floor: float | Unavailable = ROOFLINE_NOT_RECORDED


@dataclass(frozen=True)
class PassTimes:
    """All measured (and modelled) passes of one run, with what was reduced to fit the machine and how."""

    model_id: str
    device: str
    passes: tuple[PassMeasurement, ...]
    reductions: tuple[str, ...]
    seconds_taken: float
    methods: tuple[str, ...] = ()
    # Precisions whose layers ran the fused Triton kernels, the kernels the device factor's reference ratios were
    # measured with (``dgprofile.model.speedup``); passes in torch ops (a quick run, a CPU) say less of the device.
    fused_layers: tuple[str, ...] = ()
