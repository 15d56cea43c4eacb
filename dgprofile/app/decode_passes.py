"""The decode passes of this machine: the probe times them, the model sets them against the measured limits.

The probe returns what it timed and the precisions the device cannot run; ``dgprofile.model.floors`` adds each
pass's floors and models those precisions from the bf16 passes. The probe (and torch) load on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dgprofile.interrupts import Interrupted
from dgprofile.model.ceilings import engine_matmul_rates
from dgprofile.model.floors import passes_against_limits
from dgprofile.records.limits import Limits
from dgprofile.records.machine import Machine
from dgprofile.records.passes import PassTimes
from dgprofile.specs.model_config import load_model_config

if TYPE_CHECKING:  # the probe (and torch behind it) loads on first use
    from dgprofile.probes.decode.measurements import DecodeMeasurements


def time_decode_passes(*, device: str, limits: Limits, quick: bool = False, full_depth: bool = False,
                       progress: Callable[[str], None] | None = None, machine: Machine | None = None,
                       kernels_ready: Callable[[str], None] = lambda job: None) -> PassTimes:
    """The four pass kinds timed on ``device`` at the real model shapes, with their floors at ``limits``, and the
    precisions the device cannot run modelled from its bf16 passes (at the matmul rates the predictions take for
    ``machine``'s GPU, where it is given). ``kernels_ready``: see ``run_decode_bench``."""
    from dgprofile.probes.decode import run_decode_bench

    try:
        measured = run_decode_bench(device=device, quick=quick, full_depth=full_depth, progress=progress,
                                    kernels_ready=kernels_ready)
    except Interrupted as interrupted:  # the passes that finished, set against the limits as a whole run's are
        raise Interrupted(_against_limits(interrupted.kept, limits, machine), interrupted) from interrupted
    return _against_limits(measured, limits, machine)


def _against_limits(measured: DecodeMeasurements, limits: Limits, machine: Machine | None) -> PassTimes:
    rates = engine_matmul_rates(machine, limits) if machine is not None else None
    return passes_against_limits(load_model_config(measured.passes.model_id), limits, measured.passes,
                                 measured.modelled_precisions, rates)
