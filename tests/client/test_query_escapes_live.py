"""Query escapes end to end (TAAP.md A2's uri rule; docs/pop.md "Canonicalisation").

The token server and a guarded echo API run under real uvicorn servers on loopback. The SDK
(httpx ``PopAuth``, ``requests`` ``PopRequestsAuth``) signs what it sends and the guard checks
what arrives; every query the rule accepts gets through, every query it refuses is refused by
the SDK before anything is sent (not even a token request) and by the guard and the token
server with 400 ``request_malformed`` when sent by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kit.clients import token_headers
from kit.loopback import serve
from taap.client import ClientCredentials, PopAuth, PopRequestsAuth, Secret, TokenClient
from taap.core import PrivateKey, build_pop_token, canonical_uri, request_pairs
from taap.core.replay import MemoryReplayStore
from taap.errors import RequestMalformedError
from taap.resource import GuardMiddleware, StaticKeys, Validator
from taap.server.app import create_app
from taap.server.registry.memory import MemoryRegistry
from taap.server.settings import ServerSettings

PEPPER = b"query-escapes-pepper-0123456789"
PATH = "/echo/items"


@dataclass
class Seen:
    """The query strings of the requests that reached an app."""

    app: Any
    queries: list[bytes] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.queries.append(scope["query_string"])
        await self.app(scope, receive, send)


@dataclass
class Live:
    api: str
    token_url: str
    credentials: ClientCredentials
    http: httpx.Client
    raw: httpx.Client
    guard: Seen
    token_server: Seen

    def access_token(self) -> str:
        auth = self.http.auth
        assert isinstance(auth, PopAuth)
        return auth.tokens.token().access_token

    def by_hand(self, query: str) -> httpx.Response:
        """GET ``PATH?query`` with a PoP signed over the naively decoded target, bypassing the
        SDK's check (what a careless client would send)."""
        target = f"{PATH}?{query}"
        base = [
            ("Content-Type", "application/json"),
            ("Authorization", f"Bearer {self.access_token()}"),
        ]
        pop = build_pop_token(request_pairs("GET", unquote(target), base), self.credentials.key)
        return self.raw.get(self.api + target, headers={**dict(base), "X-Authorization": pop})


async def echo(request: Request) -> JSONResponse:
    principal = request.scope["taap.principal"]  # set only once token and PoP verified
    return JSONResponse(
        {"query": request.scope["query_string"].decode("latin-1"), "client": principal.client_id}
    )


@pytest.fixture(scope="module")
def live(rsa_key: PrivateKey, other_key: PrivateKey) -> Iterator[Live]:
    registry = MemoryRegistry(PEPPER, signing_key=other_key)
    record, secret = asyncio.run(
        registry.create_client(name="query escapes", keys=[rsa_key.public], apis=["connectivity"])
    )
    server_settings = ServerSettings(public_url="http://taap.test")
    signing = asyncio.run(registry.signing_keys())
    keys = StaticKeys({k.kid: k.key.public for k in signing}, issuer=server_settings.issuer_url)
    validator = Validator(keys, products={"/echo": "connectivity"}, replay=MemoryReplayStore())
    api_app = Starlette(
        routes=[Route(PATH, echo, methods=["GET"])],
        middleware=[Middleware(GuardMiddleware, validator=validator)],
    )
    guard = Seen(api_app)
    token_server = Seen(create_app(server_settings, registry, pepper=PEPPER))
    credentials = ClientCredentials(
        client_id=record.client_id, client_secret=Secret(secret), key=rsa_key
    )
    with serve(token_server) as token_base, serve(guard) as api:
        token_url = f"{token_base}/oauth2/v2/tokens"
        tokens = TokenClient(token_url, credentials)
        with tokens, httpx.Client(auth=PopAuth(tokens)) as http, httpx.Client() as raw:
            yield Live(api, token_url, credentials, http, raw, guard, token_server)


def _sent_query(live: Live, query: str) -> tuple[httpx.Request, str]:
    request = live.http.build_request("GET", f"{live.api}{PATH}?{query}")
    return request, request.url.query.decode("ascii")


def _accepted(query: str) -> bool:
    try:
        canonical_uri(PATH, query)
    except RequestMalformedError:
        return False
    return True


def _assert_request_malformed(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "request_malformed"


# Pieces of queries as a caller writes them: characters httpx sends as they are or escapes
# itself (space, "é", '"'), escapes the rule decodes (of '=', '%', '?', '/', UTF-8, a newline),
# and pieces that make the rule refuse. Most queries are built as name=value pairs that the
# rule accepts (unless '%25' meets two hex digits); the rest are any string of pieces.
ALLOWED = [
    "a", "Z", "4", "+", " ", "/", "?", ":", "@", "!", "$", "'", "(", ")", "*", ",", ";", "~",
    "-", ".", "_", "é", '"', "%20", "%25", "%3F", "%2F", "%41", "%C3%A9", "%E2%9C%93", "%0A",
]  # fmt: skip
REFUSING = ["%2B", "%2b", "%26", "%23", "%C3", "%FF", "%", "%2", "%zz"]
STRUCTURE = ["=", "&", "%3D", "%3d"]
names = st.lists(st.sampled_from(ALLOWED), max_size=3).map("".join)
values = st.lists(st.sampled_from([*ALLOWED, "=", "%3D", "%3d"]), max_size=4).map("".join)
parts = st.tuples(names, st.none() | values).map(lambda p: p[0] if p[1] is None else "=".join(p))
pairs = st.lists(parts, min_size=1, max_size=3).map("&".join)
anything = st.lists(st.sampled_from(ALLOWED + REFUSING + STRUCTURE), max_size=8).map("".join)
queries = st.one_of(pairs, pairs, pairs, anything)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(query=queries)
def test_every_query_the_rule_accepts_reaches_the_guard(live: Live, query: str) -> None:
    request, sent = _sent_query(live, query)
    before = len(live.guard.queries)
    event("accepted" if _accepted(sent) else "refused")
    if _accepted(sent):
        answer = live.http.send(request)
        assert answer.status_code == 200, (sent, answer.text)
        assert answer.json() == {"query": sent, "client": live.credentials.client_id}
        assert live.guard.queries[before:] == [sent.encode("ascii")]
        return
    with pytest.raises(RequestMalformedError):
        live.http.send(request)
    assert len(live.guard.queries) == before  # refused before anything was sent
    _assert_request_malformed(live.by_hand(sent))


def test_base64_cursor_end_to_end(live: Live) -> None:
    for answer in (
        live.http.get(f"{live.api}{PATH}?cursor=abc%3D%3D"),
        live.http.get(f"{live.api}{PATH}", params={"cursor": "abc=="}),
    ):
        assert answer.status_code == 200, answer.text
        assert answer.json()["query"] == "cursor=abc%3D%3D"
    with TokenClient(live.token_url, live.credentials) as tokens, requests.Session() as session:
        session.auth = PopRequestsAuth(tokens)
        answer = session.get(f"{live.api}{PATH}", params={"cursor": "abc=="}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["query"] == "cursor=abc%3D%3D"


REFUSED = ["q=a%2Bb", "q=%2b", "a=b%26c=d", "a%3Db=c", "a=%23b", "a=%2541", "a=%", "a=%C3"]


@pytest.mark.parametrize("query", REFUSED)
def test_refused_queries_are_never_sent_and_refused_by_both_servers(live: Live, query: str) -> None:
    guard_before = len(live.guard.queries)
    tokens_before = len(live.token_server.queries)
    # A fresh TokenClient has no token: a refused call must not even fetch one.
    url = f"{live.api}{PATH}?{query}"
    fresh = TokenClient(live.token_url, live.credentials)
    with fresh, httpx.Client(auth=PopAuth(fresh)) as http, pytest.raises(RequestMalformedError):
        http.get(url)
    # requests escapes a '%' that starts no escape itself (it sends "a=%25"): that it accepts.
    if requests.Request("GET", url).prepare().path_url == f"{PATH}?{query}":
        fresh = TokenClient(live.token_url, live.credentials)
        with fresh, requests.Session() as session:
            session.auth = PopRequestsAuth(fresh)
            with pytest.raises(RequestMalformedError):
                session.get(url, timeout=10)
    client = TokenClient(f"{live.token_url}?{query}", live.credentials)
    with client, pytest.raises(RequestMalformedError):
        client.fetch()
    assert len(live.guard.queries) == guard_before
    assert len(live.token_server.queries) == tokens_before
    # Sent by hand, PoP over the naively decoded target: both servers answer 400.
    _assert_request_malformed(live.by_hand(query))
    target = f"/oauth2/v2/tokens?{query}"
    cred = live.credentials
    headers = token_headers(cred.client_id, cred.client_secret.reveal(), cred.key, unquote(target))
    _assert_request_malformed(live.raw.post(live.token_url + "?" + query, headers=headers))


def test_token_request_with_an_escaped_query_is_accepted(live: Live) -> None:
    with TokenClient(f"{live.token_url}?cursor=abc%3D%3D", live.credentials) as client:
        assert client.fetch().access_token
    assert live.token_server.queries[-1] == b"cursor=abc%3D%3D"
