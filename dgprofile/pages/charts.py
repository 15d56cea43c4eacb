"""Charts for the HTML pages, rendered by pygal to SVG strings that are inlined into the page.

pygal is pure Python and renders offline. Its default configuration points the SVG at a tooltip script on a
CDN; every chart here is built with ``js=[]`` so nothing leaves the page, and pygal's inline configuration script is
removed (the page inlines its own small tooltip script, ``templates/tooltips.js``, which reads the ``desc.value``
elements pygal writes). Functions take plain
numbers and labels, never result objects: ``dgprofile.pages.result_page`` decides what to plot.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pygal
from pygal.style import Style

from dgprofile.text.units import intensity_text, significant_text

# The colour of each tone, as templates/report.css draws it (--applies, --partial, --dna, --cannot), so a bar
# coloured by verdict reads like the verdict's badge.
TONE_COLOURS = {"applies": "#15803d", "partial": "#b45309", "does-not-apply": "#b91c1c", "cannot-run": "#4b5563",
                "unknown": "#4b5563"}
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#4b5563")
_STYLE_OPTIONS: dict[str, object] = {
    "background": "transparent",
    "plot_background": "#ffffff",
    "foreground": "#1f2937",
    "foreground_strong": "#111827",
    "foreground_subtle": "#d1d5db",
    "opacity": ".85",
    "opacity_hover": "1",
    "font_family": "system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', Arial, sans-serif",
    "label_font_size": 12,
    "major_label_font_size": 12,
    "legend_font_size": 13,
    "title_font_size": 15,
    "tooltip_font_size": 13,
    "value_font_size": 12,
}
BAND_COLOUR = "#9ca3af"  # the uncertainty band's two bounds, drawn alike and quieter than the value


def _style(colours: Sequence[str] = PALETTE) -> Style:
    return Style(colors=tuple(colours), **_STYLE_OPTIONS)


# pygal numbers each series' legend entry with the same id in every chart; several charts inline in one page
# would repeat those ids, and nothing uses them once pygal's own script is off.
_LEGEND_ID = re.compile(r' id="activate-serie-\d+"')
# pygal always writes its configuration (titles and labels included) into an inline script for its tooltip
# script to read; with that script off it is dead weight, and pages should run only their own code. etree
# escapes '<' in the text, so the first closing tag ends the element.
_CONFIG_SCRIPT = re.compile(r'<script type="text/javascript">.*?</script>', re.DOTALL)


@dataclass(frozen=True)
class ChartPoint:
    """A labelled point; ``label`` shows in the tooltip."""

    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Series:
    """One named line or set of points."""

    name: str
    points: tuple[ChartPoint, ...]
    dashed: bool = False
    colour: str = ""  # empty: the next palette colour


def _config(**overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "js": [],  # no tooltip script from the CDN: the page brings its own, inline
        "style": _style(),
        "width": 760,
        "height": 380,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 2,
        "truncate_legend": -1,
        "truncate_label": -1,
        "margin": 12,
        "max_scale": 8,  # at most 8 graduations: wide numbers stay legible
    }
    config.update(overrides)
    return config


def _render(chart: pygal.graph.graph.Graph) -> str:
    svg = chart.render(is_unicode=True, disable_xml_declaration=True)
    return _CONFIG_SCRIPT.sub("", _LEGEND_ID.sub("", svg))


def _log_bounds(values: Sequence[float], pad: float = 2.0) -> tuple[float, float]:
    """Powers of ten around the positive values, widened by ``pad`` on each side."""
    positive = [v for v in values if v > 0]
    low, high = min(positive) / pad, max(positive) * pad
    return 10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high))


def _decades(low: float, high: float) -> list[float]:
    """The powers of ten from ``low`` to ``high`` (both powers of ten), as axis labels."""
    first, last = round(math.log10(low)), round(math.log10(high))
    return [10.0 ** e for e in range(first, last + 1)]


def roofline_svg(*, title: str, bandwidth_bytes_per_s: float, peak_flops_per_s: float,
                 points: Sequence[ChartPoint], roof_label: str, flops_unit: float = 1e12) -> str:
    """Log-log roofline: attainable FLOP/s against arithmetic intensity (FLOP/byte), with the ridge marked and
    the given points (x = FLOP/byte, y = achieved FLOP/s) placed under it."""
    ridge = peak_flops_per_s / bandwidth_bytes_per_s
    x_low, x_high = _log_bounds([ridge, *(p.x for p in points)], pad=8.0)
    y_values = [bandwidth_bytes_per_s * x_low, peak_flops_per_s, *(p.y for p in points)]
    y_low, y_high = _log_bounds([y / flops_unit for y in y_values], pad=1.5)
    chart = pygal.XY(**_config(title=title, logarithmic=True, x_title="arithmetic intensity (FLOP per byte)",
                               y_title="TFLOP/s", dots_size=5, xrange=(x_low, x_high), range=(y_low, y_high),
                               x_labels=_decades(x_low, x_high), y_labels=_decades(y_low, y_high),
                               show_minor_x_labels=True, show_minor_y_labels=True, height=460, margin_right=36,
                               legend_at_bottom_columns=1,
                               x_value_formatter=lambda v: f"{v:g}"))
    roof = [(x_low, bandwidth_bytes_per_s * x_low / flops_unit), (ridge, peak_flops_per_s / flops_unit),
            (x_high, peak_flops_per_s / flops_unit)]
    chart.add(roof_label, [{"value": xy, "label": roof_label} for xy in roof],
              show_dots=False, stroke_style={"width": 3})
    chart.add(f"ridge: {intensity_text(ridge)}",
              [{"value": (ridge, peak_flops_per_s / flops_unit), "label": f"ridge {intensity_text(ridge)}"}],
              stroke=False, dots_size=7)
    for point in points:
        chart.add(point.label, [{"value": (point.x, point.y / flops_unit), "label": point.label}], stroke=False,
                  dots_size=7)
    return _render(chart)


def line_svg(*, title: str, x_title: str, y_title: str, series: Sequence[Series], log2_x: bool = False,
             reference: tuple[float, str] | None = None,
             x_formatter: Callable[[float], str] = lambda x: f"{x:g}",
             y_formatter: Callable[[float], str] = significant_text) -> str:
    """Lines over a numeric x axis; ``reference`` draws a dashed horizontal line at (y, label).

    pygal's logarithmic switch applies to both axes of an XY chart, so a log-scaled x (token counts,
    concurrency) is plotted as log2(x) on a linear axis whose labels are formatted back to x.
    """
    def position(x: float) -> float:
        return math.log2(x) if log2_x else x

    xs = sorted({p.x for s in series for p in s.points})
    palette = iter(PALETTE)
    colours = [s.colour or next(palette) for s in series] + [next(palette)]
    chart = pygal.XY(**_config(title=title, x_title=x_title, y_title=y_title, dots_size=4, style=_style(colours),
                               x_value_formatter=(lambda v: x_formatter(2 ** v)) if log2_x else x_formatter,
                               value_formatter=y_formatter, x_labels=[position(x) for x in xs],
                               include_x_axis=reference is not None and reference[0] == 0))
    for s in series:
        chart.add(s.name, [{"value": (position(p.x), p.y), "label": p.label} for p in s.points],
                  **({"show_dots": False, "stroke_style": {"width": 1.5, "dasharray": "3, 4"}} if s.dashed else {}))
    if reference is not None and xs:
        level, label = reference
        chart.add(label, [{"value": (position(x), level), "label": label} for x in (min(xs), max(xs))],
                  show_dots=False, stroke_style={"width": 2, "dasharray": "6, 4"})
    return _render(chart)


def stacked_bar_svg(*, title: str, categories: Sequence[str], stacks: Mapping[str, Sequence[float]],
                    value_title: str, value_formatter: Callable[[float], str] = significant_text,
                    colours: Mapping[str, str] | None = None) -> str:
    """Horizontal stacked bars, the first category on top: one bar per category, one segment per stack name.
    ``colours`` fixes a stack's colour by name (the rest take palette colours), so a term keeps its colour
    across charts."""
    fixed = colours or {}
    spare = iter(c for c in PALETTE if c not in fixed.values())
    style = _style([fixed.get(name) or next(spare, PALETTE[-1]) for name in stacks])
    # pygal draws the first category at the bottom of a horizontal chart; reverse so the page reads top-down.
    chart = pygal.HorizontalStackedBar(**_config(title=title, x_title=value_title, value_formatter=value_formatter,
                                                 height=170 + 50 * len(categories) + 30 * ((len(stacks) + 1) // 2),
                                                 style=style))
    chart.x_labels = list(reversed(categories))
    for name, values in stacks.items():
        chart.add(name, list(reversed(values)))
    return _render(chart)


def bar_svg(*, title: str, categories: Sequence[str], series: Mapping[str, Sequence[float | None]],
            value_title: str, value_formatter: Callable[[float], str] = significant_text,
            horizontal: bool = False, bar_colours: Sequence[str] = ()) -> str:
    """Grouped bars, vertical or (``horizontal``, first category on top) horizontal; ``None`` leaves a gap (an
    unavailable value is not zero). A single series has no legend; ``bar_colours`` gives each of its bars its own
    colour."""
    options = _config(title=title, value_formatter=value_formatter, show_legend=len(series) > 1)
    bars: dict[str, list[float | None | dict[str, object]]] = {
        name: [{"value": v, "color": c} for v, c in zip(values, bar_colours, strict=True)] if bar_colours
        else list(values) for name, values in series.items()}
    if horizontal:
        options["height"] = 170 + 30 * len(categories) * max(1, len(series))
        chart = pygal.HorizontalBar(**options, x_title=value_title)
        chart.x_labels = list(reversed(categories))
        for name, values in bars.items():
            chart.add(name, list(reversed(values)))
    else:
        chart = pygal.Bar(**options, y_title=value_title)
        chart.x_labels = list(categories)
        for name, values in bars.items():
            chart.add(name, values)
    return _render(chart)


def range_bar_svg(*, title: str, categories: Sequence[str], values: Sequence[float],
                  ranges: Sequence[tuple[float, float] | None], value_title: str,
                  value_formatter: Callable[[float], str] = significant_text) -> str:
    """Horizontal bars, first category on top, each with a whisker over its (low, high) range, or none: a typical
    value and the spread around it, as readable for a group of one as for a group of hundreds (a box plot of one
    value is a hairline)."""
    bars: list[dict[str, object]] = [
        {"value": value, **({"ci": {"low": low_high[0], "high": low_high[1]}} if low_high else {})}
        for value, low_high in zip(values, ranges, strict=True)]
    chart = pygal.HorizontalBar(**_config(title=title, x_title=value_title, value_formatter=value_formatter,
                                          show_legend=False, height=170 + 34 * len(categories)))
    chart.x_labels = list(reversed(categories))
    chart.add(value_title, list(reversed(bars)))
    return _render(chart)
