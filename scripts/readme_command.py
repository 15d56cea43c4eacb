"""Print one of the README's quick-start commands, or check the README's generated CLI help.

The README marks its two commands with `<!-- quickstart:run -->` and `<!-- quickstart:test -->` before a fenced
block; CI runs exactly what the README says. `--check-help` fails when the README's `--help` block is stale and
`--write-help` regenerates it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
HELP_BEGIN, HELP_END = "<!-- help:begin -->", "<!-- help:end -->"


def quickstart_command(name: str) -> str:
    match = re.search(rf"<!-- quickstart:{name} -->\s*```(?:bash|sh)?\n(.*?)```", README.read_text(), re.S)
    if not match:
        raise SystemExit(f"README.md has no <!-- quickstart:{name} --> block")
    return " ".join(line.rstrip("\\").strip() for line in match.group(1).strip().splitlines())


def current_help() -> str:
    import click
    from click.testing import CliRunner

    from dgprofile.cli import COMMANDS, cli

    parts = []
    invocations: list[list[str]] = [[]]
    for name in COMMANDS:
        invocations.append([name])
        group = cli.get_command(click.Context(cli), name)
        if isinstance(group, click.Group) and name == "fleet":  # `fleet run` is where its options are
            invocations += [[name, sub] for sub in group.list_commands(click.Context(group))]
    for args in invocations:
        output = CliRunner().invoke(cli, [*args, "--help"], prog_name="dgprofile", terminal_width=100).output
        parts.append(f"$ dgprofile {' '.join(args)} --help\n{output}".replace("  \n", "\n"))
    return "```text\n" + "\n".join(parts) + "```"


def help_block_in_readme() -> str:
    text = README.read_text()
    return text[text.index(HELP_BEGIN) + len(HELP_BEGIN):text.index(HELP_END)].strip()


def main(argv: list[str]) -> None:
    if argv == ["--check-help"]:
        if help_block_in_readme() != current_help():
            raise SystemExit("README.md CLI help is stale: run python scripts/readme_command.py --write-help")
        return
    if argv == ["--write-help"]:
        text = README.read_text()
        start, end = text.index(HELP_BEGIN) + len(HELP_BEGIN), text.index(HELP_END)
        README.write_text(text[:start] + "\n" + current_help() + "\n" + text[end:])
        return
    if len(argv) == 1:
        print(quickstart_command(argv[0]))
        return
    raise SystemExit("usage: readme_command.py run|test|--check-help|--write-help")


if __name__ == "__main__":
    main(sys.argv[1:])
