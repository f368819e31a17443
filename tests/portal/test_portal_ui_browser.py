"""The portal's visual layer in real Chromium, under the portal's Content-Security-Policy:
in-browser key generation, copy buttons, the danger-zone confirmation, axe-core, the phone
layout, keyboard order and escaping (tests/portal/portal_ui_app.py renders the templates)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_kit import (
    assert_axe_clean,
    assert_no_horizontal_scroll,
    csp_violations,
    focused_text,
    new_page,
    screenshot,
)
from playwright.sync_api import expect
from portal_ui_app import CSRF_TOKEN, XSS, UiApp, build_app

from kit.loopback import serve
from taap.core import load_private_key, load_public_key


@pytest.fixture(scope="module")
def ui() -> Iterator[tuple[UiApp, str]]:
    app = build_app()
    with serve(app.app) as url:
        yield app, url


def test_generated_key_pair_downloads_pkcs8_and_registers_its_public_half(
    page: Any, ui: tuple[UiApp, str], tmp_path: Path
) -> None:
    app, url = ui
    page.goto(url + "/keygen")
    with page.expect_download() as info:
        page.get_by_role("button", name="Generate key pair in browser").click()
    download = info.value
    assert download.suggested_filename == "taap-private-key.pem"
    saved = tmp_path / "key.pem"
    download.save_as(saved)
    pem = saved.read_text()
    lines = pem.strip().splitlines()
    assert lines[0] == "-----BEGIN PRIVATE KEY-----"
    assert lines[-1] == "-----END PRIVATE KEY-----"
    assert all(len(line) == 64 for line in lines[1:-2])
    assert 0 < len(lines[-2]) <= 64
    private = load_private_key(pem)
    assert private.key.key_size == 2048
    assert private.key.public_key().public_numbers().e == 65537

    page.wait_for_url(url + "/keys/done")
    assert page.get_by_role("status").inner_text() == "Key added"
    assert len(app.posts) == 1
    posted = app.posts[0]
    assert posted["csrf_token"] == CSRF_TOKEN
    # A textarea is submitted with CRLF line ends (HTML form encoding); PEM readers accept them.
    assert posted["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----\r\n")
    assert "PRIVATE" not in str(posted)
    public = load_public_key(posted["public_key_pem"])
    assert public.thumbprint == private.thumbprint
    # Nothing of the key pair is kept by the page.
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert csp_violations(page) == []


def test_copy_buttons_copy_the_value_and_announce_it(browser: Any, ui: tuple[UiApp, str]) -> None:
    _, url = ui
    page = new_page(browser, permissions=["clipboard-read", "clipboard-write"])
    try:
        page.goto(url + "/sample")
        secret = page.get_by_role("textbox", name="Client secret")
        assert secret.input_value() == "secret-demo app"
        assert secret.get_attribute("readonly") is not None
        page.locator("[data-copy='client-secret']").click()
        # expect(), not wait_for_function: the latter evals a string, which the CSP refuses.
        expect(page.locator("#portal-live")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == "secret-demo app"
        page.locator("[data-copy='curl']").click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("curl -X POST https://api.example/oauth2/v6/tokens")
        assert csp_violations(page) == []
    finally:
        page.context.close()


def test_danger_zone_button_waits_for_the_app_name(page: Any, ui: tuple[UiApp, str]) -> None:
    _, url = ui
    page.goto(url + "/sample")
    delete = page.get_by_role("button", name="Delete app")
    confirm = page.get_by_role("textbox", name="Type the app name to confirm")
    assert delete.is_disabled()
    confirm.fill("demo ap")
    assert delete.is_disabled()
    confirm.fill("demo app")
    assert delete.is_enabled()


def test_sample_page_is_axe_clean_in_light_and_dark(page: Any, ui: tuple[UiApp, str]) -> None:
    _, url = ui
    page.goto(url + "/sample")
    assert_axe_clean(page)
    page.emulate_media(color_scheme="dark")
    assert_axe_clean(page)
    page.emulate_media(color_scheme="light")
    screenshot(page, "style-guide")
    page.goto(url + "/error")
    assert_axe_clean(page)
    assert csp_violations(page) == []


@pytest.mark.parametrize("width", [390, 1280])
def test_no_sideways_scroll(browser: Any, ui: tuple[UiApp, str], width: int) -> None:
    _, url = ui
    page = new_page(browser, width=width)
    try:
        for path in ("/sample", "/sample?xss=1", "/keygen", "/error"):
            page.goto(url + path)
            assert_no_horizontal_scroll(page)
    finally:
        page.context.close()


def test_keyboard_reaches_skip_link_first_then_generates_a_key(
    page: Any, ui: tuple[UiApp, str]
) -> None:
    _, url = ui
    page.goto(url + "/sample")
    # The error summary takes focus on load (GOV.UK pattern); from a fresh start on a page
    # without one, Tab lands on the skip link first.
    page.goto(url + "/keygen")
    page.keyboard.press("Tab")
    assert focused_text(page) == "A: Skip to content"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert focused_text(page) == "BUTTON: Generate key pair in browser"
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    assert info.value.suggested_filename == "taap-private-key.pem"
    page.wait_for_url("**/keys/done")


def test_error_summary_takes_focus_and_links_to_fields(page: Any, ui: tuple[UiApp, str]) -> None:
    _, url = ui
    page.goto(url + "/sample")
    assert page.evaluate("document.activeElement.dataset.errorSummary") == ""
    page.get_by_role("link", name="Enter a shorter app name demo app").click()
    assert page.evaluate("document.activeElement.id") == "field-app_name"
    textbox = page.get_by_role("textbox", name="App name", exact=True)
    assert textbox.get_attribute("aria-invalid") == "true"
    assert textbox.input_value() == "demo app"


@pytest.mark.parametrize("prefix", ["", "/nocsp"])
def test_user_strings_render_as_text(page: Any, ui: tuple[UiApp, str], prefix: str) -> None:
    """With and without the CSP: escaping alone must stop the markup."""
    _, url = ui
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    response = page.goto(url + prefix + "/sample?xss=1")
    assert response is not None
    assert ("content-security-policy" in response.headers) == (prefix == "")
    assert page.locator("img").count() == 0
    assert page.get_by_role("heading", level=1).inner_text() == f"Style guide {XSS}"
    assert page.get_by_role("textbox", name="App name", exact=True).input_value() == XSS
    assert page.get_by_role("textbox", name="Client secret").input_value() == f"secret-{XSS}"
    assert page.locator(".account-email").inner_text() == XSS
    assert page.get_by_role("link", name="Company").count() == 1
    assert XSS in page.locator("#curl").inner_text()
    assert dialogs == []
