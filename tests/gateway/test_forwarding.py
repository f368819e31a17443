"""Calls through a real ``taap gateway`` process to a node upstream: what is forwarded, byte for
byte, and what the upstream is told about the caller."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx

from conftest import DEVICE, Stack

SMS = "/sms/v1/messages"


def echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def header_values(data: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in data["headers"] if key.lower() == name]


def test_get_with_query_reaches_the_upstream_unchanged(stack: Stack) -> None:
    alice = stack.clients["alice"]
    token = stack.token("alice")
    target = DEVICE + "?b=%20x&a=1&a=2&c=%7E"
    response = alice.call("GET", stack.gateway.url + target, token)
    data = echo(response)
    assert data["method"] == "GET"
    assert data["url"] == target
    assert data["body_length"] == 0
    # The caller, as the gateway vouches for it; the PoP itself stays at the gateway.
    assert header_values(data, "x-taap-client-id") == [alice.client_id]
    assert header_values(data, "x-taap-product") == ["connectivity"]
    assert header_values(data, "x-authorization") == []
    assert header_values(data, "authorization") == [f"Bearer {token}"]
    assert header_values(data, "x-forwarded-for") == ["127.0.0.1"]
    assert header_values(data, "x-forwarded-proto") == ["http"]
    assert header_values(data, "x-forwarded-host") == [stack.gateway.url.removeprefix("http://")]
    assert header_values(data, "host") == [stack.upstream.url.removeprefix("http://")]
    (request_id,) = header_values(data, "x-request-id")
    # The answer: the upstream's own headers, the same request id, no hop-by-hop field.
    assert response.headers["x-upstream"] == "node"
    assert response.headers["x-request-id"] == request_id
    assert "keep-alive" not in response.headers


def test_post_body_bytes_reach_the_upstream_unchanged(stack: Stack) -> None:
    alice = stack.clients["alice"]
    body = json.dumps({"to": "+14255550100", "text": "h\u00e9llo \u2713"}).encode() + b"  \n"
    data = echo(alice.call("POST", stack.gateway.url + SMS, stack.token("alice"), body))
    assert data["method"] == "POST"
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert header_values(data, "content-length") == [str(len(body))]
    assert header_values(data, "x-taap-product") == ["sms-notification"]


def test_request_id_sent_by_the_client_is_kept(stack: Stack) -> None:
    alice = stack.clients["alice"]
    token = stack.token("alice")
    headers = {**alice.headers("GET", DEVICE, token), "X-Request-Id": "trace-42.a"}
    response = alice.http.get(stack.gateway.url + DEVICE, headers=headers)
    assert header_values(echo(response), "x-request-id") == ["trace-42.a"]
    assert response.headers["x-request-id"] == "trace-42.a"


def test_client_sent_taap_headers_never_reach_the_upstream(stack: Stack) -> None:
    bob = stack.clients["bob"]
    token = stack.token("bob")
    spoof = {
        "X-Taap-Client-Id": stack.clients["alice"].client_id,
        "X-Taap-Product": "sms-notification",
        "X-Taap-Admin": "yes",
    }
    headers = {**bob.headers("GET", DEVICE, token), **spoof}
    data = echo(bob.http.get(stack.gateway.url + DEVICE, headers=headers))
    assert header_values(data, "x-taap-client-id") == [bob.client_id]
    assert header_values(data, "x-taap-product") == ["connectivity"]
    assert header_values(data, "x-taap-admin") == []


def test_hop_by_hop_headers_stay_at_the_gateway(stack: Stack) -> None:
    alice = stack.clients["alice"]
    headers = {
        **alice.headers("GET", DEVICE, stack.token("alice")),
        "Connection": "keep-alive, X-Hop-Secret",
        "X-Hop-Secret": "for the gateway only",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "TE": "trailers",
        "X-Forwarded-For": "203.0.113.9",
        "X-End-To-End": "kept",
    }
    data = echo(alice.http.get(stack.gateway.url + DEVICE, headers=headers))
    names = {key.lower() for key, _ in data["headers"]}
    for hop in ("x-hop-secret", "keep-alive", "proxy-authorization", "te"):
        assert hop not in names
    assert header_values(data, "x-end-to-end") == ["kept"]
    # Not from a trusted proxy: the client's own claim is dropped, the address seen is sent.
    assert header_values(data, "x-forwarded-for") == ["127.0.0.1"]


def test_a_body_of_exactly_the_cap_passes_and_one_byte_more_is_refused(stack: Stack) -> None:
    alice = stack.clients["alice"]
    token = stack.token("alice")
    body = (b"0123456789abcdef" * 65536)[: 1024 * 1024]
    data = echo(alice.call("POST", stack.gateway.url + SMS + "?big=1", token, body))
    assert data["body_length"] == 1024 * 1024
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()
    over = alice.call("POST", stack.gateway.url + SMS + "?big=2", token, body + b"x")
    assert over.status_code == 413
    assert over.json()["error_code"] == "body_too_large"
    assert not any("big=2" in url for url in stack.seen())


def test_a_chunked_upload_is_forwarded_with_its_length(stack: Stack) -> None:
    alice = stack.clients["alice"]
    body = b"".join(f"piece {n};".encode() * 300 for n in range(20))
    headers = alice.headers("POST", SMS, stack.token("alice"), body)

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 4000):
            yield body[start : start + 4000]

    response = alice.http.post(stack.gateway.url + SMS, headers=headers, content=pieces())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    data = echo(response)
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert header_values(data, "content-length") == [str(len(body))]
    assert header_values(data, "transfer-encoding") == []


def test_upstream_status_and_headers_come_back(stack: Stack) -> None:
    alice = stack.clients["alice"]
    response = alice.call("GET", stack.gateway.url + DEVICE + "?status=418", stack.token("alice"))
    assert response.status_code == 418
    assert response.headers["x-upstream"] == "node"
    assert response.json()["url"].endswith("?status=418")


def test_every_call_gets_its_own_request_id(stack: Stack) -> None:
    alice = stack.clients["alice"]
    token = stack.token("alice")
    ids = set()
    for n in range(3):
        data = echo(alice.call("GET", stack.gateway.url + DEVICE + f"?n={n}", token))
        ids.update(header_values(data, "x-request-id"))
    assert len(ids) == 3


def test_answers_of_every_framing_come_back_whole(stack: Stack) -> None:
    """Ended by the connection's close, without a body (HEAD, 204): each answer is whole and
    the connection pool stays usable after it."""
    alice = stack.clients["alice"]
    token = stack.token("alice")
    data = echo(alice.call("GET", stack.gateway.url + DEVICE + "?eof=1", token))
    assert data["url"] == DEVICE + "?eof=1"
    head = alice.call("HEAD", stack.gateway.url + DEVICE + "?head=1", token)
    assert head.status_code == 200
    assert head.content == b""
    empty = alice.call("GET", stack.gateway.url + DEVICE + "?status=204", token)
    assert empty.status_code == 204
    assert empty.content == b""
    for n in range(3):
        assert echo(alice.call("GET", stack.gateway.url + DEVICE + f"?after={n}", token))
    assert sum("?head=1" in url for url in stack.seen()) == 1
