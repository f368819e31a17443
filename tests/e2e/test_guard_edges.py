"""The guard's edges as a user meets them, over real processes: unknown paths are 404 (a near
miss under ``/oauth2/`` names the token endpoints) before any authentication, an access token
in the query is 400, and every verdict is counted in ``/metrics`` and audited with the status
the API really answered. Both ways to run the guard: ``taap serve --with-sample-apis`` (one
port) and ``taap sample-api`` beside ``taap serve``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from e2e_kit import Stack

from kit.clients import register_clients
from kit.metrics import guard_durations, guard_verdicts, increase
from kit.processes import start_serve
from logkit import audit_records
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e

DEVICE = "/iot-connectivity/v1/devices/8901260000000000003"
NO_DEVICE = "/iot-connectivity/v1/devices/8901260000000000010"
SMS = "/sms/v1/messages"
NEAR_MISSES = [
    ("POST", "/oauth2/v2/token"),
    ("POST", "/oauth2/v6/tokenz"),
    ("GET", "/oauth2/tokens"),
]


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("guard-edges")
    database_url = f"sqlite:///{folder / 'taap.db'}"
    clients = register_clients(database_url, {"a": (rsa_key, ("connectivity", "sms-notification"))})
    service = start_serve(folder, database_url, "--with-sample-apis", name="serve+sample")
    running = Stack(folder, database_url, service, service, clients)
    yield running
    running.stop()


def check_unknown_paths(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        for method, path in NEAR_MISSES:
            response = http.request(method, path, headers={"Authorization": "Bearer x.y.z"})
            assert response.status_code == 404, (path, response.text)
            body = response.json()
            assert (body["error"], body["error_code"]) == ("invalid_request", "not_found")
            assert "/oauth2/v2/tokens" in body["error_description"]
            assert "/oauth2/v6/tokens" in body["error_description"]
        for path in ("/no/such/path", "/sms/v2/messages", "/location/v1/x"):
            response = http.get(path)
            assert (response.status_code, response.json()["error_code"]) == (404, "not_found")
            assert response.json()["error_description"] == "not found"
        served = http.get(DEVICE)  # served, so guarded as before
        assert (served.status_code, served.json()["error_code"]) == (401, "token_invalid")


def test_unknown_paths_on_serve_with_sample_apis(combined: Stack) -> None:
    check_unknown_paths(combined.api.url)


def test_unknown_paths_on_sample_api(stack: Stack) -> None:
    check_unknown_paths(stack.api.url)


def test_unknown_paths_on_plain_serve(stack: Stack) -> None:
    # The token server alone answers its own 404s, with the same hint.
    response = httpx.post(stack.token.url + "/oauth2/v2/token", timeout=10)
    assert (response.status_code, response.json()["error_code"]) == (404, "not_found")
    assert (
        "POST /oauth2/v2/tokens and POST /oauth2/v6/tokens" in response.json()["error_description"]
    )


def test_access_token_in_query_is_400(combined: Stack) -> None:
    client = combined.clients["a"]
    access = str(client.tokens(combined.token_url)["access_token"])
    target = f"{DEVICE}?access_token={access}"
    response = client.http.get(
        combined.api.url + target, headers=client.headers("GET", target, access)
    )
    assert (response.status_code, response.json()["error_code"]) == (400, "request_malformed")
    assert access not in response.text


def test_verdicts_in_metrics_and_real_status_in_audit(combined: Stack) -> None:
    client = combined.clients["a"]
    access = str(client.tokens(combined.token_url)["access_token"])
    base = combined.api.url
    before = httpx.get(base + "/metrics", timeout=10).text
    first = client.call("GET", base + DEVICE, access)
    assert first.status_code == 200
    assert client.call("GET", base + NO_DEVICE, access).status_code == 404  # the API's own 404
    body = json.dumps({"to": "+14255550100", "text": "hi"}).encode()
    assert client.call("POST", base + SMS, access, body).status_code == 201
    replayed = client.http.get(base + DEVICE, headers=first.request.headers)
    assert replayed.json()["error_code"] == "pop_replayed"
    assert httpx.post(base + "/oauth2/v2/token", timeout=10).status_code == 404
    after = httpx.get(base + "/metrics", timeout=10).text
    assert increase(guard_verdicts(before), guard_verdicts(after)) == {
        ("accepted", ""): 3,
        ("refused", "pop_replayed"): 1,
        ("refused", "not_found"): 1,
    }
    assert increase(guard_durations(before), guard_durations(after)) == {
        ("accepted",): 3,
        ("refused",): 2,
    }
    # The audit line is written as the API starts its answer: complete once the client has it.
    lines = [x for x in audit_records(combined.api.log) if x["event"].startswith("api_call_")]
    accepted = {
        (x["method"], x["path"], x["status"]) for x in lines if x["event"] == "api_call_accepted"
    }
    assert {("GET", DEVICE, 200), ("GET", NO_DEVICE, 404), ("POST", SMS, 201)} <= accepted
    assert all(isinstance(status, int) for _, _, status in accepted)
    refused = {
        (x["path"], x["status"], x["error_code"]) for x in lines if x["event"] == "api_call_refused"
    }
    assert {(DEVICE, 401, "pop_replayed"), ("/oauth2/v2/token", 404, "not_found")} <= refused


def test_sample_api_counts_its_verdicts(stack: Stack) -> None:
    client = stack.clients["a"]
    access = str(client.tokens(stack.token_url)["access_token"])
    base = stack.api.url
    before = httpx.get(base + "/metrics", timeout=10).text
    first = client.call("GET", base + DEVICE, access)
    assert first.status_code == 200
    assert client.http.get(base + DEVICE, headers=first.request.headers).status_code == 401
    assert httpx.get(base + "/no/such/path", timeout=10).status_code == 404
    after = httpx.get(base + "/metrics", timeout=10).text
    assert increase(guard_verdicts(before), guard_verdicts(after)) == {
        ("accepted", ""): 1,
        ("refused", "pop_replayed"): 1,
        ("refused", "not_found"): 1,
    }
    assert increase(guard_durations(before), guard_durations(after)) == {
        ("accepted",): 1,
        ("refused",): 2,
    }
