"""Process exit codes, documented in the README (a test keeps the two equal)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Why dgprofile exited; verdict codes are used by `check` only."""

    OK = 0
    INTERNAL_ERROR = 1
    USAGE_ERROR = 2
    INPUT_ERROR = 3
    ENVIRONMENT_ERROR = 4
    BELOW_FAIL_UNDER = 5
    FLEET_INCOMPLETE = 6
    OUTPUT_ERROR = 7
    VERDICT_PARTIAL = 10
    VERDICT_DOES_NOT_APPLY = 11
    VERDICT_CANNOT_RUN = 12
    INTERRUPTED = 130
    TERMINATED = 143


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success; for `check`, the headline verdict is `applies`",
    ExitCode.INTERNAL_ERROR: "unexpected internal error (a bug: please report it with the traceback from --debug)",
    ExitCode.USAGE_ERROR: "bad command line (unknown option, missing argument, a value outside its range)",
    ExitCode.INPUT_ERROR: "bad input: unreadable, malformed or incompatible result file, unknown hardware name",
    ExitCode.ENVIRONMENT_ERROR: "cannot measure here: another dgprofile benchmark holds the device, or torch (or, for "
                                "`fleet run`, Ray) is missing or unreachable",
    ExitCode.BELOW_FAIL_UNDER: "`--fail-under X` given and the headline speedup (lower band) is below X",
    ExitCode.FLEET_INCOMPLETE: "`fleet run`: some machines gave no result (the fleet page lists each with the reason)",
    ExitCode.OUTPUT_ERROR: "an output cannot be written: its place is unwritable, or it names an input or another "
                           "output (checked before any work starts; a result that still fails to write after a run is "
                           "saved elsewhere, and the path printed)",
    ExitCode.VERDICT_PARTIAL: "`check`: DiffusionGemma is faster here, but well short of the advertised speedup",
    ExitCode.VERDICT_DOES_NOT_APPLY: "`check`: about even or slower than autoregressive Gemma 4 here",
    ExitCode.VERDICT_CANNOT_RUN: "`check`: the model does not fit this machine in any supported precision",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); `check` and `bench` still wrote the result file, marked incomplete, "
                          "with every measurement that had finished",
    ExitCode.TERMINATED: "terminated (SIGTERM, as `timeout` and job schedulers send); the result file is written as "
                         "after Ctrl-C",
}
