"""One whole verification run on a CUDA machine: every GPU code path, checked against the project's targets.

    python scripts/verify_gpu.py --out DIR --slug h100

Runs, in order: `dgprofile probe --json` (timed as a user runs it), `dgprofile bench --limits-only` twice (repeat
agreement), the decode benchmark at full depth against its sampled-layer estimate and a repeat
(`scripts/verify_decode.py`), the per-kernel tables of the AR step and the denoise pass (bf16 and fp8, c = 1 and 8,
against each component's floor), `dgprofile check` in full and `--quick` (timed, then again each with an empty
Triton cache, as on a fresh machine), the vLLM FP8
predictions of the published H100 run's scenario, and `dgprofile verify --random-weights` (transformers, the released
architectures at full size where they fit, one prompt per workload at each workload's fixed steps) added to the
check result, its measured denoise pass and AR step set beside what `check` and `predict --engine transformers`
give. Writes the result files and a log under --out and prints a short table last. `--only-verify` runs the
probe and the verify step alone (about 3.5 minutes on an H200), `--skip-verify` everything else, so that each
fits one 10-minute call on a lent machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dgprofile.records.limits import Limits
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import Predictions
from dgprofile.records.results import ResultFile, load
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import MeasuredFigure, MeasuredRun

# The decode passes at concurrency 1 against their roofline floors (measured time over floor).
PASS_TARGETS = {"dg-denoise bf16 c=1": "roofline x <= 1.15", "dg-denoise fp8 c=1": "roofline x <= 1.30",
                "ar-step bf16 c=1": "roofline x <= 1.5", "ar-step fp8 c=1": "roofline x <= 1.5"}


def run(args: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run a command, append its output to the log, return stdout and wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    with log.open("a") as handle:
        handle.write(f"\n$ {' '.join(args)}  ({seconds:.1f} s, exit {done.returncode})\n{done.stdout}{done.stderr}")
    return done.stdout, seconds


def agreement(a: float, b: float) -> float:
    return abs(a - b) / max(a, b)


def measured(value: float | Unavailable, what: str) -> float:
    """A figure the verification run must have measured; exits naming it (and why) otherwise."""
    if isinstance(value, Unavailable):
        raise SystemExit(f"{what} was not measured: {value.reason}")
    return value


def decode_seconds(result: ResultFile) -> str:
    passes = result.passes
    return f"{passes.seconds_taken:.1f} s" if isinstance(passes, PassTimes) else f"not measured ({passes.reason})"


def figure_text(value: MeasuredFigure | Unavailable) -> tuple[str, float | None]:
    """A pass time's measured median in ms with the check prediction beside it, and the median in seconds."""
    if isinstance(value, Unavailable):
        return f"not measured ({value.reason})", None
    predicted = value.predicted
    beside = (f"check {predicted * 1e3:.1f} ms, {value.median / predicted - 1:+.0%}"
              if isinstance(predicted, float) else "no check prediction")
    return f"{value.median * 1e3:.1f} ms ({beside}", value.median


def verify_rows(measured: MeasuredRun, spec_id: str | None, log: Path) -> list[tuple[str, str, str]]:
    """Per workload: the measured denoise pass and AR step against `check` (the prediction stored beside them)
    and `predict --engine transformers` for the same scenario from the datasheet."""
    rows = [("verify models", "; ".join(f"{m.architecture} {m.scaling}" for m in measured.models), ""),
            ("verify wall time", f"{measured.duration_seconds:.0f} s, {measured.status}", "")]
    for stats in measured.workloads:
        scenario = stats.scenario
        predicted: dict[str, Any] = {}
        if spec_id is not None and not isinstance(scenario, Unavailable):
            text, _ = run(["dgprofile", "predict", "--hardware", spec_id, "--engine", "transformers", "--precision",
                           scenario.precision, "--workload", scenario.workload, "--prompt-tokens",
                           str(scenario.prompt_tokens), "--output-tokens", str(scenario.output_tokens), "--steps",
                           str(scenario.steps_per_canvas), "--json"], log)
            predicted = json.loads(text)
        for label, mode, key in (("DG denoise pass", stats.diffusion, "diffusion"),
                                 ("AR step", stats.autoregressive, "autoregressive")):
            shown, median = figure_text(mode.pass_seconds)
            datasheet = predicted.get(key, {}).get("pass_seconds")
            if isinstance(datasheet, float) and median is not None:
                shown += f"; predict {datasheet * 1e3:.1f} ms, {median / datasheet - 1:+.0%})"
            else:
                shown += ")"
            rows.append((f"verify {stats.workload} {label}", shown, "within 25%"))
        speedup = stats.speedup
        if isinstance(speedup, MeasuredFigure):
            beside = (speedup.predicted.reason if isinstance(speedup.predicted, Unavailable)
                      else f"{speedup.predicted:.2f}x predicted")
            shown = f"{speedup.median:.2f}x measured vs {beside}"
        else:
            shown = speedup.reason
        rows.append((f"verify {stats.workload} speedup", shown, ""))
    return rows


def run_verify_step(result_path: Path | None, out: Path, slug: str, spec_id: str | None,
                    log: Path) -> list[tuple[str, str, str]]:
    """`dgprofile verify --random-weights --quick` (added to the check result when there is one)."""
    verify_path = out / f"{slug}-verify.dgprofile.json"
    args = ["dgprofile", "verify", "--random-weights", "--quick", "--no-html", "-o", str(verify_path)]
    if result_path is not None:
        args += ["--result", str(result_path)]
    _, seconds = run(args, log)
    runs = load(verify_path).measured_runs
    if not runs:
        return [("verify", f"no measured run after {seconds:.0f} s (see the log)", "")]
    return verify_rows(runs[-1], spec_id, log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--slug", required=True, help="file-name stem for the result files, e.g. h100")
    parser.add_argument("--only-verify", action="store_true", help="run the probe and the verify step only")
    parser.add_argument("--result", type=Path, help="with --only-verify: a `check` result to add the measured run to")
    parser.add_argument("--skip-verify", action="store_true",
                        help="everything but the verify step (which then runs alone, within one 10-minute call)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "verify-log.txt"
    rows: list[tuple[str, str, str]] = []

    text, seconds = run(["dgprofile", "probe", "--json"], log)
    gpu: dict[str, Any] = json.loads(text)["accelerators"][0]
    theoretical, datasheet = gpu["theoretical_bandwidth_bytes_per_s"], gpu["datasheet_bandwidth_bytes_per_s"]
    rows += [("GPU", gpu["name"], ""),
             ("probe wall time", f"{seconds:.2f} s", "< 2 s"),
             ("theoretical bandwidth (NVML)", f"{theoretical / 1e12:.3f} TB/s vs datasheet {datasheet / 1e12:.2f}"
              f" ({theoretical / datasheet - 1:+.1%})", "within 2%"),
             ("memory class", gpu["memory_class"]["kind"], "discrete")]
    spec_id = gpu["spec_id"] if isinstance(gpu.get("spec_id"), str) else None
    if args.only_verify:
        rows += run_verify_step(args.result, args.out, args.slug, spec_id, log)
        print_table(rows, args.out)
        return

    limits_runs: list[Limits] = []
    for index in (1, 2):
        path = args.out / f"limits-{index}.json"
        run(["dgprofile", "bench", "--limits-only", "-o", str(path)], log)
        limits = load(path).limits
        assert isinstance(limits, Limits), limits
        limits_runs.append(limits)
    first, second = limits_runs
    read, copy = measured(first.stream_read_bytes_per_s, "streaming read"), measured(first.copy_bytes_per_s, "copy")
    reads = [f.bytes_per_s for f in first.bandwidth if f.name == "stream-read"]
    rows += [("streaming read", f"{read / 1e12:.3f} TB/s ({read / theoretical:.1%} of theoretical; best of "
              f"{len(reads)} methods: {first.stream_read_method})", ">= 90%"),
             ("copy", f"{copy / 1e12:.3f} TB/s ({copy / theoretical:.1%})", ">= 90%"),
             ("bf16 matmul 8192^3", f"{first.peak_flops_per_s['bf16'] / 1e12:.0f} TFLOP/s", ""),
             ("limits repeat agreement", "read {:.1%}, copy {:.1%}, bf16 {:.1%}".format(
                 agreement(read, measured(second.stream_read_bytes_per_s, "streaming read")),
                 agreement(copy, measured(second.copy_bytes_per_s, "copy")),
                 agreement(first.peak_flops_per_s["bf16"], second.peak_flops_per_s["bf16"])), "within 3%"),
             ("limits step", f"{first.seconds_taken:.1f} s, {second.seconds_taken:.1f} s", "< 15 s")]

    verify_decode = Path(__file__).with_name("verify_decode.py")
    text, _ = run([sys.executable, str(verify_decode), "--full-depth", "--repeat", "2"], log)
    summary = text[text.rfind("\nSummary"):].strip().splitlines()[1:]
    rows += [("decode " + line.strip().split(":")[0], ":".join(line.strip().split(":")[1:]).strip(),
              PASS_TARGETS.get(line.strip().split(":")[0], ""))
             for line in summary if line.strip() and not line.startswith("total")]

    text, _ = run([sys.executable, str(verify_decode), "--profile-only", "--quick", "--out", str(args.out / "kernels")],
                  log)
    kernel_summary = text[text.rfind("\nKernel summary"):].strip().splitlines()[1:]
    rows += [("kernels " + line.strip().split(":")[0], ":".join(line.strip().split(":")[1:]).strip(), "")
             for line in kernel_summary if line.strip() and not line.startswith("total")]

    result_path = args.out / f"{args.slug}.dgprofile.json"
    text, check_seconds = run(["dgprofile", "check", "--anonymize", "-o", str(result_path),
                               "--html", str(args.out / f"{args.slug}.html")], log)
    quick_path = Path("/tmp") / f"{args.slug}-quick.dgprofile.json"
    _, quick_seconds = run(["dgprofile", "check", "--quick", "--no-html", "-o", str(quick_path)], log)
    cold: dict[str, float] = {}
    for name, extra in (("check", []), ("check --quick", ["--quick"])):
        with tempfile.TemporaryDirectory() as empty_cache:
            _, cold[name] = run(["dgprofile", "check", *extra, "--no-html", "-o", str(Path(empty_cache) / "r.json")],
                                log, env={**os.environ, "TRITON_CACHE_DIR": empty_cache})
    full, quick = load(result_path), load(quick_path)
    verdict = re.search(r"verdict: (\S+)", text)
    rows += [("check (full)", f"{check_seconds:.0f} s wall, decode part {decode_seconds(full)}, "
              f"status {full.run.status}, verdict {verdict.group(1) if verdict else '?'}", "< 60 s; decode < 30 s"),
             ("check --quick", f"{quick_seconds:.0f} s wall, decode part {decode_seconds(quick)}",
              "< 20 s; decode < 10 s"),
             ("check, empty Triton cache", f"{cold['check']:.0f} s wall", "<= 45 s"),
             ("check --quick, empty Triton cache", f"{cold['check --quick']:.0f} s wall", "<= 15 s")]

    for hardware in ("h100-sxm", "h200"):
        text, _ = run(["dgprofile", "predict", "--hardware", hardware, "--engine", "vllm", "--precision", "fp8",
                       "--prompt-tokens", "1024", "--output-tokens", "1024", "--steps", "16", "--json"], log)
        p = json.loads(text)
        rows.append((f"predict {hardware} vLLM fp8 1024/1024 S=16",
                     f"DG {p['diffusion']['tokens_per_s']:.0f} tok/s, AR {p['autoregressive']['tokens_per_s']:.0f} "
                     f"tok/s, {p['speedup']:.2f}x ({p['speedup_low']:.2f}-{p['speedup_high']:.2f}) {p['verdict']}",
                     "published H100: 1008 / 197"))
    if isinstance(full.predictions, Predictions):
        h = full.predictions.headline
        rows.append(("check headline", f"{h.scenario.workload} {h.scenario.precision} {h.scenario.engine}: "
                     f"{h.speedup:.2f}x {h.verdict}" if isinstance(h.speedup, float) else h.verdict, ""))
    if not args.skip_verify:
        rows += run_verify_step(result_path, args.out, args.slug, spec_id, log)
    print_table(rows, args.out)


def print_table(rows: list[tuple[str, str, str]], out: Path) -> None:
    """The short table, printed last and kept beside the log."""
    width = max(len(name) for name, _, _ in rows)
    table = "\n".join(f"{name.ljust(width)}  {value}" + (f"   [target {target}]" if target else "")
                      for name, value, target in rows)
    (out / "verify-table.txt").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
