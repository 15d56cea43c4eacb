"""Click commands, one module each; registered lazily in dgprofile.cli.COMMANDS."""

from __future__ import annotations

import click
from click.core import ParameterSource

# What stands for a path on an anonymized command line: paths name users, hosts and projects.
REDACTED_PATH = "FILE"


def command_line(ctx: click.Context) -> tuple[str, ...]:
    """The command line as typed (recorded in result files). With ``--anonymize``, and when the command was
    invoked without `dgprofile.cli.main` (tests, embedding), it is rebuilt from the options the user set; an
    anonymized one shows every path as ``FILE``."""
    typed = (ctx.find_root().obj or {}).get("command")
    anonymize = bool(ctx.params.get("anonymize"))
    if typed and not anonymize:
        return tuple(typed)
    words = ["dgprofile", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        if param.name is None or ctx.get_parameter_source(param.name) != ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        values = value if isinstance(value, tuple) else (value,)
        shown = [REDACTED_PATH if anonymize and isinstance(param.type, click.Path) else str(v) for v in values]
        if isinstance(param, click.Argument):
            words.extend(shown)
        elif isinstance(param, click.Option) and param.is_flag:
            words.append(param.opts[-1] if value else param.secondary_opts[-1])
        else:
            words.extend((param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0], *shown))
    return tuple(words)
