"""The portal's API reference, Status codes and Explain a PoP pages over HTTP (in-process portal
on a SQLite registry, real SMTP for the sign-in codes)."""

from __future__ import annotations

import html
import json
import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from explain_cases import cases
from portal_kit import BASE, PEPPER, PortalWorld, csrf

from kit.processes import clean_env, start_serve
from taap.core import PrivateKey
from taap.error_guide import error_table, wire_errors
from taap.portal.docs.reference import ApiDocuments
from taap.portal.mail import SmtpMailer
from taap.portal.site import create_portal
from taap.resource.sample_openapi import sample_openapi_document
from taap.server.settings import ServerSettings
from taap.stores.ratelimit import MemoryRateLimiter

NAV = ("Status codes", "API reference", "Explain a PoP")


class _Rows(HTMLParser):
    """The text of each cell of each body row of the page's tables."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag in ("td", "th") and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def rows_of(page: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(page)
    return parser.rows


def nav_links(page: str) -> dict[str, str]:
    nav = page.split('<nav aria-label="Main"', 1)[1].split("</nav>", 1)[0]
    return {text: href for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav)}


async def test_status_codes_rows_are_the_error_tree(world: PortalWorld) -> None:
    async with world.client() as http:  # public: no sign-in needed
        page = await http.get("/portal/status-codes")
    assert page.status_code == 200
    expected = [
        [str(r.status), r.error, r.error_code, r.meaning, r.cause or "—", r.fix or "—"]
        for r in error_table()
    ]
    assert rows_of(html.unescape(page.text)) == expected
    # Every error a server answers is a row, with words for its cause and fix.
    codes = {row[2] for row in expected}
    assert {cls.error_code for cls in wire_errors()} == codes
    assert {"pop_replayed", "pop_edts_mismatch", "not_subscribed", "internal"} <= codes
    assert "pop_build_refused" not in codes  # the builder's own refusal is never answered
    assert all(r.cause and r.fix for r in error_table()), "an error without cause/fix words"


async def test_every_page_links_the_three_pages_in_its_navigation(world: PortalWorld) -> None:
    async with world.client() as http:
        anonymous = [await http.get(p) for p in ("/portal/sign-in", "/portal/status-codes")]
        await world.sign_in(http, "nav@example.com")
        signed_in = [await http.get(p) for p in ("/portal/", "/portal/apps/new", "/portal/explain")]
    for page in [*anonymous, *signed_in]:
        links = nav_links(page.text)
        assert links["Status codes"] == "/portal/status-codes"
        assert links["API reference"] == "/portal/reference"
        assert links["Explain a PoP"] == "/portal/explain"
    assert 'href="/portal/explain" aria-current="page"' in signed_in[2].text


async def test_reference_index_links_every_product_by_name(world: PortalWorld) -> None:
    async with world.client() as http:
        page = await http.get("/portal/reference")
    assert page.status_code == 200
    for product in await world.registry.list_products():
        assert f'<a href="/portal/reference/{product.id}">{product.name}</a>' in page.text


async def test_product_pages_show_every_operation_of_the_sample_document(
    world: PortalWorld,
) -> None:
    async with world.client() as http:
        connectivity = (await http.get("/portal/reference/connectivity")).text
        sms = (await http.get("/portal/reference/sms-notification")).text
        location = await http.get("/portal/reference/location")
        missing = await http.get("/portal/reference/no-such-product")
    assert "<code>/iot-connectivity/v1/devices/{iccid}</code>" in connectivity
    assert "<code>iccid</code>" in connectivity
    assert "pattern ^89[0-9]{17,18}$" in connectivity
    for code in ("token_invalid", "pop_replayed", "not_subscribed", "not_found"):
        assert f'href="/portal/status-codes#{code}"' in connectivity
    assert "/sms/v1/messages" not in connectivity
    assert "<code>/sms/v1/messages</code>" in sms
    assert "<code>application/json</code>" in sms
    assert '"maxLength": 918' in html.unescape(sms)
    assert "content_type_unsupported" in sms
    assert "body_invalid" in sms
    assert location.status_code == 200
    assert "No API reference for this product yet" in location.text
    assert missing.status_code == 404
    async with world.client() as http:
        download = await http.get("/portal/reference/connectivity/openapi.json")
        none = await http.get("/portal/reference/location/openapi.json")
    assert download.json() == json.loads(json.dumps(sample_openapi_document("connectivity")))
    assert download.headers["content-disposition"].startswith("attachment;")
    assert none.status_code == 404


def _portal_with(world: PortalWorld, documents: ApiDocuments) -> PortalWorld:
    app = create_portal(
        world.store,
        world.registry,
        mailer=SmtpMailer("127.0.0.1", 9, "taap@localhost"),
        limiter=MemoryRateLimiter(),
        pepper=PEPPER,
        base_url=BASE,
        api_documents=documents,
    )
    return PortalWorld(world.registry, world.store, world.inbox, world.clock, app)


async def test_an_operator_document_is_shown_escaped(world: PortalWorld, tmp_path: Path) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    document = {
        "openapi": "3.1.0",
        "info": {"title": hostile, "version": "2"},
        "paths": {
            "/location/v1/where/{msisdn}": {
                "parameters": [{"$ref": "#/components/parameters/Msisdn"}],
                "get": {"summary": hostile, "responses": {"200": {"description": "Found"}}},
                "delete": {"responses": {"204": {"description": "Forgotten"}}},
            }
        },
        "components": {
            "parameters": {"Msisdn": {"name": "msisdn", "in": "path", "required": True}}
        },
    }
    good, bad = tmp_path / "location.json", tmp_path / "fraud.json"
    good.write_text(json.dumps(document))
    bad.write_text("{not json")
    sources = {
        "location": str(good),
        "fraud-prevention": str(bad),
        "call-verification": str(tmp_path / "absent.json"),
        "connectivity": "http://127.0.0.1:9/openapi.json",  # nothing listens on port 9
    }
    custom = _portal_with(world, ApiDocuments(sources, samples=False))
    async with custom.client() as http:
        location = (await http.get("/portal/reference/location")).text
        fraud = await http.get("/portal/reference/fraud-prevention")
        absent = await http.get("/portal/reference/call-verification")
        unreachable = await http.get("/portal/reference/connectivity")
        sms = await http.get("/portal/reference/sms-notification")
    assert hostile not in location
    assert html.escape(hostile) in location
    assert "<code>/location/v1/where/{msisdn}</code>" in location
    assert "<code>msisdn</code>" in location
    assert ">DELETE<" in location
    assert fraud.status_code == 200
    assert "it is not a JSON document" in fraud.text
    assert absent.status_code == 200
    assert "its file could not be read" in absent.text
    assert unreachable.status_code == 200
    assert "its URL could not be reached" in unreachable.text
    assert "No API reference for this product yet" in sms.text  # samples=False


async def test_explain_needs_a_signed_in_developer_and_csrf(world: PortalWorld) -> None:
    async with world.client() as http:
        anonymous = await http.get("/portal/explain")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/portal/sign-in"
        await world.sign_in(http, "csrf@example.com")
        forged = await http.post("/portal/explain", data={"token": "a.b.c", "request": "x"})
    assert forged.status_code == 403


async def _signed_in_with_keys(
    world: PortalWorld, http: object, own: PrivateKey, other: PrivateKey
) -> dict[str, str]:
    """A developer with an app holding ``own`` and ``other``: the key picker's values."""
    await world.sign_in(http, "explainer@example.com")
    new = await http.get("/portal/apps/new")  # type: ignore[attr-defined]
    made = await http.post(  # type: ignore[attr-defined]
        "/portal/apps/new",
        data={"name": "Explainer", "products": ["sms-notification"], "csrf_token": csrf(new.text)},
    )
    app_url = made.headers["location"]
    for key in (own, other):
        page = await http.get(app_url)  # type: ignore[attr-defined]
        data = {"public_key_pem": key.public.to_pem().decode(), "csrf_token": csrf(page.text)}
        added = await http.post(f"{app_url}/keys", data=data)  # type: ignore[attr-defined]
        assert added.status_code == 303
    app_id = app_url.rsplit("/", 1)[1]
    return {
        "own": f"{app_id}:{own.public.thumbprint}",
        "other": f"{app_id}:{other.public.thumbprint}",
    }


def result_region(page: str) -> str:
    found = re.search(r'<section class="explain-result[^"]*"[^>]*>(.*?)</section>', page, re.S)
    assert found, page[-2000:]
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


async def test_explain_names_each_common_mistake(
    world: PortalWorld, rsa_key: PrivateKey, other_key: PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    now = int(world.clock.now)
    async with world.client() as http:
        keys = await _signed_in_with_keys(world, http, rsa_key, other_key)
        table = cases(rsa_key, now)
        for case in table:
            form = await http.get("/portal/explain")
            data = {"token": case.token, "request": case.request, "csrf_token": csrf(form.text)}
            if case.key:
                data["key"] = keys[case.key]
            answer = await http.post("/portal/explain", data=data)
            assert answer.status_code == 200, case.name
            text = " ".join(result_region(answer.text).split())
            assert text.split(" ", 1)[1].startswith(case.verdict), (case.name, text[:300])
            assert case.names in text, (case.name, text)
        # A key that is not one of this developer's own checks nothing.
        form = await http.get("/portal/explain")
        data = {"token": table[0].token, "request": table[0].request, "csrf_token": csrf(form.text)}
        data["key"] = keys["own"].split(":")[0] + "x:" + rsa_key.public.thumbprint
        foreign = result_region((await http.post("/portal/explain", data=data)).text)
        assert "the signature was not checked" in " ".join(foreign.split())
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for case in table:
        for secret_part in case.token.split("."):
            assert secret_part not in logged, case.name
    assert "hello from the portal" not in logged


async def test_explain_refuses_bad_input_with_field_errors(world: PortalWorld) -> None:
    async with world.client() as http:
        await world.sign_in(http, "caps@example.com")
        attempts = [
            ({"token": "", "request": ""}, ["Paste the PoP token", "Paste the request"]),
            ({"token": "a" * 9000, "request": "GET / HTTP/1.1"}, ["at most 8 KiB"]),
            ({"token": "a.b.c", "request": "x" * 17000}, ["at most 16 KiB"]),
            ({"token": "a.b.c", "request": "curl --upload-file x http://h/"}, ["cannot be read"]),
            ({"token": "a.b.c", "request": "not a request line"}, ["cannot be read"]),
            ({"token": "a.b.c", "request": "GET http://[::1/x HTTP/1.1"}, ["cannot be read"]),
            ({"token": "a.b.c", "request": "curl $'\\x http://h/"}, ["cannot be read"]),
            ({"token": "a.b.c", "request": "curl 'http://h/"}, ["cannot be read"]),
        ]
        for data, messages in attempts:
            form = await http.get("/portal/explain")
            answer = await http.post(
                "/portal/explain", data={**data, "csrf_token": csrf(form.text)}
            )
            assert answer.status_code == 400
            assert "There is a problem" in answer.text
            for message in messages:
                assert message in answer.text
        hostile = [
            ("e30.e30.", "GET /x HTTP/1.1\nA: b\nA: c"),
            ("x" * 8000, "POST /x?%zz HTTP/1.1\nContent-Type: application/json\n\n\x00\ud7ff"),
            ("\u00e9.\u00e9.\u00e9", "GET //.. HTTP/1.1\nAuthorization: Bearer a\n\n"),
        ]
        for token, request in hostile:
            form = await http.get("/portal/explain")
            data = {"token": token, "request": request, "csrf_token": csrf(form.text)}
            answer = await http.post("/portal/explain", data=data)
            assert answer.status_code == 200, answer.text[-500:]
            assert result_region(answer.text).split()[1] == "Refused:"
        form = await http.get("/portal/explain")
        data = {"token": "not-a-token", "request": "GET /x HTTP/1.1", "csrf_token": csrf(form.text)}
        malformed = await http.post("/portal/explain", data=data)
    assert malformed.status_code == 200
    assert result_region(malformed.text).split()[:2] == ["Result", "Refused:"]
    assert "pop_malformed" in result_region(malformed.text)


def test_the_openapi_setting_is_parsed_and_checked() -> None:
    settings = ServerSettings(
        portal_openapi=" location = /srv/loc.json , sms-notification=https://d/x "
    )
    assert settings.portal_openapi_sources() == {
        "location": "/srv/loc.json",
        "sms-notification": "https://d/x",
    }
    for bad in ("location", "Location=/x.json", "location=", "a=/x,a=/y"):
        with pytest.raises(ValueError, match="TAAP_PORTAL_OPENAPI"):
            ServerSettings(portal_openapi=bad)


def test_taap_serve_shows_the_documents_its_settings_name(tmp_path: Path) -> None:
    """Without --with-sample-apis no product has the sample document; TAAP_PORTAL_OPENAPI adds
    one from a file."""
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Where", "version": "1"},
        "paths": {"/location/v1/where": {"get": {"responses": {"200": {"description": "Found"}}}}},
    }
    (tmp_path / "location.json").write_text(json.dumps(document))
    env = clean_env(TAAP_PORTAL_OPENAPI=f"location={tmp_path / 'location.json'}")
    server = start_serve(tmp_path, f"sqlite:///{tmp_path / 'taap.db'}", "--with-portal", env=env)
    try:
        location = httpx.get(f"{server.url}/portal/reference/location", timeout=10)
        connectivity = httpx.get(f"{server.url}/portal/reference/connectivity", timeout=10)
        sample_document = httpx.get(f"{server.url}/sample-apis/openapi.json", timeout=10)
    finally:
        server.stop()
    assert "<code>/location/v1/where</code>" in location.text
    assert "No API reference for this product yet" in connectivity.text
    assert sample_document.status_code == 404
