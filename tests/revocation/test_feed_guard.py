"""A separate guard (the A9 sample APIs from ``create_sample_app(URL)``) learns revocations
from a token server's feed over real HTTP, and refuses within ``TAAP_REVOCATION_MAX_AGE``.

The "token server" here is a small Starlette app under uvicorn on loopback that serves
discovery, the JWKS and ``/oauth2/v1/revocations`` from rows the test controls, so each case
can write exactly the row it needs and take the feed down at will. The guard runs under
uvicorn too, with its in-process replay store in the test's hands.

Each case waits a little longer than the bound after writing its row: a request that arrives
more than ``max_age`` after a change is answered only from a state fetched after the change
(docs/guard.md, "Live authorization"), so the very first request after the wait must see it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kit.loopback import serve
from taap.core import (
    MemoryReplayStore,
    PrivateKey,
    build_pop_token,
    issue_access_token,
    request_pairs,
)
from taap.core.jws import parse_compact
from taap.core.revocation import RevocationEntry, RevocationKind, entries_to_wire
from taap.resource import GuardSettings
from taap.resource.sample import create_sample_app

MAX_AGE = 1
KID = "feed-test"
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
SMS = "/sms/v1/messages"
SMS_BODY = b'{"to": "+14255550100", "text": "hi"}'
BOTH = ("connectivity", "sms-notification")


class Feed:
    """Discovery, JWKS and the revocation feed of a token server, from rows held here."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.rows: list[RevocationEntry] = []
        #: None: serve; otherwise the broken answer to give ("503" or "garbage")
        self.broken: str | None = None
        self.reads = 0
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/oauth2/v1/certs", self.jwks),
                Route("/oauth2/v1/revocations", self.revocations),
            ]
        )

    def add(self, kind: RevocationKind, client_id: str, **fields: Any) -> None:
        self.rows.append(
            RevocationEntry(
                seq=len(self.rows) + 1,
                kind=kind,
                client_id=client_id,
                expires_at=int(time.time()) + 86_400,
                **fields,
            )
        )

    async def discovery(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"issuer": base + "/oauth2/v1", "jwks_uri": base + "/oauth2/v1/certs"})

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [{**self.key.public.jwk, "kid": KID}]})

    async def revocations(self, request: Request) -> Response:
        self.reads += 1
        if self.broken == "503":
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
        if self.broken == "garbage":
            return Response(b'{"seq": 1, "entries": [[1, "token"]]}', media_type="text/plain")
        after = int(request.query_params["after"])
        limit = int(request.query_params["limit"])
        rows = [row for row in self.rows if row.seq > after][:limit]
        return JSONResponse({"seq": len(self.rows), "entries": entries_to_wire(rows)})


@dataclass
class Guarded:
    feed: Feed
    feed_url: str
    api_url: str
    replay: MemoryReplayStore
    server_key: PrivateKey
    client_key: PrivateKey
    http: httpx.Client

    def token(self, client_id: str, apis: tuple[str, ...] = BOTH, now: float | None = None) -> str:
        return issue_access_token(
            key=self.server_key,
            kid=KID,
            issuer=self.feed_url + "/oauth2/v1",
            client_id=client_id,
            apis=list(apis),
            cnf_jwk=self.client_key.public.jwk,
            now=time.time() if now is None else now,
        )

    def headers(self, method: str, path: str, token: str, jti: str, body: bytes = b"") -> Any:
        base = [("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")]
        pop = build_pop_token(request_pairs(method, path, base, body), self.client_key, jti=jti)
        return {**dict(base), "X-Authorization": pop}

    def get(self, token: str, jti: str) -> httpx.Response:
        headers = self.headers("GET", DEVICE, token, jti)
        return self.http.get(self.api_url + DEVICE, headers=headers)

    def send(self, token: str, jti: str) -> httpx.Response:
        headers = self.headers("POST", SMS, token, jti, SMS_BODY)
        return self.http.post(self.api_url + SMS, headers=headers, content=SMS_BODY)

    def recorded(self, client_id: str, jti: str) -> bool:
        return self.replay.contains(client_id, jti, now=time.time())


def refused(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("error_code", "")


def past_the_bound() -> None:
    """Let more than ``MAX_AGE`` pass since the change just made."""
    time.sleep(MAX_AGE + 0.1)


@pytest.fixture(scope="module")
def guarded(rsa_key: PrivateKey, other_key: PrivateKey) -> Iterator[Guarded]:
    feed = Feed(other_key)
    replay = MemoryReplayStore()
    with serve(feed.app) as feed_url:
        api = create_sample_app(
            feed_url, replay_store=replay, settings=GuardSettings(revocation_max_age=MAX_AGE)
        )
        with serve(api) as api_url, httpx.Client(timeout=10) as http:
            yield Guarded(feed, feed_url, api_url, replay, other_key, rsa_key, http)


def test_a_revoked_token_is_refused_after_the_bound(guarded: Guarded) -> None:
    token = guarded.token("c-token")
    assert guarded.get(token, "t-1").status_code == 200
    jti = parse_compact(token, max_bytes=8192, max_header_bytes=1024).payload["jti"]
    guarded.feed.add("token", "c-token", jti=jti)
    past_the_bound()
    answer = guarded.get(token, "t-2")
    assert refused(answer) == (401, "token_revoked"), answer.text
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert not guarded.recorded("c-token", "t-2")
    other = guarded.token("c-token")  # another token of the same client is not concerned
    assert guarded.get(other, "t-3").status_code == 200


def test_a_client_cutoff_refuses_its_older_tokens_only(guarded: Guarded) -> None:
    old = guarded.token("c-client")
    assert guarded.get(old, "c-1").status_code == 200
    not_before = int(time.time()) + 1
    guarded.feed.add("client", "c-client", not_before=not_before)
    past_the_bound()
    assert refused(guarded.get(old, "c-2")) == (401, "token_revoked")
    assert refused(guarded.send(old, "c-3")) == (401, "token_revoked")
    assert not guarded.recorded("c-client", "c-2")
    newer = guarded.token("c-client", now=not_before)  # issued after the cutoff
    assert guarded.get(newer, "c-4").status_code == 200
    assert guarded.get(guarded.token("c-bystander"), "c-5").status_code == 200


def test_a_product_cutoff_refuses_that_product_while_the_other_works(guarded: Guarded) -> None:
    old = guarded.token("c-product")
    not_before = int(time.time()) + 1
    guarded.feed.add("product", "c-product", api_id="connectivity", not_before=not_before)
    past_the_bound()
    answer = guarded.get(old, "p-1")
    assert refused(answer) == (403, "not_subscribed"), answer.text
    assert not guarded.recorded("c-product", "p-1")
    assert guarded.send(old, "p-2").status_code == 201
    resubscribed = guarded.token("c-product", now=not_before)
    assert guarded.get(resubscribed, "p-3").status_code == 200


@pytest.mark.parametrize("broken", ["503", "garbage"])
def test_a_feed_that_cannot_be_read_fails_closed_then_recovers(
    guarded: Guarded, broken: str
) -> None:
    token = guarded.token(f"c-stale-{broken}")
    assert guarded.get(token, "s-1").status_code == 200
    guarded.feed.broken = broken
    try:
        past_the_bound()
        headers = guarded.headers("GET", DEVICE, token, "s-2")
        answer = guarded.http.get(guarded.api_url + DEVICE, headers=headers)
        assert refused(answer) == (503, "unavailable"), answer.text
        assert answer.headers["Retry-After"] == "1"
        assert not guarded.recorded(f"c-stale-{broken}", "s-2")
    finally:
        guarded.feed.broken = None
    again = guarded.http.get(guarded.api_url + DEVICE, headers=headers)  # the very same PoP
    assert again.status_code == 200, again.text


def test_the_guard_reports_its_refreshes(guarded: Guarded) -> None:
    token = guarded.token("c-metrics")
    assert guarded.get(token, "m-1").status_code == 200
    text = guarded.http.get(guarded.api_url + "/metrics").text
    assert 'taap_guard_revocation_refreshes_total{outcome="ok"}' in text
    assert "taap_guard_revocation_entries " in text


def test_an_idle_guard_does_not_poll(guarded: Guarded) -> None:
    reads = guarded.feed.reads
    time.sleep(3 * MAX_AGE)
    assert guarded.feed.reads == reads
    assert guarded.get(guarded.token("c-idle"), "i-1").status_code == 200
    assert guarded.feed.reads == reads + 1  # the stale state was refreshed once, on demand


def test_a_token_server_that_is_gone_fails_closed(
    rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    feed, replay = Feed(other_key), MemoryReplayStore()
    settings = GuardSettings(revocation_max_age=MAX_AGE)
    with ExitStack() as token_server:
        feed_url = token_server.enter_context(serve(feed.app))
        api = create_sample_app(feed_url, replay_store=replay, settings=settings)
        with serve(api) as api_url, httpx.Client(timeout=10) as http:
            guarded = Guarded(feed, feed_url, api_url, replay, other_key, rsa_key, http)
            token = guarded.token("c-gone")
            assert guarded.get(token, "g-1").status_code == 200
            token_server.close()  # the token server stops; nothing listens on its port
            past_the_bound()
            answer = guarded.get(token, "g-2")
            assert refused(answer) == (503, "unavailable"), answer.text
            assert not guarded.recorded("c-gone", "g-2")
