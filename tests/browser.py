"""Headless Debian chromium driven by Playwright, for tests that look at what users see.

Playwright's own browser download cannot work offline, so the tests drive the system's
``chromium`` (installed by infra/install.sh). ``page()`` yields a fresh page; every test
that opens a screen saves a screenshot under ``CITYWATCH_SCREENSHOTS`` (default: the
test's tmp dir) so a person can look at it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `bash infra/install.sh`")
    return path


@contextmanager
def page(*, timezone_id: str = "UTC", locale: str = "en-GB") -> Iterator[Page]:
    """A headless chromium page; network requests may only go to loopback."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            context = browser.new_context(timezone_id=timezone_id, locale=locale)
            yield context.new_page()
        finally:
            browser.close()
