"""The header rules of :mod:`taap.gateway.headers`, case by case."""

from __future__ import annotations

from taap.gateway.headers import Forwarding, RequestIds, response_headers, upstream_headers

HOW = Forwarding(
    client_id="taap-abc",
    product="connectivity",
    request_id=b"rid-1",
    peer="192.0.2.7",
    scheme="https",
    upstream_host=b"10.0.0.5:8080",
    trusted=False,
)


def names(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [name for name, _ in headers]


def test_what_the_upstream_gets() -> None:
    out = upstream_headers(
        [
            (b"host", b"api.example.com"),
            (b"authorization", b"Bearer t"),
            (b"x-authorization", b"pop"),
            (b"content-type", b"application/json"),
            (b"connection", b"keep-alive, X-Private"),
            (b"x-private", b"hop"),
            (b"transfer-encoding", b"chunked"),
            (b"content-length", b"12"),
            (b"expect", b"100-continue"),
            (b"x-taap-client-id", b"taap-evil"),
            (b"X-Taap-Product", b"admin"),
            (b"x-forwarded-for", b"198.51.100.1"),
            (b"forwarded", b"for=198.51.100.1"),
            (b"accept", b"a"),
            (b"accept", b"b"),
        ],
        HOW,
    )
    assert out == [
        (b"authorization", b"Bearer t"),
        (b"content-type", b"application/json"),
        (b"accept", b"a"),
        (b"accept", b"b"),
        (b"host", b"10.0.0.5:8080"),
        (b"x-taap-client-id", b"taap-abc"),
        (b"x-taap-product", b"connectivity"),
        (b"x-request-id", b"rid-1"),
        (b"x-forwarded-for", b"192.0.2.7"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"api.example.com"),
    ]


def test_strip_authorization_and_a_trusted_proxy() -> None:
    trusted = Forwarding(
        client_id="taap-abc",
        product="connectivity",
        request_id=b"rid-1",
        peer="10.0.0.2",
        scheme="http",
        upstream_host=b"u",
        trusted=True,
        strip_authorization=True,
    )
    out = dict(
        upstream_headers(
            [
                (b"authorization", b"Bearer t"),
                (b"x-forwarded-for", b"198.51.100.1"),
                (b"x-forwarded-proto", b"https"),
                (b"x-forwarded-host", b"api.example.com"),
            ],
            trusted,
        )
    )
    assert b"authorization" not in out
    assert out[b"x-forwarded-for"] == b"198.51.100.1, 10.0.0.2"
    assert out[b"x-forwarded-proto"] == b"https"
    assert out[b"x-forwarded-host"] == b"api.example.com"


def test_what_the_caller_gets_back() -> None:
    out = response_headers(
        [
            (b"Content-Type", b"application/json"),
            (b"Connection", b"close, X-Hop"),
            (b"X-Hop", b"1"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Date", b"Sun, 06 Dec 2026 07:00:00 GMT"),
            (b"Set-Cookie", b"a=1"),
            (b"Set-Cookie", b"b=2"),
        ],
        b"rid-2",
    )
    assert out == [
        (b"content-type", b"application/json"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"x-request-id", b"rid-2"),
    ]
    kept = response_headers([(b"X-Request-Id", b"upstream-id")], b"rid-3")
    assert kept == [(b"x-request-id", b"upstream-id")]


def test_request_ids() -> None:
    ids = RequestIds()
    assert ids.pick([b"trace-1"]) == b"trace-1"
    fresh = {ids.pick([]), ids.pick([b"a", b"b"]), ids.pick([b"bad id\n"]), ids.pick([b"x" * 200])}
    assert len(fresh) == 4
    assert all(b"-" in value and value != b"trace-1" for value in fresh)
