"""The fleet page: verdict counts, the machines table, per-group charts, skipped files, escaping, and speed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import result_factory as factory
from html_soup import page_soup

from dgprofile.analysis.fleet import load_fleet
from dgprofile.pages.fleet_page import render_fleet_html
from dgprofile.records.results import dumps


@pytest.fixture()
def mixed_dir(tmp_path: Path) -> Path:
    return factory.write_mixed_fleet(tmp_path)



def test_page_counts_verdicts_lists_skipped_files_and_escapes_hostile_names(mixed_dir: Path) -> None:
    factory.write_result(mixed_dir / "hostile.json", factory.hostile_result())
    html = render_fleet_html(load_fleet([mixed_dir]))
    assert "<script>alert" not in html
    soup = page_soup(html)
    tiles = {t.find(class_="tile-label").get_text(): t.find(class_="tile-value").get_text()
             for t in soup.find_all(class_="tile")}
    assert tiles == {"Applies": "2", "Partial": "0", "Does not apply": "1", "Cannot run": "0", "No prediction": "1"}
    skipped = [[td.get_text() for td in tr.find_all("td")] for tr in soup.find(id="skipped-table").find_all("tr")[1:]]
    assert {Path(path).name for path, _ in skipped} == {"truncated.json", "other-schema.json", "newer.json"}
    hosts = [tr.find("td").get_text() for tr in soup.find(id="fleet-table").find_all("tr")[1:]]
    assert f"host{factory.HOSTILE_TEXT}" in hosts
    hardware = [tr.find_all("td")[1].get_text() for tr in soup.find(id="fleet-table").find_all("tr")[1:]]
    assert f"H100 {factory.HOSTILE_TEXT}" in hardware
    table = soup.find(id="fleet-table")
    assert "sortable" in table["class"] and soup.find("input", attrs={"data-table": "fleet-table"})


def test_a_large_group_is_binned_by_speedup(tmp_path: Path) -> None:
    text = dumps(factory.measured_h100_result())
    for i in range(31):
        (tmp_path / f"h{i:02d}.json").write_text(text.replace('"hostname": "gpu-node-01"', f'"hostname": "h{i}"'),
                                                 encoding="utf-8")
    soup = page_soup(render_fleet_html(load_fleet([tmp_path])))
    assert "31 machines binned by headline speedup." in soup.find("section", id="group-1").get_text()


def test_a_thousand_result_files_load_and_render_in_under_five_seconds(tmp_path: Path) -> None:
    """Measured as CPU time of one process loading serially: other work on a shared machine cannot make it flaky,
    and on an idle machine the default parallel load takes less wall time than this."""
    factory.generate_fleet(tmp_path, 1000)
    start = time.process_time()
    fleet = load_fleet([tmp_path], workers=1)
    html = render_fleet_html(fleet)
    elapsed = time.process_time() - start
    assert len(fleet.rows) == 1000 and not fleet.skipped
    assert html.count("<tr") > 1000
    assert elapsed < 5.0, f"1,000 result files took {elapsed:.2f} s of CPU"


def test_hardware_models_of_one_machine_each_get_visible_bars_not_hairlines(tmp_path: Path) -> None:
    factory.write_result(tmp_path / "h100.json", factory.measured_h100_result())
    factory.write_result(tmp_path / "m3.json", factory.predicted_apple_result())
    soup = page_soup(render_fleet_html(load_fleet([tmp_path])))
    chart = soup.find("section", id="groups").find("svg")
    bars = [float(rect["width"]) for rect in chart.select("rect.rect")]
    assert len(bars) == 2 and min(bars) > 5, bars
    labels = [t.get_text() for t in chart.select(".axis.x text, .axis.y text")]
    assert "NVIDIA H100 SXM5 80GB (1 machine)" in labels


def test_a_model_with_several_machines_shows_the_range_from_lowest_to_highest(tmp_path: Path) -> None:
    for i, speedup in enumerate((5.1, 1.4, 3.3)):
        result = factory.result(predictions_=factory.predictions(speedup=speedup))
        factory.write_result(tmp_path / f"h{i}.json", factory.with_identity(
            result, hostname=f"node-{i}", created_at=f"2026-11-2{i}T00:00:00Z"))
    chart = page_soup(render_fleet_html(load_fleet([tmp_path]))).find("section", id="groups").find("svg")
    assert len(chart.select(".ci")) == 1
    assert any(t.get_text().endswith("(3 machines)") for t in chart.select(".axis text"))
