"""Pages parsed for tests: BeautifulSoup over the HTML with the line-breaking hints taken out (<wbr> inside long
words, no-break spaces between a number and its unit), so text compares as a reader sees it."""

from __future__ import annotations

from bs4 import BeautifulSoup


def page_soup(html: str) -> BeautifulSoup:
    """The page's tree, without <wbr> elements and with plain spaces for no-break ones."""
    return BeautifulSoup(html.replace("<wbr>", "").replace("&nbsp;", " "), "html.parser")
