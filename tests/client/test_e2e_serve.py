"""End to end: a real ``taap serve --with-sample-apis`` process on loopback, a client made with
``taap clients create``, and the SDK, the ``taap`` CLI and real curl as the user runs them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import requests

from taap.client import ClientCredentials, PopAuth, PopRequestsAuth, Secret, TokenClient
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e

TAAP = str(Path(sys.executable).parent / "taap")
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


@dataclass
class Served:
    base: str
    client_id: str
    secret: str
    key_file: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    database = f"sqlite:///{tmp / 'taap.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAAP_")}
    env["XDG_CONFIG_HOME"] = str(tmp / "xdg")
    env["TAAP_SHUTDOWN_DRAIN"] = "0"  # no load balancer to drain from: stop at once
    port = _free_port()
    log = (tmp / "serve.log").open("wb")
    proc = subprocess.Popen(
        [TAAP, "serve", "--port", str(port), "--database-url", database, "--with-sample-apis"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"taap serve did not start: {(tmp / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        public = tmp / "client-public.pem"
        public.write_bytes(rsa_key.public.to_pem())
        key_file = tmp / "client.pem"
        key_file.write_bytes(rsa_key.to_pem())
        apis = ["--api", "connectivity", "--api", "sms-notification", "--api", "call-verification"]
        created = subprocess.run(
            [
                TAAP,
                "clients",
                "create",
                "--name",
                "client-e2e",
                "--public-key",
                str(public),
                *apis,
                "--json",
                "--database-url",
                database,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        record = json.loads(created.stdout)
        yield Served(base, record["client_id"], record["client_secret"], str(key_file), env)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _taap(served: Served, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(served.env, E2E_SECRET=served.secret)
    return subprocess.run([TAAP, *args], capture_output=True, env=env, timeout=60, check=False)


def _creds(served: Served) -> list[str]:
    return [
        "--client-id",
        served.client_id,
        "--client-secret-env",
        "E2E_SECRET",
        "--key",
        served.key_file,
    ]


def _curl(command: str) -> tuple[str, str]:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed")
    done = subprocess.run(
        ["bash", "-c", command + " --silent --show-error --write-out '\\n%{http_code}'"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    body, _, status = done.stdout.rpartition("\n")
    return status, body or done.stderr


@pytest.mark.parametrize("version", ["v2", "v6"])
def test_print_curl_output_run_by_curl_gets_a_200(served: Served, version: str) -> None:
    url = f"{served.base}/oauth2/{version}/tokens"
    printed = _taap(served, "token", "--url", url, *_creds(served), "--print-curl")
    assert printed.returncode == 0, printed.stderr
    command = printed.stdout.decode().strip()
    lines = command.split("\n")
    assert lines[0] == f"curl --location --request POST '{url}' \\"
    assert lines[1] == "--header 'Content-Type: application/json' \\"
    assert lines[2].startswith("--header 'Authorization: Basic ")
    assert lines[3].startswith("--header 'X-Authorization: eyJ")
    if version == "v2":
        assert lines[4] == "--data-raw ''"
    else:
        assert json.loads(lines[4].removeprefix("--data-raw '").removesuffix("'"))["scope"] == (
            "response_mode"
        )
    status, body = _curl(command)
    assert status == "200", body
    assert json.loads(body)["status"] == "approved"
    # One hop: the same printed command a second time is a replay.
    status, body = _curl(command)
    assert status == "401"
    assert json.loads(body)["error_code"] == "pop_replayed"


def test_taap_token_json(served: Served) -> None:
    done = _taap(served, "token", "--url", f"{served.base}/oauth2/v6/tokens", *_creds(served))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip().count(".") == 2
    full = _taap(
        served, "token", "--url", f"{served.base}/oauth2/v2/tokens", *_creds(served), "--json"
    )
    assert list(json.loads(full.stdout)) == [
        "id_token",
        "access_token",
        "expires_in",
        "scope",
        "status",
    ]


def test_taap_call_the_resource_api(served: Served) -> None:
    token_url = ["--token-url", f"{served.base}/oauth2/v2/tokens"]
    device = _taap(served, "call", "GET", f"{served.base}{DEVICE}", *token_url, *_creds(served))
    assert device.returncode == 0, device.stderr
    assert json.loads(device.stdout)["iccid"] == "8901260000000000001"
    sms = _taap(
        served,
        "call",
        "POST",
        f"{served.base}/sms/v1/messages",
        *token_url,
        *_creds(served),
        "--data",
        '{"to": "+14255550100", "text": "hello from taap call"}',
        "-i",
    )
    assert sms.returncode == 0, sms.stderr
    head, _, body = sms.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert json.loads(body)["status"] == "queued"
    bad = _taap(
        served,
        "call",
        "GET",
        f"{served.base}/iot-connectivity/v1/devices/12",
        *token_url,
        *_creds(served),
    )
    assert bad.returncode == 22
    assert json.loads(bad.stdout)["error_code"] == "request_malformed"


def test_sdk_httpx_and_requests_against_the_process(served: Served, rsa_key: PrivateKey) -> None:
    credentials = ClientCredentials(
        client_id=served.client_id, client_secret=Secret(served.secret), key=rsa_key
    )
    token_posts: list[str] = []
    token_http = httpx.Client(
        event_hooks={"request": [lambda request: token_posts.append(request.url.path)]}
    )
    tokens = TokenClient(f"{served.base}/oauth2/v2/tokens", credentials, http=token_http)
    with httpx.Client(base_url=served.base, auth=PopAuth(tokens)) as http:
        statuses = [http.get(DEVICE).status_code for _ in range(5)]
    with requests.Session() as session:
        session.auth = PopRequestsAuth(tokens)
        sent = session.post(
            f"{served.base}/sms/v1/messages", json={"to": "+14255550100", "text": "hi"}
        )
    token_http.close()
    assert statuses == [200] * 5
    assert sent.status_code == 201, sent.text
    assert token_posts == ["/oauth2/v2/tokens"]
