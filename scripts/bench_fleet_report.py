"""How long `dgprofile report` takes over a large fleet on one CPU core: the figure the README quotes.

Writes N result files made from the files in samples/ (each with its own hostname and time, so that none is a
duplicate; written as this version of dgprofile writes result files, or with --as-stored as the samples are stored,
which for samples of an older schema version means the path that parses files whole), runs `dgprofile report DIR -o PAGE --csv CSV` in a child process pinned to one core (so it loads
serially, as on a one-core machine), and prints its wall and CPU time (the best of a few runs: other work on a
shared machine slows some) and the size of the page.

    python scripts/bench_fleet_report.py                    # 10,000 files, all seven samples in turn
    python scripts/bench_fleet_report.py --mix measured     # only the measured ones (H100, H200, CPU: larger files)
    python scripts/bench_fleet_report.py --as-stored        # the samples' own text (older files are parsed whole)
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dgprofile.records.results import dumps, load

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
TARGET_SECONDS = 10.0
CREATED_AT = re.compile(rb'\n  "created_at": "[^"]*"')
HOSTNAME = re.compile(rb'"hostname": "[^"]*"')


def sample_texts(mix: str, *, as_stored: bool) -> list[bytes]:
    """The samples' text: as a `check` of this version would have written them (the current schema version, which
    `report` reads in part), or as stored."""
    paths = sorted(SAMPLES.glob("*.dgprofile.json"))
    if mix == "measured":
        paths = [p for p in paths if not p.name.startswith("predicted-")]
    return [p.read_bytes() if as_stored else dumps(load(p)).encode() for p in paths]


def write_fleet(directory: Path, count: int, texts: list[bytes]) -> int:
    """``count`` distinct result files in ``directory``; returns their total size in bytes."""
    total = 0
    for i in range(count):
        text = CREATED_AT.sub(f'\n  "created_at": "2026-11-{1 + i // 86400 % 28:02d}T{i // 3600 % 24:02d}:'
                              f'{i // 60 % 60:02d}:{i % 60:02d}Z"'.encode(), texts[i % len(texts)], count=1)
        text = HOSTNAME.sub(f'"hostname": "bench-node-{i:05d}"'.encode(), text, count=1)
        (directory / f"node-{i:05d}.dgprofile.json").write_bytes(text)
        total += len(text)
    return total


def run_report(results: Path, page: Path, table: Path, core: int) -> tuple[float, float, str]:
    """Wall and CPU seconds of `dgprofile report` pinned to ``core``, and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dgprofile", "report", str(results), "-o", str(page),
                           "--csv", str(table)], capture_output=True, text=True, check=False,
                          preexec_fn=lambda: os.sched_setaffinity(0, {core}))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"report failed (exit {done.returncode}): {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mix", choices=("all", "measured"), default="all",
                        help="all the samples in turn, or only the measured ones (larger files)")
    parser.add_argument("--as-stored", action="store_true",
                        help="the samples' text as stored instead of as this version writes it (samples of an older "
                             "schema version are then parsed whole)")
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a temporary directory, removed)")
    parser.add_argument("--core", type=int, default=min(os.sched_getaffinity(0)), help="the core to run on")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (the best is the figure; a shared "
                        "machine slows some)")
    args = parser.parse_args()

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="dgprofile-bench-fleet-"))
    results = workdir / "results"
    results.mkdir(parents=True, exist_ok=True)
    try:
        texts = sample_texts(args.mix, as_stored=args.as_stored)
        started = time.perf_counter()
        size = write_fleet(results, args.files, texts)
        print(f"wrote {args.files:,} result files ({size / 1e9:.2f} GB, {len(texts)} samples in turn) "
              f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        # The files go to disk before the timed runs, so that the kernel writing 4 GB back does not share the
        # core with them; a first pass warms the page cache: the figures are the report's, not the disk's.
        os.sync()
        run_report(results, workdir / "fleet.html", workdir / "fleet.csv", args.core)
        runs = [run_report(results, workdir / "fleet.html", workdir / "fleet.csv", args.core)
                for _ in range(args.repeat)]
        wall, cpu, printed = min(runs)
        page_mb = (workdir / "fleet.html").stat().st_size / 1e6
        print(f"report printed: {printed.splitlines()[0]}", file=sys.stderr)
        verdict = "within" if wall < TARGET_SECONDS else "over"
        every = ", ".join(f"{w:.1f} s ({c:.1f} s CPU)" for w, c, _ in runs)
        print(f"dgprofile report: {args.files:,} result files ({size / 1e9:.2f} GB) in {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU, on one core ({verdict} the {TARGET_SECONDS:.0f} s target); page {page_mb:.1f} MB\n"
              f"  {len(runs)} runs: {every}")
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
