"""The Try it page in real Chromium against a real ``taap serve --with-portal
--with-sample-apis``: the four steps end with the sample APIs' answers, no request the page
sends carries the private key, a wrong secret stops at step 2 with its explanation, the
browser's PoP is the core's byte for byte, and only the app's owner can open the page."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_kit import (
    assert_axe_clean,
    assert_no_horizontal_scroll,
    csp_violations,
    screenshot,
)
from console_kit import Developer, Served, open_as, serve_portal, sign_up
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import expect

from kit.processes import TAAP
from taap.core import build_pop_token
from taap.core.pop import STRICT, verify_pop_token
from taap.core.request import request_parts
from taap.error_guide import error_table

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_portal(tmp_path_factory.mktemp("try")) as server:
        yield server


@pytest.fixture(scope="module")
def developer(browser: Any, served: Served) -> Developer:
    return sign_up(
        browser, served, "try@example.com", "Try app", ("Connectivity", "SMS Notification")
    )


def step(page: Any, n: int) -> Any:
    return page.get_by_role("region", name=re.compile(rf"^Step {n}: "))


def run_steps(page: Any, developer: Developer, secret: str, call: str | None = None) -> None:
    page.get_by_label("Private key", exact=True).set_input_files(str(developer.key_file))
    page.get_by_role("textbox", name="Client secret", exact=True).fill(secret)
    if call is not None:
        page.get_by_label("API call", exact=True).select_option(label=call)
    page.get_by_role("button", name="Run the four steps", exact=True).click()


def key_markers(developer: Developer) -> list[bytes]:
    """Pieces of the private key as any encoding of it would carry them: each base64 line of
    its PEM (PKCS#8 and PKCS#1), and the private exponent in base64url (a JWK's ``d``)."""
    markers: list[bytes] = []
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = developer.key.key.private_bytes(
            serialization.Encoding.PEM, fmt, serialization.NoEncryption()
        )
        markers += [line for line in pem.splitlines() if not line.startswith(b"-----")]
    d = developer.key.key.private_numbers().d
    raw = d.to_bytes((d.bit_length() + 7) // 8, "big")
    markers.append(base64.urlsafe_b64encode(raw).rstrip(b"=")[:48])
    markers.append(b"PRIVATE KEY")
    return markers


def test_the_four_steps_reach_both_sample_apis_and_no_request_carries_the_key(
    browser: Any, served: Served, developer: Developer
) -> None:
    with open_as(browser, developer, "") as page:
        page.get_by_role("link", name="Try it", exact=True).click()
        page.wait_for_url(re.compile(r"/try$"))
        requests: list[Any] = []
        page.on("request", lambda request: requests.append(request))
        chosen = page.get_by_label("API call", exact=True)
        # The first call of the app's first product is preselected.
        assert chosen.evaluate("(e) => e.selectedOptions[0].text").startswith(
            "Connectivity: Device lookup (GET /iot-connectivity/v1/devices/"
        )
        for n in (1, 2, 3, 4):
            expect(step(page, n)).to_contain_text("Not run yet.")
        assert_axe_clean(page)

        run_steps(page, developer, developer.secret)
        expect(step(page, 4)).to_contain_text("HTTP 200", timeout=20_000)
        expect(step(page, 2)).to_contain_text("HTTP 200")
        for n in (1, 3):
            expect(step(page, n)).to_contain_text("Decoded claims")
            expect(step(page, n)).to_contain_text("edts")
        signed_uri = step(page, 1).get_by_role("cell", name="/oauth2/v2/tokens", exact=True)
        expect(signed_uri).to_be_visible()
        expect(step(page, 3).get_by_role("rowheader", name="http-method")).to_be_visible()
        for n in (1, 2, 3, 4):
            expect(step(page, n)).to_contain_text("curl")
        expect(step(page, 4)).to_contain_text('"iccid": "8901260000000000001"')
        # The secret typed is never echoed into a step.
        shown = page.locator("main section").all_inner_texts()
        assert all(developer.secret not in text for text in shown)
        assert_axe_clean(page)
        screenshot(page, "try-it")
        page.set_viewport_size({"width": 390, "height": 800})
        assert_no_horizontal_scroll(page)
        page.set_viewport_size({"width": 1280, "height": 800})

        run_steps(page, developer, developer.secret, call=sms_label(page))
        # The SMS API answers 201 Created for a queued message.
        expect(step(page, 4)).to_contain_text("HTTP 201", timeout=20_000)
        expect(step(page, 4)).to_contain_text('"status": "queued"')
        expect(step(page, 3).get_by_role("rowheader", name="body", exact=True)).to_be_visible()
        assert not csp_violations(page)
        assert not page.console_errors, page.console_errors

        sent = [r for r in requests if r.method == "POST" or r.post_data_buffer]
        paths = {re.sub(r"^https?://[^/]+", "", r.url) for r in requests}
        assert "/oauth2/v2/tokens" in paths
        assert "/sms/v1/messages" in paths
        markers = key_markers(developer)
        for request in requests:
            carried = (request.post_data_buffer or b"") + "\n".join(
                f"{k}: {v}" for k, v in request.all_headers().items()
            ).encode()
            found = [m for m in markers if m in carried]
            assert not found, f"{request.method} {request.url} carries private-key material"
        assert len(sent) == 3  # the two token requests and the SMS; the lookup is a GET


READ_TOKEN = 'import json; print(json.load(open("token.json"))["access_token"])'


def shell_script(page: Any) -> str:
    """The shell lines of the four steps, in order, as the page shows them."""
    blocks = []
    for n in (1, 2, 3, 4):
        region = step(page, n)
        title = "The same from a shell" if n in (1, 3) else "The same with curl"
        block = region.locator(".try-block").filter(
            has=page.get_by_role("heading", name=title, exact=True)
        )
        blocks.append(block.locator("pre").inner_text())
    script = "set -eu\n" + "\n".join(blocks) + "\n"
    if not shutil.which("jq"):  # the page suggests jq; this machine may lack it
        script = script.replace(
            "TOKEN=$(jq -r .access_token token.json)",
            "TOKEN=$(python3 -c " + repr(READ_TOKEN) + ")",
        )
    return script


def test_the_shell_lines_of_the_four_steps_do_the_same(
    browser: Any, served: Served, developer: Developer
) -> None:
    with open_as(browser, developer, "/try") as page:
        run_steps(page, developer, developer.secret, call=sms_label(page))
        expect(step(page, 4)).to_contain_text("HTTP 201", timeout=20_000)
        script = shell_script(page)
    assert developer.secret not in script
    assert script.count("curl ") == 4  # two requests, and the two notes of steps 1 and 3
    env = dict(
        served.env, CLIENT_SECRET=developer.secret, PATH=f"{Path(TAAP).parent}:{os.environ['PATH']}"
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=developer.key_file.parent, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HTTP/1.1 201"), done.stdout
    assert '"status":"queued"' in done.stdout


def sms_label(page: Any) -> str:
    labels = page.get_by_label("API call", exact=True).locator("option").all_inner_texts()
    return next(label for label in labels if label.startswith("SMS Notification: Send SMS"))


def test_a_wrong_secret_stops_at_step_2_with_the_refusal_explained(
    browser: Any, served: Served, developer: Developer
) -> None:
    with open_as(browser, developer, "/try", color_scheme="dark") as page:
        run_steps(page, developer, "not-the-secret")
        expect(step(page, 2)).to_contain_text("HTTP 401 client_auth_failed", timeout=20_000)
        # The explanation is the error table's, as on the Status codes page.
        cause = next(r.cause for r in error_table() if r.error_code == "client_auth_failed")
        expect(step(page, 2)).to_contain_text(cause)
        expect(step(page, 3)).to_contain_text("Not run")
        expect(step(page, 4)).to_contain_text("Not run")
        assert_axe_clean(page)


def test_a_file_that_is_not_a_private_key_stops_at_step_1(
    browser: Any, served: Served, developer: Developer
) -> None:
    public_file = served.folder / "only-public.pem"
    public_file.write_bytes(developer.key.public.to_pem())
    with open_as(browser, developer, "/try") as page:
        page.get_by_label("Private key", exact=True).set_input_files(str(public_file))
        page.get_by_role("textbox", name="Client secret", exact=True).fill(developer.secret)
        page.get_by_role("button", name="Run the four steps", exact=True).click()
        expect(step(page, 1)).to_contain_text("not a private key")
        expect(step(page, 2)).to_contain_text("Not run yet.")


BROWSER_POP = """async ([pem, pairs, now, jti]) => {
  const key = await window.taapPop.importPrivateKey(pem);
  return (await window.taapPop.buildPop(pairs, key, { now, jti })).token;
}"""


def test_the_browser_pop_is_the_core_pop_byte_for_byte(
    browser: Any, served: Served, developer: Developer
) -> None:
    headers = [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer abc.def.ghi"),
    ]
    body = '{"to":"+14255550100","text":"Grüße – 👋 \\"quoted\\"\\n"}'
    pairs = [*headers, ("uri", "/sms/v1/messages"), ("http-method", "POST"), ("body", body)]
    now, jti = 1_800_000_000.9, "fixed-jti-0001"
    expected = build_pop_token(pairs, developer.key, now=now, jti=jti)
    pkcs1 = developer.key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    with open_as(browser, developer, "/try") as page:
        args = [developer.key.to_pem().decode(), [list(p) for p in pairs], now, jti]
        assert page.evaluate(BROWSER_POP, args) == expected
        assert page.evaluate(BROWSER_POP, [pkcs1, *args[1:]]) == expected
        fresh = page.evaluate(BROWSER_POP, [args[0], args[1], time.time(), "jti-" + "x" * 20])
    parts = request_parts("POST", "/sms/v1/messages", "", headers, body.encode())
    verified = verify_pop_token(
        fresh, keys=[developer.key.public], request=parts, now=time.time(), policy=STRICT
    )
    assert verified.jti == "jti-" + "x" * 20


def test_only_the_apps_owner_opens_its_try_it_page(
    browser: Any, served: Served, developer: Developer
) -> None:
    other = sign_up(browser, served, "other-try@example.com", "Other app", ("Connectivity",))
    app_path = developer.app_url.split("://", 1)[1].split("/", 1)[1]
    with open_as(browser, other, f"{served.url}/{app_path}/try") as page:
        assert page.get_by_role("heading", level=1).inner_text() != "Try it"
        response = page.request.get(f"{served.url}/{app_path}/try")
        assert response.status == 404
    with open_as(browser, developer, "/try") as page:
        response = page.request.get(page.url)
        assert response.status == 200
