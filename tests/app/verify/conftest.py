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


class TransformersServer:
    """`transformers serve DIR` on a free loopback port (a real OpenAI-compatible server), its caches and
    temporary files kept in ``home``."""

    def __init__(self, checkpoint: Path, home: Path) -> None:
        import os
        import socket
        import subprocess
        import sys

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.checkpoint = checkpoint
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1", "HF_HOME": str(home),
               "TMPDIR": str(home)}
        executable = Path(sys.executable).with_name("transformers")
        self.log = (home / "server.log").open("w")
        self.process = subprocess.Popen([str(executable), "serve", str(checkpoint), "--host", "127.0.0.1", "--port",
                                         str(self.port), "--device", "cpu"], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT,
                                        # its own session: signals of its shutdown never reach the test run
                                        start_new_session=True)

    def wait_until_up(self, timeout_seconds: float = 120.0) -> None:
        import time

        import httpx

        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited: {(Path(self.log.name)).read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise RuntimeError("transformers serve did not come up in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def tiny_servers(tiny_checkpoints: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    """Both tiny checkpoints served by `transformers serve` (started together; 5-20 s)."""
    pytest.importorskip("fastapi")
    pytest.importorskip("openai")
    servers = [TransformersServer(checkpoint, tmp_path_factory.mktemp("serve")) for checkpoint in tiny_checkpoints]
    try:
        for server in servers:
            server.wait_until_up()
        yield tuple(servers)
    finally:
        for server in servers:
            server.stop()
