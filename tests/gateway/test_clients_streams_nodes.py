"""PoPs from the SDK and from T-Mobile's npm builder through a real gateway; a 50 MiB answer
streamed without the gateway's memory growing; two gateways sharing one Redis; the drain of
in-flight calls at SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from gateway_kit import npm_pops, rss_kib, start_gateway

from conftest import DEVICE, PRODUCTS, Stack
from kit.processes import wait_until
from taap.client import NO_RETRY, ClientCredentials, PopAuth, Secret, TokenClient
from taap.core import PrivateKey

MIB = 1024 * 1024


def test_sdk_pop_auth_through_the_gateway(stack: Stack, keys: dict[str, PrivateKey]) -> None:
    alice = stack.clients["alice"]
    credentials = ClientCredentials(
        client_id=alice.client_id, client_secret=Secret(alice.secret), key=keys["alice"]
    )
    with httpx.Client(timeout=10) as http:
        tokens = TokenClient(stack.token_url, credentials, retry=NO_RETRY, http=http)
        auth = PopAuth(tokens, retry=NO_RETRY)
        got = http.get(stack.gateway.url + DEVICE + "?sdk=1", auth=auth)
        assert got.status_code == 200, got.text
        assert got.json()["url"] == DEVICE + "?sdk=1"
        body = b'{"to": "+14255550100", "text": "from the SDK"}'
        sent = http.post(
            stack.gateway.url + "/sms/v1/messages",
            content=body,
            headers={"Content-Type": "application/json"},
            auth=auth,
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["body_text"] == body.decode()


def test_npm_builder_pops_through_the_gateway(
    stack: Stack, keys: dict[str, PrivateKey], tmo_builder_dir: Path
) -> None:
    alice = stack.clients["alice"]
    token = stack.token("alice")
    bearer = f"Bearer {token}"
    body = '{"to": "+14255550100", "text": "from node"}'
    target = DEVICE + "?from=npm"
    jobs: list[list[tuple[str, Any]]] = [
        [
            ("Content-Type", "application/json"),
            ("Authorization", bearer),
            ("uri", target),
            ("http-method", "GET"),
        ],
        [
            ("Content-Type", "application/json"),
            ("Authorization", bearer),
            ("uri", "/sms/v1/messages"),
            ("http-method", "POST"),
            ("body", body),
        ],
    ]
    pem = keys["alice"].to_pem().decode()
    get_pop, post_pop = npm_pops(tmo_builder_dir, pem, jobs)
    base = {"Content-Type": "application/json", "Authorization": bearer}
    got = alice.http.get(stack.gateway.url + target, headers={**base, "X-Authorization": get_pop})
    assert got.status_code == 200, got.text
    sent = alice.http.post(
        stack.gateway.url + "/sms/v1/messages",
        headers={**base, "X-Authorization": post_pop},
        content=body.encode(),
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["body_text"] == body
    again = alice.http.get(stack.gateway.url + target, headers={**base, "X-Authorization": get_pop})
    assert again.json()["error_code"] == "pop_replayed"


def _stream(stack: Stack, token: str, mib: int, pause_every: int = 0) -> tuple[int, int]:
    """Read a ``mib`` MiB answer through the gateway; (bytes read, peak gateway RSS in KiB)."""
    alice = stack.clients["alice"]
    target = DEVICE + f"?stream={mib}"
    headers = alice.headers("GET", target, token)
    pid = stack.gateway.proc.pid
    peak = rss_kib(pid)
    read = 0
    with alice.http.stream("GET", stack.gateway.url + target, headers=headers) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        for chunk in response.iter_raw():
            before = read
            read += len(chunk)
            if pause_every and read // pause_every != before // pause_every:
                peak = max(peak, rss_kib(pid))
                time.sleep(0.01)  # a slower reader: the gateway must wait, not hoard
    return read, max(peak, rss_kib(pid))


def test_a_50_mib_answer_streams_without_the_gateway_growing(stack: Stack) -> None:
    token = stack.token("alice")
    _stream(stack, token, 4)  # warm-up: pools, buffers and allocator arenas in place
    baseline = rss_kib(stack.gateway.proc.pid)
    read, peak = _stream(stack, token, 50, pause_every=MIB)
    assert read == 50 * MIB
    growth = peak - baseline
    print(f"gateway RSS {baseline} KiB, peak while streaming 50 MiB {peak} KiB")
    # Holding the answer would cost 50 MiB or more; streaming costs a few buffers.
    assert growth < 25 * 1024, f"gateway RSS grew by {growth} KiB while streaming 50 MiB"


def test_two_gateways_sharing_redis_catch_a_replay_across_them(stack: Stack) -> None:
    second = start_gateway(
        stack.folder,
        stack.token_server.url,
        dict.fromkeys(PRODUCTS, stack.upstream.url),
        name="gateway-2",
        redis_url=stack.redis_url,
        TAAP_FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    try:
        alice = stack.clients["alice"]
        headers = alice.headers("GET", DEVICE + "?twice=1", stack.token("alice"))
        first = alice.http.get(stack.gateway.url + DEVICE + "?twice=1", headers=headers)
        assert first.status_code == 200
        other = alice.http.get(second.url + DEVICE + "?twice=1", headers=headers)
        assert other.status_code == 401
        assert other.json()["error_code"] == "pop_replayed"
        # And the other way round.
        headers = alice.headers("GET", DEVICE + "?twice=2", stack.token("alice"))
        assert alice.http.get(second.url + DEVICE + "?twice=2", headers=headers).status_code == 200
        back = alice.http.get(stack.gateway.url + DEVICE + "?twice=2", headers=headers)
        assert back.json()["error_code"] == "pop_replayed"
        # This one trusts 127.0.0.1 as a proxy: what that proxy says is kept and extended.
        target = DEVICE + "?proxied=1"
        headers = {
            **alice.headers("GET", target, stack.token("alice")),
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "api.example.com",
        }
        seen = alice.http.get(second.url + target, headers=headers).json()["headers"]
        forwarded = {k: v for k, v in seen if k.startswith("x-forwarded-")}
        assert forwarded == {
            "x-forwarded-for": "203.0.113.9, 127.0.0.1",
            "x-forwarded-proto": "https",
            "x-forwarded-host": "api.example.com",
        }
    finally:
        second.stop()


def test_sigterm_drains_the_calls_in_flight(stack: Stack) -> None:
    gateway = start_gateway(
        stack.folder,
        stack.token_server.url,
        dict.fromkeys(PRODUCTS, stack.upstream.url),
        name="gateway-drain",
        redis_url=stack.redis_url,
    )
    alice = stack.clients["alice"]
    target = DEVICE + "?slow=1500"
    headers = alice.headers("GET", target, stack.token("alice"))
    answers: list[httpx.Response | BaseException] = []

    def call() -> None:
        try:
            answers.append(alice.http.get(gateway.url + target, headers=headers))
        except BaseException as exc:  # surfaced below
            answers.append(exc)

    thread = threading.Thread(target=call)
    try:
        thread.start()
        deadline = time.monotonic() + 10
        while target not in stack.seen():  # the call is at the upstream, in flight
            assert time.monotonic() < deadline, "the call never reached the upstream"
            time.sleep(0.02)
        gateway.proc.send_signal(signal.SIGTERM)
        thread.join(20)
        assert gateway.proc.wait(20) == 0
    finally:
        gateway.stop()
    (answer,) = answers
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 200
    assert answer.json()["url"] == target


def test_several_workers_share_the_replay_store(stack: Stack) -> None:
    gateway = start_gateway(
        stack.folder,
        stack.token_server.url,
        dict.fromkeys(PRODUCTS, stack.upstream.url),
        "--workers",
        "2",
        name="gateway-workers",
        redis_url=stack.redis_url,
    )
    try:
        alice = stack.clients["alice"]
        token = stack.token("alice")
        for n in range(6):
            target = DEVICE + f"?worker={n}"
            headers = alice.headers("GET", target, token)
            # A fresh connection each time, so both workers take calls.
            with httpx.Client(timeout=10) as http:
                assert http.get(gateway.url + target, headers=headers).status_code == 200
            with httpx.Client(timeout=10) as http:
                again = http.get(gateway.url + target, headers=headers)
            assert again.json()["error_code"] == "pop_replayed"
    finally:
        assert gateway.stop() == 0


def in_flight(gateway_url: str) -> float:
    for line in httpx.get(gateway_url + "/metrics").text.splitlines():
        if line.startswith("taap_gateway_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no taap_gateway_in_flight in /metrics")


def test_a_caller_that_leaves_stops_the_upstream_call(stack: Stack) -> None:
    alice = stack.clients["alice"]
    target = DEVICE + "?drip=1"  # a minute of answer, unless someone stops it
    headers = alice.headers("GET", target, stack.token("alice"))
    with alice.http.stream("GET", stack.gateway.url + target, headers=headers) as response:
        assert response.status_code == 200
        next(response.iter_raw())
        assert in_flight(stack.gateway.url) == 1
    # The caller closed its connection: the gateway lets go of the upstream at once.
    wait_until(lambda: in_flight(stack.gateway.url) == 0, 5, "the gateway to drop the call")
