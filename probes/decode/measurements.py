"""What a decode benchmark run hands back (no torch here, so the lazy entry point can name its types)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dgprofile.records.passes import PassTimes

Progress = Callable[[str], None]
# Returns once the compile worker of the named job has compiled its kernels (``precompile.Precompile.ready``).
KernelsReady = Callable[[str], None]


@dataclass(frozen=True)
class DecodeMeasurements:
    """The passes one run timed, without floors (the model sets them against the machine's limits), and the
    precisions this device cannot run, which the model derives from the bf16 passes."""

    passes: PassTimes
    modelled_precisions: tuple[str, ...]
