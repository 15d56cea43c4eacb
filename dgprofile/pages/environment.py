"""The page machinery: one Jinja environment, a page rendered from its view-model, and data embedded in a page.

The environment is built once: templates from dgprofile.templates, autoescape on, undefined names are errors.
Pages are self-contained: the stylesheet, the scripts and the chart SVG are inlined, and a
Content-Security-Policy forbids the page from fetching anything.
"""

from __future__ import annotations

import json
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from dgprofile.pages.views import PageView


@cache
def environment() -> Environment:
    """The one Jinja environment: templates from dgprofile.templates, autoescaped, strict about undefined names."""
    return Environment(loader=PackageLoader("dgprofile.templates", ""), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_page(page: PageView) -> str:
    """The HTML text of a page."""
    return environment().get_template("page.html.j2").render(page=page)


def embed_json(value: object) -> Markup:
    """JSON text safe inside a <script type="application/json"> element (no '<', '>', '&' left raw)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
