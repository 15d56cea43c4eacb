"""Click commands, one module each; registered lazily in dgprofile.cli.COMMANDS."""

from __future__ import annotations

import click
from click.core import ParameterSource


def command_line(ctx: click.Context) -> tuple[str, ...]:
    """The command line as typed (recorded in result files); rebuilt from the options the user set when the
    command was invoked without `dgprofile.cli.main` (tests, embedding)."""
    typed = (ctx.find_root().obj or {}).get("command")
    if typed:
        return tuple(typed)
    words = ["dgprofile", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        if param.name is None or ctx.get_parameter_source(param.name) != ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        if isinstance(param, click.Argument):
            words.extend(str(v) for v in (value if isinstance(value, tuple) else (value,)))
        elif isinstance(param, click.Option) and param.is_flag:
            words.append(param.opts[-1] if value else param.secondary_opts[-1])
        else:
            words.extend((param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0], str(value)))
    return tuple(words)
