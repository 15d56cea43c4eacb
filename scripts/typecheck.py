"""Run mypy with `probes/` checked under the name it installs as, `dgprofile.probes`.

setuptools maps `dgprofile.probes` onto the top-level `probes/` folder (`package-dir` in pyproject.toml), and the
editable install resolves that with an import hook mypy cannot follow. Run on the folders alone, mypy would name
the files `probes.*` and find no `dgprofile.probes.*` for the imports. This wrapper takes the sources mypy collects
from `[tool.mypy]` (or the paths given here), renames `probes.*` to `dgprofile.probes.*` and runs the same build,
so errors name the real files. Arguments are mypy's: `python scripts/typecheck.py [mypy options] [paths]`.
"""

from __future__ import annotations

import sys

from mypy import build
from mypy.errors import CompileError
from mypy.fscache import FileSystemCache
from mypy.main import process_options
from mypy.modulefinder import BuildSource
from mypy.util import count_stats

INSTALLED_AS = {"probes": "dgprofile.probes"}  # top-level folder -> installed package name


def installed_name(module: str) -> str:
    top, dot, rest = module.partition(".")
    return INSTALLED_AS[top] + dot + rest if top in INSTALLED_AS else module


def main(argv: list[str]) -> int:
    fscache = FileSystemCache()
    sources, options = process_options(argv, fscache=fscache)
    sources = [BuildSource(s.path, installed_name(s.module), s.text, s.base_dir) for s in sources]
    blockers = False
    try:
        messages = build.build(sources, options, fscache=fscache).errors
    except CompileError as error:
        messages, blockers = error.messages, True
    for message in messages:
        print(message)
    n_errors, n_notes, n_files = count_stats(messages)
    if n_errors:
        print(f"Found {n_errors} error{'s' * (n_errors != 1)} in {n_files} file{'s' * (n_files != 1)} "
              f"(checked {len(sources)} source files)")
        return 2 if blockers else 1
    print(f"Success: no issues found in {len(sources)} source files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
