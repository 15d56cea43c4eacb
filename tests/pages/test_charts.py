"""pygal charts render to inline SVG that fetches nothing and escapes every label."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from dgprofile.pages import charts

HOSTILE = "<script>alert('x')</script>\"q\" & 'y'"


def all_charts(label: str = "label") -> dict[str, str]:
    points = (charts.ChartPoint(1, 2.0, label), charts.ChartPoint(4, 3.0, label))
    return {
        "roofline": charts.roofline_svg(title=label, bandwidth_bytes_per_s=3e12, peak_flops_per_s=7e14,
                                        points=[charts.ChartPoint(2, 5e12, label)], roof_label=label),
        "line": charts.line_svg(title=label, x_title=label, y_title=label, series=[charts.Series(label, points)],
                                log2_x=True, reference=(1.0, label)),
        "stacked": charts.stacked_bar_svg(title=label, categories=[label, "b"], stacks={label: [1.0, 2.0]},
                                          value_title=label),
        "bar": charts.bar_svg(title=label, categories=[label], series={label: [1.0], "other": [None]},
                              value_title=label),
        "hbar": charts.bar_svg(title=label, categories=[label, "b"], series={label: [1.0, 2.0]}, value_title=label,
                               horizontal=True),
        "range bars": charts.range_bar_svg(title=label, categories=[label], values=[2.0], ranges=[(1.0, 3.0)],
                                           value_title=label),
    }


@pytest.mark.parametrize("kind", list(all_charts()))
def test_chart_is_inline_svg_without_scripts_or_external_references(kind: str) -> None:
    svg = all_charts()[kind]
    assert svg.startswith("<svg") and not svg.startswith("<?xml")
    soup = BeautifulSoup(svg, "html.parser")
    assert not soup.find_all("script"), "pygal's CDN tooltip script must be disabled"
    assert "kozea.github.io" not in svg
    for tag in soup.find_all(True):
        for attr in ("href", "xlink:href", "src"):
            assert not tag.get(attr, "").startswith(("http", "//")), (kind, tag.name, attr)
    ids = [tag["id"] for tag in soup.find_all(id=True)]
    assert ids == [soup.svg["id"]], "only the chart's own id: legend ids would repeat across one page's charts"


@pytest.mark.parametrize("kind", list(all_charts()))
def test_chart_escapes_hostile_labels(kind: str) -> None:
    svg = all_charts(HOSTILE)[kind]
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_roofline_marks_the_ridge_and_places_points_under_the_roof() -> None:
    svg = charts.roofline_svg(title="t", bandwidth_bytes_per_s=3.07e12, peak_flops_per_s=7.2e14,
                              points=[charts.ChartPoint(87, 2.3e14, "DG denoise")], roof_label="roof")
    assert "ridge: 235 FLOP/byte" in svg
    assert "DG denoise" in svg


def test_line_chart_labels_a_log2_axis_with_the_real_values() -> None:
    points = tuple(charts.ChartPoint(x, 1.0 + x / 100, f"p{x}") for x in (32, 256, 2048))
    svg = charts.line_svg(title="t", x_title="tokens", y_title="x", series=[charts.Series("s", points)],
                          log2_x=True, x_formatter=lambda v: f"{v:.0f}")
    labels = [t.get_text() for t in BeautifulSoup(svg, "html.parser").select(".axis.x text")]
    assert {"32", "256", "2048"} <= set(labels)
