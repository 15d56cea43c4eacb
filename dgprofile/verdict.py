"""The verdict: small named rules, in a fixed order, over the predicted speedup band and the memory fit.

Classes (DESIGN.md): ``cannot-run`` (no supported precision fits), ``applies`` (the advertised multi-x speedup
holds: the lower band reaches ``APPLIES_MIN_SPEEDUP``), ``does-not-apply`` (about even or slower: the speedup is at
most ``ABOUT_EVEN_MAX_SPEEDUP``), ``partial`` (faster, but short of it). The first rule whose condition holds
decides; the reasons and advice come from separate small rules that read the same prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dgprofile.predictions import VerdictClass

APPLIES_MIN_SPEEDUP = 3.0  # "up to 4x" advertised; 3x at the lower band is the advertised effect, with margin
ABOUT_EVEN_MAX_SPEEDUP = 1.2  # within 20% is "about even": below what a user notices reliably between two runs


@dataclass(frozen=True)
class SpeedupBand:
    """A speedup and its band (lower, upper)."""

    point: float
    low: float
    high: float


@dataclass(frozen=True)
class ClassRule:
    """One rule of the class decision: ``name``, the class it gives, and when it holds."""

    name: str
    verdict: VerdictClass
    holds: Callable[[SpeedupBand | None], bool]


CLASS_RULES: tuple[ClassRule, ...] = (
    # Order matters: nothing else can be said about a model that does not fit.
    ClassRule("does-not-fit", "cannot-run", lambda band: band is None),
    ClassRule("advertised-speedup-holds", "applies",
              lambda band: band is not None and band.low >= APPLIES_MIN_SPEEDUP),
    ClassRule("about-even-or-slower", "does-not-apply",
              lambda band: band is not None and band.point <= ABOUT_EVEN_MAX_SPEEDUP),
    ClassRule("faster-but-short", "partial", lambda band: band is not None),
)


def classify(band: SpeedupBand | None) -> VerdictClass:
    """The class of the first rule that holds (``None``: nothing fits)."""
    return next(rule.verdict for rule in CLASS_RULES if rule.holds(band))


def classify_point(speedup: float) -> VerdictClass:
    """The class a single published speedup figure (no band) falls in."""
    return classify(SpeedupBand(speedup, speedup, speedup))
