"""No client input yields a 5xx (SECURITY.md E3): random bodies, headers and targets."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_kit import make_harness

from taap.core import generate_private_key

_KEY = generate_private_key(2048)
_HARNESS: dict[str, Any] = {}

header_value = st.binary(max_size=300).filter(lambda b: b"\r" not in b and b"\n" not in b)
header_name = st.sampled_from(
    [b"authorization", b"x-authorization", b"content-type", b"content-length-x", b"x-forwarded-for"]
)


def _harness() -> Any:
    if "h" not in _HARNESS:
        _HARNESS["h"] = asyncio.run(make_harness(_KEY, signing_key=_KEY))
    return _HARNESS["h"]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE"]),
    version=st.sampled_from(["v2", "v6"]),
    query=st.binary(max_size=40),
    headers=st.lists(st.tuples(header_name, header_value), max_size=6),
    body=st.binary(max_size=400) | st.sampled_from([b"{}", b"[]", b'{"scope":1}', b"null"]),
    valid_base=st.booleans(),
)
def test_random_requests_never_5xx(
    method: str,
    version: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    valid_base: bool,
) -> None:
    h = _harness()
    h.clock.now += 7  # keep the rate-limit buckets from pinning every answer to 429
    base: list[tuple[bytes, bytes]] = []
    if valid_base:
        _, good, _ = h.request(version)
        base = [(k.lower().encode(), v.encode()) for k, v in good.items()]
    scope = {
        "type": "http",
        "method": method,
        "path": f"/oauth2/{version}/tokens",
        "raw_path": f"/oauth2/{version}/tokens".encode(),
        "query_string": query,
        "headers": base + headers,
        "client": ("198.51.100.3", 1),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(h.app(scope, receive, send))
    assert sent[0]["status"] < 500, sent
    assert sent[0]["status"] != 200 or (valid_base and not headers and not query)
