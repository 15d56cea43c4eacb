"""`dgprofile fleet run` before any cluster is touched: the missing extra, command lines it refuses, the machines it
picks from a cluster's node list, its progress lines. The runs themselves are in tests/app/test_fleet_run.py."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from dgprofile.app.fleet_run import FleetProgress, Target, _eta, discover, node_arguments, read_runtime_env
from dgprofile.cli import main
from dgprofile.cli.fleet import ProgressView, clock_text
from dgprofile.errors import UsageError
from dgprofile.exit_codes import ExitCode
from dgprofile.records.values import Unavailable


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code), capsys.readouterr().err


def test_without_ray_one_line_names_the_extra_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when Ray is not installed
    code, err = run_main(["fleet", "run", "-o", str(tmp_path / "out"), "--quick"], capsys)
    assert code == ExitCode.ENVIRONMENT_ERROR
    assert err == "Error: fleet runs need Ray: pip install 'dgprofile[fleet]'\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--quick", "--", "check"], "--quick stands for `-- check --quick`: give one or the other"),
    (["--", "compare", "a", "b"], "cannot run `dgprofile compare` on a fleet: expected one of check, verify, bench, "
                                  "probe"),
    (["--", "check", "-o", "x.json"], "-o: the fleet run chooses where each machine's result goes"),
    (["--per-gpu", "--", "probe"], "`dgprofile probe` describes a whole machine: run it once per node, without "
                                   "--per-gpu"),
    (["--runtime-env-json", "[1]"], "--runtime-env-json [1]: neither JSON nor a readable file"),
])
def test_command_lines_that_cannot_run_are_refused_before_any_cluster(
        args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # nothing may reach Ray
    code, err = run_main(["fleet", "run", "-o", str(tmp_path / "out"), *args], capsys)
    assert code == ExitCode.INPUT_ERROR
    assert err.startswith(f"Error: {message}")


def test_a_folder_that_holds_an_earlier_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fleet.html").write_text("earlier run", encoding="utf-8")
    code, err = run_main(["fleet", "run", "-o", str(tmp_path)], capsys)
    assert code == ExitCode.INPUT_ERROR and "is not empty: give a new folder with -o" in err


def test_node_arguments_add_what_each_command_needs() -> None:
    assert node_arguments(["check", "--quick"], anonymize=True)[0] == ("check", "--quick", "--no-html", "--anonymize")
    assert node_arguments(["probe"], anonymize=False)[0] == ("probe",)
    assert node_arguments(["verify", "--random-weights", "--anonymize"], anonymize=True)[0] == (
        "verify", "--random-weights", "--anonymize")


def test_runtime_env_is_read_from_json_text_or_a_file(tmp_path: Path) -> None:
    assert read_runtime_env('{"py_modules": ["dist/x.whl"]}') == {"py_modules": ["dist/x.whl"]}
    (tmp_path / "env.json").write_text('{"env_vars": {"A": "1"}}', encoding="utf-8")
    assert read_runtime_env(str(tmp_path / "env.json")) == {"env_vars": {"A": "1"}}
    with pytest.raises(UsageError, match="not valid JSON"):
        read_runtime_env("{nope")


def node(node_id: str, *, alive: bool = True, cpus: float = 8, gpus: float = 0) -> dict[str, object]:
    """A node as `ray.nodes()` describes it."""
    resources = {"CPU": cpus, "memory": 1e9, **({"GPU": gpus} if gpus else {})}
    return {"NodeID": node_id * 8, "Alive": alive, "NodeManagerHostname": f"host-{node_id}",
            "NodeManagerAddress": f"10.0.0.{len(node_id)}", "Resources": resources}


def test_gpu_nodes_are_measured_and_cpu_only_nodes_left_out_with_a_note() -> None:
    nodes = [node("head", cpus=4), node("a", gpus=8, cpus=64), node("b", gpus=1), node("dead", alive=False, gpus=8)]
    targets, notes = discover(nodes, per_gpu=False, include_cpu_nodes=False)
    assert [(t.hostname, t.cpus, t.gpus) for t in targets] == [("host-a", 64, 8), ("host-b", 8, 1)]
    assert notes == ["1 node(s) without a GPU left out (--include-cpu-nodes measures them too)"]
    targets, notes = discover(nodes, per_gpu=False, include_cpu_nodes=True)
    assert [t.hostname for t in targets] == ["host-head", "host-a", "host-b"] and notes == []


def test_per_gpu_makes_one_target_per_gpu_with_a_share_of_the_cpus() -> None:
    targets, _ = discover([node("a", gpus=3, cpus=10), node("c", cpus=2)], per_gpu=True, include_cpu_nodes=True)
    assert [(t.gpu_slot, t.gpus, t.cpus) for t in targets] == [(1, 1, 3.3333), (2, 1, 3.3333), (3, 1, 3.3333),
                                                               (0, 0, 2.0)]
    assert targets[1].describe("") == "host-a (10.0.0.1, Ray node aaaaaaaa), GPU 2 of 3"
    anonymous = targets[1].describe("salt")
    assert anonymous.startswith("anon-") and "host-a" not in anonymous and "10.0.0.1" not in anonymous


def test_a_cluster_of_only_cpu_nodes_measures_them_all() -> None:
    targets, notes = discover([node("x"), node("y")], per_gpu=False, include_cpu_nodes=False)
    assert len(targets) == 2 and notes == []


def test_eta_is_the_typical_duration_left_to_the_last_one_started() -> None:
    assert _eta(100.0, [90.0, 95.0], [30.0, 20.0, 40.0]) == 25.0
    assert _eta(100.0, [90.0], []) == Unavailable("no machine has finished yet")
    assert _eta(100.0, [10.0], [30.0]) == 0.0
    assert _eta(100.0, [], [30.0]) == 0.0


def test_progress_off_a_terminal_is_one_line_per_event() -> None:
    stream = io.StringIO()
    view = ProgressView(stream)
    view.show(FleetProgress(total=4, done=0, running=4, failed=0, elapsed_seconds=0.5,
                            eta_seconds=Unavailable("none yet"), event=""))
    view.show(FleetProgress(total=4, done=1, running=2, failed=1, elapsed_seconds=75, eta_seconds=30.0,
                            event="host-a: applies 5.1x (70 s) -> host-a_cuda-0.dgprofile.json"))
    view.close()
    assert stream.getvalue() == ("[2/4: 2 running, 1 failed, 1:15 elapsed, about 0:30 left] "
                                 "host-a: applies 5.1x (70 s) -> host-a_cuda-0.dgprofile.json\n")


def test_clock_text() -> None:
    assert [clock_text(s) for s in (0.4, 42, 725, 3723)] == ["0:00", "0:42", "12:05", "1:02:03"]


def test_target_names_the_gpu_slot_only_per_gpu() -> None:
    whole = Target(node_id="n" * 16, hostname="h", address="1.2.3.4", cpus=8, gpus=2)
    assert whole.describe("") == "h (1.2.3.4, Ray node nnnnnnnn)"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_a_bar_with_the_counts_and_the_events_above_it() -> None:
    stream = Terminal()
    view = ProgressView(stream)
    view.show(FleetProgress(total=4, done=0, running=4, failed=0, elapsed_seconds=1, eta_seconds=Unavailable("x"),
                            event=""))
    view.show(FleetProgress(total=4, done=1, running=3, failed=0, elapsed_seconds=62, eta_seconds=20.0,
                            event="host-a: applies 5.1x (60 s) -> host-a_cuda-0.dgprofile.json"))
    view.show(FleetProgress(total=4, done=1, running=3, failed=0, elapsed_seconds=63, eta_seconds=19.0, event=""))
    view.close()
    text = stream.getvalue()
    assert "fleet run" in text and "0/4" in text and "1/4" in text
    assert "4 running, 0 failed, 0:01 elapsed, time left unknown until one finishes" in text
    assert "\x1b[2Khost-a: applies 5.1x (60 s) -> host-a_cuda-0.dgprofile.json\n" in text
    # A refresh without an event still redraws the bar with the new time.
    assert "3 running, 0 failed, 1:03 elapsed, about 0:19 left" in text


def test_an_output_folder_that_cannot_be_made_is_refused_before_any_cluster(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # nothing may reach Ray
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    code, err = run_main(["fleet", "run", "-o", str(tmp_path / "a-file" / "fleet")], capsys)
    assert code == ExitCode.OUTPUT_ERROR
    assert err == (f"Error: -o/--output-dir {tmp_path / 'a-file' / 'fleet' / 'fleet.html'}: cannot write there: "
                   f"{tmp_path / 'a-file'} is not a directory\n")


class OneTask:
    """A remote function as `ray.remote` returns it: submitting it gives the task's reference."""

    def options(self, **options: object) -> OneTask:
        return self

    def remote(self, job: object) -> str:
        return "task-1"


class ClusterTerminatedWhileWaiting:
    """Stands in for the ray module: one GPU node whose measurement is still running when the scheduler sends the
    fleet run SIGTERM (a real signal, to this process)."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def init(self, **options: object) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def nodes(self) -> list[dict[str, object]]:
        return [node("a" * 7, gpus=1)]  # Ray checks a node id is 28 bytes of hex

    def remote(self, function: object) -> OneTask:
        return OneTask()

    def wait(self, refs: list[str], **options: object) -> tuple[list[str], list[str]]:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the signal ends this wait
        raise AssertionError("SIGTERM did not interrupt the fleet run")

    def cancel(self, ref: str, force: bool) -> None:
        self.cancelled.append(ref)


def test_sigterm_ends_a_fleet_run_as_ctrl_c_does_with_its_page_and_exit_143(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = ClusterTerminatedWhileWaiting()
    monkeypatch.setattr("dgprofile.app.fleet_run.import_ray", lambda: cluster)
    handler_before = signal.getsignal(signal.SIGTERM)
    code, err = run_main(["fleet", "run", "-o", str(tmp_path / "out"), "--quick"], capsys)
    assert code == ExitCode.TERMINATED
    assert cluster.cancelled == ["task-1"]
    assert "no result from host-aaaaaaa (10.0.0.7, Ray node aaaaaaaa): interrupted (SIGTERM) before it finished" in err
    page = (tmp_path / "out" / "fleet.html").read_text(encoding="utf-8")
    assert "interrupted (SIGTERM): machines still running were cancelled" in page
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the handler is given back
