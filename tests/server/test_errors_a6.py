"""Every A6 row the token server can produce (TAAP.md A4, A6): status, ``error``,
``error_code``, no token issued, no replay entry consumed, only the A8 counters moved."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from server_kit import ERROR_KEYS, NOW, Harness, basic, make_harness, sign, v6_body

from taap.core import PrivateKey, build_pop_token
from taap.errors import UnavailableError

Request = tuple[str, str, list[tuple[str, str]], bytes]


@dataclass
class Case:
    name: str
    build: Callable[[Harness, PrivateKey], Request]
    status: int
    error: str
    code: str
    counted: bool = False
    counted_client: str | None = None  # a claimed client id other than the harness's

    def __str__(self) -> str:
        return self.name


def _req(
    h: Harness,
    version: str = "v2",
    *,
    method: str = "POST",
    path: str | None = None,
    add: list[tuple[str, str]] | None = None,
    drop: tuple[str, ...] = (),
    replace: dict[str, str] | None = None,
    body: bytes | None = None,
    **kwargs: Any,
) -> Request:
    default_path, headers, default_body = h.request(version, **kwargs)
    pairs = [(k, (replace or {}).get(k, v)) for k, v in headers.items() if k not in drop]
    pairs += add or []
    return method, path or default_path, pairs, default_body if body is None else body


def _signed_v6(h: Harness, body: str, auth: str | None = None) -> Request:
    return _req(h, "v6", body=body, authorization=auth)


def _bad_auth(value: str) -> Callable[[Harness, PrivateKey], Request]:
    def build(h: Harness, _: PrivateKey) -> Request:
        return _req(h, authorization=value)

    return build


CASES = [
    Case(
        "method", lambda h, k: _req(h, method="GET"), 405, "invalid_request", "method_not_allowed"
    ),
    Case(
        "unknown path",
        lambda h, k: _req(h, path="/oauth2/v3/tokens"),
        404,
        "invalid_request",
        "not_found",
    ),
    Case(
        "body over cap",
        lambda h, k: _req(h, body=b"{" + b" " * 2048 + b"}"),
        413,
        "invalid_request",
        "body_too_large",
    ),
    Case(
        "headers over cap",
        lambda h, k: _req(h, add=[("X-Big", "a" * 17000)]),
        431,
        "invalid_request",
        "headers_too_large",
    ),
    Case(
        "content type text",
        lambda h, k: _req(h, replace={"Content-Type": "text/plain"}),
        415,
        "invalid_request",
        "content_type_unsupported",
    ),
    Case(
        "content type missing",
        lambda h, k: _req(h, drop=("Content-Type",)),
        415,
        "invalid_request",
        "content_type_unsupported",
    ),
    Case(
        "content type form",
        lambda h, k: _req(h, replace={"Content-Type": "application/x-www-form-urlencoded"}),
        415,
        "invalid_request",
        "content_type_unsupported",
    ),
    Case(
        "duplicate Authorization",
        lambda h, k: _req(h, add=[("Authorization", h.auth())]),
        400,
        "invalid_request",
        "request_malformed",
    ),
    Case(
        "duplicate X-Authorization",
        lambda h, k: _req(h, add=[("X-Authorization", "x.y.z")]),
        400,
        "invalid_request",
        "request_malformed",
    ),
    Case(
        "duplicate Content-Type",
        lambda h, k: _req(h, add=[("Content-Type", "application/json")]),
        400,
        "invalid_request",
        "request_malformed",
    ),
    Case(
        "body not UTF-8",
        lambda h, k: _req(h, body=b'{"a":"\xff"}'),
        400,
        "invalid_request",
        "request_malformed",
    ),
    Case(
        "ambiguous query",
        lambda h, k: _req(h, path="/oauth2/v2/tokens?a=%26b"),
        400,
        "invalid_request",
        "request_malformed",
    ),
    Case(
        "no Authorization",
        lambda h, k: _req(h, drop=("Authorization",)),
        401,
        "invalid_client",
        "client_auth_failed",
        counted=True,
        counted_client="-",
    ),
    Case(
        "Bearer scheme",
        _bad_auth("Bearer abc"),
        401,
        "invalid_client",
        "client_auth_failed",
        counted=True,
        counted_client="-",
    ),
    Case(
        "Basic not base64",
        _bad_auth("Basic ***"),
        401,
        "invalid_client",
        "client_auth_failed",
        counted=True,
        counted_client="-",
    ),
    Case(
        "Basic without colon",
        _bad_auth("Basic " + base64.b64encode(b"abc").decode()),
        401,
        "invalid_client",
        "client_auth_failed",
        counted=True,
        counted_client="-",
    ),
    Case(
        "unknown client",
        _bad_auth(basic("taap-nobody", "abc")),
        401,
        "invalid_client",
        "client_auth_failed",
        counted=True,
        counted_client="taap-nobody",
    ),
    Case(
        "wrong secret",
        lambda h, k: _req(h, authorization=basic(h.client_id, "wrong")),
        401,
        "invalid_client",
        "client_auth_failed",
        counted=True,
    ),
    Case(
        "v6 body client_id differs",
        lambda h, k: _signed_v6(h, v6_body("taap-other", h.secret)),
        401,
        "invalid_client",
        "client_auth_failed",
        counted=True,
    ),
    Case(
        "v6 body secret differs",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, "nope")),
        401,
        "invalid_client",
        "client_auth_failed",
        counted=True,
    ),
    Case("v2 body array", lambda h, k: _req(h, body="[]"), 400, "invalid_request", "body_invalid"),
    Case(
        "v2 body text", lambda h, k: _req(h, body="hello"), 400, "invalid_request", "body_invalid"
    ),
    Case("v6 body empty", lambda h, k: _signed_v6(h, ""), 400, "invalid_request", "body_invalid"),
    Case("v6 body array", lambda h, k: _signed_v6(h, "[]"), 400, "invalid_request", "body_invalid"),
    Case(
        "v6 duplicate member",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, h.secret)[:-1] + ', "scope": "x"}'),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 NaN",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, h.secret)[:-1] + ', "n": NaN}'),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 too deep",
        lambda h, k: _signed_v6(
            h, v6_body(h.client_id, h.secret)[:-1] + ', "n": ' + "[" * 33 + "]" * 33 + "}"
        ),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 missing client_id",
        lambda h, k: _signed_v6(
            h,
            json.dumps(
                {
                    "client_secret": h.secret,
                    "scope": "response_mode",
                    "grant-type": "client_credentials",
                }
            ),
        ),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 scope mistyped",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, h.secret, scope=1)),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 grant missing",
        lambda h, k: _signed_v6(
            h,
            json.dumps(
                {"client_id": h.client_id, "client_secret": h.secret, "scope": "response_mode"}
            ),
        ),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 grant spellings differ",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, h.secret, grant_type="password")),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 storeId too long",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, h.secret, storeId="s" * 65)),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 dealerCode mistyped",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, h.secret, dealerCode=7)),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 empty client_secret",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, "")),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 empty grant-type",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, h.secret, **{"grant-type": ""})),
        400,
        "invalid_request",
        "body_invalid",
    ),
    Case(
        "v6 grant type",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, h.secret, **{"grant-type": "password"})),
        400,
        "unsupported_grant_type",
        "grant_type_unsupported",
    ),
    Case(
        "v6 scope",
        lambda h, k: _signed_v6(h, v6_body(h.client_id, h.secret, scope="openid")),
        400,
        "invalid_scope",
        "scope_invalid",
    ),
    Case(
        "PoP absent",
        lambda h, k: _req(h, drop=("X-Authorization",)),
        401,
        "invalid_request",
        "pop_missing",
    ),
    Case(
        "PoP blank",
        lambda h, k: _req(h, replace={"X-Authorization": "   "}),
        401,
        "invalid_request",
        "pop_missing",
    ),
    Case(
        "PoP garbage",
        lambda h, k: _req(h, replace={"X-Authorization": "not-a-token"}),
        401,
        "invalid_request",
        "pop_malformed",
    ),
    Case(
        "PoP with prefix",
        lambda h, k: _req(
            h, replace={"X-Authorization": "PoP " + h.request()[1]["X-Authorization"]}
        ),
        401,
        "invalid_request",
        "pop_malformed",
    ),
    Case(
        "PoP other key",
        lambda h, k: _req(h, key=k),
        401,
        "invalid_client",
        "pop_signature_invalid",
        counted=True,
    ),
    Case(
        "PoP too old",
        lambda h, k: _req(h, pop_now=NOW - 300),
        401,
        "invalid_request",
        "pop_expired",
    ),
    Case(
        "PoP from the future",
        lambda h, k: _req(h, pop_now=NOW + 300),
        401,
        "invalid_request",
        "pop_expired",
    ),
    Case(
        "PoP misses Authorization",
        lambda h, k: _req(h, names=["Content-Type", "uri", "http-method"]),
        401,
        "invalid_request",
        "pop_ehts_insufficient",
    ),
    Case(
        "PoP misses body",
        lambda h, k: _req(
            h, body='{"a":1}', names=["Content-Type", "Authorization", "uri", "http-method"]
        ),
        401,
        "invalid_request",
        "pop_ehts_insufficient",
    ),
    Case(
        "PoP names an absent header",
        lambda h, k: _req(
            h,
            names=["Content-Type", "Authorization", "uri", "http-method", "X-Nope"],
            extra={"X-Nope": "v"},
        ),
        401,
        "invalid_request",
        "pop_ehts_insufficient",
    ),
    Case(
        "PoP for another uri",
        lambda h, k: _req(h, sign_uri="/oauth2/v6/tokens"),
        401,
        "invalid_request",
        "pop_edts_mismatch",
    ),
]


@pytest.fixture
async def harness(rsa_key: PrivateKey, signing_key: PrivateKey) -> Harness:
    return await make_harness(rsa_key, signing_key=signing_key, max_body=1024)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a6_row(case: Case, harness: Harness, other_key: PrivateKey) -> None:
    method, path, headers, body = case.build(harness, other_key)
    client_id = harness.client_id if case.counted_client is None else case.counted_client
    before = harness.levels(client_id=client_id)
    async with harness.http() as client:
        response = await client.request(method, path, headers=headers, content=body)
    assert response.status_code == case.status, response.text
    payload = response.json()
    assert list(payload) == ERROR_KEYS
    assert payload["error"] == case.error
    assert payload["error_code"] == case.code
    assert "eyJ" not in response.text  # no JWT of any kind in an error
    assert harness.replay_size() == 0
    after = harness.levels(client_id=client_id)
    if case.counted:
        assert after[0] == before[0] - 1
        if case.counted_client != "-":
            assert after[1] == before[1] - 1
    else:
        assert after == before
    if case.status == 401:
        assert response.headers["www-authenticate"] == 'Basic realm="taap"'
    if case.status == 405:
        assert response.headers["allow"] == "POST"
    if case.status != 404:
        [line] = harness.audit_lines
        assert line["event"] == "token_rejected"
        assert line["error_code"] == case.code
        assert line["status"] == case.status


async def test_disabled_client(harness: Harness) -> None:
    await harness.registry.set_status(harness.client_id, "disabled")
    before = harness.levels()
    response = await harness.post("v2")
    assert response.status_code == 401
    assert response.json()["error_code"] == "client_auth_failed"
    assert harness.levels() == (before[0] - 1, before[1] - 1)
    assert harness.replay_size() == 0


async def test_unknown_client_and_wrong_secret_are_indistinguishable(harness: Harness) -> None:
    async with harness.http() as client:
        answers = []
        for auth in (basic("taap-nobody", harness.secret), basic(harness.client_id, "wrong")):
            _, headers, body = harness.request("v2", authorization=auth)
            r = await client.post("/oauth2/v2/tokens", headers=headers, content=body)
            # Everything but the request id, which is new for every request by design.
            same = sorted((k, v) for k, v in r.headers.items() if k != "x-request-id")
            answers.append((r.status_code, r.content, same))
    assert answers[0] == answers[1]


async def test_replayed_pop(harness: Harness) -> None:
    path, headers, body = harness.request("v2")
    async with harness.http() as client:
        first = await client.post(path, headers=headers, content=body)
        before = harness.levels()
        second = await client.post(path, headers=headers, content=body)
    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json() == {
        "error": "invalid_request",
        "error_description": "PoP token already used",
        "error_code": "pop_replayed",
    }
    assert harness.replay_size() == 1
    assert harness.levels() == before


async def test_not_subscribed(rsa_key: PrivateKey, signing_key: PrivateKey) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, apis=("call-verification",))
    before = h.levels()
    response = await h.post("v2")
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"
    assert response.json()["error_code"] == "not_subscribed"
    assert h.replay_size() == 0
    assert h.levels() == before
    assert (await h.post("v6")).status_code == 200


async def test_body_streamed_over_the_cap_is_refused_while_reading(harness: Harness) -> None:
    sent: list[int] = []

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(64):
            sent.append(1)
            yield b" " * 1024

    _, headers, _ = harness.request("v2")
    async with harness.http() as client:
        response = await client.post("/oauth2/v2/tokens", headers=headers, content=chunks())
    assert response.status_code == 413
    assert response.json()["error_code"] == "body_too_large"


async def test_declared_length_over_the_cap_is_refused_before_reading(harness: Harness) -> None:
    read: list[bytes] = []

    async def receive() -> dict[str, Any]:
        read.append(b"x")
        return {"type": "http.request", "body": b"x" * 10, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/oauth2/v2/tokens",
        "raw_path": b"/oauth2/v2/tokens",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"99999999")],
        "client": ("203.0.113.7", 1),
    }
    await harness.app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert read == []


@pytest.mark.parametrize("where", ["registry", "replay"])
async def test_store_unavailable_is_503(
    where: str, rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key)

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise UnavailableError(log_detail="test: down")

    if where == "registry":
        h.registry.get_client = down  # type: ignore[method-assign]
    else:
        h.replay.record = down
    response = await h.post("v2")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error_code"] == "unavailable"
    assert response.json()["error"] == "temporarily_unavailable"


async def test_unexpected_exception_is_a_generic_500(
    rsa_key: PrivateKey, signing_key: PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /etc/db")

    h.registry.get_client = broken  # type: ignore[method-assign]
    response = await h.post("v2")
    assert response.status_code == 500
    assert response.json() == {
        "error": "server_error",
        "error_description": "internal error",
        "error_code": "internal",
    }
    assert "internals" not in response.text
    assert "secret internals" in caplog.text  # logged for the operator


async def test_error_description_is_rfc6749_safe(harness: Harness) -> None:
    # a header name with a quote ends up in the malformed-request text
    _, headers, body = harness.request("v2")
    raw = [(k, v) for k, v in headers.items()] + [("x-a'b", "1"), ("x-a'b", "\x00")]
    async with harness.http() as client:
        response = await client.post("/oauth2/v2/tokens", headers=raw, content=body)
    assert response.status_code == 400
    text = response.json()["error_description"]
    assert all(c not in text for c in '"\\\r\n\t')


def test_pop_builder_sanity(rsa_key: PrivateKey) -> None:
    # sign() builds what A2 says, so the rows above fail for the reason they name
    pop = sign(rsa_key, authorization="Basic eA==", uri="/oauth2/v2/tokens")
    again = build_pop_token(
        [
            ("Content-Type", "application/json"),
            ("Authorization", "Basic eA=="),
            ("uri", "/oauth2/v2/tokens"),
            ("http-method", "POST"),
        ],
        rsa_key,
        now=NOW,
        jti=json.loads(base64.urlsafe_b64decode(pop.split(".")[1] + "==").decode())["jti"],
    )
    assert pop == again


async def test_full_in_process_replay_store_fails_closed(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    from taap.core.replay import MemoryReplayStore

    h = await make_harness(rsa_key, signing_key=signing_key, replay=MemoryReplayStore(1))
    assert (await h.post("v2")).status_code == 200
    full = await h.post("v2")
    assert full.status_code == 503
    assert full.json()["error_code"] == "unavailable"
    assert full.headers["retry-after"] == "1"
    assert "eyJ" not in full.text
    assert h.replay_size() == 1
