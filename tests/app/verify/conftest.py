"""Tiny random DiffusionGemma and Gemma 4 checkpoints, built once per test session (about a second each)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fakes.tiny_checkpoints import build_autoregressive_checkpoint, build_diffusion_checkpoint

ROOT = Path(__file__).resolve().parents[3]
CPU_SAMPLE = ROOT / "samples" / "cpu-xeon-2core_20261126.dgprofile.json"


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(DiffusionGemma directory, Gemma 4 directory)."""
    pytest.importorskip("transformers")
    base = tmp_path_factory.mktemp("checkpoints")
    return (build_diffusion_checkpoint(base / "diffusiongemma-tiny"),
            build_autoregressive_checkpoint(base / "gemma4-tiny"))


@pytest.fixture
def cpu_check_result(tmp_path: Path) -> Path:
    """A `check` result of this project's CPU VM (measured limits), to add measured runs to."""
    path = tmp_path / "cpu.dgprofile.json"
    shutil.copy(CPU_SAMPLE, path)
    return path
