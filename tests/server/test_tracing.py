"""Optional OpenTelemetry tracing: one server span per request, bounded names, no secrets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
from server_kit import BASE, Harness

from taap.server.tracing import TracingApp


class _Span:
    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = dict(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value


class _Tracer:
    def __init__(self) -> None:
        self.spans: list[_Span] = []

    @contextlib.contextmanager
    def start_as_current_span(
        self, name: str, *, kind: Any, attributes: dict[str, Any]
    ) -> Iterator[_Span]:
        span = _Span(name, attributes)
        self.spans.append(span)
        yield span


async def test_one_span_per_request(harness: Harness) -> None:
    tracer = _Tracer()
    app = TracingApp(harness.app, tracer=tracer)
    path, headers, body = harness.request("v2")
    transport = httpx.ASGITransport(app=app, client=(harness.peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        token = await client.post(path, headers=headers, content=body)
        refused = await client.post(path, headers=headers, content=body)  # replayed
        jwks = await client.get("/oauth2/v1/jwks")
        other = await client.get("/no/such/path/abc123")
    assert [s.name for s in tracer.spans] == [
        "POST token_v2",
        "POST token_v2",
        "GET jwks",
        "GET other",
    ]
    statuses = [s.attributes["http.response.status_code"] for s in tracer.spans]
    assert statuses == [200, 401, 200, 404]
    ids = [r.headers["x-request-id"] for r in (token, refused, jwks, other)]
    assert [s.attributes["taap.request_id"] for s in tracer.spans] == ids
    recorded = repr([s.attributes for s in tracer.spans])
    for secret in (harness.secret, harness.client_id, headers["X-Authorization"][:40], "abc123"):
        assert secret not in recorded
    # The wrapped app's attributes stay reachable (taap serve reads them).
    assert app.settings is harness.app.settings


async def test_without_an_sdk_the_api_tracer_is_a_no_op(harness: Harness) -> None:
    app = TracingApp(harness.app)
    path, headers, body = harness.request("v2")
    transport = httpx.ASGITransport(app=app, client=(harness.peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.post(path, headers=headers, content=body)).status_code == 200
