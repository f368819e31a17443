"""Request -> signed values: uri canonicalisation, header joining, refusals (A2, A3 step 5)."""

from __future__ import annotations

import pytest

from taap.core import canonical_uri, parse_pairs_json, request_pairs, request_parts, split_target
from taap.errors import RequestMalformedError


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/commerce/v1/orders", "", "/commerce/v1/orders"),
        (
            "/commerce/v1/orders",
            "account-number=0000000000",
            "/commerce/v1/orders?account-number=0000000000",
        ),
        ("/a%20b/c", "q=%C3%A9t%C3%A9&x=1", "/a b/c?q=été&x=1"),
        ("/a+b", "q=a+b", "/a+b?q=a+b"),
        ("/a%2Bb", "", "/a+b"),  # in the path '+' is '+' to everyone
        ("/é", "q=✓", "/é?q=✓"),
        ("/a.b/.well-known/..x", "", "/a.b/.well-known/..x"),
        ("/a/b/", "z=1&a=2&z=3", "/a/b/?z=1&a=2&z=3"),  # order kept, no sorting
        ("/", "q=a?b", "/?q=a?b"),
        ("/", "q=a%3Fb%2F", "/?q=a?b/"),
        ("/%7Euser", "", "/~user"),
        (b"/bytes%20path", b"k=v", "/bytes path?k=v"),
    ],
)
def test_canonical_uri(path: str | bytes, query: str | bytes, expected: str) -> None:
    assert canonical_uri(path, query) == expected


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/a", "x=%26y"),  # & created by decoding
        ("/a", "x=%23y"),
        ("/a", "x=1#frag"),
        ("/a%23b", ""),
        ("/a%2Fb", ""),
        ("/a%2fb", ""),
        ("/a/%2E/b", ""),
        ("/a/%2e%2e/b", ""),
        ("/a/./b", ""),
        ("/a/../b", ""),
        ("/.", ""),
        ("/..", ""),
        ("/a/..", ""),
        ("a/b", ""),
        ("", ""),
        ("https://host/a", ""),
        ("/a#x", ""),
        ("/a?b", ""),
        ("/%FF", ""),  # decodes to invalid UTF-8
        ("/a", "q=%C3"),
        ("/a", "q=%E2%82"),
        (b"/\xff", b""),
        ("/a", b"q=\xc3"),
        ("/a\udcff", ""),  # lone surrogate (argv decoded with surrogateescape)
        ("/a", "q=%41\udcff"),
        ("/a", "q=\udcff"),
        ("/%zz", ""),
        ("/a", "q=%4"),
        ("/a", "q=%"),
    ],
)
def test_ambiguous_or_invalid_targets_are_refused(path: str | bytes, query: str | bytes) -> None:
    with pytest.raises(RequestMalformedError) as info:
        canonical_uri(path, query)
    assert info.value.error_code == "request_malformed"
    assert info.value.status_code == 400


# A2's query rule, with its own examples: an escape is allowed unless decoding it could make
# two different queries sign alike.
@pytest.mark.parametrize(
    ("query", "signed"),
    [
        ("cursor=abc%3D%3D", "cursor=abc=="),  # a base64 pagination cursor
        ("cursor=abc%3d%3d", "cursor=abc=="),
        ("x=%3Dy", "x==y"),  # '=' after the first '=' of a part is value text anyway
        ("a==b", "a==b"),
        ("a=%25", "a=%"),  # a decoded '%' is fine when no two hex digits follow
        ("a=50%25off&b=%25%25", "a=50%off&b=%%"),
        ("a=%254", "a=%4"),
        ("a=b%2Fc%3Fd%20e", "a=b/c?d e"),
        ("a=+&b=%20", "a=+&b= "),  # '+' stays '+'
        ("a&b=&=c", "a&b=&=c"),
        ("n%C3%A9=%E2%9C%93", "né=✓"),
    ],
)
def test_query_escapes_that_cannot_change_the_meaning_are_allowed(query: str, signed: str) -> None:
    assert canonical_uri("/p", query) == "/p?" + signed


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("a=b%26c=d", "splits"),  # (a) decoding creates a new pair
        ("a%3Db=c", "splits"),  # (a) decoding moves the name/value boundary
        ("x%3D", "splits"),  # (a) a part without '=' gains one
        ("a%3D=b", "splits"),
        ("a=%23", "'#'"),  # (b)
        ("a=b#c", "'#'"),
        ("a=%2541", "another escape"),  # (c) a twice-decoding reader sees "a=A"
        ("a=%25%34%31", "another escape"),
        ("a=%25c3", "another escape"),
        ("a=%2B", "%2B"),  # (d) form decoders read it as '+', a raw '+' as a space
        ("a=%2b", "%2B"),
        ("a=1&b=%2B%26", "%2B"),
        ("a=%", "percent-escape"),  # a '%' that starts no escape
        ("a=%zz", "percent-escape"),
        ("a=%4", "percent-escape"),
        ("a=%C3", "UTF-8"),
        ("a=%FF", "UTF-8"),
    ],
)
def test_ambiguous_query_escapes_are_refused(query: str, reason: str) -> None:
    with pytest.raises(RequestMalformedError) as info:
        canonical_uri("/p", query)
    assert reason in info.value.description
    assert info.value.error_code == "request_malformed"


def test_split_target_does_not_decode() -> None:
    assert split_target("/a%20b?q=%26") == ("/a%20b", "q=%26")
    assert split_target("/a") == ("/a", "")
    assert split_target("/a?") == ("/a", "")
    assert split_target("/a?b?c") == ("/a", "b?c")


def _parts(headers: list[tuple[str | bytes, str | bytes]], body: bytes = b"") -> object:
    return request_parts("POST", "/p", "q=1", headers, body)


def test_headers_are_case_insensitive_and_joined() -> None:
    parts = request_parts(
        "GET",
        "/p",
        "",
        [
            ("Accept", "a/b"),
            ("X-Trace", "  one\t"),
            ("accept", "c/d"),
            (b"x-trace", b"two"),
            ("ACCEPT", "e/f, g/h"),
        ],
        b"",
    )
    assert parts.value("accept") == "a/b, c/d, e/f, g/h"
    assert parts.value("Accept") == "a/b, c/d, e/f, g/h"
    assert parts.value("X-TRACE") == "one, two"
    assert parts.value("missing") is None
    assert parts.value("uri") == "/p"
    assert parts.value("http-method") == "GET"
    assert parts.value("body") == b""
    assert parts.has_body is False


def test_reserved_names_are_exact_and_headers_are_not_reserved() -> None:
    parts = request_parts(
        "PUT", "/real", "", [("URI", "/fake"), ("Body", "fake"), ("HTTP-Method", "GET")], b"{}"
    )
    assert parts.value("uri") == "/real"
    assert parts.value("URI") == "/fake"
    assert parts.value("http-method") == "PUT"
    assert parts.value("HTTP-Method") == "GET"
    assert parts.value("body") == b"{}"
    assert parts.value("Body") == "fake"
    assert parts.has_body is True


@pytest.mark.parametrize(
    "name", ["Authorization", "authorization", "X-Authorization", "Content-Type", "CONTENT-TYPE"]
)
def test_repeated_singleton_headers_are_refused(name: str) -> None:
    with pytest.raises(RequestMalformedError):
        _parts([(name, "a"), (name.lower(), "b")])


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b"])
def test_control_characters_in_header_values(value: str) -> None:
    with pytest.raises(RequestMalformedError):
        _parts([("X-Thing", value)])


def test_header_value_and_body_must_be_utf8() -> None:
    with pytest.raises(RequestMalformedError):
        _parts([("X-Thing", b"caf\xe9")])
    with pytest.raises(RequestMalformedError):
        _parts([], b"\xff\xfe")
    parts = request_parts("POST", "/p", "", [("X-Thing", "café".encode())], "✓".encode())
    assert parts.value("x-thing") == "café"
    assert parts.value("body") == "✓".encode()


def test_request_parts_canonicalises_the_uri() -> None:
    assert request_parts("GET", "/a%20b", "q=x+y", [], b"").uri == "/a b?q=x+y"
    with pytest.raises(RequestMalformedError):
        request_parts("GET", "/a", "q=%26", [], b"")


def test_request_pairs_default_order() -> None:
    headers = [("Content-Type", "application/json"), ("Authorization", "Bearer t")]
    assert request_pairs("POST", "/u", headers, "{}") == [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer t"),
        ("uri", "/u"),
        ("http-method", "POST"),
        ("body", "{}"),
    ]
    assert [n for n, _ in request_pairs("GET", "/u", headers, b"")] == [
        "Content-Type",
        "Authorization",
        "uri",
        "http-method",
    ]


def test_parse_pairs_json() -> None:
    assert parse_pairs_json('[["uri", "/a"], ["body", ""]]') == [("uri", "/a"), ("body", "")]
    for bad in [
        '{"uri": "/a"}',
        '[["uri"]]',
        '[["uri", 1]]',
        "[[1, 2]]",
        '[["a","b","c"]]',
        "[",
        '[["a", NaN]]',
        '[["a","\\ud800"]]',
    ]:
        with pytest.raises(ValueError):  # noqa: PT011 - message varies by fault
            parse_pairs_json(bad)
