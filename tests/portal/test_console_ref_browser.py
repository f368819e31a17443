"""API reference, Status codes and Explain a PoP in real Chromium against a real ``taap serve
--with-portal --with-sample-apis``, driven by the pages' accessible names; axe-core finds no
serious or critical violation, the CSP reports nothing, and the screenshots of docs/portal.md
are taken here (``docs/portal/api-reference.png``, ``status-codes.png``, ``explain.png``).

No async test in this module: Playwright's sync API keeps its loop marked running.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import test_portal_journey
from browser_kit import (
    SCREENSHOT_DIR,
    assert_axe_clean,
    assert_no_horizontal_scroll,
    csp_violations,
)
from explain_cases import cases
from playwright.sync_api import expect
from test_portal_journey import Served, choose_kind, sign_in

from taap.core import PrivateKey
from taap.error_guide import error_table

pytestmark = pytest.mark.e2e

# The journey's server: a real taap serve --with-portal --with-sample-apis and an SMTP server.
served = test_portal_journey.served


def shot(page: Any, name: str) -> None:
    """One full-page PNG at 1280 px for docs/portal.md."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True, animations="disabled")


def nav_link(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def clean(page: Any) -> None:
    """axe-core clean, no CSP report, and no sideways scrolling on a phone (390 px) or a laptop."""
    assert_axe_clean(page)
    assert csp_violations(page) == []
    original = page.viewport_size
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        assert_no_horizontal_scroll(page)
    page.set_viewport_size(original)


def test_api_reference_by_its_links(page: Any, served: Served) -> None:
    page.goto(served.url + "/portal/sign-in")
    nav_link(page, "API reference").click()
    page.wait_for_url(re.compile(r"/portal/reference$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("API reference")
    products = page.get_by_role("table", name="API products")
    for name in ("Connectivity", "SMS Notification", "Call Verification", "Location"):
        expect(products.get_by_role("link", name=name, exact=True)).to_be_visible()
    clean(page)
    products.get_by_role("link", name="Connectivity", exact=True).click()
    page.wait_for_url(re.compile(r"/portal/reference/connectivity$"))
    heading = page.get_by_role("heading", name="GET /iot-connectivity/v1/devices/{iccid}")
    expect(heading).to_be_visible()
    params = page.get_by_role(
        "table", name="Parameters of GET /iot-connectivity/v1/devices/{iccid}"
    )
    expect(params.get_by_role("cell", name="iccid", exact=True)).to_be_visible()
    answers = page.get_by_role(
        "table", name="Responses of GET /iot-connectivity/v1/devices/{iccid}"
    )
    expect(answers.get_by_role("link", name="pop_replayed")).to_be_visible()
    clean(page)
    shot(page, "api-reference")
    page.goto(served.url + "/portal/reference/sms-notification")
    expect(page.get_by_role("heading", name="POST /sms/v1/messages")).to_be_visible()
    expect(page.get_by_text('"maxLength": 918')).to_be_visible()
    page.goto(served.url + "/portal/reference/location")
    expect(
        page.get_by_role("heading", name="No API reference for this product yet")
    ).to_be_visible()
    clean(page)


def test_status_codes_table(page: Any, served: Served) -> None:
    page.goto(served.url + "/portal/sign-in")
    nav_link(page, "Status codes").click()
    page.wait_for_url(re.compile(r"/portal/status-codes$"))
    table = page.get_by_role("table", name="Error responses")
    expect(table.locator("tbody tr")).to_have_count(len(error_table()))
    row = table.get_by_role("row", name=re.compile(r"pop_edts_mismatch"))
    expect(row).to_contain_text("401")
    expect(row).to_contain_text("re-serialised")
    expect(nav_link(page, "Status codes")).to_have_attribute("aria-current", "page")
    clean(page)
    shot(page, "status-codes")
    page.emulate_media(color_scheme="dark")
    assert_axe_clean(page)


def test_explain_a_pop_names_the_difference(page: Any, served: Served, rsa_key: PrivateKey) -> None:
    sign_in(page, served, "explain@example.com")
    choose_kind(page, "Individual")
    nav_link(page, "Explain a PoP").click()
    page.wait_for_url(re.compile(r"/portal/explain$"))
    clean(page)
    table = {case.name: case for case in cases(rsa_key, int(time.time()))}
    for name in ("re-serialised body", "method changed", "valid (raw HTTP)"):
        case = table[name]
        page.get_by_label("PoP token", exact=True).fill(case.token)
        page.get_by_label("Request", exact=True).fill(case.request)
        page.get_by_role("button", name="Explain", exact=True).click()
        result = page.get_by_role("region", name="Result")
        expect(result.locator(".verdict")).to_have_text(case.verdict)
        expect(result).to_contain_text(case.names)
        if name == "re-serialised body":
            expect(
                result.get_by_role("table", name=re.compile("Each name of ehts"))
            ).to_contain_text("http-method")
            clean(page)
            shot(page, "explain")
    # A form error is summarised at the top and linked to its field.
    page.get_by_label("PoP token", exact=True).fill("")
    page.get_by_role("button", name="Explain", exact=True).click()
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary.get_by_role("link", name=re.compile("Paste the PoP token"))).to_be_visible()
    clean(page)
