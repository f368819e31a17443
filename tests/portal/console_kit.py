"""Shared pieces of the console's browser tests (Try it, Usage): a real ``taap serve
--with-portal --with-sample-apis`` with a real SMTP server, and developers who signed up in
real Chromium, created an app and uploaded the public half of a key made here.

A developer signs in once per test module: the browser context's storage state (its session
cookie) is kept and each test opens pages in a fresh context from it, which stays under the
portal's per-IP limit of sign-in codes.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from browser_kit import new_page
from playwright.sync_api import expect
from smtp_kit import SmtpServer, run_smtp_server

from kit.processes import TAAP, clean_env, start_serve
from taap.core import PrivateKey, generate_private_key

__all__ = [
    "DEVICE",
    "Developer",
    "Served",
    "access_token",
    "open_as",
    "row_counts",
    "serve_portal",
    "shell",
    "sign_up",
]

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


@dataclass
class Served:
    url: str
    smtp: SmtpServer
    env: dict[str, str]
    folder: Path


@dataclass
class Developer:
    email: str
    state: dict[str, Any]
    app_url: str
    client_id: str
    secret: str
    key: PrivateKey
    key_file: Path


@contextmanager
def serve_portal(folder: Path, *args: str, **settings: str) -> Iterator[Served]:
    """The token server with the portal and the sample APIs, over SQLite in ``folder`` (or
    the ``--database-url`` given in ``settings['database']``)."""
    with run_smtp_server() as smtp:
        env = clean_env(
            TAAP_KEY_REFRESH="0",
            TAAP_SMTP_URL=smtp.url,
            TAAP_MAIL_FROM="portal@example.com",
            XDG_CONFIG_HOME=str(folder / "xdg"),
            XDG_CACHE_HOME=str(folder / "cache"),
            **settings,
        )
        database = env.pop("DATABASE", f"sqlite:///{folder / 'taap.db'}")
        server = start_serve(
            folder, database, "--with-portal", "--with-sample-apis", *args, env=env
        )
        try:
            yield Served(server.url, smtp, env, folder)
        finally:
            server.stop()


def sign_up(
    browser: Any, served: Served, email: str, app_name: str, products: tuple[str, ...]
) -> Developer:
    """Sign up as an individual, create an app with ``products``, upload a new key's public
    half; the developer with the private key written to a PEM file."""
    page = new_page(browser)
    try:
        page.goto(served.url + "/portal/sign-in")
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_role("button", name="Send code", exact=True).click()
        page.wait_for_url(re.compile(r"/portal/sign-in/code$"))
        page.get_by_label("Code", exact=True).fill(served.smtp.wait_for_code(email))
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(re.compile(r"/portal/welcome$"))
        page.get_by_role("radio", name="Individual", exact=True).check()
        page.get_by_role("button", name="Continue", exact=True).click()
        page.wait_for_url(re.compile(r"/portal/$"))
        page.get_by_role("link", name="Create app", exact=True).first.click()
        page.get_by_label("App name", exact=True).fill(app_name)
        for product in products:
            page.get_by_role("checkbox", name=product, exact=True).check()
        page.get_by_role("button", name="Create", exact=True).click()
        page.wait_for_url(re.compile(r"/portal/apps/[^/]+$"))
        app_url = str(page.url)
        client_id = page.get_by_role("textbox", name="Client ID", exact=True).input_value()
        secret = page.get_by_role("textbox", name="Client secret", exact=True).input_value()
        key = generate_private_key(2048)
        slug = re.sub(r"[^a-z0-9]+", "-", email.lower())
        public_file = served.folder / f"{slug}-public.pem"
        public_file.write_bytes(key.public.to_pem())
        key_file = served.folder / f"{slug}-private.pem"
        key_file.write_bytes(key.to_pem())
        page.get_by_label("Public key", exact=True).set_input_files(str(public_file))
        page.get_by_role("button", name="Upload key", exact=True).click()
        expect(page.get_by_role("cell", name=key.thumbprint, exact=True)).to_be_visible()
        state = page.context.storage_state()
    finally:
        page.context.close()
    return Developer(email, state, app_url, client_id, secret, key, key_file)


@contextmanager
def open_as(browser: Any, developer: Developer, path: str, **options: Any) -> Iterator[Any]:
    """A page signed in as ``developer`` (a fresh context from its storage state) at ``path``
    (absolute, or relative to the app page's URL)."""
    page = new_page(browser, storage_state=developer.state, **options)
    try:
        url = path if "://" in path else developer.app_url + path
        page.goto(url)
        yield page
    finally:
        page.context.close()


def shell(served: Served, *args: str, secret: str = "") -> subprocess.CompletedProcess[str]:
    """A command with the server's environment (and ``$USAGE_SECRET``)."""
    env = dict(served.env, USAGE_SECRET=secret)
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


def access_token(
    served: Served, developer: Developer, secret: str
) -> subprocess.CompletedProcess[str]:
    """``taap token --json`` against ``served`` with the developer's key and ``secret``."""
    return shell(
        served,
        TAAP, "token", "--url", f"{served.url}/oauth2/v2/tokens",
        "--client-id", developer.client_id, "--client-secret-env", "USAGE_SECRET",
        "--key", str(developer.key_file), "--json",
        secret=secret,
    )  # fmt: skip


def row_counts(page: Any, header: str) -> list[int]:
    """The numbers of the Usage table's row whose header starts with ``header``."""
    table = page.get_by_role("table", name="Usage", exact=True)
    row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=header))
    if not row.count():
        return []
    return [int(n) for n in row.first.get_by_role("cell").all_inner_texts()]
