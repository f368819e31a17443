"""The sample APIs' OpenAPI document: valid OpenAPI 3.1, served without a token, describing
exactly the routes the app serves, and every answer the app gives is a documented response."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from resource_kit import ISSUER, KID, NOW, Caller
from starlette.routing import Route

from kit.processes import start_sample_api, start_serve
from taap.core import PrivateKey
from taap.error_guide import wire_errors
from taap.resource import StaticKeys
from taap.resource.sample import HEALTH_PATH, METRICS_PATH, create_sample_app
from taap.resource.sample_openapi import (
    GUARD_ERRORS,
    OPENAPI_PATHS,
    SAMPLE_OPERATIONS,
    sample_openapi_document,
)

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
SMS = "/sms/v1/messages"


@pytest.fixture
def app(server_key: PrivateKey) -> Any:
    keys = StaticKeys({KID: server_key.public}, issuer=ISSUER)
    return create_sample_app(keys=keys, clock=lambda: NOW)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


@pytest.mark.parametrize("product", [None, "connectivity", "sms-notification"])
def test_the_documents_are_valid_openapi_31(product: str | None) -> None:
    document = sample_openapi_document(product)
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["security"] == [{"accessToken": [], "pop": []}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["accessToken"]["scheme"] == "bearer"
    assert schemes["pop"] == {**schemes["pop"], "in": "header", "name": "X-Authorization"}


def test_the_document_lists_exactly_the_guarded_routes(app: Any) -> None:
    served = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route)
        and route.path not in (HEALTH_PATH, METRICS_PATH, *OPENAPI_PATHS)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {
        (path, method.upper())
        for path, item in sample_openapi_document()["paths"].items()
        for method in item
    }
    assert served == documented == {(DEVICE.rsplit("/", 1)[0] + "/{iccid}", "GET"), (SMS, "POST")}
    by_product = {op.product for op in SAMPLE_OPERATIONS}
    assert by_product == {"connectivity", "sms-notification"}


def test_every_error_example_is_the_wire_form_of_a_tree_error() -> None:
    wire = {cls.error_code: cls for cls in wire_errors()}
    for item in sample_openapi_document()["paths"].values():
        for operation in item.values():
            for status, answer in operation["responses"].items():
                examples = answer["content"]["application/json"].get("examples", {})
                for code, example in examples.items():
                    assert wire[code].status_code == int(status)
                    assert example["value"]["error_code"] == code
    assert {cls.error_code for cls in GUARD_ERRORS} <= set(wire)


def documented(status: int, code: str | None, path: str, method: str) -> bool:
    item = next(
        value
        for key, value in sample_openapi_document()["paths"].items()
        if key.split("{")[0] == path[: len(key.split("{")[0])]
    )
    answer = item[method.lower()]["responses"].get(str(status))
    if answer is None:
        return False
    return code is None or code in answer["content"]["application/json"].get("examples", {})


async def test_served_without_a_token_at_both_paths(app: Any) -> None:
    async with client(app) as http:
        for path in OPENAPI_PATHS:
            answer = await http.get(path)
            assert answer.status_code == 200
            assert answer.json() == json.loads(json.dumps(sample_openapi_document()))


async def test_the_apps_answers_are_documented(app: Any, caller: Caller) -> None:
    sms = json.dumps({"to": "+14255550100", "text": "hi"}).encode()
    async with client(app) as http:
        calls = [
            ("GET", DEVICE, b"", caller.headers("GET", DEVICE)),
            ("GET", DEVICE[:-1] + "9", b"", caller.headers("GET", DEVICE[:-1] + "9")),
            ("GET", DEVICE + "0", b"", caller.headers("GET", DEVICE + "0")),
            ("GET", DEVICE[:-3], b"", caller.headers("GET", DEVICE[:-3])),
            ("GET", DEVICE, b"", {}),
            ("POST", SMS, sms, caller.headers("POST", SMS, sms)),
            ("POST", SMS, b"{}", caller.headers("POST", SMS, b"{}")),
            ("POST", SMS, sms, {}),
        ]
        seen = set()
        for method, path, body, headers in calls:
            answer = await http.request(method, path, content=body, headers=headers)
            code = answer.json().get("error_code") if answer.status_code >= 400 else None
            seen.add((answer.status_code, code))
            assert documented(answer.status_code, code, path, method), (path, answer.text)
        replayed = caller.headers("GET", DEVICE, jti="reused-jti")
        await http.get(DEVICE, headers=replayed)
        again = await http.get(DEVICE, headers=replayed)
    assert again.json()["error_code"] == "pop_replayed"
    assert documented(401, "pop_replayed", DEVICE, "GET")
    assert {(200, None), (201, None), (404, "not_found"), (401, "token_invalid")} <= seen
    assert (400, "body_invalid") in seen
    assert (400, "request_malformed") in seen


def test_served_by_taap_sample_api_and_beside_the_token_servers_own(tmp_path: Any) -> None:
    """``taap sample-api`` at /openapi.json; ``taap serve --with-sample-apis`` keeps its own
    /openapi.json and serves the sample APIs' at /sample-apis/openapi.json."""
    expected = json.loads(json.dumps(sample_openapi_document()))
    server = start_serve(tmp_path, f"sqlite:///{tmp_path / 'taap.db'}", "--with-sample-apis")
    try:
        own = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
        beside = httpx.get(f"{server.url}/sample-apis/openapi.json", timeout=10)
        sample = start_sample_api(tmp_path, server.url)
        try:
            alone = httpx.get(f"{sample.url}/openapi.json", timeout=10)
        finally:
            sample.stop()
    finally:
        server.stop()
    assert own["info"]["title"] == "taap token server"
    assert beside.status_code == 200
    assert beside.json() == expected
    assert alone.status_code == 200
    assert alone.json() == expected
