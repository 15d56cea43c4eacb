"""DiffusionGemma-style decode micro-benchmarks at the real model shapes.

``run_decode_bench`` is the entry point (it imports torch); ``plan.plan_bench`` plans a run without torch.
"""

from __future__ import annotations

from typing import Any


def run_decode_bench(**kwargs: Any) -> Any:
    """Measure AR step, DG denoise, DG commit and prefill passes: see ``bench.run_decode_bench``."""
    from dgprofile.probes.decode.bench import run_decode_bench as run

    return run(**kwargs)
