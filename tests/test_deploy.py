"""The Slurm and Kubernetes recipes in deploy/: what they run, where results go, and that a verdict's exit code
counts as success. No scheduler runs here, so each recipe's shell runs with a stand-in `dgprofile` on PATH that
records its command line and exits as told."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = """#!/bin/sh
echo "$@" > "$CALLED_WITH"
exit "$EXIT_CODE"
"""


def stand_in_path(tmp_path: Path) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dgprofile").write_text(STAND_IN, encoding="utf-8")
    (bin_dir / "dgprofile").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def job_manifest() -> tuple[dict, dict]:
    secret, job = yaml.safe_load_all((ROOT / "deploy/kubernetes/dgprofile-job.yaml").read_text(encoding="utf-8"))
    return secret, job


def test_the_kubernetes_job_gives_each_pod_one_gpu_the_shared_volume_and_one_salt() -> None:
    secret, job = job_manifest()
    assert (secret["kind"], job["kind"]) == ("Secret", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    (container,) = spec["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/results"
    assert spec["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "dgprofile-results"
    (salt,) = container["env"]
    assert salt["name"] == "DGPROFILE_ANONYMIZE_SALT"
    assert salt["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]


@pytest.mark.parametrize(("exit_code", "pod_exit"), [(0, 0), (10, 0), (11, 0), (12, 0), (5, 0), (4, 4), (1, 1)])
def test_the_kubernetes_pod_succeeds_on_every_verdict_and_fails_otherwise(exit_code: int, pod_exit: int,
                                                                         tmp_path: Path) -> None:
    _, job = job_manifest()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    environment = {"PATH": stand_in_path(tmp_path), "CALLED_WITH": str(tmp_path / "args"),
                   "EXIT_CODE": str(exit_code), "JOB_COMPLETION_INDEX": "3"}
    done = subprocess.run([*container["command"], *container["args"]], env=environment, check=False)
    assert done.returncode == pod_exit
    assert (tmp_path / "args").read_text().split() == [
        "check", "--quick", "--anonymize", "--no-html", "-o", "/results/gpu-3.dgprofile.json"]


@pytest.mark.parametrize(("exit_code", "task_exit"), [(11, 0), (0, 0), (4, 4)])
def test_the_slurm_array_task_writes_to_shared_storage_named_by_job_and_task(exit_code: int, task_exit: int,
                                                                            tmp_path: Path) -> None:
    results = tmp_path / "shared" / "run1"
    environment = {"PATH": stand_in_path(tmp_path), "CALLED_WITH": str(tmp_path / "args"),
                   "EXIT_CODE": str(exit_code), "RESULTS": str(results), "SLURM_ARRAY_JOB_ID": "777",
                   "SLURM_ARRAY_TASK_ID": "12"}
    done = subprocess.run(["bash", str(ROOT / "deploy/slurm/dgprofile-array.sbatch")], env=environment, check=False)
    assert done.returncode == task_exit and results.is_dir()
    assert (tmp_path / "args").read_text().split() == [
        "check", "--quick", "--anonymize", "--no-html", "-o", f"{results}/job777_12.dgprofile.json"]


def test_the_slurm_array_task_refuses_to_run_without_a_results_folder(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(ROOT / "deploy/slurm/dgprofile-array.sbatch")], capture_output=True,
                          text=True, env={"PATH": stand_in_path(tmp_path)}, check=False)
    assert done.returncode != 0 and "set RESULTS to a folder on storage every node mounts" in done.stderr
