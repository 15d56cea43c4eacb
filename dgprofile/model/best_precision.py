"""Which precision a user would run: the rule behind the headline scenario and behind each side of a comparison.

The best precision is the one with the lowest DiffusionGemma latency among those of 8 bits or more (bf16, fp8,
int8, Q8_0, MLX 8-bit) that fit and that the engine runs; 4-bit formats only when none of those fits (4-bit costs measurable
quality, 8-bit far less). Latencies within ``PRECISION_TIE_TOLERANCE`` tie, and the engine's order of formats
(widest first) breaks the tie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dgprofile.specs.pass_cost import FOUR_BIT_PRECISIONS

PRECISION_TIE_TOLERANCE = 0.05  # precisions within 5% of the fastest tie


def best_precision(latencies: Mapping[str, float], engine_order: Sequence[str]) -> str | None:
    """The best of the precisions that fit; ``latencies`` holds DiffusionGemma's latency for each of them, and
    ``engine_order`` is the engine's own order of formats. None when nothing fits."""
    fitting = [p for p in engine_order if p in latencies]
    preferred = [p for p in fitting if p not in FOUR_BIT_PRECISIONS] or fitting
    if not preferred:
        return None
    fastest = min(latencies[p] for p in preferred)
    return next(p for p in preferred if latencies[p] <= fastest * (1 + PRECISION_TIE_TOLERANCE))
