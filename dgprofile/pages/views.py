"""The view-models of the pages: blocks of already formatted text that the Jinja templates lay out.

Python decides what each page says and formats every number; a template only places these blocks. ``tone`` names
a CSS class (``tone-<tone>`` in templates/report.css): a verdict's tone, or one of the tones below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from markupsafe import Markup

from dgprofile.records.predictions import VerdictTone
from dgprofile.records.values import Unavailable

Tone = Literal[VerdictTone, "", "unknown", "warning", "muted", "better", "worse", "same"]


@dataclass(frozen=True)
class Cell:
    """A table cell; ``sort_key`` (a number as text, or empty) orders sortable tables numerically; ``detail`` is a
    short line under the text, such as where a figure comes from ('datasheet')."""

    text: str
    sort_key: str = ""
    tone: Tone = ""
    detail: str = ""


@dataclass(frozen=True)
class RowView:
    """A table row; ``filter_text`` is what a table's filter box matches against."""

    cells: tuple[Cell, ...]
    tone: Tone = ""
    filter_text: str = ""


@dataclass(frozen=True)
class TableView:
    """A table; ``sortable`` tables get clickable headers, ``filterable`` ones a filter box, and a table with a
    ``page_size`` (and a ``table_id``) shows that many rows at a time, with buttons to page through the rest."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[RowView, ...]
    sortable: bool = False
    filterable: bool = False
    table_id: str = ""
    collapsed_summary: str = ""  # when set, the table starts folded behind this line
    page_size: int = 0
    note: str = ""  # a sentence under the table: what a term in it means, or the rule its verdicts follow
    kind: Literal["table"] = "table"


@dataclass(frozen=True)
class FactsView:
    """Label/value pairs."""

    title: str
    items: tuple[tuple[str, str], ...]
    kind: Literal["facts"] = "facts"


@dataclass(frozen=True)
class ChartView:
    """An inline SVG chart from dgprofile.pages.charts (pygal escapes every label it draws)."""

    svg: Markup
    caption: str
    kind: Literal["chart"] = "chart"


@dataclass(frozen=True)
class ListView:
    """A titled list of sentences."""

    title: str
    items: tuple[str, ...]
    tone: Tone = ""
    kind: Literal["list"] = "list"


@dataclass(frozen=True)
class CodeView:
    """A command block to copy."""

    caption: str
    text: str
    kind: Literal["code"] = "code"


@dataclass(frozen=True)
class NoticeView:
    """A sentence standing in for missing data (with the reason), or a warning about the data shown."""

    text: str
    tone: Tone = "muted"
    kind: Literal["notice"] = "notice"


@dataclass(frozen=True)
class Tile:
    """One big number with a label."""

    label: str
    value: str
    tone: Tone = ""
    detail: str = ""


@dataclass(frozen=True)
class TilesView:
    """A row of big numbers."""

    tiles: tuple[Tile, ...]
    kind: Literal["tiles"] = "tiles"


@dataclass(frozen=True)
class VerdictView:
    """The headline verdict box."""

    tone: Tone
    label: str
    summary: str
    band: str
    scenario: str
    reasons: tuple[str, ...]
    advice: tuple[str, ...]
    kind: Literal["verdict"] = "verdict"


@dataclass(frozen=True)
class ColumnsView:
    """Blocks side by side, one titled column each (the compare page's two machines)."""

    columns: tuple[tuple[str, tuple[Block, ...]], ...]
    kind: Literal["columns"] = "columns"


Block = (TableView | FactsView | ChartView | ListView | CodeView | NoticeView | TilesView | VerdictView
         | ColumnsView)


@dataclass(frozen=True)
class SectionView:
    """A titled part of a page; ``intro`` says what it shows."""

    id: str
    title: str
    intro: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Badge:
    """A short tag in the page header."""

    text: str
    tone: Tone = ""


@dataclass(frozen=True)
class PageView:
    """A whole page. ``data_json`` embeds the source data (already safe inside a script element) or is empty."""

    title: str
    heading: str
    subtitle: str
    badges: tuple[Badge, ...]
    banners: tuple[str, ...]
    sections: tuple[SectionView, ...]
    data_json: Markup = field(default_factory=Markup)
    data_name: str = ""


def unavailable_notice(what: str, value: Unavailable) -> NoticeView:
    """The block a section shows when its data is missing."""
    return NoticeView(text=f"{what} unavailable: {value.reason}.")
