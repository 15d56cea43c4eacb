"""`fleet run` on a real Ray cluster: Ray's own multi-node test cluster in this process, on the CPU.

The cluster (one per module: starting one takes several seconds) has a head without GPUs and two nodes that
advertise GPUs (two and one) and run the CPU path. Scheduling, pinning, streaming, the retry and every failure
path are Ray's and dgprofile's real ones; only the machines are small (tests/fakes/fleet_node_command.py).
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from dgprofile.analysis.fleet import load_fleet
from dgprofile.app.fleet_run import FleetProgress, FleetRunOptions, run_fleet
from dgprofile.cli import cli
from dgprofile.exit_codes import ExitCode
from dgprofile.records import results

NODE_COMMAND = (sys.executable, str(Path(__file__).resolve().parents[1] / "fakes" / "fleet_node_command.py"))
# Node loss is noticed within about 1.5 s instead of Ray's default 30 s.
FAST_HEALTH_CHECKS = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}


@dataclass
class LocalCluster:
    cluster: Any
    folders: dict[str, Path]  # node name -> its TMPDIR

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def add_node(self, name: str, **environment: str) -> Any:
        """A node with one fake GPU and the given test behaviour, started (then ``cluster.wait_for_nodes()``);
        remove it with ``cluster.remove_node``."""
        folder = self.folders.setdefault(name, Path(tempfile.mkdtemp(prefix=f"node-{name}-")))
        node = self.cluster.add_node(num_cpus=1, num_gpus=1, node_ip_address="127.0.0.1",
                                     env_vars={"TMPDIR": str(folder), **environment}, wait=False)
        return node


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalCluster]:
    # Ray's socket paths have a length limit, so its folder is a short one; the flag keeps every listener on
    # 127.0.0.1 (without it a driver may look for the cluster on another interface and wait forever).
    ray_folder = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        patch.setenv("RAY_TMPDIR", ray_folder)
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False,
            "_system_config": FAST_HEALTH_CHECKS})
        local_cluster = LocalCluster(cluster, {})
        try:
            for name, cpus, gpus in (("gpu2", 2, 2), ("gpu1", 1, 1)):
                folder = local_cluster.folders[name] = Path(tempfile.mkdtemp(prefix=f"node-{name}-"))
                cluster.add_node(num_cpus=cpus, num_gpus=gpus, node_ip_address="127.0.0.1",
                                 env_vars={"TMPDIR": str(folder)})
            cluster.wait_for_nodes()
            yield local_cluster
        finally:
            cluster.shutdown()
            for folder in local_cluster.folders.values():
                shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(ray_folder, ignore_errors=True)


def options(cluster: LocalCluster, *arguments: str, **settings: Any) -> FleetRunOptions:
    return FleetRunOptions(arguments=arguments, address=cluster.address, launcher=NODE_COMMAND,
                           timeout_seconds=120, **settings)


def test_per_gpu_check_pins_one_task_per_gpu_and_streams_real_result_files(ray_cluster: LocalCluster,
                                                                          tmp_path: Path) -> None:
    events: list[FleetProgress] = []
    outcome = run_fleet(options(ray_cluster, "check", "--quick", "--device", "cpu", per_gpu=True), tmp_path,
                        progress=events.append)
    fleet = outcome.fleet
    assert not fleet.failed and not fleet.skipped and outcome.interruption is None
    # Three GPU slots (two on one node, one on another); the nodes without a GPU are left out and said to be.
    assert len(fleet.rows) == 3 and len(outcome.result_paths) == 3
    assert fleet.run.machines == 3
    assert fleet.run.notes == ("1 node(s) without a GPU left out (--include-cpu-nodes measures them too)",)
    # The two measurements on the two-GPU node got different GPUs, and ran at the usual priority (Ray's own
    # default for task workers is niceness 15).
    assert sorted(p.name.split("-")[2] for p in ray_cluster.folders["gpu2"].glob("seen-gpu-*")) == ["0", "1"]
    assert {p.read_text() for p in ray_cluster.folders["gpu2"].glob("niceness-*")} == {"0"}
    for path in outcome.result_paths:  # the unchanged result format, validated whole
        loaded = results.load(path)
        assert loaded.limits.device == "cpu" and loaded.run.command[1:3] == ("check", "--quick")
    assert {p.parent for p in outcome.result_paths} == {tmp_path / "results"}
    # Streamed: each file was announced as it arrived, with the running count falling.
    arrivals = [e for e in events if "->" in e.event]
    assert [e.done for e in arrivals] == [1, 2, 3] and [e.running for e in arrivals] == [2, 1, 0]
    assert events[0].running == 3 and not isinstance(events[-1].eta_seconds, str)
    # `report` over the folder reads what the run wrote (all three come from one host's CPU, possibly in the same
    # second, which its duplicate rule may count once).
    reported = load_fleet([tmp_path / "results"])
    assert len(reported.rows) + len(reported.skipped) == 3 and reported.rows


def test_per_node_probe_with_one_salt_for_the_whole_fleet(ray_cluster: LocalCluster, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DGPROFILE_ANONYMIZE_SALT", "fleet-salt")
    outcome = run_fleet(options(ray_cluster, "probe", include_cpu_nodes=True, anonymize=True), tmp_path,
                        progress=lambda progress: None)
    hashed = results.salted_hash(socket.gethostname(), "fleet-salt")
    assert len(outcome.fleet.rows) == 3  # the head (no GPU) and both GPU nodes
    assert {row.hostname for row in outcome.fleet.rows} == {hashed}
    assert all(p.name.startswith(hashed) and socket.gethostname() not in p.name for p in outcome.result_paths)
    assert all(results.load(p).machine.identity.anonymized for p in outcome.result_paths)


def test_a_crashed_worker_is_retried_once_and_a_machine_past_the_timeout_is_interrupted(
        ray_cluster: LocalCluster, tmp_path: Path) -> None:
    flaky = ray_cluster.add_node("flaky", DGPROFILE_TEST_NODE_CRASH_WORKER_ONCE=str(tmp_path / "crashed-once"))
    slow = ray_cluster.add_node("slow", DGPROFILE_TEST_NODE_SLEEP="60")
    ray_cluster.cluster.wait_for_nodes()
    events: list[FleetProgress] = []
    started = time.monotonic()
    try:
        outcome = run_fleet(replace(options(ray_cluster, "probe"), timeout_seconds=5), tmp_path / "run",
                            progress=events.append)
    finally:
        ray_cluster.cluster.remove_node(flaky)
        ray_cluster.cluster.remove_node(slow)
    # The worker on the flaky node died under its task; the retry on the same node gave a result.
    assert (tmp_path / "crashed-once").exists()
    assert any("node lost (WorkerCrashedError); retrying once" in e.event for e in events)
    assert len(outcome.fleet.rows) == 3
    # The slow node's command was interrupted at the timeout, not left to run for its 60 s.
    (failed,) = outcome.fleet.failed
    assert failed.reason.startswith("timed out after 5 s and wrote no partial result (KeyboardInterrupt")
    assert time.monotonic() - started < 45


def test_a_node_removed_mid_run_is_reported_failed_and_the_rest_render(ray_cluster: LocalCluster,
                                                                      tmp_path: Path) -> None:
    doomed = ray_cluster.add_node("doomed", DGPROFILE_TEST_NODE_SLEEP="60")
    ray_cluster.cluster.wait_for_nodes()
    output = tmp_path / "fleet"

    def remove_once_the_others_are_in() -> None:
        deadline = time.monotonic() + 60
        while len(list((output / "results").glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        ray_cluster.cluster.remove_node(doomed)

    remover = threading.Thread(target=remove_once_the_others_are_in)
    remover.start()
    try:
        result = CliRunner().invoke(cli, ["fleet", "run", "--address", ray_cluster.address, "--node-command",
                                          " ".join(NODE_COMMAND), "-o", str(output), "--", "probe"])
    finally:
        remover.join()
    assert result.exit_code == ExitCode.FLEET_INCOMPLETE, result.output
    assert "2 machines with a result" in result.stdout
    # Either the running task died with its node, or the node was gone before Ray dispatched it.
    assert "no result from" in result.stderr and "node lost (" in result.stderr
    assert "the retry failed too: TaskUnschedulableError" in result.stderr
    page = BeautifulSoup((output / "fleet.html").read_text(encoding="utf-8"), "html.parser")
    assert len(page.select("#fleet-table tbody tr")) == 2
    (skipped,) = page.select("#skipped-table tbody tr")
    kind, machine, reason = (td.get_text() for td in skipped.find_all("td"))
    assert kind == "machine" and "Ray node" in machine and reason.startswith("node lost (")
    csv_lines = (output / "fleet.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv_lines) == 4 and ",no result," in csv_lines[-1]
