"""dgprofile as a node of the fleet-run tests runs it: the real command line, with small benchmark sizes and named
node behaviours, started by `fleet run --node-command "python tests/fakes/fleet_node_command.py"`.

Each node of Ray's test cluster gets its own environment, which picks its behaviour:

* ``TMPDIR``: the node's own temporary folder, so device locks stay per node as on separate machines; a task given
  a GPU by Ray locks ``$TMPDIR/gpu-<CUDA_VISIBLE_DEVICES>``, so the fake GPUs of one node are separate devices,
  and leaves a ``seen-gpu-<id>-<pid>`` marker there to show which GPU it got;
* ``DGPROFILE_TEST_NODE_SLEEP``: seconds to wait before anything (a machine that hangs); then the command's
  niceness is left in ``$TMPDIR/niceness-<pid>``;
* ``DGPROFILE_TEST_NODE_CRASH_WORKER_ONCE``: a marker path; the first time, kill the Ray worker that started this
  (a worker lost with its node still up), after that run normally.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for fakes.small_limits


def main() -> None:
    crash_marker = os.environ.get("DGPROFILE_TEST_NODE_CRASH_WORKER_ONCE")
    if crash_marker and not Path(crash_marker).exists():
        Path(crash_marker).touch()
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(30)
    time.sleep(float(os.environ.get("DGPROFILE_TEST_NODE_SLEEP", "0")))
    (Path(tempfile.gettempdir()) / f"niceness-{os.getpid()}").write_text(str(os.nice(0)))
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpu:
        folder = Path(tempfile.gettempdir()) / f"gpu-{gpu}"
        folder.mkdir(exist_ok=True)
        (Path(tempfile.gettempdir()) / f"seen-gpu-{gpu}-{os.getpid()}").touch()
        tempfile.tempdir = str(folder)
    if sys.argv[1:2] in (["check"], ["bench"]):
        use_small_benchmarks()
    from dgprofile.cli import main as dgprofile

    dgprofile(sys.argv[1:])


def use_small_benchmarks() -> None:
    """The limits of `fakes.small_limits`; the decode step fails at once (its own tests cover it)."""
    import dgprofile.probes.decode as decode
    from dgprofile.probes import bench_bandwidth
    from dgprofile.probes import measure_limits as limits_module
    from fakes.small_limits import MIB, tiny_plan

    def decode_not_run_here(**kwargs: object) -> None:
        raise RuntimeError("decode benchmark replaced in this test")

    limits_module.plan_for = tiny_plan
    bench_bandwidth.MIN_CPU_BUFFER_BYTES = 2 * MIB
    bench_bandwidth.LLC_MULTIPLE = 0
    decode.run_decode_bench = decode_not_run_here


if __name__ == "__main__":
    main()
