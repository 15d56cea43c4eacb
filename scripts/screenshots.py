"""Regenerate the README screenshots (docs/screenshots/check.png, fleet.png, compare.png) in headless Chromium.

The pages are rendered from the result files in samples/: the result page of a measured NVIDIA run, the fleet page
of the whole directory, and that run compared with a shared-physical (Apple Silicon) one. While samples/ lacks such
files, the synthetic results of tests/result_factory.py stand in, their hosts named "synthetic-..." on every page.

    python scripts/screenshots.py [--samples samples] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from dgprofile.analysis.compare import compare  # noqa: E402
from dgprofile.analysis.figures import evidence, memory_class_text  # noqa: E402
from dgprofile.analysis.fleet import load_fleet  # noqa: E402
from dgprofile.errors import ResultFileError  # noqa: E402
from dgprofile.pages.compare_page import render_compare_html  # noqa: E402
from dgprofile.pages.fleet_page import render_fleet_html  # noqa: E402
from dgprofile.pages.result_page import render_result_html  # noqa: E402
from dgprofile.records.machine import Machine, NvidiaGpu  # noqa: E402
from dgprofile.records.predictions import Predictions  # noqa: E402
from dgprofile.records.results import ResultFile, dumps, load  # noqa: E402

SYNTHETIC = "synthetic example, not a measurement"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
WIDTH = 1400  # the window the page tests check tables against (tests/browser)
HEIGHT = {"check.png": 1900, "fleet.png": 1900, "compare.png": 1500}  # the top of each page: keeps files small


def _readable(directory: Path) -> list[ResultFile]:
    results = []
    for path in sorted(directory.glob("*.json")):
        try:
            results.append(load(path))
        except ResultFileError:
            continue
    return results


def _is_measured_nvidia(result: ResultFile) -> bool:
    return (result.run.origin == "measured" and isinstance(result.predictions, Predictions)
            and isinstance(result.machine, Machine)
            and any(isinstance(a, NvidiaGpu) for a in result.machine.accelerators))


def _pick(results: list[ResultFile]) -> tuple[ResultFile, ResultFile] | None:
    gpu = next((r for r in results if _is_measured_nvidia(r)), None)
    shared = [r for r in results if memory_class_text(evidence(r)) == "shared-physical" and isinstance(r.predictions, Predictions)]
    # Apple Silicon first: the comparison users ask for most; another shared-memory machine otherwise.
    apple = next((r for r in shared
                  if isinstance(r.predictions, Predictions) and r.predictions.ceilings.vendor == "apple"),
                 shared[0] if shared else None)
    return (gpu, apple) if gpu is not None and apple is not None else None


def _synthetic(directory: Path) -> tuple[ResultFile, ResultFile]:
    """Stand-ins from tests/result_factory.py, every host named 'synthetic-...' so no picture passes for data."""
    import result_factory as factory

    def labelled(result: ResultFile, hostname: str, created_at: str = "2026-11-20T10:15:00Z") -> ResultFile:
        result = factory.with_identity(result, hostname=f"synthetic-{hostname}", created_at=created_at)
        return dataclasses.replace(result, run=dataclasses.replace(result.run, label=SYNTHETIC))

    gpu = labelled(factory.measured_h100_result(), "gpu-node-01")
    apple = labelled(factory.apple_laptop_result(), "m3-max-laptop")
    fleet = [gpu, apple, labelled(factory.probe_only_result(), "cpu-box")]
    fleet += [labelled(factory.result(predictions_=factory.predictions(speedup=speedup)), f"gpu-node-{i + 2:02d}",
                       f"2026-11-2{i}T09:00:00Z") for i, speedup in enumerate((4.4, 2.6, 5.6))]
    for i, result in enumerate(fleet):
        (directory / f"synthetic-{i}.json").write_text(dumps(result), encoding="utf-8")
    return gpu, apple


def main() -> None:
    """Render the three pages and screenshot the top of each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        samples = args.samples if args.samples.is_dir() else work / "missing"
        pair = _pick(_readable(samples)) if samples.is_dir() else None
        if pair is None:
            print(f"{args.samples} has no measured NVIDIA and Apple result files: using the synthetic results of "
                  "tests/result_factory.py")
            fleet_dir = work / "fleet"
            fleet_dir.mkdir()
            pair = _synthetic(fleet_dir)
        else:
            # The fleet table shows each file's path as given: relative to the repository, not this checkout.
            os.chdir(ROOT)
            fleet_dir = samples.resolve().relative_to(ROOT) if samples.resolve().is_relative_to(ROOT) else samples
        gpu, apple = pair
        pages = {"check.png": render_result_html(gpu), "fleet.png": render_fleet_html(load_fleet([fleet_dir])),
                 "compare.png": render_compare_html(compare(gpu, apple))}
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            for name, html in pages.items():
                source = work / name.replace(".png", ".html")
                source.write_text(html, encoding="utf-8")
                page.goto(source.as_uri())
                target = args.out / name
                height = min(HEIGHT[name], page.evaluate("document.documentElement.scrollHeight"))
                page.screenshot(path=str(target), full_page=True,
                                clip={"x": 0, "y": 0, "width": WIDTH, "height": height})
                print(f"wrote {target} ({target.stat().st_size // 1024} KiB)")
            browser.close()


if __name__ == "__main__":
    main()
