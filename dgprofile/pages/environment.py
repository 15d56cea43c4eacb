"""The page machinery: one Jinja environment, a page rendered from its view-model, and data embedded in a page.

The environment is built once: templates from dgprofile.templates, autoescape on, undefined names are errors.
Pages are self-contained: the stylesheet, the scripts and the chart SVG are inlined, and a
Content-Security-Policy forbids the page from fetching anything.
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from dgprofile.pages.views import Cell, PageView, TableView

# Where a long word of a table cell (a file path, URL, timestamp, hash) may break: after a separator; inside a
# piece still longer than LONG_PIECE, after each dot and then every LONG_PIECE characters. Words up to LONG_PIECE
# characters ('FLOP/byte', 'llama.cpp') never break.
_AFTER_SEPARATOR = re.compile(r"(?<=[/_\-:])")
_AFTER_DOT = re.compile(r"(?<=\.)")
_WORDS = re.compile(r"(\s+)")
LONG_PIECE = 12


def _pieces(word: str) -> list[str]:
    if len(word) <= LONG_PIECE:
        return [word]
    pieces = []
    for piece in _AFTER_SEPARATOR.split(word):
        for part in (_AFTER_DOT.split(piece) if len(piece) > LONG_PIECE else [piece]):
            pieces += [part[i:i + LONG_PIECE] for i in range(0, len(part), LONG_PIECE)] or [part]
    return pieces


@lru_cache(maxsize=1024)
def wrappable(text: str) -> Markup:
    """``text`` escaped, with line-break opportunities (<wbr>) inside long words only, so a table column of paths
    or timestamps can be narrow without breaking ordinary words. Cached: a fleet's columns of hardware, engines and
    verdicts repeat a few values over 10,000 rows."""
    if all(len(word) <= LONG_PIECE for word in text.split()):
        # Most cells of a fleet's 10,000 rows: nothing to break, and escaping word by word would cost a second.
        return escape(text)
    # Each piece is escaped, then joined as plain text: Markup.join would look at every piece again.
    return Markup("".join("<wbr>".join(map(escape, _pieces(word))) if word.strip() else escape(word)
                          for word in _WORDS.split(text)))


# A space after a number: the number and its unit stay on one line ('1,029 tok/s', '3.4x to 7.6x' may break only
# at 'to').
_NUMBER_SPACE = re.compile(r"(?<=\d) ")


def figure(text: str) -> Markup:
    """``text`` escaped, each number kept on one line with the word after it (its unit)."""
    return Markup(_NUMBER_SPACE.sub("&nbsp;", str(escape(text))))


@cache
def environment() -> Environment:
    """The one Jinja environment: templates from dgprofile.templates, autoescaped, strict about undefined names."""
    env = Environment(loader=PackageLoader("dgprofile.templates", ""), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["wrappable"] = wrappable
    env.filters["figure"] = figure
    env.filters["table_rows"] = table_rows
    return env


def table_rows(table: TableView) -> Markup:
    """The rows of a table's body as HTML. Written here rather than as a loop in the template, which took
    2.5 s over the 10,000 rows of a fleet's machines table; the markup is the one that loop wrote (a cell's text
    through ``figure`` when it sorts as a number, else ``wrappable``; every other value escaped), and rows past
    the first page are hidden."""
    lines = []
    for index, row in enumerate(table.rows, start=1):
        tone = f' class="tone-{escape(row.tone)}"' if row.tone else ""
        filter_text = f' data-filter="{escape(row.filter_text)}"' if row.filter_text else ""
        hidden = " hidden" if table.page_size and index > table.page_size else ""
        cells = "".join(map(_cell_html, row.cells))
        lines.append(f"    <tr{tone}{filter_text}{hidden}>\n{cells}    </tr>\n")
    return Markup("".join(lines))


def _cell_html(cell: Cell) -> str:
    sort_key = f' data-sort="{escape(cell.sort_key)}"' if cell.sort_key else ""
    tone = f' class="tone-{escape(cell.tone)}"' if cell.tone else ""
    text = figure(cell.text) if cell.sort_key else wrappable(cell.text)
    detail = f'<span class="cell-detail">{escape(cell.detail)}</span>' if cell.detail else ""
    return f"<td{sort_key}{tone}>{text}{detail}</td>"


def render_page(page: PageView) -> str:
    """The HTML text of a page."""
    return environment().get_template("page.html.j2").render(page=page)


def embed_json(value: object) -> Markup:
    """JSON text safe inside a <script type="application/json"> element (no '<', '>', '&' left raw)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
