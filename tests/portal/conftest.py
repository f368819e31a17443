"""Fixtures of the portal's tests: one Chromium per test module, a fresh page (own cookies)
per test, and a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_kit import launch_chromium, new_page
from portal_kit import portal_smtp, world
from smtp_kit import SmtpServer, run_smtp_server

__all__ = ["portal_smtp", "world"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, not per session: Playwright's sync API leaves its event loop marked running
    in this thread while it is open, which breaks any asyncio test that runs meanwhile (so a
    module using this fixture holds no async test)."""
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A 1280 x 800 page in its own context; see browser_kit.new_page."""
    tab = new_page(browser)
    try:
        yield tab
    finally:
        tab.context.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with run_smtp_server() as server:
        yield server
