"""nginx's ``auth_request`` asking a real ``taap gateway --auth-request``, with nginx built from
deploy/nginx-gateway.conf in front of the node API: nginx proxies, the gateway only judges."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_kit import DEPLOY_CONF, nginx_gateway_conf, start_gateway, start_nginx

from conftest import DEVICE, Stack
from kit.processes import Service, free_port


@dataclass
class Front:
    url: str
    nginx: subprocess.Popen[bytes]
    judge: Service
    folder: Path


@pytest.fixture(scope="module")
def front(stack: Stack, nginx_bin: str) -> Iterator[Front]:
    judge = start_gateway(
        stack.folder,
        stack.token_server.url,
        {},
        "--auth-request",
        name="gateway-auth",
        redis_url=stack.redis_url,
    )
    folder = stack.folder / "nginx"
    folder.mkdir()
    port = free_port()
    conf = nginx_gateway_conf(
        DEPLOY_CONF.read_text(),
        gateway=judge.url.removeprefix("http://"),
        api=stack.upstream.url.removeprefix("http://"),
        port=port,
        folder=folder,
    )
    nginx = start_nginx(nginx_bin, conf, folder, port)
    try:
        yield Front(f"http://127.0.0.1:{port}", nginx, judge, folder)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
        judge.stop()


def echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def values(data: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in data["headers"] if key.lower() == name]


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error_code"] == code


def test_verified_call_reaches_the_api_with_the_caller(stack: Stack, front: Front) -> None:
    alice = stack.clients["alice"]
    target = DEVICE + "?via=nginx&x=%20y"
    headers = {
        **alice.headers("GET", target, stack.token("alice")),
        "X-Taap-Client-Id": "taap-someone-else",
    }
    data = echo(alice.http.get(front.url + target, headers=headers))
    assert data["url"] == target
    assert values(data, "x-taap-client-id") == [alice.client_id]
    assert values(data, "x-taap-product") == ["connectivity"]
    assert values(data, "x-authorization") == []


def test_refusals_keep_the_guards_status_and_body(stack: Stack, front: Front) -> None:
    alice = stack.clients["alice"]
    target = DEVICE + "?again=1"
    headers = alice.headers("GET", target, stack.token("alice"))
    assert alice.http.get(front.url + target, headers=headers).status_code == 200
    again = alice.http.get(front.url + target, headers=headers)
    refused(again, 401, "pop_replayed")
    assert again.headers.get_list("www-authenticate") == [
        'Bearer realm="taap", error="invalid_token"'
    ]
    refused(httpx.get(front.url + DEVICE), 401, "token_invalid")
    refused(httpx.get(front.url + DEVICE + "?access_token=x"), 400, "request_malformed")
    assert sum(url.endswith("?again=1") for url in stack.seen()) == 1


def test_a_call_with_a_body_is_refused(stack: Stack, front: Front) -> None:
    alice = stack.clients["alice"]
    target = DEVICE + "?with-body=1"
    body = b'{"a": 1}'
    headers = alice.headers("POST", target, stack.token("alice"), body)
    refused(
        alice.http.post(front.url + target, headers=headers, content=body), 413, "body_too_large"
    )

    def pieces() -> Iterator[bytes]:
        yield body

    chunked = alice.http.post(front.url + target, headers=headers, content=pieces())
    refused(chunked, 413, "body_too_large")
    assert not any("with-body" in url for url in stack.seen())


def test_an_unsubscribed_product_is_403(stack: Stack, front: Front) -> None:
    dave = stack.clients["dave"]  # SMS Notification only
    target = DEVICE + "?dave=1"
    headers = dave.headers("GET", target, stack.token("dave"))
    refused(dave.http.get(front.url + target, headers=headers), 403, "not_subscribed")
    assert not any("dave=1" in url for url in stack.seen())


def test_the_verdict_itself(stack: Stack, front: Front) -> None:
    alice = stack.clients["alice"]
    headers = alice.headers("GET", "/location/v1/where", stack.token("alice"))
    headers = {**headers, "X-Original-Method": "GET", "X-Original-URI": "/location/v1/where"}
    verdict = httpx.get(front.judge.url + "/auth", headers=headers)
    assert verdict.status_code == 200
    assert verdict.headers["x-taap-client-id"] == alice.client_id
    assert verdict.headers["x-taap-product"] == "location"
    again = httpx.get(front.judge.url + "/auth", headers=headers)
    assert again.status_code == 401
    assert again.headers["x-taap-status"] == "401"
    assert again.json() == json.loads(again.headers["x-taap-error"])
    assert again.json()["error_code"] == "pop_replayed"
    no_uri = httpx.get(front.judge.url + "/auth", headers={"X-Original-Method": "GET"})
    assert no_uri.status_code == 400
    assert no_uri.headers["x-taap-status"] == "400"


def test_gateway_down_is_503(stack: Stack, front: Front) -> None:
    front.judge.stop()
    refused(httpx.get(front.url + DEVICE), 503, "unavailable")
