"""What a fleet run does on a node, without Ray: the command line it builds, the GPU it points the command at,
the result it hands back, and the reasons it keeps when there is none."""

from __future__ import annotations

import sys
from pathlib import Path

from dgprofile.app.fleet_node import COMMAND_NOT_STARTED, NodeJob, _device_for, _run

# Stands in for dgprofile: writes its own command line (and environment) as the result file named after -o.
WRITES_ITS_ARGUMENTS = ("import json, os, sys; out = sys.argv[sys.argv.index('-o') + 1]; "
                        "open(out, 'w').write(json.dumps({'argv': sys.argv[1:], 'visible': "
                        "os.environ.get('CUDA_VISIBLE_DEVICES'), 'order': os.environ.get('CUDA_DEVICE_ORDER'), "
                        "'salt': os.environ.get('DGPROFILE_ANONYMIZE_SALT')}))")


def job(**overrides: object) -> NodeJob:
    fields = {"launcher": [sys.executable, "-c", WRITES_ITS_ARGUMENTS], "arguments": ["check", "--quick"],
              "device_option": True, "environment": {"DGPROFILE_ANONYMIZE_SALT": "s"}, "timeout_seconds": 30.0}
    return NodeJob(**{**fields, **overrides})


def test_the_command_gets_the_output_path_and_the_gpu_ray_gave_and_its_result_comes_back(
        tmp_path: Path, monkeypatch) -> None:
    import json

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # as Ray sets it for the task
    run = _run(job(), ["3"], str(tmp_path))
    sent = json.loads(run["result"])
    assert sent["argv"] == ["check", "--quick", "-o", str(tmp_path / "result.dgprofile.json"), "--device", "cuda:3"]
    # Every GPU visible in NVML's order, so cuda:3 is the GPU NVML numbers 3 (dgprofile's lock and record).
    assert (sent["visible"], sent["order"], sent["salt"]) == (None, "PCI_BUS_ID", "s")
    assert run["exit_code"] == 0 and run["gpu_ids"] == ["3"] and not run["timed_out"]


def test_no_device_is_added_without_a_gpu_or_when_the_command_names_one(tmp_path: Path) -> None:
    import json

    assert "--device" not in json.loads(_run(job(), [], str(tmp_path))["result"])["argv"]
    assert "--device" not in json.loads(_run(job(device_option=False), ["0"], str(tmp_path))["result"])["argv"]


def test_gpus_named_by_uuid_are_made_visible_alone() -> None:
    device, environment = _device_for("GPU-5d2c-11aa", {"CUDA_VISIBLE_DEVICES": "GPU-5d2c-11aa,GPU-77"})
    assert (device, environment["CUDA_VISIBLE_DEVICES"]) == ("cuda:0", "GPU-5d2c-11aa")


def test_a_command_that_cannot_start_says_so(tmp_path: Path) -> None:
    run = _run(job(launcher=[str(tmp_path / "no-such-dgprofile")]), [], str(tmp_path))
    assert run["result"] == b"" and run["exit_code"] == COMMAND_NOT_STARTED
    assert run["error_tail"] == f"cannot start {tmp_path / 'no-such-dgprofile'}: No such file or directory"


def test_a_failing_command_keeps_the_end_of_its_error_output(tmp_path: Path) -> None:
    failing = [sys.executable, "-c", "import sys; print('Error: torch is missing', file=sys.stderr); sys.exit(4)"]
    run = _run(job(launcher=failing), [], str(tmp_path))
    assert (run["result"], run["exit_code"]) == (b"", 4)
    assert run["error_tail"].strip() == "Error: torch is missing"


def test_past_the_timeout_the_command_is_interrupted_and_what_it_saved_comes_back(tmp_path: Path) -> None:
    saves_on_interrupt = [sys.executable, "-c",
                          "import sys, time\nout = sys.argv[sys.argv.index('-o') + 1]\ntry:\n    time.sleep(30)\n"
                          "except KeyboardInterrupt:\n    open(out, 'w').write('{\"partial\": true}')\n    sys.exit(130)\n"]
    run = _run(job(launcher=saves_on_interrupt, timeout_seconds=1.0), [], str(tmp_path))
    assert run["timed_out"] and run["exit_code"] == 130 and run["result"] == b'{"partial": true}'
    assert run["seconds"] < 10
