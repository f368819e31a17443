"""``taap token`` and ``taap call`` as the user runs them, against a real ``taap serve
--with-sample-apis`` process on loopback with a client made by ``taap clients create``; the
printed curl command run by real curl."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from kit.clients import ServedClient, serve_with_a_client
from kit.processes import TAAP
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
APIS = ["connectivity", "sms-notification", "call-verification"]


Served = ServedClient


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Served]:
    with serve_with_a_client(tmp_path_factory.mktemp("serve"), rsa_key, APIS, "client-e2e") as it:
        yield it


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
