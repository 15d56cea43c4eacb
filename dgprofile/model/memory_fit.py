"""Does the model fit? Weights, KV cache, DiffusionGemma's per-request buffers and workspace against the memory
the accelerator(s) can really use.

Per precision (footprint arithmetic from ``dgprofile.specs.pass_cost``):

* weights: quantised linears in the precision, embedding / routers / norms / vision tower in bf16;
* KV cache of every concurrent request at its final length (sliding layers keep only their window);
* DiffusionGemma only: per decoding request the sampler's fp32 transients and the self-conditioning buffer
  (vLLM's ~2.5 GiB), and the engine's denoise workspace (large in eager transformers, fitted to its run);
* the engine's activation headroom: weights, cache and buffers may take ``memory_utilization`` of the usable
  memory (vLLM's recipe: 0.85), the rest is left for activations.

Usable memory comes from ``dgprofile.model.ceilings`` (discrete: device memory less the driver's reservation;
Apple: the recommended working set; other one-pool parts: less the OS's share), times the number of GPUs
under tensor parallelism.
"""

from __future__ import annotations

from dgprofile.model.engines import Engine
from dgprofile.records.predictions import Ceilings, EngineParameters, MemoryFit
from dgprofile.specs.model_config import ModelConfig, ModelKind
from dgprofile.specs.pass_cost import dg_request_buffers_bytes, kv_cache_bytes, weights_bytes
from dgprofile.text.units import bytes_text

_WEIGHTS: dict[tuple[str, str, ModelKind], float] = {}


def _weights(config: ModelConfig, precision: str, model: ModelKind) -> float:
    """``weights_bytes`` memoised: every matrix cell asks again for the same few formats."""
    key = (config.id, precision, model)
    if key not in _WEIGHTS:
        _WEIGHTS[key] = weights_bytes(config, precision, model=model)
    return _WEIGHTS[key]


def diffusion_needed_bytes(config: ModelConfig, precision: str, *, concurrency: int, context_tokens: int,
                           workspace_fraction: float) -> tuple[float, float, float, float]:
    """(weights, KV cache, request buffers, workspace) DiffusionGemma needs at this concurrency."""
    weights = _weights(config, precision, "diffusion")
    return (weights, kv_cache_bytes(config, context_tokens, precision, sequences=concurrency),
            dg_request_buffers_bytes(config) * concurrency, weights * workspace_fraction)


def memory_fit(config: ModelConfig, ceilings: Ceilings, engine: Engine, parameters: EngineParameters, *,
               precision: str, concurrency: int, context_tokens: int) -> MemoryFit:
    """Whether ``precision`` fits for both models at ``concurrency`` requests of ``context_tokens`` each."""
    weights, dg_kv, buffers, workspace = diffusion_needed_bytes(
        config, precision, concurrency=concurrency, context_tokens=context_tokens,
        workspace_fraction=parameters.diffusion_workspace_fraction)
    ar_weights = _weights(config, precision, "autoregressive")
    ar_kv = kv_cache_bytes(config, context_tokens, precision, sequences=concurrency)
    usable = ceilings.usable_memory_bytes
    budget = usable * engine.memory_utilization
    dg_needed = weights + dg_kv + buffers + workspace
    ar_needed = ar_weights + ar_kv
    per_request = kv_cache_bytes(config, context_tokens, precision) + dg_request_buffers_bytes(config)
    max_concurrency = max(0, int((budget - weights - workspace) // per_request))
    runs = precision in engine.precisions
    fits_dg, fits_ar = dg_needed <= budget, ar_needed <= budget
    if not runs:
        note = f"{engine.name} does not run {precision}"
    elif fits_dg:
        note = (f"{precision}: needs {bytes_text(dg_needed)} of {bytes_text(budget)} "
                f"({bytes_text(usable)} usable x {engine.memory_utilization:.2f})")
    else:
        note = (f"{precision} does not fit: DiffusionGemma needs {bytes_text(dg_needed)} "
                f"(weights {bytes_text(weights)}), {bytes_text(budget)} available")
    return MemoryFit(
        precision=precision, gpus=ceilings.gpus, concurrency=concurrency, usable_bytes=usable,
        usable_basis=ceilings.usable_memory_basis, weights_bytes=int(weights),
        diffusion_kv_cache_bytes=int(dg_kv), autoregressive_kv_cache_bytes=int(ar_kv),
        diffusion_buffers_bytes=int(buffers + workspace), activation_headroom_bytes=int(usable - budget),
        diffusion_needed_bytes=int(dg_needed), autoregressive_needed_bytes=int(ar_needed),
        fits_diffusion=fits_dg, fits_autoregressive=fits_ar, max_diffusion_concurrency=max_concurrency,
        engine_runs_it=runs, note=note)
