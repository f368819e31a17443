"""The Usage page in real Chromium against a real ``taap serve --with-portal
--with-sample-apis``: a token got and a PoP replayed from the shell (``taap token``, ``taap pop
build``, curl) show up in the app's Usage table within seconds, the guard's ``pop_replayed``
and the token server's ``client_auth_failed`` each in their own row; only the app's owner sees
the page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from browser_kit import (
    assert_axe_clean,
    assert_no_horizontal_scroll,
    csp_violations,
    screenshot,
)
from console_kit import (
    DEVICE,
    Developer,
    Served,
    access_token,
    open_as,
    row_counts,
    serve_portal,
    shell,
    sign_up,
)
from playwright.sync_api import expect

from kit.processes import TAAP, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_portal(tmp_path_factory.mktemp("usage")) as server:
        yield server


@pytest.fixture(scope="module")
def developer(browser: Any, served: Served) -> Developer:
    return sign_up(browser, served, "usage@example.com", "Usage app", ("Connectivity",))


def test_a_replayed_pop_from_the_shell_shows_in_the_usage_table(
    browser: Any, served: Served, developer: Developer
) -> None:
    got = access_token(served, developer, developer.secret)
    assert got.returncode == 0, got.stderr
    token = json.loads(got.stdout)["access_token"]
    built = shell(
        served,
        TAAP, "pop", "build", "--key", str(developer.key_file), "--method", "GET",
        "--uri", DEVICE, "--header", "Content-Type: application/json",
        "--header", f"Authorization: Bearer {token}",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    pop = built.stdout.strip()
    curl = [
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", served.url + DEVICE,
        "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {token}",
        "-H", f"X-Authorization: {pop}",
    ]  # fmt: skip
    assert shell(served, *curl).stdout == "200"
    assert shell(served, *curl).stdout == "401"  # the same PoP again: pop_replayed
    wrong = access_token(served, developer, "not-the-secret")
    assert wrong.returncode != 0

    with open_as(browser, developer, "") as page:
        page.get_by_role("link", name="Usage", exact=True).click()
        page.wait_for_url(re.compile(r"/usage$"))

        def counted() -> bool:
            page.reload()
            return row_counts(page, "Refused: pop_replayed") == [1, 1, 1] and bool(
                row_counts(page, "Refused: client_auth_failed")
            )

        wait_until(counted, 15, "the replayed PoP in the Usage table", step=0.5)
        assert row_counts(page, "Token issued") == [1, 1, 1]
        assert row_counts(page, "API call") == [1, 1, 1]
        assert row_counts(page, "Refused: client_auth_failed") == [1, 1, 1]
        table = page.get_by_role("table", name="Usage", exact=True)
        expect(table).to_contain_text("pop_replayed (API call)")
        expect(table).to_contain_text("client_auth_failed (token request)")
        chart = page.get_by_role("img", name=re.compile("^Last day"))
        expect(chart).to_be_visible()
        assert chart.locator("rect").count() >= 3
        assert_axe_clean(page)
        assert not csp_violations(page)
        screenshot(page, "usage")
        page.set_viewport_size({"width": 390, "height": 800})
        assert_no_horizontal_scroll(page)
        page.set_viewport_size({"width": 1280, "height": 800})

        page.get_by_role("link", name="Last hour", exact=True).click()
        page.wait_for_url(re.compile(r"period=hour$"))
        expect(page.get_by_role("img", name=re.compile("^Last hour"))).to_be_visible()
        assert_axe_clean(page)


def test_only_the_apps_owner_sees_its_usage(
    browser: Any, served: Served, developer: Developer
) -> None:
    other = sign_up(browser, served, "other-usage@example.com", "Other app", ("Connectivity",))
    usage_url = developer.app_url + "/usage"
    with open_as(browser, other, usage_url) as page:
        expect(page.get_by_role("table", name="Usage", exact=True)).to_have_count(0)
        assert page.request.get(usage_url).status == 404
        own = page.request.get(other.app_url + "/usage")
        assert own.status == 200
        assert developer.client_id not in own.text()
    with open_as(browser, developer, "/usage", color_scheme="dark") as page:
        expect(page.get_by_role("table", name="Usage", exact=True)).to_be_visible()
        assert_axe_clean(page)
