"""Headless Chromium (Debian's `chromium`) driven by playwright, for the page tests.

The tests skip only when Chromium is absent and DGPROFILE_REQUIRE_BROWSER is unset (CI sets it, so there they run
or fail). Every request that is not file: or data: is aborted and recorded, so a test can assert that nothing left
the page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("DGPROFILE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking switches Chromium phones home at start, which a closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _browser_or_skip() -> Any:
    required = bool(os.environ.get("DGPROFILE_REQUIRE_BROWSER"))
    if not Path(CHROMIUM).exists():
        if required:
            pytest.fail(f"DGPROFILE_REQUIRE_BROWSER is set but Chromium is not at {CHROMIUM}")
        pytest.skip("Chromium not installed (apt-get install chromium); set DGPROFILE_REQUIRE_BROWSER to fail instead")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright not installed (pip install playwright; never `playwright install`)")
    return sync_playwright


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class OpenedPage:
    """A page opened from a file, with what it logged and every request it tried to send off the machine."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)


@pytest.fixture()
def open_page(browser: Any) -> Iterator[Any]:
    contexts = []

    def opener(path: Path, *, width: int = 1280) -> OpenedPage:
        context = browser.new_context(viewport={"width": width, "height": 900})
        contexts.append(context)
        page = context.new_page()
        opened = OpenedPage(page)

        def route(route: Any) -> None:
            url = route.request.url
            if url.startswith(("file:", "data:")):
                route.continue_()
            else:
                opened.outside_requests.append(url)
                route.abort()

        context.route("**/*", route)
        page.on("console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: opened.console_errors.append(str(e)))
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        return opened

    yield opener
    for context in contexts:
        context.close()


@pytest.fixture()
def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: DGPROFILE_SCREENSHOT_DIR if set (to look at them), else the test's tmp_path."""
    directory = Path(os.environ.get("DGPROFILE_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory
