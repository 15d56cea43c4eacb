"""Inference engines as the model sees them: what they run, where, and what they add to the hardware.

The hardware side of a pass (bandwidth, matmul rates, the device's kernel latency and what its measured passes
say about its kernels) comes from ``dgprofile.model.ceilings``. An engine adds what is its own, in six numbers
(``FITTED_PARAMETERS``) fitted by ``dgprofile.model.calibration`` to the published runs:

* ``pass_floor_seconds``: the least a pass of the 30-layer MoE takes with this engine on the reference GPU
  (kernel count times per-kernel latency: launches, small-kernel fill and drain); it scales with the device's
  measured launch latency. It bounds a pass together with memory and arithmetic (``max``), because tiny kernels
  are latency-bound while large ones hide it: vLLM's FP8 AR step on an H100 takes 5.1 ms against a 1.5 ms
  streaming floor, while a pre-release vLLM denoise pass ran at its FP8 streaming floor.
* ``diffusion_step_overhead_seconds``: host work each diffusion step adds and does not overlap (scheduling 256
  draft positions, sampler bookkeeping, synchronisation): what separates the released vLLM (about 15 ms a pass at
  FP8 on an H100) from its pre-release build (8.6 ms).
* ``bandwidth_efficiency`` and ``compute_efficiency``: the engine's kernels against the device's achievable
  streaming and matmul rates (1.0: as fast as the best streaming read and square GEMM on that device).
* ``mtp_draft_step_fraction``: one step of Gemma 4's MTP drafter as a share of the engine's AR step, and
  ``mtp_acceptance``: the share of drafted tokens accepted where a run does not state it (a property of the
  drafter and the text more than of the engine, fitted where the MTP runs are: vLLM).
* ``eager_host_factor``: with CUDA graphs off, the host time to launch one kernel from the engine's code, in
  units of the device's measured eager launch of a bare torch op.

Nothing here is per GPU: a prediction for an unseen GPU combines these engine numbers with that GPU's limits.
The priors (``Prior``) state what is assumed where the published runs do not identify a parameter, and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgprofile.errors import UsageError
from dgprofile.records.predictions import ExecutionMode

ENGINE_NAMES: tuple[str, ...] = ("vllm", "mlx", "llama.cpp", "transformers", "ideal")
AUTO = "auto"
FITTED_PARAMETERS: tuple[str, ...] = ("pass_floor_seconds", "diffusion_step_overhead_seconds",
                                      "bandwidth_efficiency", "compute_efficiency", "mtp_draft_step_fraction",
                                      "mtp_acceptance", "eager_host_factor")


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
    weights (vLLM: the recipe's bf16, FP8-dynamic and NVFP4 checkpoints, int8 W8A8 and AWQ int4; MLX's 8/4-bit
    conversions; GGUF Q8_0 / Q4_K_M), computed natively where the hardware has the format, else unpacked to
    bf16/fp16 in the kernels (Marlin on NVIDIA). ``execution_modes``: how it can launch kernels, the first being
    its default and the mode of its calibration runs. ``commits_last_canvas``: whether the final canvas also gets
    a commit pass (vLLM emits tokens at commit; the transformers reference loop skips the last commit).
    ``memory_utilization``: share of usable memory the engine lets weights, KV cache and request buffers take (the
    rest is activation headroom). ``runs_mtp``: whether it serves Gemma 4 with its MTP drafter. ``shows_drafts``:
    whether the user sees DiffusionGemma's intermediate drafts while a canvas is refined, or only committed canvases
    (it moves the first useful draft).
    """

    name: str
    description: str
    vendors: tuple[str, ...]
    precisions: tuple[str, ...]
    execution_modes: tuple[ExecutionMode, ...]
    commits_last_canvas: bool
    memory_utilization: float
    memory_utilization_basis: str
    runs_mtp: bool
    priors: dict[str, Prior]
    shows_drafts: bool
    shows_drafts_basis: str

    @property
    def default_mode(self) -> ExecutionMode:
        """The mode it runs in unless told otherwise (and the mode of its calibration runs)."""
        return self.execution_modes[0]


# Achievable footing: ceilings are what the best streaming read and square GEMM reach (dgprofile.model.ceilings).
_CUDA_GRAPH_FLOOR = Prior(3e-3, 1.0, "CUDA-graph decode of 30 MoE layers: tens of kernels a layer at a few "
                          "microseconds each (order of magnitude; fitted where AR runs exist)")
_NO_STEP_OVERHEAD = Prior(1e-3, 1.5, "assumed small unless a published diffusion run shows otherwise")
_COMPUTE_PRIOR = Prior(0.6, 0.6, "grouped MoE GEMMs at ~16 tokens per expert reach less than a square GEMM "
                       "(assumed; dense bf16 GEMM itself is the achievable rate)")
_MTP_PRIOR = Prior(0.2, 0.7, "a drafter step is a few small layers against the 30 of an AR step (assumed; "
                   "fitted to the vLLM blog's MTP run)")
_ACCEPTANCE_PRIOR = Prior(0.7, 0.3, "assumed: draft acceptance of a model's own MTP head on mixed text")
_NO_EAGER = Prior(1.0, 0.5, "not used: this engine is modelled in its calibrated mode only")

ENGINES: dict[str, Engine] = {
    "vllm": Engine(
        "vllm", "vLLM >= 0.24 (model runner v2, CUDA graphs, FP8/NVFP4/AWQ kernels)",
        ("nvidia", "amd"), ("bf16", "fp8", "int8", "int4", "nvfp4"), ("cuda-graphs", "eager"), True, 0.85,
        "--gpu-memory-utilization 0.85, the recipe's headroom for denoising activations "
        "(https://recipes.vllm.ai/Google/diffusiongemma-26B-A4B-it)", True,
        {"pass_floor_seconds": _CUDA_GRAPH_FLOOR,
         "diffusion_step_overhead_seconds": _NO_STEP_OVERHEAD,
         "bandwidth_efficiency": Prior(0.94, 0.15, "CUDA-graph GEMV streaming reaches 85-86% of the H100 "
                                       "datasheet (2.84-2.90 of 3.35 TB/s measured on an H100 SXM: bf16 "
                                       "8192x8192 weight, 1-64 tokens), 94% of the best streaming read"),
         "compute_efficiency": _COMPUTE_PRIOR,
         "mtp_draft_step_fraction": _MTP_PRIOR,
         "mtp_acceptance": _ACCEPTANCE_PRIOR,
         "eager_host_factor": Prior(3.0, 0.7, "with --enforce-eager every custom op and Triton kernel is launched "
                                    "from Python, several times a bare torch op (assumed: no published eager "
                                    "run of this model)")},
        shows_drafts=False, shows_drafts_basis="the commit pass emits a canvas's 256 tokens at once; nothing is "
        "streamed before it"),
    "mlx": Engine(
        "mlx", "MLX on Apple Silicon (mlx-lm style, group-quantised 4/8-bit)",
        ("apple",), ("bf16", "mlx-8bit", "mlx-4bit"), ("eager",), False, 1.0,
        "Metal's recommended working set is already the limit (see dgprofile.model.ceilings)", False,
        {"pass_floor_seconds": Prior(5e-3, 1.0, "no graph capture: every op is a Metal dispatch (assumed order "
                                     "of magnitude; fitted to the M1 Ultra AR run)"),
         "diffusion_step_overhead_seconds": _NO_STEP_OVERHEAD,
         "bandwidth_efficiency": Prior(0.85, 0.15, "an M1 Max GPU attains ~78% of its datasheet bandwidth (~318 "
                                       "of 409.6 GB/s: https://github.com/ggml-org/llama.cpp/pull/1642), ~85% of "
                                       "the achievable footing"),
         "compute_efficiency": _COMPUTE_PRIOR,
         "mtp_draft_step_fraction": _MTP_PRIOR,
         "mtp_acceptance": _ACCEPTANCE_PRIOR,
         "eager_host_factor": _NO_EAGER},
        shows_drafts=False, shows_drafts_basis="assumed: generation returns committed canvases"),
    "llama.cpp": Engine(
        "llama.cpp", "llama.cpp (GGUF; DiffusionGemma through llama-diffusion-cli, PR #24423)",
        ("nvidia", "amd", "intel", "apple", "cpu"), ("bf16", "q8_0", "q4_k_m"), ("cuda-graphs", "eager"), False, 0.95,
        "assumed: compute buffers and runtime take ~5%", False,
        {"pass_floor_seconds": _CUDA_GRAPH_FLOOR,
         "diffusion_step_overhead_seconds": _NO_STEP_OVERHEAD,
         "bandwidth_efficiency": Prior(0.87, 0.2, "assumed between the vllm (0.94) and mlx (0.85) priors"),
         "compute_efficiency": _COMPUTE_PRIOR,
         "mtp_draft_step_fraction": _MTP_PRIOR,
         "mtp_acceptance": _ACCEPTANCE_PRIOR,
         "eager_host_factor": Prior(1.0, 0.5, "C++ launches cost about a bare torch op (assumed)")},
        shows_drafts=False, shows_drafts_basis="assumed: served output comes a canvas at a time"),
    "transformers": Engine(
        "transformers", "Hugging Face transformers, eager (no torch.compile, no CUDA graphs)",
        # CPUs too: `dgprofile verify` runs both models there in transformers and sets them beside this engine.
        ("nvidia", "amd", "intel", "apple", "cpu"), ("bf16",), ("eager",), False, 0.95,
        "assumed: the CUDA context and allocator slack take ~5%", False,
        {"pass_floor_seconds": Prior(0.05, 1.5, "eager Python over 30 MoE layers (fitted to the H200 run)"),
         "diffusion_step_overhead_seconds": _NO_STEP_OVERHEAD,
         "bandwidth_efficiency": Prior(0.87, 0.2, "assumed: eager kernels stream close to the CUDA-graph figure"),
         "compute_efficiency": _COMPUTE_PRIOR,
         "mtp_draft_step_fraction": _MTP_PRIOR,
         "mtp_acceptance": _ACCEPTANCE_PRIOR,
         "eager_host_factor": _NO_EAGER},
        shows_drafts=True, shows_drafts_basis="in process, generate() hands its streamer every denoising step's "
        "draft (put_draft; TextDiffusionStreamer shows them); `transformers serve` streams committed canvases only"),
    "ideal": Engine(
        "ideal", "no overhead beyond the passes: the measured passes on this machine, or the device's "
        "ceilings when nothing was measured",
        ("nvidia", "amd", "intel", "apple", "cpu"), ("bf16", "fp8", "int8", "nvfp4", "int4"), ("cuda-graphs",), True, 1.0,
        "no engine reserve", True,
        {}, shows_drafts=True, shows_drafts_basis="the best case: every draft is shown as it is made"),
}

# `ideal` is not fitted: it is the bound the measured (or datasheet) ceilings set.
IDEAL_PARAMETERS: dict[str, float] = {"pass_floor_seconds": 0.0, "diffusion_step_overhead_seconds": 0.0,
                                      "bandwidth_efficiency": 1.0, "compute_efficiency": 1.0,
                                      "mtp_draft_step_fraction": 0.0, "mtp_acceptance": _ACCEPTANCE_PRIOR.median,
                                      "eager_host_factor": 1.0}


def engine_by_name(name: str) -> Engine:
    """The engine called ``name``; UsageError listing the known ones otherwise."""
    try:
        return ENGINES[name]
    except KeyError:
        raise UsageError(f"unknown engine '{name}': known are {', '.join(ENGINE_NAMES)} and {AUTO}") from None


def auto_engine(*, vendor: str, device_type: str, device_name: str) -> tuple[str, str]:
    """The engine a user of this platform would run, and why.

    vLLM on NVIDIA GPUs with their own memory or a vLLM build (discrete cards, superchips, DGX Spark: the recipe
    ships an override for it) and on AMD Instinct accelerators (ROCm builds); MLX on Apple Silicon; llama.cpp
    where vLLM has no DiffusionGemma build or its users do not run it: AMD APUs (Strix Halo) and Radeon cards
    (ROCm or Vulkan), Intel Arc and integrated GPUs (SYCL), and CPUs.
    """
    if vendor == "apple":
        return "mlx", "Apple Silicon: MLX is the native Metal engine"
    if vendor == "nvidia" and device_type != "apu-gpu":
        return "vllm", "vLLM serves DiffusionGemma on NVIDIA and AMD GPUs (recipe, min vLLM 0.24)"
    if vendor == "amd" and device_type != "apu-gpu" and "instinct" in device_name.lower():
        return "vllm", "vLLM serves DiffusionGemma on AMD Instinct accelerators through its ROCm build"
    if vendor == "amd":
        return "llama.cpp", ("Radeon and Ryzen AI users run llama.cpp (GGUF, ROCm or Vulkan backend) "
                             "rather than vLLM")
    if vendor == "intel":
        return "llama.cpp", "Intel Arc and integrated GPUs run llama.cpp (GGUF, SYCL backend)"
    return "llama.cpp", "no vLLM build for this platform: llama.cpp (GGUF) is what runs there"
