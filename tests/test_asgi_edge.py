"""The ASGI edge shared by the token server and the guard (taap.asgi)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from taap.asgi import (
    NO_STORE,
    ClientDisconnected,
    RequestHead,
    content_length,
    raw_path_of,
    read_body,
    render_error,
)
from taap.errors import (
    BodyTooLargeError,
    ClientAuthError,
    MethodNotAllowedError,
    PopReplayedError,
    RateLimitedError,
    RequestMalformedError,
)
from taap.resource import error_response


def _receiver(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def test_the_head_is_read_in_one_pass() -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"12"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"x-request-id", b"abc"),
        (b"content-type", b"text/plain"),
    ]
    head = RequestHead.of(headers)
    assert head.size == sum(len(n) + len(v) + 4 for n, v in headers)
    assert head.content_types == [b"application/json", b"text/plain"]
    assert head.declared_length() == 12
    assert head.forwarded_for == [b"10.0.0.1"]
    assert head.request_ids == [b"abc"]
    assert RequestHead.of([]).declared_length() is None


@pytest.mark.parametrize("value", [b"-1", b"1e3", b"twelve", b""])
def test_a_malformed_content_length_is_refused(value: bytes) -> None:
    with pytest.raises(RequestMalformedError):
        RequestHead.of([(b"content-length", value)]).declared_length()
    with pytest.raises(RequestMalformedError):
        content_length([(b"Content-Length", value)])


def test_raw_path_is_the_path_as_sent() -> None:
    assert raw_path_of({"raw_path": b"/a%2Fb?x=1", "path": "/a/b"}) == b"/a%2Fb"
    assert raw_path_of({"path": "/a b/ü"}) == b"/a%20b/%C3%BC"


def test_read_body_joins_chunks_and_stops_at_the_cap() -> None:
    chunks = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    ]
    assert asyncio.run(read_body(_receiver(*chunks), 4)) == b"abcd"
    with pytest.raises(BodyTooLargeError):
        asyncio.run(read_body(_receiver(*chunks), 3))
    with pytest.raises(BodyTooLargeError):
        asyncio.run(read_body(_receiver(), 3, declared=4))  # refused before reading
    with pytest.raises(ClientDisconnected):
        asyncio.run(read_body(_receiver({"type": "http.disconnect"}), 3))


def test_render_error_is_status_headers_body() -> None:
    status, headers, body = render_error(RateLimitedError(retry_after=7))
    assert status == 429
    assert headers[: len(NO_STORE)] == NO_STORE
    assert (b"retry-after", b"7") in headers
    assert json.loads(body)["error_code"] == "rate_limited"
    _, headers, _ = render_error(ClientAuthError(), www_authenticate=b"Basic", allow=b"POST")
    assert (b"www-authenticate", b"Basic") in headers
    assert not any(name == b"allow" for name, _ in headers)
    _, headers, _ = render_error(MethodNotAllowedError(), www_authenticate=b"Basic", allow=b"POST")
    assert (b"allow", b"POST") in headers
    status, _, body = render_error(None)
    assert status == 500
    assert json.loads(body)["error_code"] == "internal"


def test_description_is_kept_to_the_rfc_6749_characters() -> None:
    _, _, body = render_error(RequestMalformedError('bad "quote" \\ and ü'))
    description = json.loads(body)["error_description"]
    assert description == "bad ?quote? ? and ?"


def test_the_guard_answers_with_the_same_body_as_the_server() -> None:
    error = PopReplayedError()
    status, text_headers, body = error_response(error)
    assert (status, body) == (render_error(error)[0], render_error(error)[2])
    assert ("www-authenticate", 'Bearer realm="taap", error="invalid_token"') in text_headers
    assert ("content-length", str(len(body))) in text_headers
