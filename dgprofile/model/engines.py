"""Inference engines as the model sees them: what they run, where, and how their passes behave.

An engine differs from the physics of the device in four numbers (``FITTED_PARAMETERS``), fitted by
``dgprofile.model.calibration`` to the published runs, plus a few structural facts read from its code or docs:

* ``pass_floor_seconds``: the least a pass of the 30-layer MoE can take, whatever it moves or computes: kernel
  count times per-kernel latency (launches, small-kernel fill and drain), Python and scheduling for eager
  engines. It bounds a pass together with memory and arithmetic (``max``), because tiny kernels are latency-bound
  while large ones hide it: vLLM's FP8 AR step on an H100 takes 5.1 ms against a 1.4 ms streaming floor, while a
  pre-release vLLM denoise pass ran at 97% of its FP8 streaming floor, leaving no room for an additive cost.
* ``diffusion_step_overhead_seconds``: host work each diffusion engine step adds and does not overlap (scheduling
  256 draft positions, sampler bookkeeping, synchronisation): added to denoise and commit passes. It is what
  separates the released vLLM (about 15 ms a pass at FP8 on an H100) from its pre-release build (8.6 ms).
* ``bandwidth_efficiency`` and ``compute_efficiency``: fractions of the device's bandwidth and matmul rate the
  engine's kernels reach (relative to datasheet-equivalent ceilings, see ``dgprofile.model.ceilings``).

Nothing here is per GPU: a prediction for an unseen GPU combines these engine numbers with that GPU's limits.
The priors (``Prior``) state what is assumed where the published runs do not identify a parameter, and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgprofile.errors import UsageError

ENGINE_NAMES: tuple[str, ...] = ("vllm", "mlx", "llama.cpp", "transformers", "ideal")
AUTO = "auto"
FITTED_PARAMETERS: tuple[str, ...] = ("pass_floor_seconds", "diffusion_step_overhead_seconds",
                                      "bandwidth_efficiency", "compute_efficiency")


@dataclass(frozen=True)
class Prior:
    """A log-normal prior on one engine parameter: ``median`` and the standard deviation of its log."""

    median: float
    log_sigma: float
    reason: str


@dataclass(frozen=True)
class Engine:
    """What an engine is, independent of fitting.

    ``vendors``: accelerator vendors it runs on. ``precisions``: formats it runs with published DiffusionGemma
    weights (vLLM: the recipe's bf16, FP8-dynamic and NVFP4 checkpoints; MLX 8/4-bit conversions; GGUF Q8_0 /
    Q4_K_M), computed natively where the hardware has the format, else dequantised to bf16/fp16 in the kernels
    (Marlin on NVIDIA). ``commits_last_canvas``: whether the
    final canvas also gets a commit pass (vLLM emits tokens at commit; the transformers reference loop skips the
    last commit). ``memory_utilization``: share of usable memory the engine lets weights, KV cache and request
    buffers take (the rest is activation headroom). ``shows_drafts``: whether the user sees DiffusionGemma's
    intermediate drafts while a canvas is refined, or only committed canvases (it moves the first useful draft).
    """

    name: str
    description: str
    vendors: tuple[str, ...]
    precisions: tuple[str, ...]
    commits_last_canvas: bool
    memory_utilization: float
    memory_utilization_basis: str
    priors: dict[str, Prior]
    shows_drafts: bool
    shows_drafts_basis: str


_CUDA_GRAPH_FLOOR = Prior(3e-3, 1.0, "CUDA-graph decode of 30 MoE layers: tens of kernels a layer at a few "
                          "microseconds each (order of magnitude; fitted where AR runs exist)")
_NO_STEP_OVERHEAD = Prior(1e-3, 1.5, "assumed small unless a published diffusion run shows otherwise")
_COMPUTE_PRIOR = Prior(0.5, 0.6, "dense bf16 GEMM reaches ~80% of the H100 datasheet (~790 of 989 TFLOP/s in "
                       "mamf-finder's table, "
                       "https://github.com/stas00/ml-engineering/tree/master/compute/accelerator); "
                       "grouped MoE GEMMs at ~16 tokens per expert reach less (assumed)")

ENGINES: dict[str, Engine] = {
    "vllm": Engine(
        "vllm", "vLLM >= 0.24 (model runner v2, CUDA graphs, FP8/NVFP4/AWQ kernels)",
        ("nvidia", "amd"), ("bf16", "fp8", "nvfp4"), True, 0.85,
        "--gpu-memory-utilization 0.85, the recipe's headroom for denoising activations "
        "(https://recipes.vllm.ai/Google/diffusiongemma-26B-A4B-it)",
        {"pass_floor_seconds": _CUDA_GRAPH_FLOOR,
         "diffusion_step_overhead_seconds": _NO_STEP_OVERHEAD,
         "bandwidth_efficiency": Prior(0.86, 0.15, "CUDA-graph GEMV streaming reaches 85-86% of the H100 "
                                       "datasheet (2.84-2.90 of 3.35 TB/s measured on an H100 SXM: bf16 "
                                       "8192x8192 weight, 1-64 tokens)"),
         "compute_efficiency": _COMPUTE_PRIOR},
        shows_drafts=False, shows_drafts_basis="the commit pass emits a canvas's 256 tokens at once; nothing is "
        "streamed before it"),
    "mlx": Engine(
        "mlx", "MLX on Apple Silicon (mlx-lm style, group-quantised 4/8-bit)",
        ("apple",), ("bf16", "int8", "int4"), False, 1.0,
        "Metal's recommended working set is already the limit (see dgprofile.model.ceilings)",
        {"pass_floor_seconds": Prior(5e-3, 1.0, "no graph capture: every op is a Metal dispatch (assumed order "
                                     "of magnitude; fitted to the M1 Ultra AR run)"),
         "diffusion_step_overhead_seconds": _NO_STEP_OVERHEAD,
         "bandwidth_efficiency": Prior(0.78, 0.15, "an M1 Max GPU attains ~78% of its datasheet bandwidth (~318 "
                                       "of 409.6 GB/s: https://github.com/ggml-org/llama.cpp/pull/1642)"),
         "compute_efficiency": _COMPUTE_PRIOR},
        shows_drafts=False, shows_drafts_basis="assumed: generation returns committed canvases"),
    "llama.cpp": Engine(
        "llama.cpp", "llama.cpp (GGUF; DiffusionGemma through llama-diffusion-cli, PR #24423)",
        ("nvidia", "amd", "apple", "cpu"), ("bf16", "int8", "int4"), False, 0.95,
        "assumed: compute buffers and runtime take ~5%",
        {"pass_floor_seconds": _CUDA_GRAPH_FLOOR,
         "diffusion_step_overhead_seconds": _NO_STEP_OVERHEAD,
         "bandwidth_efficiency": Prior(0.8, 0.2, "assumed between the vllm (0.86) and mlx (0.78) priors"),
         "compute_efficiency": _COMPUTE_PRIOR},
        shows_drafts=False, shows_drafts_basis="assumed: served output comes a canvas at a time"),
    "transformers": Engine(
        "transformers", "Hugging Face transformers, eager (no torch.compile, no CUDA graphs)",
        ("nvidia", "amd", "apple"), ("bf16",), False, 0.95,
        "assumed: the CUDA context and allocator slack take ~5%",
        {"pass_floor_seconds": Prior(0.05, 1.5, "eager Python over 30 MoE layers (fitted to the H200 run)"),
         "diffusion_step_overhead_seconds": _NO_STEP_OVERHEAD,
         "bandwidth_efficiency": Prior(0.8, 0.2, "assumed: eager kernels stream close to the CUDA-graph figure"),
         "compute_efficiency": _COMPUTE_PRIOR},
        shows_drafts=True, shows_drafts_basis="in process, generate() hands its streamer every denoising step's "
        "draft (put_draft; TextDiffusionStreamer shows them); `transformers serve` streams committed canvases only"),
    "ideal": Engine(
        "ideal", "no overhead beyond the passes: the measured passes on this machine, or the device's "
        "ceilings when nothing was measured",
        ("nvidia", "amd", "apple", "cpu"), ("bf16", "fp8", "int8", "nvfp4", "int4"), True, 1.0,
        "no engine reserve",
        {}, shows_drafts=True, shows_drafts_basis="the best case: every draft is shown as it is made"),
}

# `ideal` is not fitted: it is the bound the measured (or datasheet) ceilings set.
IDEAL_PARAMETERS: dict[str, float] = {"pass_floor_seconds": 0.0, "diffusion_step_overhead_seconds": 0.0,
                                      "bandwidth_efficiency": 1.0, "compute_efficiency": 1.0}


def engine_by_name(name: str) -> Engine:
    """The engine called ``name``; UsageError listing the known ones otherwise."""
    try:
        return ENGINES[name]
    except KeyError:
        raise UsageError(f"unknown engine '{name}': known are {', '.join(ENGINE_NAMES)} and {AUTO}") from None


def auto_engine(*, vendor: str, device_type: str) -> tuple[str, str]:
    """The engine a user of this platform would run, and why.

    vLLM on NVIDIA and AMD GPUs with their own memory or a vLLM build (discrete cards, superchips, DGX Spark:
    the recipe ships an override for it); MLX on Apple Silicon; llama.cpp on APUs and integrated parts where
    vLLM has no DiffusionGemma build (Strix Halo) and on CPUs.
    """
    if vendor == "apple":
        return "mlx", "Apple Silicon: MLX is the native Metal engine"
    if vendor in ("nvidia", "amd") and device_type != "apu-gpu":
        return "vllm", "vLLM serves DiffusionGemma on NVIDIA and AMD GPUs (recipe, min vLLM 0.24)"
    return "llama.cpp", "no vLLM build for this platform: llama.cpp (GGUF) is what runs there"
