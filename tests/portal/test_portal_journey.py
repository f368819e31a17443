"""The developer's whole journey in real Chromium against a real ``taap serve --with-portal
--with-sample-apis`` process: sign-up by a code read from the SMTP server, an enterprise
account, an app, a key pair generated in the browser, the app's credentials used by ``taap
call`` against the sample API (200), then an operator disabling the app and the developer's
next call refused. The pages are driven by the accessible names of docs/portal.md."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_kit import assert_axe_clean, new_page, screenshot
from playwright.sync_api import expect
from smtp_kit import SmtpServer, run_smtp_server

from kit.processes import TAAP, clean_env, start_serve, wait_until
from taap.core import PrivateKey, generate_private_key

pytestmark = pytest.mark.e2e

OPERATOR = "ops@example.com"
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


@dataclass
class Served:
    url: str
    smtp: SmtpServer
    env: dict[str, str]
    folder: Path


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server per test: every browser here comes from 127.0.0.1, and the portal allows one
    IP 10 sign-in codes in 30 s, which a module's worth of developers would exceed."""
    tmp = tmp_path_factory.mktemp("journey")
    with run_smtp_server() as smtp:
        env = clean_env(
            TAAP_KEY_REFRESH="0",
            TAAP_SMTP_URL=smtp.url,
            TAAP_MAIL_FROM="portal@example.com",
            TAAP_PORTAL_ADMINS=OPERATOR,
            # The sample APIs judge tokens by revocation state at most a second old.
            TAAP_REVOCATION_MAX_AGE="1",
            XDG_CONFIG_HOME=str(tmp / "xdg"),
            XDG_CACHE_HOME=str(tmp / "cache"),
        )
        database = f"sqlite:///{tmp / 'taap.db'}"
        server = start_serve(tmp, database, "--with-portal", "--with-sample-apis", env=env)
        try:
            yield Served(server.url, smtp, env, tmp)
        finally:
            server.stop()


def checked(page: Any, name: str | None = None) -> None:
    """No serious axe-core violation on the page; with ``name``, screenshots for docs."""
    assert_axe_clean(page)
    if name:
        screenshot(page, name)


def sign_in(page: Any, served: Served, email: str, *, shots: bool = False) -> None:
    """Sign in by the code mailed to ``email``; stops on the page the portal lands on."""
    page.goto(served.url + "/portal/sign-in")
    checked(page, "sign-in" if shots else None)
    sent = len(served.smtp.mails_to(email))
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_role("button", name="Send code", exact=True).click()
    page.wait_for_url(re.compile(r"/portal/sign-in/code$"))
    checked(page)
    code = served.smtp.wait_for_code(email, count=sent + 1)
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"/portal/(welcome)?$"))


def choose_kind(page: Any, kind: str, company: str = "") -> None:
    checked(page)
    page.get_by_role("radio", name=kind, exact=True).check()
    if company:
        page.get_by_label("Company name", exact=True).fill(company)
    page.get_by_role("button", name="Continue", exact=True).click()
    page.wait_for_url(re.compile(r"/portal/$"))


def create_app(page: Any, name: str, products: tuple[str, ...]) -> str:
    """Create an app from the dashboard; the app page's URL."""
    page.get_by_role("link", name="Create app", exact=True).first.click()
    page.wait_for_url(re.compile(r"/portal/apps/new$"))
    checked(page)
    page.get_by_label("App name", exact=True).fill(name)
    for product in products:
        page.get_by_role("checkbox", name=product, exact=True).check()
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url(re.compile(r"/portal/apps/[^/]+$"))
    return str(page.url)


def taap_call(
    served: Served, client_id: str, secret: str, key: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``taap call`` with the app's credentials (the secret from the environment)."""
    env = dict(served.env, JOURNEY_SECRET=secret)
    command = [TAAP, "call", *args, "--token-url", f"{served.url}/oauth2/v2/tokens"]
    command += ["--client-id", client_id, "--client-secret-env", "JOURNEY_SECRET"]
    command += ["--key", str(key), "-i"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def credentials(page: Any) -> tuple[str, str]:
    """The Client ID and the once-shown Client secret, read-only, on a fresh app page."""
    client_id = page.get_by_role("textbox", name="Client ID", exact=True)
    secret = page.get_by_role("textbox", name="Client secret", exact=True)
    assert client_id.get_attribute("readonly") is not None
    assert secret.get_attribute("readonly") is not None
    return str(client_id.input_value()), str(secret.input_value())


def generate_key(page: Any, folder: Path) -> Path:
    """Generate a key pair in the browser; the downloaded private key's path."""
    with page.expect_download() as info:
        page.get_by_role("button", name="Generate key pair in browser", exact=True).click()
    saved = folder / "journey-private-key.pem"
    info.value.save_as(saved)
    expect(page.get_by_role("status").first).to_contain_text("Key")
    return saved


def test_sign_up_create_app_call_the_api_then_the_operator_disables_it(
    browser: Any, served: Served
) -> None:
    developer = new_page(browser)
    sign_in(developer, served, "dev@example.com", shots=True)
    assert developer.url.endswith("/portal/welcome")
    choose_kind(developer, "Enterprise", "Journey Widgets")
    expect(developer.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    checked(developer, "dashboard-empty")

    app_url = create_app(developer, "Journey app", ("Connectivity",))
    checked(developer)
    client_id, secret = credentials(developer)
    assert client_id
    assert len(secret) >= 20
    key_file = generate_key(developer, served.folder)
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    # The secret was shown once: the app page no longer has it.
    developer.goto(app_url)
    expect(developer.get_by_role("textbox", name="Client secret", exact=True)).to_have_count(0)
    assert developer.get_by_role("textbox", name="Client ID").input_value() == client_id
    assert len(developer.locator("table code").all_inner_texts()) == 1
    checked(developer, "app")
    developer.goto(served.url + "/portal/")
    checked(developer, "dashboard")

    ok = taap_call(served, client_id, secret, key_file, "GET", served.url + DEVICE)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("HTTP/1.1 200"), ok.stdout
    assert json.loads(ok.stdout.partition("\n\n")[2])["iccid"] == "8901260000000000001"

    operator = new_page(browser)
    sign_in(operator, served, OPERATOR)
    choose_kind(operator, "Individual")
    operator.get_by_role("link", name="Operator console", exact=True).click()
    operator.wait_for_url(re.compile(r"/portal/admin$"))
    checked(operator, "operator-console")
    operator.get_by_role("button", name="Disable Journey app", exact=True).click()
    expect(operator.get_by_role("status").first).to_contain_text("App disabled")
    checked(operator)

    refused: list[subprocess.CompletedProcess[str]] = []

    def call_refused() -> bool:
        done = taap_call(served, client_id, secret, key_file, "GET", served.url + DEVICE)
        refused[:] = [done]
        return done.returncode != 0 or not done.stdout.startswith("HTTP/1.1 200")

    wait_until(call_refused, 30, "the disabled app's call to be refused", step=0.5)
    # The token endpoint refuses the disabled client (401 client_auth_failed); a token got
    # before would be refused by the API as revoked (401 token_revoked).
    shown = refused[0].stdout + refused[0].stderr
    assert refused[0].returncode != 0, shown
    assert re.search(r"client_auth_failed|token_revoked|HTTP/1.1 40[13]", shown), shown


def rfc7638(key: PrivateKey) -> str:
    """The RFC 7638 thumbprint computed here from the key's numbers, not by taap."""
    numbers = key.key.public_key().public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    members = f'{{"e":"{b64(numbers.e)}","kty":"RSA","n":"{b64(numbers.n)}"}}'
    digest = hashlib.sha256(members.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_upload_a_pem_public_key_then_call_with_its_private_half(page: Any, served: Served) -> None:
    key = generate_private_key(2048)
    public_file = served.folder / "upload-public.pem"
    public_file.write_bytes(key.public.to_pem())
    private_file = served.folder / "upload-private.pem"
    private_file.write_bytes(key.to_pem())
    sign_in(page, served, "upload@example.com")
    choose_kind(page, "Individual")
    create_app(page, "Upload app", ("Connectivity",))
    client_id, secret = credentials(page)
    page.get_by_label("Public key", exact=True).set_input_files(str(public_file))
    page.get_by_role("button", name="Upload key", exact=True).click()
    keys = page.get_by_role("table", name="Public keys (RFC 7638 thumbprints)")
    expect(keys.get_by_role("cell", name=rfc7638(key), exact=True)).to_be_visible()
    checked(page)

    ok = taap_call(served, client_id, secret, private_file, "GET", served.url + DEVICE)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("HTTP/1.1 200"), ok.stdout


def operator_console(browser: Any, served: Served) -> Any:
    """A page signed in as the operator, on the operator console."""
    operator = new_page(browser)
    sign_in(operator, served, OPERATOR)
    if operator.url.endswith("/portal/welcome"):
        choose_kind(operator, "Individual")
    operator.get_by_role("link", name="Operator console", exact=True).click()
    operator.wait_for_url(re.compile(r"/portal/admin$"))
    return operator


def test_approval_required_product_waits_for_the_operator(
    browser: Any, page: Any, served: Served
) -> None:
    operator = operator_console(browser, served)
    require = "Require approval for SMS Notification"
    operator.get_by_role("button", name=require, exact=True).click()
    expect(operator.get_by_role("status").first).to_contain_text("Approval setting saved")
    sign_in(page, served, "approval@example.com")
    choose_kind(page, "Individual")
    create_app(page, "Approval app", ("Connectivity", "SMS Notification"))
    client_id, secret = credentials(page)
    expect(page.get_by_text("SMS Notification: pending", exact=True)).to_be_visible()
    key_file = generate_key(page, served.folder)
    message = '{"to": "+14255550100", "text": "approved"}'
    sms = ("POST", served.url + "/sms/v1/messages", "--data", message)
    waiting = taap_call(served, client_id, secret, key_file, *sms)
    assert waiting.returncode != 0
    assert "not_subscribed" in waiting.stdout + waiting.stderr, waiting.stdout

    operator.reload()
    checked(operator)
    decide = "Approve SMS Notification for Approval app"
    operator.get_by_role("button", name=decide, exact=True).click()
    expect(operator.get_by_role("status").first).to_contain_text("Subscription approved")
    page.reload()
    expect(page.get_by_text("SMS Notification (token server v2)")).to_be_visible()

    sent: list[subprocess.CompletedProcess[str]] = []

    def accepted() -> bool:
        sent[:] = [taap_call(served, client_id, secret, key_file, *sms)]
        return sent[0].stdout.startswith("HTTP/1.1 201")

    try:
        wait_until(accepted, 30, "the approved subscription to be usable", step=0.5)
    except AssertionError:
        raise AssertionError(sent[0].stdout + sent[0].stderr) from None
    operator.context.close()


def invite(owner: Any, email: str, group: str) -> None:
    owner.get_by_label("Email", exact=True).fill(email)
    owner.get_by_label("Group", exact=True).fill(group)
    owner.get_by_role("button", name="Invite", exact=True).click()
    expect(owner.get_by_role("status").first).to_contain_text(f"Invitation sent to {email}")


def test_company_owner_invites_an_existing_and_a_new_member(
    browser: Any, page: Any, served: Served
) -> None:
    sign_in(page, served, "owner@example.com")
    choose_kind(page, "Enterprise", "Second Co")
    existing = new_page(browser)
    fresh = new_page(browser)
    try:
        sign_in(existing, served, "existing@example.com")
        choose_kind(existing, "Individual")
        page.get_by_role("link", name="Company", exact=True).click()
        page.wait_for_url(re.compile(r"/portal/company$"))
        checked(page)
        invite(page, "existing@example.com", "backend")
        mail = served.smtp.wait_for_mail("existing@example.com", count=2)
        found = re.search(r"http://\S+(/portal/invitations/[A-Za-z0-9_-]+)", mail.text)
        assert found, mail.text
        existing.goto(served.url + found.group(1))
        expect(existing.get_by_role("heading", name="Join Second Co", exact=True)).to_be_visible()
        checked(existing)
        existing.get_by_role("button", name="Accept invitation", exact=True).click()
        existing.wait_for_url(re.compile(r"/portal/company$"))
        members = existing.get_by_role("table", name="Members")
        expect(members.get_by_role("cell", name="existing@example.com")).to_be_visible()
        expect(members.get_by_role("cell", name="backend")).to_be_visible()

        invite(page, "fresh@example.com", "mobile")
        sign_in(fresh, served, "fresh@example.com")
        # The first sign-in of an invited address joins the company: no account-type page.
        assert fresh.url.endswith("/portal/")
        fresh.get_by_role("link", name="Company", exact=True).click()
        page.reload()
        rows = page.get_by_role("table", name="Members").get_by_role("row")
        expect(rows).to_have_count(4)
        checked(page, "company")
    finally:
        existing.context.close()
        fresh.context.close()


def test_operator_disables_a_developer_sessions_end_and_calls_are_refused(
    browser: Any, page: Any, served: Served
) -> None:
    email = "gone@example.com"
    sign_in(page, served, email)
    choose_kind(page, "Individual")
    create_app(page, "Gone app", ("Connectivity",))
    client_id, secret = credentials(page)
    key_file = generate_key(page, served.folder)
    ok = taap_call(served, client_id, secret, key_file, "GET", served.url + DEVICE)
    assert ok.stdout.startswith("HTTP/1.1 200"), ok.stdout + ok.stderr

    operator = operator_console(browser, served)
    operator.get_by_role("button", name=f"Disable {email}", exact=True).click()
    expect(operator.get_by_role("status").first).to_contain_text("Developer disabled")
    operator.context.close()

    page.goto(served.url + "/portal/")
    assert page.url.endswith("/portal/sign-in")
    done: list[subprocess.CompletedProcess[str]] = []

    def refused() -> bool:
        done[:] = [taap_call(served, client_id, secret, key_file, "GET", served.url + DEVICE)]
        return done[0].returncode != 0

    wait_until(refused, 30, "the disabled developer's call to be refused", step=0.5)
    shown = done[0].stdout + done[0].stderr
    assert re.search(r"client_auth_failed|token_revoked|HTTP/1.1 40[13]", shown), shown
    # Signing in again is refused with a plain message.
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_role("button", name="Send code", exact=True).click()
    page.wait_for_url(re.compile(r"/portal/sign-in/code$"))
    page.get_by_label("Code", exact=True).fill(served.smtp.wait_for_code(email, count=2))
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text("This account is disabled.")
