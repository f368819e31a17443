"""The revocation feed (``GET /oauth2/v1/revocations``), the server's reads of the revocation
log, and what introspection costs and does when the log cannot be read (docs/server.md,
"Revocation and introspection")."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from revocation_kit import FEED, INTROSPECT, introspect_request, revoke_request
from server_kit import BASE, NOW, Harness

from taap.core import PrivateKey
from taap.core.keys import PublicKey
from taap.core.revocation import RevocationEntry, RevocationState, entries_to_wire
from taap.errors import UnavailableError
from taap.resource.revocations import RevocationFeed
from taap.server.registry.memory import MemoryRegistry
from taap.server.revocation import RegistryRevocations, registry_revocations


async def feed(h: Harness, query: str = "") -> httpx.Response:
    async with h.http() as client:
        return await client.get(FEED + query)


async def issue(h: Harness) -> dict[str, Any]:
    response = await h.post()
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def test_the_feed_lists_the_log_in_the_guards_wire_form(harness: Harness) -> None:
    h = harness
    empty = await feed(h)
    assert empty.status_code == 200
    assert empty.json() == {"seq": 0, "entries": []}
    assert empty.headers["cache-control"] == "no-store"
    await h.registry.revoke_tokens(h.client_id, ["j-1"], expires_at=int(NOW) + 60)
    await h.registry.unsubscribe(h.client_id, "connectivity")
    await h.registry.revoke_client_tokens(h.client_id)
    rows = await h.registry.revocations_after(0)
    assert [row.kind for row in rows] == ["token", "product", "client"]
    assert (await feed(h)).json() == {"seq": rows[-1].seq, "entries": entries_to_wire(rows)}
    first = (await feed(h, "?limit=1")).json()
    assert first == {"seq": rows[0].seq, "entries": entries_to_wire(rows[:1])}
    rest = (await feed(h, f"?after={first['seq']}&limit=5000&other=ignored")).json()
    assert rest == {"seq": rows[-1].seq, "entries": entries_to_wire(rows[1:])}
    assert (await feed(h, f"?after={rows[-1].seq + 7}")).json() == {
        "seq": rows[-1].seq + 7,
        "entries": [],
    }


async def test_the_guards_feed_reader_reads_this_feed(harness: Harness) -> None:
    h = harness
    await h.registry.revoke_tokens(h.client_id, ["j-1", "j-2"], expires_at=int(NOW) + 60)
    await h.registry.set_status(h.client_id, "disabled")
    reader = RevocationFeed(BASE, transport=httpx.ASGITransport(app=h.app))
    try:
        assert list(await reader(0)) == list(await h.registry.revocations_after(0))
        assert list(await reader(2)) == list(await h.registry.revocations_after(2))
    finally:
        await reader.aclose()


@pytest.mark.parametrize(
    "query",
    [
        "?after=-1",
        "?after=%2B1",
        "?after=abc",
        "?after=1.5",
        "?after=",
        "?after=%201",
        "?after=1_000",
        "?after=12345678901234567890",
        "?after=9223372036854775808",
        "?after=%D9%A1",  # an Arabic-Indic digit one: str.isdigit says yes
        "?limit=0",
        "?limit=5001",
        "?after=1&after=2",
        "?limit=1&limit=1",
        "?after=%FF",
    ],
)
async def test_bad_feed_parameters_are_request_malformed(harness: Harness, query: str) -> None:
    response = await feed(harness, query)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "request_malformed"


async def test_the_feed_takes_get_only(harness: Harness) -> None:
    async with harness.http() as client:
        response = await client.post(FEED)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_the_registry_fetch_reads_page_after_page(rsa_key: PrivateKey) -> None:
    registry = MemoryRegistry(b"p" * 16, signing_key=rsa_key, clock=lambda: NOW)
    record, _ = await registry.create_client(name="c", keys=[rsa_key.public], apis=[])
    for index in range(5):
        await registry.revoke_tokens(record.client_id, [f"j-{index}"], expires_at=int(NOW) + 60)
    asked: list[tuple[int, int]] = []
    read = registry.revocations_after

    async def counted(seq: int, *, limit: int = 10000) -> Sequence[RevocationEntry]:
        asked.append((seq, limit))
        return await read(seq, limit=limit)

    registry.revocations_after = counted  # type: ignore[method-assign]
    rows = await registry_revocations(registry, page=2)(0)
    assert [row.jti for row in rows] == [f"j-{index}" for index in range(5)]
    assert asked == [(0, 2), (rows[1].seq, 2), (rows[3].seq, 2)]
    assert await registry_revocations(registry)(rows[-1].seq) == []


# -- introspection: the same steps for every token --------------------------------------------
class Counting:
    """The harness's registry, counting the reads introspection makes."""

    COUNTED = ("signing_keys", "get_client", "revocations_after", "get_resource_server")

    def __init__(self, inner: MemoryRegistry) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.COUNTED:
            return attr

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await attr(*args, **kwargs)

        return counted


async def test_every_token_costs_introspection_the_same_steps(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    live, revoked, of_disabled = [await issue(h) for _ in range(3)]
    rs, secret = await h.registry.create_resource_server(name="api")
    headers, body = revoke_request(
        h.client_id, h.secret, h.key, revoked["access_token"], now=h.clock.now
    )
    async with h.http() as client:
        assert (await client.post("/oauth2/v1/revoke", headers=headers, content=body)).is_success
    counting = Counting(h.registry)
    endpoint = h.app.revocation
    assert endpoint is not None
    endpoint.introspection.registry = counting  # type: ignore[assignment]
    h.app.revocations = RegistryRevocations(
        registry_revocations(counting),  # type: ignore[arg-type]
        max_age=5,
        clock=h.clock,
    )
    verifications = 0
    verify = PublicKey.verify_rs256

    def counted_verify(key: PublicKey, signature: bytes, message: bytes) -> bool:
        nonlocal verifications
        verifications += 1
        return verify(key, signature, message)

    monkeypatch.setattr(PublicKey, "verify_rs256", counted_verify)
    tokens = {
        "live": live["access_token"],
        "revoked": revoked["access_token"],
        "id token": live["id_token"],
        "bad signature": live["access_token"][:-6] + "AAAAAA",
        "garbage": "not a token",
        "three segments": "a.b.c",
        "unknown kid": "eyJraWQiOiJ4IiwidHlwIjoiYXQrand0IiwiYWxnIjoiUlMyNTYifQ.e30.AAAA",
    }
    answers: dict[str, bool] = {}
    for what, token in tokens.items():
        counting.calls.clear()
        verifications = 0
        rs_headers, rs_body = introspect_request(rs.id, secret, token)
        async with h.http() as client:
            response = await client.post(INTROSPECT, headers=rs_headers, content=rs_body)
        answers[what] = response.json()["active"]
        assert verifications == 1, what
        assert counting.calls == {
            "get_resource_server": 1,
            "signing_keys": 1,
            "get_client": 1,
            "revocations_after": 1,
        }, what
    assert answers == {what: what == "live" for what in tokens}
    # a disabled client's token takes the same steps as well
    await h.registry.set_status(h.client_id, "disabled")
    counting.calls.clear()
    verifications = 0
    rs_headers, rs_body = introspect_request(rs.id, secret, of_disabled["access_token"])
    async with h.http() as client:
        response = await client.post(INTROSPECT, headers=rs_headers, content=rs_body)
    assert response.json() == {"active": False}
    assert verifications == 1
    assert sum(counting.calls.values()) == 4


# -- when the log or the registry cannot be read ----------------------------------------------
class Stale:
    """A shared state whose last refresh is older than its bound (a guard's watcher that
    cannot reach the log)."""

    async def current(self) -> tuple[RevocationState, float]:
        state = RevocationState(max_age=5)
        state.apply([], fetched_at=NOW - 6)
        return state, NOW


async def _down(*args: Any, **kwargs: Any) -> Any:
    raise UnavailableError(log_detail="database down")


async def test_introspection_fails_closed_without_a_fresh_log(harness: Harness) -> None:
    h = harness
    token = (await issue(h))["access_token"]
    rs, secret = await h.registry.create_resource_server(name="api")
    headers, body = introspect_request(rs.id, secret, token)
    h.app.revocations = Stale()
    async with h.http() as client:
        response = await client.post(INTROSPECT, headers=headers, content=body)
    assert (response.status_code, response.json()["error_code"]) == (503, "unavailable")
    assert response.headers["retry-after"] == "1"
    h.app.revocations = RegistryRevocations(registry_revocations(h.registry), max_age=5)
    h.registry.revocations_after = _down  # type: ignore[method-assign]
    async with h.http() as client:
        response = await client.post(INTROSPECT, headers=headers, content=body)
        assert response.status_code == 503
        assert (await client.get(FEED)).status_code == 503


async def test_a_revocation_the_registry_cannot_record_is_503(harness: Harness) -> None:
    h = harness
    token = (await issue(h))["access_token"]
    h.registry.revoke_tokens = _down  # type: ignore[method-assign]
    headers, body = revoke_request(h.client_id, h.secret, h.key, token, now=NOW)
    async with h.http() as client:
        response = await client.post("/oauth2/v1/revoke", headers=headers, content=body)
    assert (response.status_code, response.json()["error_code"]) == (503, "unavailable")
    assert h.audit_lines[-1]["event"] == "revocation_rejected"


async def test_a_revocation_without_its_audit_line_is_503_and_stands(harness: Harness) -> None:
    h = harness
    token = (await issue(h))["access_token"]

    class Broken:
        def record(self, **fields: Any) -> None:
            raise OSError("disk full")

    endpoint = h.app.revocation
    assert endpoint is not None
    revoke = endpoint.routes["/oauth2/v1/revoke"]
    revoke.tokens.audit = Broken()  # type: ignore[attr-defined]
    headers, body = revoke_request(h.client_id, h.secret, h.key, token, now=NOW)
    async with h.http() as client:
        response = await client.post("/oauth2/v1/revoke", headers=headers, content=body)
    assert response.status_code == 503
    assert len(await h.registry.revocations_after(0)) == 2  # asking again changes nothing


def test_the_state_bound_comes_from_the_setting(harness: Harness) -> None:
    source = harness.app.revocations
    assert isinstance(source, RegistryRevocations)
    assert source.state.max_age == harness.settings.revocation_max_age == 5.0
    assert source.state.fresh_at == -math.inf  # nothing read before the first introspection
