"""The A9 sample APIs in-process, guarded by static keys."""

from __future__ import annotations

import json

import httpx
import pytest
from resource_kit import ISSUER, KID, NOW, Caller

from taap.core import PrivateKey, build_pop_token, request_pairs
from taap.resource import StaticKeys
from taap.resource.sample import DEVICES, create_sample_app

SMS = "/sms/v1/messages"


@pytest.fixture
def api(server_key: PrivateKey) -> httpx.AsyncClient:
    app = create_sample_app(
        keys=StaticKeys({KID: server_key.public}, issuer=ISSUER), clock=lambda: NOW
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


def device_path(iccid: str) -> str:
    return f"/iot-connectivity/v1/devices/{iccid}"


def test_nine_devices() -> None:
    assert sorted(DEVICES) == [f"890126000000000000{n}" for n in range(1, 10)]
    assert all(len(i) == 19 for i in DEVICES)


@pytest.mark.parametrize("n", [1, 9])
async def test_known_device(api: httpx.AsyncClient, caller: Caller, n: int) -> None:
    target = device_path(f"890126000000000000{n}")
    response = await api.get(target, headers=caller.headers("GET", target))
    assert response.status_code == 200
    data = response.json()
    assert data["iccid"] == f"890126000000000000{n}"
    assert set(data) == {"iccid", "status", "plan", "last_seen"}


@pytest.mark.parametrize(
    ("iccid", "status", "code"),
    [
        ("8901260000000000010", 404, "not_found"),
        ("89012600000000000100", 404, "not_found"),  # 20 digits: valid form, unknown
        ("890126000000000001", 400, "request_malformed"),  # 18 digits
        ("890126000000000000100", 400, "request_malformed"),  # 21 digits
        ("7901260000000000001", 400, "request_malformed"),  # not 89
        ("89012600000000000a1", 400, "request_malformed"),
    ],
)
async def test_device_errors(
    api: httpx.AsyncClient, caller: Caller, iccid: str, status: int, code: str
) -> None:
    target = device_path(iccid)
    response = await api.get(target, headers=caller.headers("GET", target))
    assert response.status_code == status
    assert response.json()["error_code"] == code


async def test_send_sms(api: httpx.AsyncClient, caller: Caller) -> None:
    body = json.dumps({"to": "+14255550100", "text": "x" * 918}).encode()
    response = await api.post(SMS, content=body, headers=caller.headers("POST", SMS, body))
    assert response.status_code == 201
    data = response.json()
    assert data["status"] == "queued"
    assert set(data) == {"message_id", "status"}
    assert data["message_id"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"to": "+14255550100", "text": ""}',
        b'{"to": "+14255550100", "text": "' + b"x" * 919 + b'"}',
        b'{"to": "4255550100", "text": "hi"}',
        b'{"to": "+04255550100", "text": "hi"}',
        b'{"to": "+14255550100"}',
        b'{"to": "+14255550100", "text": "hi", "extra": 1}',
        b'{"to": "+14255550100", "text": "hi", "text": "again"}',
        b'{"to": "+14255550100", "text": 5}',
        b'["+14255550100", "hi"]',
        b"not json",
    ],
)
async def test_sms_body_invalid(api: httpx.AsyncClient, caller: Caller, body: bytes) -> None:
    response = await api.post(SMS, content=body, headers=caller.headers("POST", SMS, body))
    assert response.status_code == 400
    assert response.json()["error_code"] == "body_invalid"


async def test_sms_wrong_content_type(api: httpx.AsyncClient, caller: Caller) -> None:
    body = b'{"to": "+14255550100", "text": "hi"}'
    # A correctly signed request that declares text/plain: the guard passes, the API refuses.
    headers = caller.headers("POST", SMS, body)
    headers["Content-Type"] = "text/plain"
    pairs = request_pairs(
        "POST",
        SMS,
        [("Content-Type", "text/plain"), ("Authorization", headers["Authorization"])],
        body,
    )
    headers["X-Authorization"] = build_pop_token(pairs, caller.key, now=NOW)
    response = await api.post(SMS, content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["error_code"] == "content_type_unsupported"


async def test_wrong_method_is_405_after_guard(api: httpx.AsyncClient, caller: Caller) -> None:
    target = device_path("8901260000000000001")
    response = await api.delete(target, headers=caller.headers("DELETE", target))
    assert response.status_code == 405
    assert response.json()["error_code"] == "method_not_allowed"
    assert response.headers["allow"]


async def test_health_is_open(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}


async def test_metrics_are_open_and_list_the_jwks_counter(api: httpx.AsyncClient) -> None:
    # /metrics needs no token (like /healthz) and exposes taap_jwks_refreshes_total.
    from taap.resource.metrics import jwks_refreshed

    jwks_refreshed(True)
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert "text/plain" in response.headers["content-type"]
    assert 'taap_jwks_refreshes_total{outcome="ok"}' in response.text
    unserved = await api.get("/metricsx")  # only the exact path is open, and it serves nothing
    assert (unserved.status_code, unserved.json()["error_code"]) == (404, "not_found")
