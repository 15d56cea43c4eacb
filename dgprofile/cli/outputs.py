"""Output files: checked before any work starts, never written over an input or another output, and saved
somewhere that works when writing still fails after a long run.

An output path is usable when it is not an existing directory or special file (a device, a pipe), the directory it
goes in accepts a new file (or, when that directory does not exist yet, the nearest one that does accepts a new
directory), and it resolves (links followed) to neither an input nor another output of the same command. Both
are tried for real, with a temporary file or directory removed at once: permission bits do not tell whether root
may write in /sys or on a read-only mount.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from dgprofile.errors import OutputPathError
from dgprofile.records.results import write_atomic

# Where a result goes when its own path fails after the run: the default result directory, then the temp directory.
FALLBACK_DIRECTORY = Path("dgprofile-results")


def output_option(*names: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A Click option naming an output file. Click's own directory check is left out on purpose: an existing
    directory is refused by ``check_outputs`` with every other unusable output (exit 7), not as a usage error."""
    return click.option(*names, type=click.Path(path_type=Path), metavar="FILE", **options)


@dataclass(frozen=True)
class Output:
    """A file a command will write, and the option that named it (for the error message)."""

    option: str
    path: Path


def check_outputs(outputs: Sequence[Output], *, inputs: Sequence[Path] = ()) -> None:
    """Raise OutputPathError, in one line naming the option, for the first output that is not usable (above)."""
    claimed: dict[str, str] = {}
    inputs_by_identity: dict[tuple[int, int], Path] | None = None
    for output in outputs:
        problem = unwritable_reason(output.path)
        if problem:
            raise OutputPathError(f"{output.option} {output.path}: cannot write there: {problem}")
        # An input is told apart by device and inode, looked up only when an output already exists: a stat per
        # input rather than a resolved path (a fleet report has 10,000 inputs), and a hard link is caught too.
        identity = _identity(output.path)
        if identity is not None:
            if inputs_by_identity is None:
                inputs_by_identity = {}
                for path in inputs:
                    inputs_by_identity.setdefault(_identity(path) or (-1, -1), path)
            if identity in inputs_by_identity:
                raise OutputPathError(f"{output.option} {output.path}: the same file as the input "
                                      f"{inputs_by_identity[identity]}; writing it would destroy that")
        resolved = os.path.realpath(output.path)
        if resolved in claimed:
            raise OutputPathError(f"{output.option} {output.path}: the same file as {claimed[resolved]}; "
                                  "writing it would destroy that")
        claimed[resolved] = f"{output.option} {output.path}"


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names, through links; None when there is none."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def unwritable_reason(path: Path) -> str:
    """Why a new ``path`` could not be written (empty when it can): see the module docstring."""
    if path.is_dir():
        return "it is a directory"
    if path.exists() and not path.is_file():
        return "it is not a regular file (a device, a pipe or a socket would be replaced, not written to)"
    directory = path.parent
    missing = directory
    while not missing.exists():
        if missing.is_symlink():
            return f"{missing} is a dangling link"
        missing = missing.parent
    if not missing.is_dir():
        return f"{missing} is not a directory"
    try:
        if missing == directory:
            descriptor, name = tempfile.mkstemp(prefix=".dgprofile-write-check.", dir=directory)
            os.close(descriptor)
            os.unlink(name)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".dgprofile-write-check.", dir=missing))
    except OSError as exc:
        return f"{missing}: {exc.strerror or exc}"
    return ""


@dataclass(frozen=True)
class Written:
    """Where an output went; ``problem`` says why it is not where it was asked for (empty when it is)."""

    path: Path
    problem: str = ""


def write_output(output: Output, text: str) -> Written:
    """Write ``text`` to the output; when that fails (the place changed since it was checked), save it under the
    same name in the first place that works (``dgprofile-results/``, then the temp directory), say so on stderr,
    and return where it went. OutputPathError only when nowhere works."""
    try:
        write_atomic(output.path, text)
        return Written(output.path)
    except OSError as exc:
        problem = f"cannot write {output.path} ({output.option}): {exc.strerror or exc}"
    for directory in (FALLBACK_DIRECTORY, Path(tempfile.gettempdir())):
        fallback = free_path(directory / output.path.name)
        if os.path.realpath(fallback) == os.path.realpath(output.path):
            continue
        with contextlib.suppress(OSError):
            write_atomic(fallback, text)
            click.echo(f"Error: {problem}; saved to {fallback} instead", err=True)
            return Written(fallback, problem)
    raise OutputPathError(f"{problem}, nor in {FALLBACK_DIRECTORY}/ or the temp directory")


def free_path(path: Path) -> Path:
    """``path``, or the first of ``name-2.ext``, ``name-3.ext``... that does not exist yet (never overwrites)."""
    if not path.exists():
        return path
    stem, suffix = _split_name(path.name)
    number = 2
    while (candidate := path.with_name(f"{stem}-{number}{suffix}")).exists():
        number += 1
    return candidate


def _split_name(name: str) -> tuple[str, str]:
    """``x.dgprofile.json`` -> (``x``, ``.dgprofile.json``): the whole suffix stays at the end."""
    stem, dot, rest = name.partition(".")
    return (stem, dot + rest) if stem else (name, "")
