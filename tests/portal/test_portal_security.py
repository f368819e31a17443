"""The portal's security promises over HTTP, mail through a real SMTP server on loopback: no
header injection through the e-mail field, sign-in that does the same work for known and
unknown addresses, the per-IP code limit, cookie flags, company walls and the audit trail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from portal_kit import PEPPER, Clock, Inbox, PortalWorld, build_portal, csrf

from taap.portal.store_apps import PortalStore
from taap.portal.tables import sign_in_codes
from taap.server.registry.sql import open_registry, open_runner

HOSTILE_ADDRESSES = (
    "a@example.com\r\nBcc: evil@example.com",
    "a@example.com\nSubject: hi",
    "a@example.com\rX-Evil: 1",
    "a@example.com, evil@example.com",
    "a@example.com;evil@example.com",
    "Evil <evil@example.com>",
    "a@example.com%0d%0aBcc:evil@example.com",
    "a@exa\x00mple.com",
    "x" * 300 + "@example.com",
)


async def _send_code(http: httpx.AsyncClient, email: str) -> httpx.Response:
    page = await http.get("/portal/sign-in")
    return await http.post("/portal/sign-in", data={"email": email, "csrf_token": csrf(page.text)})


@pytest.mark.parametrize("email", HOSTILE_ADDRESSES)
async def test_header_injection_through_the_email_field_sends_nothing(
    world: PortalWorld, email: str
) -> None:
    async with world.client() as http:
        answer = await _send_code(http, email)
    assert answer.status_code == 400, answer.status_code
    assert "enter an e-mail address such as name@example.com" in answer.text
    await asyncio.sleep(0.1)
    assert world.inbox.messages == []
    assert await world.store.account_by_email("a@example.com") is None


async def _code_rows(world: PortalWorld) -> list[str]:
    def work(conn: sa.Connection) -> list[str]:
        return sorted(conn.execute(sa.select(sign_in_codes.c.email)).scalars())

    return await world.store._read(work)


async def test_known_and_unknown_addresses_cost_the_same_work(world: PortalWorld) -> None:
    # The answer is the same (test_portal_http); so is the work behind it, which is what keeps
    # the time alike: a code is generated, stored and mailed whether or not an account exists.
    async with world.client() as http:
        await world.sign_in(http, "known@example.com")
    world.inbox.messages.clear()
    for email in ("known@example.com", "unknown@example.com"):
        async with world.client() as http:
            assert (await _send_code(http, email)).status_code == 303
    await asyncio.sleep(0.1)
    assert [to for to, _, _ in world.inbox.messages] == ["known@example.com", "unknown@example.com"]
    subjects = {subject for _, subject, _ in world.inbox.messages}
    assert subjects == {"Your TAAP sign-in code"}
    assert await _code_rows(world) == ["known@example.com", "unknown@example.com"]
    assert await world.store.account_by_email("unknown@example.com") is None


async def test_codes_are_rate_limited_per_ip(world: PortalWorld) -> None:
    async with world.client("10.0.0.7") as http:
        statuses = [(await _send_code(http, f"u{n}@example.com")).status_code for n in range(11)]
    assert statuses == [303] * 10 + [429]
    async with world.client("10.0.0.8") as other:
        assert (await _send_code(other, "u10@example.com")).status_code == 303
    await asyncio.sleep(0.1)
    sent = [to for to, _, _ in world.inbox.messages]
    assert sent.count("u10@example.com") == 1


async def test_session_cookie_flags(world: PortalWorld) -> None:
    async with world.client() as http:
        answer = await http.get("/portal/sign-in")
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http: a Secure cookie would never come back


async def test_session_cookie_is_secure_behind_an_https_public_url(
    tmp_path: Path, portal_smtp: tuple[Inbox, int]
) -> None:
    _, port = portal_smtp
    url = f"sqlite:///{tmp_path}/portal.db"
    registry = await open_registry(url, pepper=PEPPER)
    clock = Clock()
    store = PortalStore(open_runner(url), clock=clock)
    app = build_portal(store, registry, port, clock=clock, base_url="https://portal.example")
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="https://portal.example") as h:
            answer = await h.get("/portal/sign-in")
        cookie = answer.headers["set-cookie"].lower()
        assert "; secure" in cookie
        assert "httponly" in cookie
    finally:
        await store.close()
        await registry.close()


async def test_one_company_never_sees_another_companys_apps(world: PortalWorld) -> None:
    async with world.client() as first:
        await world.sign_in(first, "owner-a@example.com", kind="enterprise")
        await world.create_app(first, "Alpha secret app")
        assert "Alpha secret app" in (await first.get("/portal/company")).text
    (app,) = await world.store.apps()
    async with world.client() as second:
        await world.sign_in(second, "owner-b@example.com", kind="enterprise")
        company = await second.get("/portal/company")
        assert company.status_code == 200
        assert "Alpha secret app" not in company.text
        assert app.client_id not in company.text
        assert (await second.get(f"/portal/apps/{app.id}")).status_code == 404


async def test_every_change_is_an_audit_event(world: PortalWorld) -> None:
    async with world.client() as http:
        await world.sign_in(http, "audited@example.com")
        url = await world.create_app(http, "Audited")
        token = csrf((await http.get(url)).text)
        for suffix, fields in (("/rotate", {"grace": "0"}), ("/disable", {}), ("/enable", {})):
            answer = await http.post(url + suffix, data={**fields, "csrf_token": token})
            assert answer.status_code == 303, suffix
        answer = await http.post(
            url + "/delete", data={"confirm_name": "Audited", "csrf_token": token}
        )
        assert answer.status_code == 303
    events = await world.store.audit_events()
    mine = [e.action for e in reversed(events) if e.actor == "audited@example.com"]
    for action in ("app.create", "app.rotate_secret", "app.disable", "app.enable", "app.delete"):
        assert action in mine, (action, mine)
    # Nothing secret in what the trail keeps.
    assert not any("secret" in key for e in events for key in e.details)


async def test_the_operator_sees_registry_revocations_made_outside_the_portal(
    world: PortalWorld,
) -> None:
    async with world.client() as dev:
        await world.sign_in(dev, "rev@example.com")
        await world.create_app(dev, "Revoked")
    (app,) = await world.store.apps()
    async with world.client() as ops:
        await world.sign_in(ops, "ops@example.com")
        empty = await ops.get("/portal/admin")
        assert "No live revocations" in empty.text
        # What `taap revoke` and `taap clients revoke-tokens` do, straight on the registry.
        await world.registry.revoke_tokens(app.client_id, ["jti-from-the-cli"])
        await world.registry.revoke_client_tokens(app.client_id)
        console = (await ops.get("/portal/admin")).text
    table = console[console.index("<h2>Registry revocations</h2>") :]
    assert "No live revocations" not in table
    assert table.index("every token") < table.index("<code>jti-from-the-cli</code>")  # newest first
    assert table.count(f"<code>{app.client_id}</code>") == 2
