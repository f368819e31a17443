"""The developer's journey by keyboard alone in real Chromium against ``taap serve
--with-portal --with-sample-apis``: sign in by the mailed code, create an app, generate a key
pair and upload a second public key, call the sample API with each private key (200), sign
out. Only Tab, Shift+Tab, Enter, Space and typing move the page; the mouse is never used."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from test_portal_journey import DEVICE, Served, credentials, rfc7638, served, taap_call

from taap.core import generate_private_key

__all__ = ["served"]

pytestmark = pytest.mark.e2e


def tab_to(page: Any, target: Any, limit: int = 60) -> None:
    """Press Tab until ``target`` has the focus (at most ``limit`` times)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("(e) => e === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


def sign_in_by_keyboard(page: Any, served: Served, email: str) -> None:
    page.goto(served.url + "/portal/sign-in")
    tab_to(page, page.get_by_label("Email", exact=True))
    page.keyboard.type(email)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/portal/sign-in/code$"))
    tab_to(page, page.get_by_label("Code", exact=True))
    page.keyboard.type(served.smtp.wait_for_code(email))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/portal/welcome$"))
    # Individual is chosen already; the keyboard only has to reach Continue.
    tab_to(page, page.get_by_role("button", name="Continue", exact=True))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/portal/$"))


def create_app_by_keyboard(page: Any, name: str) -> None:
    tab_to(page, page.get_by_role("link", name="Create app", exact=True).first)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/portal/apps/new$"))
    tab_to(page, page.get_by_label("App name", exact=True))
    page.keyboard.type(name)
    tab_to(page, page.get_by_role("checkbox", name="Connectivity", exact=True))
    page.keyboard.press("Space")
    tab_to(page, page.get_by_role("button", name="Create", exact=True))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/portal/apps/[^/]+$"))
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


def test_the_whole_journey_by_keyboard_alone(page: Any, served: Served) -> None:
    sign_in_by_keyboard(page, served, "keys@example.com")
    create_app_by_keyboard(page, "Keyboard app")
    client_id, secret = credentials(page)

    # The Copy button is reachable and announces what it did.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.get_by_role("button", name="Copy").first
    tab_to(page, copy)
    page.keyboard.press("Enter")
    expect(page.locator("#portal-live")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    with page.expect_download() as download:
        tab_to(page, page.get_by_role("button", name="Generate key pair in browser", exact=True))
        page.keyboard.press("Enter")
    generated = served.folder / "keyboard-generated.pem"
    download.value.save_as(generated)
    expect(page.get_by_role("status").first).to_contain_text("Key")

    uploaded = generate_private_key(2048)
    public_file = served.folder / "keyboard-public.pem"
    public_file.write_bytes(uploaded.public.to_pem())
    private_file = served.folder / "keyboard-private.pem"
    private_file.write_bytes(uploaded.to_pem())
    # Space on a focused file input opens the file chooser, as it does for a person.
    tab_to(page, page.get_by_label("Public key", exact=True))
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(public_file))
    tab_to(page, page.get_by_role("button", name="Upload key", exact=True))
    page.keyboard.press("Enter")
    keys = page.get_by_role("table", name="Public keys (RFC 7638 thumbprints)")
    expect(keys.get_by_role("cell", name=rfc7638(uploaded), exact=True)).to_be_visible()
    expect(keys.get_by_role("row")).to_have_count(3)  # the header and the two keys

    for key_file in (generated, private_file):
        done = taap_call(served, client_id, secret, key_file, "GET", served.url + DEVICE)
        assert done.stdout.startswith("HTTP/1.1 200"), done.stdout + done.stderr

    # Sign out is after the content in the tab order; Shift+Tab from the top reaches it too.
    tab_to(page, page.get_by_role("button", name="Sign out", exact=True))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/portal/sign-in$"))
    page.goto(served.url + "/portal/")
    assert page.url.endswith("/portal/sign-in")
