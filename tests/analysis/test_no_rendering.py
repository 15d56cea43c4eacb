"""The fleet and comparison figures compute without the page machinery."""

from __future__ import annotations

import subprocess
import sys


def test_fleet_and_compare_import_neither_jinja_nor_pygal() -> None:
    code = ("import sys, dgprofile.analysis.fleet, dgprofile.analysis.compare; "
            "print(sorted(m for m in ('jinja2', 'pygal', 'markupsafe') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
