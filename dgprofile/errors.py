"""Errors that reach the user as one line each (the CLI maps them to exit codes)."""


class DgprofileError(Exception):
    """Base of every error dgprofile reports as a one-line message."""


class ResultFileError(DgprofileError):
    """A result file cannot be read, parsed, upgraded or validated."""


class UsageError(DgprofileError):
    """The command line asks for something that cannot be done (unknown hardware, bad override)."""


class BenchmarkBusyError(DgprofileError):
    """Another dgprofile benchmark holds the device, so timings would spoil each other."""


class OutputPathError(DgprofileError):
    """An output cannot be written where the command line says: the place is unwritable, or the path names an
    input or another output of the same command."""
