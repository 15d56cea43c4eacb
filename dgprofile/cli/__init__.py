"""The `dgprofile` command line: a Click group whose commands are thin adapters over the core.

Commands live in ``dgprofile/commands/<name>.py`` and are imported only when used (their ``--help`` text
included), so `dgprofile --help`, `report` and `compare` never import torch.
"""

from __future__ import annotations

import importlib
import sys

import click

from dgprofile import __version__
from dgprofile.errors import BenchmarkBusyError, DgprofileError, ResultFileError, UsageError
from dgprofile.exit_codes import ExitCode

# name -> (module, attribute, one-line help); the order is the order of a typical session.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("dgprofile.cli.check", "check", "Measure this machine end to end and give the verdict."),
    "probe": ("dgprofile.cli.probe", "probe", "Describe this machine's devices, memory and software (no benchmarks)."),
    "bench": ("dgprofile.cli.bench", "bench", "Measure limits and decode passes on this machine."),
    "verify": ("dgprofile.cli.verify", "verify", "Run the real models here and measure what users feel."),
    "predict": ("dgprofile.cli.predict", "predict", "Predict the speedup for hardware you don't have, from datasheets."),
    "hardware": ("dgprofile.cli.hardware", "hardware", "The datasheet table behind `predict`."),
    "report": ("dgprofile.cli.report", "report", "Fleet page over many result files."),
    "compare": ("dgprofile.cli.compare", "compare", "Two result files side by side."),
    "fleet": ("dgprofile.cli.fleet", "fleet", "Profile every machine of a Ray cluster (`fleet run`)."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, _, short) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dgprofile")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Will DiffusionGemma really be faster than autoregressive Gemma 4 on this machine?

    Run `dgprofile check` to measure this machine and get the verdict; `dgprofile predict --hardware NAME`
    for a machine you don't have. Exit codes are listed in the README.
    """
    ctx.ensure_object(dict)["debug"] = debug


_ERROR_CODES: tuple[tuple[type[DgprofileError], ExitCode], ...] = (
    (ResultFileError, ExitCode.INPUT_ERROR),
    (UsageError, ExitCode.INPUT_ERROR),
    (BenchmarkBusyError, ExitCode.ENVIRONMENT_ERROR),
    (DgprofileError, ExitCode.ENVIRONMENT_ERROR),
)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors with documented exit codes."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # Outside standalone mode Click returns ctx.exit(code)'s code instead of exiting.
        code = cli.main(args=args, prog_name="dgprofile", standalone_mode=False,
                        obj={"command": ("dgprofile", *args)})
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except DgprofileError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        sys.exit(next(code for kind, code in _ERROR_CODES if isinstance(exc, kind)))
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
