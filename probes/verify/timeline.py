"""Scale the timeline of a generation run on a part of the model to the whole model.

Marks are moments in one generation (a layer starting or ending, the LM head starting, a draft reaching the
streamer); each mark says how many times the interval after it counts toward the whole model: a sampled layer
of a type counts as the layers it stands for, vocabulary-sized work on a slice counts as the whole vocabulary,
everything else once. The scaled time of a mark is the sum of the scaled intervals before it. A full-size build
has no marks but the streamer's, each interval counting once, so its times are the wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence


def scaled_times(raw_seconds: Sequence[float], scale_after: Sequence[float]) -> list[float]:
    """Each mark's time on the whole model's clock: ``raw_seconds[i]`` is mark i's wall time (from the request's
    start, the first mark at 0), ``scale_after[i]`` the weight of the interval from mark i to mark i + 1."""
    if len(raw_seconds) != len(scale_after):
        raise ValueError("one scale per mark")
    scaled: list[float] = []
    clock = 0.0
    for index, moment in enumerate(raw_seconds):
        if index:
            clock += (moment - raw_seconds[index - 1]) * scale_after[index - 1]
        scaled.append(clock)
    return scaled
