"""The portal over HTTP (httpx against the ASGI app, mail through a real SMTP server on
loopback): sign-in by code, its limits, sessions, CSRF, escaping, and that one developer can
never reach another's apps."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from portal_kit import PortalWorld, csrf

from taap.core.keys import generate_private_key
from taap.portal.web import COOKIE


async def _create_app(world: PortalWorld, http: object, name: str = "demo") -> str:
    page = await http.get("/portal/apps/new")  # type: ignore[attr-defined]
    data = {
        "name": name,
        "products": ["location", "sms-notification"],
        "csrf_token": csrf(page.text),
    }
    made = await http.post("/portal/apps/new", data=data)  # type: ignore[attr-defined]
    assert made.status_code == 303
    return str(made.headers["location"])


async def test_sign_in_by_code_creates_account_and_app_shows_secret_once(
    world: PortalWorld,
) -> None:
    async with world.client() as http:
        await world.sign_in(http, "Dev@Example.com")
        home = await http.get("/portal/")
        assert "No apps yet" in home.text
        url = await _create_app(world, http)
        first = await http.get(url)
        assert "Client secret" in first.text
        secret = re.search(r'id="client-secret" value="([^"]+)" readonly', first.text)
        assert secret
        again = await http.get(url)
        assert "Client secret" not in again.text
        assert secret.group(1) not in again.text
        assert "Client ID" in again.text
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in first.headers
    assert first.headers["cache-control"] == "no-store"
    account = await world.store.account_by_email("dev@example.com")
    assert account is not None


async def test_wrong_code_five_times_kills_it(world: PortalWorld) -> None:
    async with world.client() as http:
        page = await http.get("/portal/sign-in")
        await http.post(
            "/portal/sign-in", data={"email": "a@example.com", "csrf_token": csrf(page.text)}
        )
        good = world.inbox.code_for("a@example.com")
        wrong = "000000" if good != "000000" else "111111"
        token = csrf((await http.get("/portal/sign-in/code")).text)
        for _ in range(5):
            answer = await http.post(
                "/portal/sign-in/code", data={"code": wrong, "csrf_token": token}
            )
            assert answer.status_code == 400
        late = await http.post("/portal/sign-in/code", data={"code": good, "csrf_token": token})
        assert late.status_code == 400
        assert "no longer works" in late.text


async def test_code_expires_after_ten_minutes(world: PortalWorld) -> None:
    async with world.client() as http:
        page = await http.get("/portal/sign-in")
        await http.post(
            "/portal/sign-in", data={"email": "b@example.com", "csrf_token": csrf(page.text)}
        )
        token = csrf((await http.get("/portal/sign-in/code")).text)
        world.clock.now += 601
        answer = await http.post(
            "/portal/sign-in/code",
            data={"code": world.inbox.code_for("b@example.com"), "csrf_token": token},
        )
        assert answer.status_code == 400


async def test_known_and_unknown_addresses_get_the_same_answer(world: PortalWorld) -> None:
    async with world.client() as http:
        await world.sign_in(http, "known@example.com")
    answers = []
    for email in ("known@example.com", "unknown@example.com"):
        async with world.client() as http:
            page = await http.get("/portal/sign-in")
            sent = await http.post(
                "/portal/sign-in", data={"email": email, "csrf_token": csrf(page.text)}
            )
            follow = await http.get(sent.headers["location"])
            text = re.sub(r'value="[0-9a-f]{64}"', "", follow.text.replace(email, "X"))
            text = re.sub(r'<code class="request-id">[0-9a-f]+</code>', "", text)
            answers.append((sent.status_code, sent.headers["location"], text))
    assert answers[0] == answers[1]


async def test_codes_are_rate_limited_per_address(world: PortalWorld) -> None:
    async with world.client() as http:
        page = await http.get("/portal/sign-in")
        statuses = []
        for _ in range(4):
            sent = await http.post(
                "/portal/sign-in", data={"email": "c@example.com", "csrf_token": csrf(page.text)}
            )
            statuses.append(sent.status_code)
        assert statuses == [303, 303, 303, 429]


async def test_session_id_changes_at_sign_in_and_sign_out_ends_it(world: PortalWorld) -> None:
    async with world.client() as http:
        await http.get("/portal/sign-in")
        before = http.cookies[COOKIE]
        await world.sign_in(http, "d@example.com")
        after = http.cookies[COOKIE]
        assert after != before
        home = await http.get("/portal/")
        out = await http.post("/portal/sign-out", data={"csrf_token": csrf(home.text)})
        assert out.status_code == 303
        http.cookies.set(COOKIE, after, path="/portal")
        assert (await http.get("/portal/")).headers["location"] == "/portal/sign-in"


async def test_sign_out_everywhere_ends_every_session_of_the_account(
    world: PortalWorld,
) -> None:
    async with world.client() as first, world.client() as second:
        await world.sign_in(first, "both@example.com")
        await world.sign_in(second, "both@example.com")
        home = await first.get("/portal/")
        assert 'name="everywhere" value="1"' in home.text
        data = {"csrf_token": csrf(home.text), "everywhere": "1"}
        assert (await first.post("/portal/sign-out", data=data)).status_code == 303
        for http in (first, second):
            assert (await http.get("/portal/")).headers["location"] == "/portal/sign-in"


async def test_csrf_missing_or_wrong_is_403_and_changes_nothing(world: PortalWorld) -> None:
    async with world.client() as http:
        await world.sign_in(http, "e@example.com")
        for data in ({"name": "x", "products": ["location"]}, {"name": "x", "csrf_token": "nope"}):
            answer = await http.post("/portal/apps/new", data=data)
            assert answer.status_code == 403
    assert await world.store.apps() == []


async def test_app_names_are_escaped(world: PortalWorld) -> None:
    name = "<img src=x onerror=alert(1)>"
    async with world.client() as http:
        await world.sign_in(http, "f@example.com")
        url = await _create_app(world, http, name)
        page = await http.get(url)
        home = await http.get("/portal/")
    for html in (page.text, home.text):
        assert name not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_another_developer_gets_404_on_every_app_route(world: PortalWorld) -> None:
    key = generate_private_key()
    async with world.client() as owner:
        await world.sign_in(owner, "owner@example.com")
        url = await _create_app(world, owner)
        token = csrf((await owner.get(url)).text)
        added = await owner.post(
            f"{url}/keys",
            data={"public_key_pem": key.public.to_pem().decode(), "csrf_token": token},
        )
        assert added.status_code == 303
    (app,) = await world.store.apps()
    async with world.client() as other:
        await world.sign_in(other, "other@example.com")
        token = csrf((await other.get("/portal/")).text)
        assert (await other.get(url)).status_code == 404
        for name in ("taap.postman_collection.json", "taap.postman_environment.json"):
            assert (await other.get(f"{url}/postman/{name}")).status_code == 404
        posts = {
            "/keys": {"public_key_pem": key.public.to_pem().decode()},
            "/keys/remove": {"thumbprint": key.thumbprint},
            "/rotate": {"grace": "0"},
            "/disable": {},
            "/enable": {},
            "/delete": {"confirm_name": "demo"},
        }
        for suffix, data in posts.items():
            answer = await other.post(url + suffix, data={**data, "csrf_token": token})
            assert answer.status_code == 404, suffix
        assert (await other.get("/portal/admin")).status_code == 404
        assert (await other.get("/portal/company")).status_code == 404
        home = await other.get("/portal/")
        assert app.client_id not in home.text
    record = await world.registry.get_client(app.client_id)
    assert record is not None
    assert record.status == "active"
    assert [k.thumbprint for k in record.keys] == [key.thumbprint]


async def test_codes_and_secrets_never_reach_the_logs(
    world: PortalWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="taap")
    async with world.client() as http:
        await world.sign_in(http, "g@example.com")
        url = await _create_app(world, http)
        page = await http.get(url)
    secret = re.search(r'id="client-secret" value="([^"]+)" readonly', page.text)
    assert secret
    # The portal's own loggers (the test's SMTP server logs what it receives, as any would).
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("taap"))
    assert secret.group(1) not in text
    assert world.inbox.code_for("g@example.com") not in text


async def test_approval_flow(world: PortalWorld) -> None:
    async with world.client() as ops:
        await world.sign_in(ops, "ops@example.com")
        console = await ops.get("/portal/admin")
        assert console.status_code == 200
        token = csrf(console.text)
        marked = await ops.post(
            "/portal/admin/approval",
            data={"product_id": "location", "required": "1", "csrf_token": token},
        )
        assert marked.status_code == 303
        async with world.client() as dev:
            await world.sign_in(dev, "h@example.com")
            await _create_app(world, dev)
        (app,) = await world.store.apps()
        record = await world.registry.get_client(app.client_id)
        assert record is not None
        assert record.apis == ("sms-notification",)
        approved = await ops.post(
            "/portal/admin/approve",
            data={"app_id": app.id, "product_id": "location", "csrf_token": token},
        )
        assert approved.status_code == 303
    record = await world.registry.get_client(app.client_id)
    assert record is not None
    assert record.apis == ("location", "sms-notification")


async def test_the_app_page_offers_its_postman_files(world: PortalWorld) -> None:
    async with world.client() as http:
        await world.sign_in(http, "postman@example.com")
        url = await _create_app(world, http)
        page = (await http.get(url)).text
        assert "Postman collection" in page
        (app,) = await world.store.apps()
        collection = await http.get(f"{url}/postman/taap.postman_collection.json")
        assert collection.status_code == 200
        assert collection.headers["content-disposition"].startswith("attachment;")
        assert collection.json()["info"]["name"] == f"taap {app.client_id}"
        environment = (await http.get(f"{url}/postman/taap.postman_environment.json")).json()
        values = {v["key"]: v["value"] for v in environment["values"]}
        assert values["client_id"] == app.client_id
        assert values["client_secret"] == ""
        assert values["private_key"] == ""
        assert (await http.get(f"{url}/postman/other.json")).status_code == 404


async def test_an_existing_account_accepts_an_invitation_by_its_link(world: PortalWorld) -> None:
    async with world.client() as owner, world.client() as invitee, world.client() as nosy:
        await world.sign_in(invitee, "ind@example.com")
        await world.sign_in(nosy, "nosy@example.com")
        await world.sign_in(owner, "boss@example.com", kind="enterprise")
        page = await owner.get("/portal/company")
        data = {"email": "ind@example.com", "group": "backend", "csrf_token": csrf(page.text)}
        assert (await owner.post("/portal/company", data=data)).status_code == 303
        await asyncio.sleep(0.05)
        body = next(b for to, s, b in world.inbox.messages if s == "Join Acme on TAAP")
        found = re.search(r"http://portal\.test(/portal/invitations/[A-Za-z0-9_-]+)", body)
        assert found, body
        link = found.group(1)

        # Only the invited address can open it; a made-up token is not found either.
        assert (await nosy.get(link)).status_code == 404
        assert (await invitee.get(link + "x")).status_code == 404
        offer = await invitee.get(link)
        assert offer.status_code == 200
        assert "Accept invitation" in offer.text
        assert "Acme" in offer.text
        wrong = await invitee.post(link, data={"csrf_token": "nope"})
        assert wrong.status_code == 403
        done = await invitee.post(link, data={"csrf_token": csrf(offer.text)})
        assert done.status_code == 303
        assert done.headers["location"] == "/portal/company"
        company = await invitee.get("/portal/company")
        assert company.status_code == 200
        assert "ind@example.com" in company.text
        assert "backend" in company.text
        again = await invitee.get(link)
        assert again.headers["location"] == "/portal/company"
    account = await world.store.account_by_email("ind@example.com")
    assert account is not None
    assert (account.kind, account.role) == ("enterprise", "member")


async def test_upload_a_jwk_file_and_refuse_what_is_not_a_public_key(world: PortalWorld) -> None:
    key = generate_private_key()
    async with world.client() as http:
        await world.sign_in(http, "jwk@example.com")
        url = await _create_app(world, http)
        token = csrf((await http.get(url)).text)
        uploads = {
            "key.jwk": json.dumps(key.public.jwk).encode(),
            "private.pem": generate_private_key().to_pem(),
            "junk.pem": b"\x00\xff not a key",
        }
        flashes: list[str] = []
        for filename, content in uploads.items():
            answer = await http.post(
                f"{url}/keys",
                data={"csrf_token": token},
                files={"public_key": (filename, content, "application/octet-stream")},
            )
            assert answer.status_code == 303, filename
            flashes.append((await http.get(url)).text)
    assert f"Key added ({key.thumbprint})." in flashes[0]
    assert "a private key was given where a public key is expected" in flashes[1]
    assert 'class="flash flash-error" role="alert"' in flashes[2]
    (app,) = await world.store.apps()
    record = await world.registry.get_client(app.client_id)
    assert record is not None
    assert [k.thumbprint for k in record.keys] == [key.thumbprint]
