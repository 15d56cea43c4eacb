"""The command group: help for every command, version, one-line errors and their exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from dgprofile import __version__
from dgprofile.cli import COMMANDS, cli, main
from dgprofile.exit_codes import ExitCode


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == ExitCode.USAGE_ERROR
    assert "No such command" in capsys.readouterr().err


def test_bad_result_file_is_one_line_with_input_error_code(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit) as info:
        main(["compare", str(bad), str(bad)])
    assert info.value.code == ExitCode.INPUT_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and str(bad) in err and "\n" not in err


def test_help_does_not_import_torch_or_hardware_libraries():
    code = ("import sys; from dgprofile.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'pynvml', 'psutil', 'cpuinfo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
