"""What a guard in any app reports: ``taap_guard_requests_total{outcome,error_code}`` and
``taap_guard_request_duration_seconds`` on the default registry (scraped over real HTTP from an
app of our own under uvicorn), and the status the application really answered in the
``api_call_accepted`` audit line."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from resource_kit import ISSUER, KID, NOW, Caller
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kit.loopback import serve
from kit.metrics import guard_durations, guard_verdicts, increase
from taap.core import MemoryReplayStore, PrivateKey
from taap.resource import GuardMiddleware, StaticKeys, Validator
from taap.resource.audit import GuardAudit
from taap.resource.metrics import CONTENT_TYPE, render

DEVICES = "/iot-connectivity/v1/devices/{iccid}"
KNOWN = "/iot-connectivity/v1/devices/8901260000000000001"
UNKNOWN = "/iot-connectivity/v1/devices/8901260000000000010"


async def device(request: Request) -> Response:
    iccid = request.path_params["iccid"]
    if iccid == "raise":
        raise RuntimeError("application bug")
    if iccid == "silent":
        return Response(status_code=204)
    if iccid != "8901260000000000001":
        return JSONResponse({"error_code": "not_found"}, status_code=404)
    return JSONResponse({"iccid": iccid})


async def metrics(request: Request) -> Response:
    return Response(render(), media_type=CONTENT_TYPE)


class Lines(logging.Handler):
    """Collects the audit lines of one guard (a logger of its own, whatever else logs)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


def guarded_app(server_key: PrivateKey, name: str) -> tuple[Starlette, Lines]:
    logger = logging.getLogger(f"test.guard-audit.{name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    lines = Lines()
    logger.handlers[:] = [lines]
    validator = Validator(
        StaticKeys({KID: server_key.public}, issuer=ISSUER),
        replay=MemoryReplayStore(),
        clock=lambda: NOW,
    )
    guard = Middleware(
        GuardMiddleware, validator=validator, exempt=["/metrics"], audit=GuardAudit(logger)
    )
    app = Starlette(routes=[Route(DEVICES, device), Route("/metrics", metrics)], middleware=[guard])
    return app, lines


def test_verdicts_are_counted_and_timed_over_http(server_key: PrivateKey, caller: Caller) -> None:
    app, lines = guarded_app(server_key, "http")
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        before = http.get("/metrics").text
        first = caller.headers("GET", KNOWN)
        assert http.get(KNOWN, headers=first).status_code == 200
        assert http.get(UNKNOWN, headers=caller.headers("GET", UNKNOWN)).status_code == 404
        assert http.get(KNOWN, headers=first).json()["error_code"] == "pop_replayed"
        assert http.post("/oauth2/v2/token").json()["error_code"] == "not_found"
        query = f"{KNOWN}?access_token=x"
        refused = http.get(query, headers=caller.headers("GET", query))
        assert refused.json()["error_code"] == "request_malformed"
        after = http.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    # The scrapes themselves are exempt: not counted.
    assert increase(guard_verdicts(before), guard_verdicts(after.text)) == {
        ("accepted", ""): 2,
        ("refused", "pop_replayed"): 1,
        ("refused", "not_found"): 1,
        ("refused", "request_malformed"): 1,
    }
    assert increase(guard_durations(before), guard_durations(after.text)) == {
        ("accepted",): 2,
        ("refused",): 3,
    }
    accepted = [(x["path"], x["status"]) for x in lines.lines if x["event"] == "api_call_accepted"]
    assert accepted == [(KNOWN, 200), (UNKNOWN, 404)]


async def test_audit_status_is_what_the_application_answered(
    server_key: PrivateKey, caller: Caller
) -> None:
    app, lines = guarded_app(server_key, "status")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        for iccid in ("8901260000000000001", "8901260000000000002", "silent", "raise"):
            target = DEVICES.format(iccid=iccid)
            await http.get(target, headers=caller.headers("GET", target))
    # A 500 for the app that raised: the error middleware outside the guard answers it.
    assert [x["status"] for x in lines.lines] == [200, 404, 204, 500]
    assert {x["event"] for x in lines.lines} == {"api_call_accepted"}


async def test_audit_status_is_null_when_no_response_was_sent(
    server_key: PrivateKey, caller: Caller
) -> None:
    async def gone(scope: Any, receive: Any, send: Any) -> None:
        return None  # the caller left: the application answers nothing

    logger = logging.getLogger("test.guard-audit.gone")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    lines = Lines()
    logger.handlers[:] = [lines]
    validator = Validator(StaticKeys({KID: server_key.public}, issuer=ISSUER), clock=lambda: NOW)
    guard = GuardMiddleware(gone, validator=validator, audit=GuardAudit(logger))
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    headers = caller.headers("GET", KNOWN)
    scope = {
        "type": "http",
        "method": "GET",
        "path": KNOWN,
        "raw_path": KNOWN.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await guard(scope, receive, send)
    assert sent == []
    assert [(x["event"], x["status"]) for x in lines.lines] == [("api_call_accepted", None)]


@pytest.mark.parametrize("code", ["token_invalid", None])
def test_each_verdict_is_counted_under_its_outcome(code: str | None) -> None:
    from taap.resource.metrics import guard_request

    before = guard_verdicts(render().decode())
    guard_request(code, 0.0001)
    guard_request(code, 0.0001)
    key = ("refused", code) if code else ("accepted", "")
    assert increase(before, guard_verdicts(render().decode())) == {key: 2}
