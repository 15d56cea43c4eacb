"""The README cannot drift: its CLI help, exit codes, commands and quick-start commands are checked here."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from dgprofile.cli import COMMANDS
from dgprofile.exit_codes import EXIT_CODE_MEANINGS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _readme_tool():
    spec = importlib.util.spec_from_file_location("readme_command", ROOT / "scripts" / "readme_command.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_cli_help_is_current():
    tool = _readme_tool()
    assert tool.help_block_in_readme() == tool.current_help(), "run: python scripts/readme_command.py --write-help"


def test_readme_help_shows_the_program_name_the_tool_prints():
    printed = subprocess.run([sys.executable, "-m", "dgprofile", "check", "--help"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    assert printed.startswith("Usage: dgprofile check ")
    assert printed in _readme_tool().help_block_in_readme().splitlines()


def test_readme_exit_code_table_matches_the_code():
    block = README[README.index("<!-- exit-codes:begin -->"):README.index("<!-- exit-codes:end -->")]
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", block, re.M))
    assert rows == {str(int(code)): meaning for code, meaning in EXIT_CODE_MEANINGS.items()}


def test_every_command_has_a_readme_section():
    for name in COMMANDS:
        assert f"### `dgprofile {name}" in README, f"README lacks a section for `dgprofile {name}`"


def test_quickstart_commands_install_and_run_what_they_claim():
    tool = _readme_tool()
    run, test = tool.quickstart_command("run"), tool.quickstart_command("test")
    assert "pip install" in run and run.endswith("dgprofile check")
    assert "'.[test]'" in test and "pytest" in test


# Documents users never get: code, data, templates, scripts and samples must cite public sources or README.md.
PRIVATE_DOCUMENT_MARKERS = ("research note", "measurement.md", "diffusiongemma.md", "DESIGN.md", "§", "\\u00a7")
SHIPPED_FOLDERS = ("dgprofile", "probes", "templates", "scripts", "samples")


def test_nothing_shipped_points_at_a_document_users_do_not_have():
    found = []
    for folder in SHIPPED_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # images and other binaries
            for number, line in enumerate(text.splitlines(), 1):
                markers = [m for m in PRIVATE_DOCUMENT_MARKERS if m.lower() in line.lower()]
                if markers:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {', '.join(markers)}")
    assert not found, "cite the public source or README.md instead:\n" + "\n".join(found)


def test_readme_layout_names_every_layer_package():
    start = README.index("### Layout")
    layout = README[start:README.find("\n## ", start) % (len(README) + 1)]
    packages = sorted(p.parent.name for p in (ROOT / "dgprofile").glob("*/__init__.py") if p.parent.name != "data")
    for package in packages:
        assert f"`dgprofile/{package}/`" in layout, f"README's layout section lacks dgprofile/{package}/"


def test_readme_validation_tables_match_the_stored_fit():
    spec = importlib.util.spec_from_file_location("readme_validation", ROOT / "scripts" / "readme_validation.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.block_in_readme() == tool.validation_block(tool.stored_validation()), \
        "run: python scripts/readme_validation.py --write"
