"""Operations in process (issue 7 "Operate"): Prometheus metrics, request ids, the audit sink
that fails closed, readiness while draining, SIGTERM drain chaining, signing-key refresh on an
injected clock."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
from typing import Any

from server_kit import Harness, decode, make_harness

from taap.core import PrivateKey
from taap.errors import UnavailableError
from taap.server.audit import AuditHandler, AuditLog
from taap.server.lifecycle import Lifecycle
from taap.server.logs import REQUEST_ID, JsonFormatter


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus exposition text, or None when absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        base, _, rest = metric.partition("{")
        if base != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if found == labels:
            return float(value)
    return None


async def _metrics(h: Harness) -> str:
    async with h.http() as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


# -- metrics --------------------------------------------------------------------------------
async def test_metrics_count_issued_and_rejected_requests(harness: Harness) -> None:
    assert (await harness.post("v2")).status_code == 200
    jti_reused = "0b7d3c4e-0000-4000-8000-000000000001"
    assert (await harness.post("v2", jti=jti_reused)).status_code == 200
    assert (await harness.post("v2", jti=jti_reused)).status_code == 401  # replayed
    assert (await harness.post("v2", authorization="Basic eDp5")).status_code == 401
    text = await _metrics(harness)
    requests = "taap_token_requests_total"
    assert _sample(text, requests, endpoint="v2", outcome="issued", error_code="") == 2
    assert (
        _sample(text, requests, endpoint="v2", outcome="rejected", error_code="pop_replayed") == 1
    )
    assert (
        _sample(text, requests, endpoint="v2", outcome="rejected", error_code="client_auth_failed")
        == 1
    )
    # The PoP of the replayed request verified; the bad-credentials one never reached it.
    assert _sample(text, "taap_pop_verifications_total", outcome="valid", error_code="") == 3
    assert _sample(text, "taap_request_duration_seconds_count", endpoint="v2") == 4
    assert _sample(text, "taap_replay_store_errors_total") == 0
    assert _sample(text, "taap_database_errors_total") == 0


async def test_metrics_count_invalid_pops(harness: Harness) -> None:
    stale = harness.clock.now - 600
    assert (await harness.post("v2", pop_now=stale)).status_code == 401
    text = await _metrics(harness)
    codes = [line for line in text.splitlines() if line.startswith("taap_pop_verifications_total{")]
    assert len(codes) == 1
    assert 'outcome="invalid"' in codes[0]
    assert codes[0].endswith(" 1.0")


async def test_metrics_count_store_and_database_errors(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key)

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise UnavailableError(log_detail="test: down")

    h.replay.record = down
    assert (await h.post("v2")).status_code == 503
    h.registry.get_client = down  # type: ignore[method-assign]
    assert (await h.post("v2")).status_code == 503
    assert (await h.post("v2")).status_code == 503
    text = await _metrics(h)
    assert _sample(text, "taap_replay_store_errors_total") == 1
    assert _sample(text, "taap_database_errors_total") == 2
    assert (
        _sample(
            text,
            "taap_token_requests_total",
            endpoint="v2",
            outcome="rejected",
            error_code="unavailable",
        )
        == 3
    )


async def test_metrics_can_be_switched_off(rsa_key: PrivateKey, signing_key: PrivateKey) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, metrics=False)
    async with h.http() as client:
        assert (await client.get("/metrics")).status_code == 404


# -- request ids ----------------------------------------------------------------------------
async def test_a_request_id_is_generated_echoed_and_audited(harness: Harness) -> None:
    first = await harness.post("v2")
    second = await harness.post("v2", authorization="Basic eDp5")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1]
    assert all(re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", i) for i in ids)
    assert [line["request_id"] for line in harness.audit_lines] == ids
    async with harness.http() as client:
        health = await client.get("/healthz")
    assert health.headers["x-request-id"] not in ids


async def _post_with_id(h: Harness, request_id: str, peer: str) -> str:
    path, headers, body = h.request("v2")
    async with h.http(peer=peer) as client:
        response = await client.post(
            path, headers={**headers, "X-Request-Id": request_id}, content=body
        )
    assert response.status_code == 200
    return response.headers["x-request-id"]


async def test_a_trusted_proxy_sets_the_request_id(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, forwarded_allow_ips="10.0.0.0/8")
    assert await _post_with_id(h, "lb-7f3a.42:x", peer="10.1.2.3") == "lb-7f3a.42:x"
    assert h.audit_lines[-1]["request_id"] == "lb-7f3a.42:x"
    # From anyone else, or not sane, the id is ours.
    assert await _post_with_id(h, "lb-7f3a.42:x", peer="192.0.2.9") != "lb-7f3a.42:x"
    for insane in ("a b", "x" * 129, "a/b", "a;b", ""):
        assert await _post_with_id(h, insane, peer="10.1.2.3") != insane


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("taap.server", logging.ERROR, __file__, 1, "boom %s", ("x",), None)
    token = REQUEST_ID.set("rid-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "rid-1"
    assert line["message"] == "boom x"
    assert line["level"] == "error"
    assert line["ts"].endswith("Z")
    assert "request_id" not in json.loads(JsonFormatter().format(record))


# -- the audit sink fails closed -------------------------------------------------------------
class _BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


async def test_a_failing_audit_sink_issues_nothing(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    logger = logging.getLogger("taap.audit.test.broken")
    logger.handlers[:] = [AuditHandler(_BrokenStream())]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    h = await make_harness(rsa_key, signing_key=signing_key, audit=AuditLog(logger))
    response = await h.post("v2")
    assert response.status_code == 503
    assert response.json()["error_code"] == "unavailable"
    assert "access_token" not in response.text
    assert "eyJ" not in response.text
    # A rejection is still answered as itself when its line cannot be written.
    assert (await h.post("v2", authorization="Basic eDp5")).status_code == 401
    text = await _metrics(h)
    # Lost: the issuance line, the rejection line of that 503, and the 401's line.
    assert _sample(text, "taap_audit_errors_total") == 3
    # The same sink working again: tokens flow.
    logger.handlers[:] = [AuditHandler(io.StringIO())]
    assert (await h.post("v2")).status_code == 200


async def test_the_audit_line_is_flushed_before_the_response(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    flushed: list[str] = []

    class Stream(io.StringIO):
        def flush(self) -> None:
            flushed.append(self.getvalue())

    logger = logging.getLogger("taap.audit.test.flushed")
    logger.handlers[:] = [AuditHandler(Stream())]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    h = await make_harness(rsa_key, signing_key=signing_key, audit=AuditLog(logger))
    response = await h.post("v2")
    assert response.status_code == 200
    line = json.loads(flushed[-1])
    assert line["event"] == "token_issued"
    assert line["token_jti"] == decode(response.json()["access_token"])[1]["jti"]


# -- readiness and the SIGTERM drain --------------------------------------------------------
async def test_draining_turns_unready_but_keeps_serving(harness: Harness) -> None:
    async with harness.http() as client:
        assert (await client.get("/readyz")).status_code == 200
        harness.app.lifecycle.begin_drain()
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error_code"] == "unavailable"
    assert "shutting down" in ready.json()["error_description"]
    assert (await harness.post("v2")).status_code == 200


async def test_sigterm_drains_before_the_servers_own_handler() -> None:
    called: list[int] = []

    def server_handler(signum: int, frame: Any) -> None:
        called.append(signum)

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        lifecycle = Lifecycle(drain=0.3)
        assert lifecycle.install(asyncio.get_running_loop())
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert lifecycle.draining
        assert called == []
        await asyncio.sleep(0.5)
        assert called == [signal.SIGTERM]
        # A second SIGTERM during or after the drain goes straight through.
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0.01)
        assert called == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, original)


def test_no_handler_to_chain_changes_nothing() -> None:
    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    loop = asyncio.new_event_loop()
    try:
        assert not Lifecycle(drain=1).install(loop)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        loop.close()
        signal.signal(signal.SIGTERM, original)


# -- signing-key refresh ---------------------------------------------------------------------
async def test_a_rotated_key_signs_within_the_refresh_interval(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, key_refresh=30, jwks_min_refresh=0)
    first = await h.post("v2")
    old_kid = decode(first.json()["access_token"])[0]["kid"]
    rotated = await h.registry.rotate_signing_key()
    # Published at once (JWKS is read per request) ...
    async with h.http() as client:
        kids = [k["kid"] for k in (await client.get("/oauth2/v1/jwks")).json()["keys"]]
    assert kids[0] == rotated.kid
    assert old_kid in kids
    # ... used by this node once TAAP_KEY_REFRESH has passed, without a restart.
    h.clock.now += 29
    assert decode((await h.post("v2")).json()["access_token"])[0]["kid"] == old_kid
    h.clock.now += 1
    assert decode((await h.post("v2")).json()["access_token"])[0]["kid"] == rotated.kid


async def test_metrics_include_the_process_wide_guard_counter(harness: Harness) -> None:
    # With the sample APIs mounted, the guard's JWKS counter is served by the server's /metrics.
    from taap.resource.metrics import jwks_refreshed

    jwks_refreshed(False)
    text = await _metrics(harness)
    assert (_sample(text, "taap_jwks_refreshes_total", outcome="failed") or 0) >= 1
