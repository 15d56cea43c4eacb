"""The decode passes of this machine: the probe times them, the model sets them against the measured limits.

The probe returns what it timed and the precisions the device cannot run; ``dgprofile.model.floors`` adds each
pass's floors and models those precisions from the bf16 passes. The probe (and torch) load on first use.
"""

from __future__ import annotations

from collections.abc import Callable

from dgprofile.model.floors import passes_against_limits
from dgprofile.records.limits import Limits
from dgprofile.records.passes import PassTimes
from dgprofile.specs.model_config import load_model_config


def time_decode_passes(*, device: str, limits: Limits, quick: bool = False, full_depth: bool = False,
                       progress: Callable[[str], None] | None = None) -> PassTimes:
    """The four pass kinds timed on ``device`` at the real model shapes, with their floors at ``limits``, and the
    precisions the device cannot run modelled from its bf16 passes."""
    from dgprofile.probes.decode import run_decode_bench

    measured = run_decode_bench(device=device, quick=quick, full_depth=full_depth, progress=progress)
    return passes_against_limits(load_model_config(measured.passes.model_id), limits, measured.passes,
                                 measured.modelled_precisions)
