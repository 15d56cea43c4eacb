"""A Ray cluster of several nodes on this one machine, to try `dgprofile fleet run` without a real cluster.

Starts Ray's own multi-node test cluster (ray.cluster_utils.Cluster: a head and N - 1 worker nodes, each a separate
raylet), prints the address and the command to run against it, and keeps it up until Ctrl-C (or SIGTERM). Every
node is this machine: their measurements share its devices, so dgprofile's device lock makes them take turns (the
command it prints gives `fleet run --timeout` and `check --wait` room for every turn), and the results describe
this machine N times. Nodes may advertise GPUs they do not have (--gpus-per-node) to try --per-gpu scheduling;
their commands then need `--device cpu`.

    python scripts/local_ray_cluster.py --nodes 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time

# A turn: the time `fleet run` gives one machine by default (--timeout 1800).
SECONDS_PER_TURN = 1800


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3, help="nodes, the head included")
    # Each node is this whole machine: by default it says so, so that a measurement on it (which Ray lets use as
    # many threads as its node has CPUs) uses the machine as a plain run would.
    parser.add_argument("--cpus-per-node", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--gpus-per-node", type=int, default=0, help="GPU resources each worker node advertises")
    args = parser.parse_args()

    # Every listener on 127.0.0.1 (Ray otherwise picks another interface, where a driver may wait forever), no
    # usage reports, and Ray's session folders in a folder of this run (Ray never deletes them).
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    folder = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    os.environ["RAY_TMPDIR"] = folder
    from ray.cluster_utils import Cluster

    # SIGTERM (and SIGINT, which a shell ignores in commands it puts in the background) stop it cleanly too.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, signal.default_int_handler)
    started = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": args.cpus_per_node, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    try:
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=args.cpus_per_node, num_gpus=args.gpus_per_node, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        # The nodes take turns on this machine, so the last one waits for all the others: its time limit (and its
        # wait for the device lock) must cover every turn, not only its own.
        turns_seconds = args.nodes * SECONDS_PER_TURN
        print(f"{args.nodes} Ray nodes up in {time.monotonic() - started:.0f} s at {cluster.address}; Ctrl-C stops "
              "them. Run against it (in another shell):\n\n"
              f"  RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 dgprofile fleet run --address {cluster.address} "
              f"--timeout {turns_seconds} -- check --quick --wait {turns_seconds}\n", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
