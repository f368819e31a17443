"""The console pages over HTTP (httpx against the portal's ASGI app on a real SQLite
registry, mail through a real SMTP server on loopback): who may open an app's Try it and
Usage pages, what the Usage table shows from the stored counters, and that the Try it form
sends nothing to the portal."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from portal_kit import PEPPER, Clock, Inbox, PortalWorld, csrf

from taap.portal.mail import SmtpMailer
from taap.portal.site import create_portal
from taap.portal.store_apps import PortalStore
from taap.server.registry.sql import open_registry
from taap.server.usage.store import Count, SqlUsage
from taap.stores.ratelimit import MemoryRateLimiter

BASE = "http://portal.test"


@pytest.fixture
async def console(
    tmp_path: Path, portal_smtp: tuple[Inbox, int]
) -> AsyncIterator[tuple[PortalWorld, SqlUsage]]:
    """The portal of ``world``, with the usage counters of its database."""
    inbox, port = portal_smtp
    url = f"sqlite:///{tmp_path}/console.db"
    registry = await open_registry(url, pepper=PEPPER)
    # One engine on the file, as taap serve has (see SqlRegistry.runner).
    store, usage = PortalStore(registry.runner, clock=Clock()), SqlUsage(registry.runner)
    app = create_portal(
        store,
        registry,
        mailer=SmtpMailer("127.0.0.1", port, "taap@localhost"),
        limiter=MemoryRateLimiter(),
        pepper=PEPPER,
        base_url=BASE,
        admin_emails=("ops@example.com",),
        usage_reader=usage,
    )
    try:
        yield PortalWorld(registry, store, inbox, Clock(), app), usage
    finally:
        await registry.close()


async def new_app(http: httpx.AsyncClient, products: list[str]) -> str:
    page = await http.get("/portal/apps/new")
    data = {"name": "console", "products": products, "csrf_token": csrf(page.text)}
    made = await http.post("/portal/apps/new", data=data)
    assert made.status_code == 303
    return str(made.headers["location"])


def cells(html: str, header: str) -> list[int]:
    """The numbers of the Usage table's row whose header holds ``header``."""
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        if header in row:
            return [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', row)]
    return []


async def test_only_the_owner_and_operators_open_try_it_and_usage(
    console: tuple[PortalWorld, SqlUsage],
) -> None:
    world, _ = console
    async with world.client() as owner:
        await world.sign_in(owner, "owner@example.com")
        url = await new_app(owner, ["connectivity"])
        app_page = (await owner.get(url)).text
        assert f'href="{url}/try">Try it</a>' in app_page
        assert f'href="{url}/usage">Usage</a>' in app_page
        for suffix in ("/try", "/usage", "/usage?period=week", "/usage?period=bogus"):
            assert (await owner.get(url + suffix)).status_code == 200, suffix
    async with world.client() as other:
        await world.sign_in(other, "other@example.com")
        for suffix in ("/try", "/usage"):
            answer = await other.get(url + suffix)
            assert answer.status_code == 404, suffix
            assert "console" not in answer.text
    async with world.client() as operator:
        await world.sign_in(operator, "ops@example.com")
        assert (await operator.get(url + "/usage")).status_code == 200
    async with world.client() as anonymous:
        answer = await anonymous.get(url + "/try")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portal/sign-in"


async def test_the_usage_table_adds_the_stored_counts_per_period(
    console: tuple[PortalWorld, SqlUsage],
) -> None:
    world, usage = console
    async with world.client() as owner:
        await world.sign_in(owner, "owner@example.com")
        url = await new_app(owner, ["connectivity"])
        (app,) = await world.store.apps()
        now = int(time.time() // 60)
        await usage.add(
            [
                Count(app.client_id, "token", "", now, 3),
                Count(app.client_id, "call", "", now - 120, 2),
                Count(app.client_id, "call_refused", "pop_replayed", now - 3000, 1),
                Count("someone-else", "token", "", now, 50),
            ]
        )
        html = (await owner.get(url + "/usage")).text
    assert "<caption>Usage</caption>" in html
    assert cells(html, "Token issued") == [3, 3, 3]
    assert cells(html, "API call") == [0, 2, 2]
    assert cells(html, "pop_replayed") == [0, 0, 1]
    assert "(API call)" in html
    assert "<svg" in html
    assert "<script>" not in html


async def test_the_try_it_form_has_no_action_and_no_named_field(
    console: tuple[PortalWorld, SqlUsage],
) -> None:
    world, _ = console
    async with world.client() as owner:
        await world.sign_in(owner, "owner@example.com")
        url = await new_app(owner, ["sms-notification", "location", "connectivity"])
        html = (await owner.get(url + "/try")).text
    form = re.search(r"<form id=\"try-form\".*?</form>", html, re.S)
    assert form is not None
    # Without a name an input is never submitted, even if the script did not run.
    assert "action=" not in form.group(0).split(">", 1)[0]
    assert "name=" not in form.group(0)
    assert "This app has no public key yet" in html
    options = re.findall(r"<option [^>]*>([^<]*)</option>", html)
    # The products in the app page's order (the registry's); Location has no sample API.
    assert options[0].startswith("Connectivity: Device lookup (GET /iot-connectivity/v1/")
    assert options[1].startswith("SMS Notification: Send SMS (POST /sms/v1/messages)")
    assert len(options) == 2
    assert re.search(r"<option [^>]*selected[^>]*>Connectivity", html)
    assert len(re.findall(r"<option [^>]*selected", html)) == 1


async def test_an_app_without_a_sample_api_gets_an_empty_state(
    console: tuple[PortalWorld, SqlUsage],
) -> None:
    world, _ = console
    async with world.client() as owner:
        await world.sign_in(owner, "owner@example.com")
        url = await new_app(owner, ["location"])
        html = (await owner.get(url + "/try")).text
    assert "No API to try" in html
    assert "Run the four steps" not in html
