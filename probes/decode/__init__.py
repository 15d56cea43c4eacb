"""DiffusionGemma-style decode micro-benchmarks at the real model shapes.

``run_decode_bench`` is the entry point (it imports torch); ``plan.plan_bench`` plans a run without torch.
"""

from __future__ import annotations

from dgprofile.probes.decode.measurements import DecodeMeasurements, KernelsReady, Progress
from dgprofile.probes.decode.plan import DEFAULT_CONCURRENCIES, DEFAULT_CONTEXTS, DEFAULT_PRECISIONS
from dgprofile.specs.model_config import DEFAULT_MODEL


def run_decode_bench(*, device: str, quick: bool = False, precisions: tuple[str, ...] = DEFAULT_PRECISIONS,
                     concurrencies: tuple[int, ...] = DEFAULT_CONCURRENCIES,
                     context_tokens: tuple[int, ...] = DEFAULT_CONTEXTS, full_depth: bool = False,
                     progress: Progress | None = None, model: str = DEFAULT_MODEL,
                     kernels_ready: KernelsReady = lambda job: None) -> DecodeMeasurements:
    """Measure AR step, DG denoise, DG commit and prefill passes: see ``bench.run_decode_bench``."""
    from dgprofile.probes.decode.bench import run_decode_bench as run

    return run(device=device, quick=quick, precisions=precisions, concurrencies=concurrencies,
               context_tokens=context_tokens, full_depth=full_depth, progress=progress, model=model,
               kernels_ready=kernels_ready)
