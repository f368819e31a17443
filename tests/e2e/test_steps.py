"""Steps 1-4 end to end: real token server and guard processes on loopback ports."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_kit import Stack, start_echo

from kit.processes import Service
from taap.client import ClientCredentials, PopAuth, Secret, TokenClient
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
SMS = "/sms/v1/messages"


def test_steps_1_to_4_by_hand(stack: Stack) -> None:
    client = stack.clients["a"]
    tokens = client.tokens(stack.token_url)
    assert set(tokens) == {"id_token", "access_token", "expires_in", "scope", "status"}
    response = client.call("GET", stack.api.url + DEVICE, tokens["access_token"])
    assert response.status_code == 200
    assert response.json()["iccid"] == "8901260000000000001"
    body = b'{"to": "+14255550100", "text": "hello from e2e"}'
    response = client.call("POST", stack.api.url + SMS, tokens["access_token"], body)
    assert response.status_code == 201
    assert response.json()["status"] == "queued"


def test_steps_1_to_4_with_the_sdk(stack: Stack, rsa_key: PrivateKey) -> None:
    client = stack.clients["sdk"]
    credentials = ClientCredentials(
        client_id=client.client_id, client_secret=Secret(client.secret), key=rsa_key
    )
    tokens = TokenClient(stack.token_url, credentials)
    try:
        with httpx.Client(auth=PopAuth(tokens), base_url=stack.api.url) as http:
            first = http.get(DEVICE)
            second = http.get(DEVICE.replace("0001", "0009"))
    finally:
        tokens.close()
    assert first.status_code == 200, first.text
    assert second.json()["iccid"] == "8901260000000000009"


def test_tmo_npm_builder_pop_is_accepted(
    stack: Stack, demo_key: PrivateKey, tmo_builder_dir: Path, tmp_path: Path
) -> None:
    client = stack.clients["tmo"]
    access = client.tokens(stack.token_url)["access_token"]
    pem = tmp_path / "demo.pem"
    pem.write_bytes(demo_key.to_pem())
    pairs = [
        ["Content-Type", "application/json"],
        ["Authorization", f"Bearer {access}"],
        ["uri", DEVICE],
        ["http-method", "GET"],
    ]
    builder = tmo_builder_dir / "node_modules" / "tmo-poptoken-builder" / "poptoken-builder-node.js"
    pop = subprocess.run(
        [
            "node",
            str(Path(__file__).with_name("tmo_pop.js")),
            str(builder),
            str(pem),
            json.dumps(pairs),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {access}",
        "X-Authorization": pop,
    }
    response = httpx.get(stack.api.url + DEVICE, headers=headers)
    assert response.status_code == 200, response.text
    again = httpx.get(stack.api.url + DEVICE, headers=headers)
    assert again.json()["error_code"] == "pop_replayed"


@pytest.fixture(scope="module")
def echo(stack: Stack) -> Iterator[Service]:
    service = start_echo(stack.folder, stack.token.url, max_body=4096)
    yield service
    service.stop()


def test_body_reaches_the_app_unchanged(stack: Stack, echo: Service) -> None:
    client = stack.clients["a"]
    access = client.tokens(stack.token_url)["access_token"]
    body = '{ "z":1,\n  "a" : "héllo €"  ,"n":1.50 }\r\n'.encode()
    response = client.call("PUT", echo.url + "/echo/items/1?x=a+b", access, body)
    assert response.status_code == 200, response.text
    assert base64.b64decode(response.json()["body_b64"]) == body
    assert response.json()["client_id"] == client.client_id


def test_body_over_the_cap_is_413(stack: Stack, echo: Service) -> None:
    client = stack.clients["a"]
    access = client.tokens(stack.token_url)["access_token"]
    body = b'{"pad":"' + b"x" * 5000 + b'"}'
    response = client.call("POST", echo.url + "/echo/big", access, body)
    assert response.status_code == 413
    assert response.json()["error_code"] == "body_too_large"


def test_sample_api_default_cap_is_one_mib(stack: Stack) -> None:
    client = stack.clients["a"]
    access = client.tokens(stack.token_url)["access_token"]
    body = b"x" * (1024 * 1024 + 1)
    response = client.call("POST", stack.api.url + SMS, access, body)
    assert response.status_code == 413
    assert response.json()["error_code"] == "body_too_large"
