"""The layer rules in each package's ruff.toml: an import against the grain fails lint, one along it passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("records", "text", "specs", "model", "analysis", "terminal", "pages", "app", "cli")


def lint(path: str, source: str) -> subprocess.CompletedProcess[str]:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    return subprocess.run([ruff, "check", "--no-cache", "--select", "TID251", "--stdin-filename", path, "-"],
                          input=source, capture_output=True, text=True, cwd=ROOT, check=False)


@pytest.mark.parametrize("lower, upper", [(LAYERS[i], LAYERS[j]) for i in range(len(LAYERS))
                                          for j in range(i + 1, len(LAYERS))])
def test_import_against_the_grain_fails_lint(lower: str, upper: str) -> None:
    result = lint(f"dgprofile/{lower}/example.py", f"from dgprofile.{upper} import something\n")
    assert result.returncode == 1, result.stdout
    assert f"`dgprofile.{upper}` is banned" in result.stdout


@pytest.mark.parametrize("lower, upper", [(LAYERS[i], LAYERS[j]) for i in range(len(LAYERS))
                                          for j in range(i + 1, len(LAYERS))])
def test_import_along_the_grain_passes_lint(lower: str, upper: str) -> None:
    result = lint(f"dgprofile/{upper}/example.py", f"from dgprofile.{lower} import something\n")
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("layer", [layer for layer in LAYERS if layer != "app"])
def test_only_the_app_layer_runs_probes(layer: str) -> None:
    assert lint(f"dgprofile/{layer}/example.py", "from dgprofile.probes import collect\n").returncode == 1
    assert lint("dgprofile/app/example.py", "from dgprofile.probes import collect\n").returncode == 0


@pytest.mark.parametrize("core", ["model", "analysis", "terminal", "pages", "app", "cli"])
def test_probes_may_not_import_the_core(core: str) -> None:
    assert lint("probes/example.py", f"from dgprofile.{core} import something\n").returncode == 1
    assert lint("probes/decode/example.py", f"import dgprofile.{core}.x\n").returncode == 1


@pytest.mark.parametrize("module", ["pynvml", "torch", "psutil", "cpuinfo"])
def test_hardware_libraries_stay_out_of_the_core(module: str) -> None:
    for layer in LAYERS:
        assert lint(f"dgprofile/{layer}/example.py", f"import {module}\n").returncode == 1


def test_only_the_nvml_seam_imports_pynvml() -> None:
    assert lint("probes/gpu_nvidia.py", "import pynvml\n").returncode == 1
    assert lint("probes/_nvml.py", "import pynvml\n").returncode == 0
    assert lint("probes/harness.py", "import torch\n").returncode == 0


@pytest.mark.parametrize("library", ["jinja2", "pygal"])
def test_analysis_computes_without_rendering_libraries(library: str) -> None:
    assert lint("dgprofile/analysis/example.py", f"import {library}\n").returncode == 1


@pytest.mark.parametrize("path", [f"dgprofile/{layer}/example.py" for layer in LAYERS if layer != "app"]
                         + ["probes/example.py", "dgprofile/example.py"])
def test_only_the_app_layer_imports_ray(path: str) -> None:
    assert lint(path, "import ray\n").returncode == 1
    assert lint("dgprofile/app/example.py", "import ray\n").returncode == 0
