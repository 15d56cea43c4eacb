"""Time the attention methods of the denoise pass at the real shapes on a GPU, as the decode benchmark times them.

    python scripts/bench_attention.py [--device cuda] [--concurrencies 1,8] [--context 4096] [--tiles]

A developer script, not shipped in the package. For a sliding and a global layer of the bf16 denoise pass (256
canvas tokens per request over the cached context and the canvas, nothing masked), each attention method the
benchmark offers at that shape is timed through the harness as CUDA-graph replays: the score/softmax/value part
alone (``core``, on the folded queries and the KV caches) and the whole attention component as the benchmark's
autotuner times it (``component``: q/k/v projection, fused norms and cache writes, the core, output projection).
``--tiles`` also times the flash kernel's other tilings, so that its per-head-dimension defaults can be checked
against the alternatives on this GPU.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from dgprofile.probes.decode.bench import GPU_BUDGET, _attention_applies
from dgprofile.probes.decode.model import (
    AttentionMethod,
    attention,
    build_layer,
    layer_state,
    matmul_attention,
    random_tensor,
    unmasked_attention,
)
from dgprofile.probes.decode.triton_flash_attention import FlashTiles, flash_attention, flash_tiles
from dgprofile.probes.harness import graph_or_eager, timer_for
from dgprofile.specs.model_config import LayerType, load_model_config

METHODS: tuple[AttentionMethod, ...] = ("sdpa", "matmul", "flash")
# Tilings compared with ``--tiles`` (block rows, block keys, value columns, warps, stages), per head dimension; the
# one ``flash_tiles`` chose for a shape is timed as the method itself. All fit Hopper's shared memory; compiled
# for sm_90, the 4-warp tiling at head dim 256 and the unsplit one at 512 spill a few registers.
OTHER_TILES = {
    256: (FlashTiles(64, 64, 256, 4, 2), FlashTiles(128, 64, 256, 8, 2), FlashTiles(64, 32, 256, 8, 3),
          FlashTiles(64, 64, 128, 8, 2), FlashTiles(64, 64, 256, 8, 2)),
    512: (FlashTiles(64, 32, 512, 8, 2), FlashTiles(64, 32, 256, 4, 2), FlashTiles(128, 32, 256, 8, 2),
          FlashTiles(64, 32, 256, 8, 3)),
}


def timed(fn: Callable[[], object], device: str) -> str:
    """Median of graph replays through the benchmark's budget, in microseconds, or why it could not run."""
    try:
        prepared = graph_or_eager(fn)
        timing = GPU_BUDGET.measure(prepared.call, timer=timer_for(device), ops_per_call=prepared.ops_per_call)
    except Exception as error:  # a tiling that does not fit this GPU is reported, not fatal
        return f"failed ({type(error).__name__}: {str(error).splitlines()[0][:90]})"
    eager = f", eager: {prepared.fallback_reason}" if prepared.fallback_reason else ""
    return f"{timing.median_seconds * 1e6:8.1f} us (spread {timing.relative_spread:.1%}{eager})"


def core(method: AttentionMethod, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Callable[[], object]:
    """The score/softmax/value part of one method, as ``model.attention`` calls it on an unmasked pass."""
    if method == "sdpa":
        return lambda: F.scaled_dot_product_attention(q, k, v, scale=1.0)
    if method == "matmul":
        return lambda: matmul_attention(q, k, v, None, fused=True)
    return lambda: unmasked_attention(method, q, k, v)


def main() -> None:
    """Print, per layer type and concurrency, each method's core and component times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--concurrencies", default="1,8")
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument("--tiles", action="store_true", help="also time the flash kernel's other tilings")
    args = parser.parse_args()
    started = time.perf_counter()
    device, dtype = args.device, torch.bfloat16
    config = load_model_config()
    sms = torch.cuda.get_device_properties(torch.device(device)).multi_processor_count
    print(torch.cuda.get_device_name(torch.device(device)), f"torch {torch.__version__}", flush=True)
    tokens = config.diffusion.canvas_length
    layer_types: tuple[LayerType, ...] = ("sliding", "global")
    for layer_type in layer_types:
        layer = build_layer(config, layer_type, dtype=dtype, fp8=False, device=device)
        attn = config.backbone.attention(layer_type)
        group = config.backbone.num_attention_heads // attn.num_kv_heads
        for concurrency in (int(c) for c in args.concurrencies.split(",")):
            methods = [m for m in METHODS if _attention_applies(config, m, layer_type, "dg-denoise", concurrency,
                                                                tokens, args.context)]
            state = layer_state(config, layer_type, kind="dg-denoise", concurrency=concurrency, new=tokens,
                                context=args.context, dtype=dtype, device=device,
                                generator=torch.Generator().manual_seed(0), fused=True)
            k, v = state.k_cache, state.v_cache
            rows, keys, dim = group * tokens, k.shape[2], attn.head_dim
            q = random_tensor((concurrency, attn.num_kv_heads, rows, dim), dtype, device, std=1.0)
            flops = 4 * concurrency * attn.num_kv_heads * rows * keys * dim
            chosen = flash_tiles(dim, rows, concurrency * attn.num_kv_heads, sms)
            print(f"\n{layer_type} layer, denoise c={concurrency}: {attn.num_kv_heads} KV heads x {rows} query "
                  f"rows over {keys} keys, head dim {dim}; {flops / 1e9:.1f} GFLOP in the core", flush=True)
            h = random_tensor((concurrency * tokens, config.backbone.hidden_size), dtype, device, std=1.0)
            for method in methods:
                print(f"  {method:8s} core {timed(core(method, q, k, v), device)}", flush=True)
                with_method = layer_state(config, layer_type, kind="dg-denoise", concurrency=concurrency,
                                          new=tokens, context=args.context, dtype=dtype, device=device,
                                          generator=torch.Generator().manual_seed(0), attention_method=method,
                                          fused=True)
                component = partial(attention, config, h, layer, with_method, concurrency)
                print(f"  {method:8s} component {timed(component, device)}", flush=True)
                del with_method
            print(f"  flash tiles chosen: {chosen}")
            if args.tiles:
                for tiles in OTHER_TILES.get(dim, ()):
                    if tiles != chosen:
                        print(f"  flash {tiles}: core "
                              f"{timed(partial(flash_attention, q, k, v, tiles), device)}", flush=True)
            del state, q, k, v, h
            torch.cuda.empty_cache()
        del layer
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
