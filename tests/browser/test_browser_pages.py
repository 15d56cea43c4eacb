"""The three pages in a real headless Chromium: no console errors, nothing fetched, scripts that work."""

from __future__ import annotations

from pathlib import Path

import pytest
import result_factory as factory
from fakes.multi_gpu_result import h200_pair_result

from dgprofile.analysis.compare import compare
from dgprofile.analysis.fleet import load_fleet
from dgprofile.pages.compare_page import render_compare_html
from dgprofile.pages.fleet_page import render_fleet_html
from dgprofile.pages.result_page import render_result_html
from dgprofile.records.results import dumps, load

pytestmark = pytest.mark.browser


# A machines-table cell's own text: the host, without the device shown under it.
FIRST_TEXT = "cells => cells.map(cell => cell.firstChild ? cell.firstChild.textContent : '')"

def write_page(directory: Path, name: str, html: str) -> Path:
    path = directory / name
    path.write_text(html, encoding="utf-8")
    return path


@pytest.fixture()
def fleet_page(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    for i, speedup in enumerate((5.1, 1.4, 3.3)):
        result = factory.result(predictions_=factory.predictions(speedup=speedup))
        result = factory.with_identity(result, hostname=f"node-{i}", created_at=f"2026-11-2{i}T00:00:00Z")
        (results / f"h100-{i}.json").write_text(dumps(result), encoding="utf-8")
    (results / "m3.json").write_text(dumps(factory.predicted_apple_result()), encoding="utf-8")
    (results / "hostile.json").write_text(dumps(factory.hostile_result()), encoding="utf-8")
    (results / "truncated.json").write_text("{\"format\": \"dgprofile-", encoding="utf-8")
    return write_page(tmp_path, "fleet.html", render_fleet_html(load_fleet([results])))


def assert_clean(opened) -> None:
    assert opened.console_errors == []
    assert opened.outside_requests == []


@pytest.mark.parametrize("name, result", [("check.png", factory.measured_h100_result()),
                                          ("check-measured-run.png", factory.measured_h100_result(
                                              measured_runs=(factory.measured_run(),))),
                                          ("check-predicted.png", factory.predicted_apple_result()),
                                          ("check-probe-only.png", factory.probe_only_result())])
def test_result_page_renders_without_errors_or_requests(open_page, tmp_path: Path, screenshot_dir: Path,
                                                        name: str, result) -> None:
    opened = open_page(write_page(tmp_path, "check.html", render_result_html(result)))
    opened.page.screenshot(path=str(screenshot_dir / name), full_page=True)
    assert_clean(opened)
    assert opened.page.locator("section").count() == 10


def test_chart_tooltip_shows_the_point_on_hover(open_page, tmp_path: Path) -> None:
    opened = open_page(write_page(tmp_path, "check.html", render_result_html(factory.measured_h100_result())))
    tooltip = opened.page.locator("#chart-tooltip")
    assert tooltip.is_hidden()
    opened.page.locator("section#roofline .tooltip-trigger").last.hover()
    assert tooltip.is_visible()
    assert "DG denoise pass, fp8, c=4 (measured)" in tooltip.text_content()
    assert_clean(opened)


def test_folded_matrix_opens_and_sorts_numerically(open_page, tmp_path: Path) -> None:
    opened = open_page(write_page(tmp_path, "check.html", render_result_html(factory.measured_h100_result())))
    page = opened.page
    page.locator("section#speedup summary").click()
    page.locator("#matrix-table th", has_text="speedup").click()
    speedups = [float(x) for x in page.locator("#matrix-table tbody td:nth-child(5)").evaluate_all(
        "cells => cells.map(c => c.dataset.sort)")]
    assert speedups == sorted(speedups)
    page.locator("#matrix-table th", has_text="speedup").click()
    descending = [float(x) for x in page.locator("#matrix-table tbody td:nth-child(5)").evaluate_all(
        "cells => cells.map(c => c.dataset.sort)")]
    assert descending == sorted(speedups, reverse=True)
    assert_clean(opened)


def test_fleet_page_sorts_filters_and_lists_the_skipped_file(open_page, fleet_page: Path,
                                                             screenshot_dir: Path) -> None:
    opened = open_page(fleet_page)
    page = opened.page
    page.screenshot(path=str(screenshot_dir / "fleet.png"), full_page=True)
    assert_clean(opened)
    page.locator("#fleet-table th", has_text="speedup").first.click()
    hosts = page.locator("#fleet-table tbody td:first-child").evaluate_all(FIRST_TEXT)
    assert hosts[:3] == ["predicted: m3-max-40", "node-1", "node-2"]
    page.fill("input[data-table='fleet-table']", "node partial")
    visible = page.locator("#fleet-table tbody tr:visible td:first-child").evaluate_all(FIRST_TEXT)
    assert visible == ["node-1", "node-2"]
    page.fill("input[data-table='fleet-table']", "")
    assert page.locator("#fleet-table tbody tr:visible").count() == 5
    assert "truncated.json" in page.locator("#skipped-table").text_content()
    assert page.locator("#fleet-table").text_content().count(f"host{factory.HOSTILE_TEXT}") == 1


def test_compare_page_renders_without_errors_or_requests(open_page, tmp_path: Path, screenshot_dir: Path) -> None:
    comparison = compare(factory.measured_h100_result(), factory.predicted_apple_result())
    opened = open_page(write_page(tmp_path, "compare.html", render_compare_html(comparison)))
    opened.page.screenshot(path=str(screenshot_dir / "compare.png"), full_page=True)
    assert_clean(opened)
    assert opened.page.locator(".column").count() == 2


def test_hostile_strings_stay_text_on_every_page(open_page, tmp_path: Path, fleet_page: Path) -> None:
    hostile = factory.hostile_result()
    pages = [write_page(tmp_path, "check.html", render_result_html(hostile)), fleet_page,
             write_page(tmp_path, "compare.html", render_compare_html(compare(hostile, hostile)))]
    for path in pages:
        opened = open_page(path)
        dialogs: list[str] = []
        opened.page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
        opened.page.reload()
        assert dialogs == [], path.name
        assert opened.page.evaluate("document.querySelectorAll('script:not([type])').length") == 1, path.name
        assert factory.HOSTILE_TEXT in opened.page.locator("body").inner_text(), path.name
        assert_clean(opened)


def test_a_large_fleet_page_pages_its_table_and_stays_a_few_screens_tall(open_page, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    factory.generate_fleet(results, 600)
    opened = open_page(write_page(tmp_path, "fleet.html", render_fleet_html(load_fleet([results]))))
    page = opened.page
    assert_clean(opened)
    # Unpaged, 600 rows made a page about 27,000 px tall (a thousand, 91,709 px); paged, 50 rows of wrapping cells.
    assert page.evaluate("document.documentElement.scrollHeight") < 16_000
    status = page.locator(".pager[data-table='fleet-table'] .pager-status")
    assert status.text_content() == "rows 1\u201350 of 600; page 1 of 12"
    assert page.locator("#fleet-table tbody tr:visible").count() == 50
    first_page = page.locator("#fleet-table tbody tr:visible td:first-child").evaluate_all(FIRST_TEXT)
    page.locator(".pager[data-table='fleet-table'] button[data-step='next']").click()
    assert status.text_content() == "rows 51\u2013100 of 600; page 2 of 12"
    assert page.locator("#fleet-table tbody tr:visible td:first-child").evaluate_all(FIRST_TEXT) != first_page
    page.locator(".pager[data-table='fleet-table'] button[data-step='last']").click()
    assert status.text_content() == "rows 551\u2013600 of 600; page 12 of 12"
    assert page.locator(".pager[data-table='fleet-table'] button[data-step='next']").is_disabled()
    # Filtering and sorting go over every row, and start again at the first page.
    page.fill("input[data-table='fleet-table']", "node-0003")
    assert status.text_content() == "rows 1\u20131 of 1 matching (600 in all); page 1 of 1"
    assert page.locator("#fleet-table tbody tr:visible td:first-child").evaluate_all(FIRST_TEXT) == ["node-0003"]
    page.fill("input[data-table='fleet-table']", "")
    page.locator("#fleet-table th", has_text="host").first.click()
    assert status.text_content() == "rows 1\u201350 of 600; page 1 of 12"
    assert page.locator("#fleet-table tbody tr:visible td:first-child").evaluate_all(FIRST_TEXT)[0] == "cpu-box"


SAMPLES = Path(__file__).resolve().parents[2] / "samples"
WINDOW_WIDTH = 1400
# Every table's scroll box (or the table itself) wider than what it shows: the last columns scroll out of view.
OVERFLOWING_TABLES = """() => [...document.querySelectorAll('table')].map(table => {
  const box = table.closest('.table-scroll') || table.parentElement;
  return {section: table.closest('section')?.id || '', table: table.id, scroll: box.scrollWidth,
          shown: box.clientWidth};
}).filter(t => t.scroll > t.shown + 1)"""


def every_page(directory: Path, fleet_page: Path) -> list[Path]:
    """The result page of every sample and of the test results, the fleet pages and the compare pages."""
    samples = sorted(SAMPLES.glob("*.json"))
    results = [*(load(path) for path in samples), factory.measured_h100_result(), factory.predicted_apple_result(),
               factory.probe_only_result(), factory.hostile_result(), h200_pair_result()]
    pages = [write_page(directory, f"check-{i}.html", render_result_html(r)) for i, r in enumerate(results)]
    pages.append(write_page(directory, "samples-fleet.html", render_fleet_html(load_fleet([SAMPLES]))))
    pages.append(fleet_page)
    pairs = [(load(SAMPLES / "h100-sxm_20261126.dgprofile.json"),
              load(SAMPLES / "predicted-m3-max-40gpu-64gb_20261126.dgprofile.json")),
             (factory.measured_h100_result(), factory.predicted_apple_result()),
             (factory.hostile_result(), factory.hostile_result())]
    pages += [write_page(directory, f"compare-{i}.html", render_compare_html(compare(a, b)))
              for i, (a, b) in enumerate(pairs)]
    return pages


def test_no_table_on_any_page_scrolls_horizontally_in_a_1400_px_window(open_page, tmp_path: Path,
                                                                       fleet_page: Path) -> None:
    overflowing = {}
    for path in every_page(tmp_path, fleet_page):
        opened = open_page(path, width=WINDOW_WIDTH)
        opened.page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        tables = opened.page.evaluate(OVERFLOWING_TABLES)
        page_width = opened.page.evaluate("() => document.documentElement.scrollWidth")
        if tables or page_width > WINDOW_WIDTH:
            overflowing[path.name] = (tables, page_width)
        assert_clean(opened)
    assert overflowing == {}


def test_memory_fit_rows_are_one_line_of_figures_without_blank_areas(open_page, tmp_path: Path) -> None:
    opened = open_page(write_page(tmp_path, "check.html", render_result_html(
        load(SAMPLES / "h100-sxm_20261126.dgprofile.json"))), width=WINDOW_WIDTH)
    heights = opened.page.locator("section#memory tbody tr").evaluate_all(
        "rows => rows.map(r => r.getBoundingClientRect().height)")
    line = opened.page.locator("section#memory tbody td").first.evaluate(
        "cell => parseFloat(getComputedStyle(cell).lineHeight)")
    assert heights and max(heights) < 2 * line, heights


def test_the_several_gpus_section_shows_its_tables_in_the_page(open_page, tmp_path: Path,
                                                               screenshot_dir: Path) -> None:
    opened = open_page(write_page(tmp_path, "check-gpus.html", render_result_html(h200_pair_result())),
                       width=WINDOW_WIDTH)
    section = opened.page.locator("section#multi-gpu")
    section.scroll_into_view_if_needed()
    section.screenshot(path=str(screenshot_dir / "check-several-gpus.png"))
    assert_clean(opened)
    assert section.is_visible()
    tables = section.locator("table")
    assert tables.count() >= 3  # pairs, per-GPU limits, the all-reduce sweep (and the split layers)
    assert all(tables.nth(i).is_visible() for i in range(tables.count()))
    assert "NVLink" in section.inner_text()
