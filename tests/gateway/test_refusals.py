"""What a real ``taap gateway`` refuses, with the guard's answers, and that a refused call never
reaches the upstream; upstream failures as 502 and 504."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from conftest import DEVICE, DOWN_PATH, Stack
from kit.processes import taap_ok, wait_until
from logkit import audit_records

SMS = "/sms/v1/messages"


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def mark() -> str:
    return "mark=" + uuid.uuid4().hex


def test_replayed_pop_is_refused_and_forwarded_once(stack: Stack) -> None:
    alice = stack.clients["alice"]
    target = DEVICE + "?" + mark()
    headers = alice.headers("GET", target, stack.token("alice"))
    assert alice.http.get(stack.gateway.url + target, headers=headers).status_code == 200
    again = alice.http.get(stack.gateway.url + target, headers=headers)
    refused(again, 401, "pop_replayed")
    assert sum(url == target for url in stack.seen()) == 1


def test_tampered_body_query_and_method_are_refused(stack: Stack) -> None:
    alice = stack.clients["alice"]
    token = stack.token("alice")
    signed = b'{"to": "+14255550100", "text": "one"}'
    target = SMS + "?" + mark()
    headers = alice.headers("POST", target, token, signed)
    url = stack.gateway.url + target
    refused(
        alice.http.post(url, headers=headers, content=signed.replace(b"one", b"two")),
        401,
        "pop_edts_mismatch",
    )
    headers = alice.headers("GET", DEVICE + "?a=1&" + mark(), token)
    query = DEVICE + "?a=2&" + mark()
    refused(alice.http.get(stack.gateway.url + query, headers=headers), 401, "pop_edts_mismatch")
    method = DEVICE + "?" + mark()
    headers = alice.headers("GET", method, token)
    refused(
        alice.http.delete(stack.gateway.url + method, headers=headers), 401, "pop_edts_mismatch"
    )
    seen = stack.seen()
    assert not any(target in u or query in u or method in u for u in seen)


def test_missing_or_bad_credentials(stack: Stack) -> None:
    url = stack.gateway.url + DEVICE
    refused(httpx.get(url), 401, "token_invalid")
    alice = stack.clients["alice"]
    headers = alice.headers("GET", DEVICE, stack.token("alice"))
    del headers["X-Authorization"]
    refused(httpx.get(url, headers=headers), 401, "pop_missing")
    refused(httpx.get(url, headers={"Authorization": "Bearer not.a.token"}), 401, "token_invalid")


def test_unsubscribed_product_is_refused(stack: Stack) -> None:
    bob = stack.clients["bob"]
    target = SMS + "?" + mark()
    body = b'{"to": "+14255550100", "text": "hi"}'
    refused(
        bob.call("POST", stack.gateway.url + target, stack.token("bob"), body),
        403,
        "not_subscribed",
    )
    assert not any(target in u for u in stack.seen())


def test_unknown_path_is_404_before_any_check(stack: Stack) -> None:
    refused(httpx.get(stack.gateway.url + "/orders/v1/list"), 404, "not_found")
    refused(httpx.get(stack.gateway.url + "/oauth2/v2/token"), 404, "not_found")
    refused(
        httpx.get(stack.gateway.url + "/iot-connectivity/v1/%2e%2e/x"), 400, "request_malformed"
    )


def test_revoked_token_is_refused_within_the_revocation_bound(stack: Stack) -> None:
    carol = stack.clients["carol"]
    token = stack.token("carol")
    assert carol.call("GET", stack.gateway.url + DEVICE, token).status_code == 200
    taap_ok("clients", "revoke-tokens", carol.client_id, "--database-url", stack.database_url)
    deadline = time.monotonic() + 15
    while True:
        response = carol.call("GET", stack.gateway.url + DEVICE, token)
        if response.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    refused(response, 401, "token_revoked")


def test_upstream_down_is_502(stack: Stack) -> None:
    alice = stack.clients["alice"]
    response = alice.call("GET", stack.gateway.url + DOWN_PATH, stack.token("alice"))
    refused(response, 502, "upstream_unavailable")
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["x-request-id"]
    # The call was verified: its audit line says so, with the status the caller got.
    wait_until(
        lambda: any(
            r["event"] == "api_call_accepted" and r["path"] == DOWN_PATH and r["status"] == 502
            for r in audit_records(stack.gateway.log)
        ),
        10,
        "the audit line of the 502",
    )


def test_slow_upstream_is_504(stack: Stack) -> None:
    alice = stack.clients["alice"]
    # The gateway's --upstream-timeout is 2 s; the upstream answers after 6 s.
    response = alice.call("GET", stack.gateway.url + DEVICE + "?slow=6000", stack.token("alice"))
    refused(response, 504, "upstream_timeout")


def test_upstream_cut_mid_answer_ends_the_connection(stack: Stack) -> None:
    alice = stack.clients["alice"]
    try:
        response = alice.call("GET", stack.gateway.url + DEVICE + "?cut=1", stack.token("alice"))
    except httpx.HTTPError:
        return  # the caller sees a broken answer, never a complete one
    raise AssertionError(f"a cut answer arrived whole: {response.status_code}")


def test_upstream_stalling_mid_answer_ends_the_connection(stack: Stack) -> None:
    alice = stack.clients["alice"]
    target = DEVICE + "?stall=1"
    headers = alice.headers("GET", target, stack.token("alice"))
    with alice.http.stream("GET", stack.gateway.url + target, headers=headers) as response:
        assert response.status_code == 200
        # The next piece never comes: after --upstream-timeout (2 s) the gateway gives up and
        # ends the connection (the client's own read timeout, 10 s, would be a ReadTimeout).
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_health_readiness_and_metrics(stack: Stack) -> None:
    assert httpx.get(stack.gateway.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(stack.gateway.url + "/readyz")
    # The Location upstream is down on purpose: the gateway is not ready, and says which.
    assert ready.status_code == 503
    assert ready.json() == {"status": "unready", "unreachable": ["location"]}
    metrics = httpx.get(stack.gateway.url + "/metrics").text
    assert 'taap_gateway_upstream_requests_total{outcome="2xx",product="connectivity"}' in metrics
    assert "taap_guard_requests_total" in metrics
    refused(httpx.post(stack.gateway.url + "/healthz"), 405, "method_not_allowed")
    assert json.loads(httpx.get(stack.gateway.url + "/healthz").text)["status"] == "ok"
