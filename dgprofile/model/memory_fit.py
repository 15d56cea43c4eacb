"""Does the model fit? What each model needs against the memory the accelerator(s) can really use.

The rule, stated once (README, "Memory fit"): a precision fits when the model's **need** is at most the **usable
memory**, and those are the only two figures shown.

* Usable memory is what the accelerator can give a model (``dgprofile.model.ceilings.usable_memory``, or the
  probe's reading on a measured machine): a discrete GPU's memory less the driver's reservation, Apple's
  recommended working set, another one-pool part's memory less the OS's share, a CPU's available RAM; times the
  number of GPUs under tensor parallelism.
* The need, per precision (footprint arithmetic from ``dgprofile.specs.pass_cost``): weights (quantised linears
  in the precision; embedding, routers, norms and vision tower in bf16), the KV cache of every concurrent request
  at its final length (sliding layers keep only their window), for DiffusionGemma its per-request buffers (the
  sampler's fp32 transients and the self-conditioning buffer, vLLM's ~2.5 GiB) and the engine's denoise workspace,
  and the engine's activation headroom: weights, cache and buffers may fill at most ``memory_utilization`` of what
  the engine takes (vLLM's recipe: 0.85), so the need is their sum divided by it.
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
    share = engine.memory_utilization
    dg_without_headroom = weights + dg_kv + buffers + workspace
    dg_needed = dg_without_headroom / share
    ar_needed = (ar_weights + ar_kv) / share
    per_request = kv_cache_bytes(config, context_tokens, precision) + dg_request_buffers_bytes(config)
    max_concurrency = max(0, int((usable * share - weights - workspace) // per_request))
    runs = precision in engine.precisions
    fits_dg, fits_ar = dg_needed <= usable, ar_needed <= usable
    verb = "needs" if fits_dg else "does not fit: needs"
    note = (f"{engine.name} does not run {precision}" if not runs else
            f"{precision} {verb} {bytes_text(dg_needed)} for DiffusionGemma at concurrency {concurrency}, "
            f"{bytes_text(usable)} usable")
    return MemoryFit(
        precision=precision, gpus=ceilings.gpus, concurrency=concurrency, usable_bytes=usable,
        usable_basis=ceilings.usable_memory_basis, weights_bytes=int(weights),
        diffusion_kv_cache_bytes=int(dg_kv), autoregressive_kv_cache_bytes=int(ar_kv),
        diffusion_buffers_bytes=int(buffers + workspace),
        activation_headroom_bytes=int(dg_needed - dg_without_headroom),
        diffusion_needed_bytes=int(dg_needed), autoregressive_needed_bytes=int(ar_needed),
        fits_diffusion=fits_dg, fits_autoregressive=fits_ar, max_diffusion_concurrency=max_concurrency,
        engine_runs_it=runs, note=note)
