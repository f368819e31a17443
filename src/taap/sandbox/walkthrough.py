"""The four TAAP steps against a running sandbox, then the protections (what ``taap demo`` shows).

Every step is a :class:`Step` with the request line it sends (method and full URL), what was
signed or received, and whether the expectation held. Requests are built by hand from the core
(not through the SDK) so that each header, PoP claim and body is visible as the user's
document shows them.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from taap.core.jws import parse_compact
from taap.core.keys import PrivateKey, generate_private_key
from taap.core.pop import build_pop_token
from taap.core.request import request_pairs
from taap.sandbox.servers import Sandbox, running_sandbox

__all__ = ["DEMO_DEVICE", "DemoResult", "Step", "run_demo"]

DEMO_DEVICE = "8901260000000000001"
TOKEN_PATH = "/oauth2/v2/tokens"
SMS_PATH = "/sms/v1/messages"
DEVICE_PATH = f"/iot-connectivity/v1/devices/{DEMO_DEVICE}"
SMS_BODY = b'{"to": "+14255550100", "text": "Your order has shipped."}'


@dataclass
class Step:
    """One step of the walk: its name, a title, the expectation's outcome, and what it saw."""

    name: str
    title: str
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """``{"name", "ok", "detail"}`` (the ``--json`` form)."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class DemoResult:
    """All steps and the wall time of the run."""

    steps: list[Step]
    seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)


def _decode(token: str) -> dict[str, Any]:
    # For display only: the servers do the verifying.
    parsed = parse_compact(token, max_bytes=16384, max_header_bytes=2048)
    return {"header": parsed.header, "claims": parsed.payload}


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"raw": response.text[:500]}


def _signed(
    key: PrivateKey,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
) -> tuple[str, list[tuple[str, str | bytes]]]:
    pairs = request_pairs(method, path, headers, body)
    return build_pop_token(pairs, key), pairs


def _names(pairs: list[tuple[str, str | bytes]]) -> str:
    return ";".join(name for name, _ in pairs)


class _Walk:
    def __init__(self, sandbox: Sandbox, on_step: Callable[[Step], None] | None) -> None:
        self.sandbox = sandbox
        self.on_step = on_step
        self.steps: list[Step] = []
        self.http = httpx.Client(timeout=10.0, follow_redirects=False)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)
        return step

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> httpx.Response:
        return self.http.request(method, url, headers=dict(headers), content=body)

    def signing(
        self,
        name: str,
        title: str,
        key: PrivateKey,
        method: str,
        origin: str,
        path: str,
        headers: list[tuple[str, str]],
    ) -> dict[str, str]:
        """A step that signs a request (steps 1 and 3); the headers to send it with."""
        pop, pairs = _signed(key, method, path, headers)
        url = origin + path
        self.add(
            Step(
                name,
                title,
                True,
                {"request": f"{method} {url}", "ehts": _names(pairs), **_decode(pop)},
            )
        )
        return {**dict(headers), "X-Authorization": pop}

    def refusal(
        self,
        name: str,
        title: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        expect: tuple[int, str],
        note: str,
    ) -> None:
        response = self.send(method, url, headers, body)
        answer = _json(response)
        code = answer.get("error_code") if isinstance(answer, dict) else None
        self.add(
            Step(
                name,
                title,
                (response.status_code, code) == expect,
                {
                    "request": f"{method} {url}",
                    "note": note,
                    "expected": {"status": expect[0], "error_code": expect[1]},
                    "status": response.status_code,
                    "response": answer,
                    "www_authenticate": response.headers.get("www-authenticate"),
                },
            )
        )


def _register_client(walk: _Walk) -> tuple[PrivateKey, str]:
    """The setup step: a client with a fresh key, subscribed to Connectivity; key and Basic."""
    sandbox = walk.sandbox
    key = generate_private_key(2048)
    record, secret = sandbox.create_client(
        name="taap demo", keys=[key.public], apis=["connectivity"]
    )
    walk.add(
        Step(
            "setup",
            "Sandbox: token server, sample APIs, a registered client",
            True,
            {
                "token_server": sandbox.token_url,
                "sample_apis": sandbox.api_url,
                "database": sandbox.database_url,
                "client_id": record.client_id,
                "key_thumbprint": key.thumbprint,
                "subscriptions": list(record.apis),
            },
        )
    )
    basic = base64.b64encode(f"{record.client_id}:{secret}".encode()).decode("ascii")
    return key, f"Basic {basic}"


def _request_tokens(walk: _Walk, token_url: str, headers: dict[str, str]) -> str | None:
    """Step 2: the token request; the access token, or None when none was issued."""
    response = walk.send("POST", token_url, headers)
    answer = _json(response)
    fields = {"id_token", "access_token", "expires_in", "scope", "status"}
    ok = response.status_code == 200 and isinstance(answer, dict) and set(answer) == fields
    walk.add(
        Step(
            "step-2 token",
            "Step 2: the token server checks client, secret and PoP",
            ok,
            {
                "request": f"POST {token_url}",
                "headers": headers,
                "body": "",
                "status": response.status_code,
                "response": answer,
                "access_token_claims": _decode(answer["access_token"])["claims"] if ok else None,
            },
        )
    )
    return str(answer["access_token"]) if ok else None


def _call_api(walk: _Walk, device_url: str, headers: dict[str, str]) -> None:
    """Step 4: the API call."""
    response = walk.send("GET", device_url, headers)
    device = _json(response)
    walk.add(
        Step(
            "step-4 api call",
            "Step 4: the API checks token, PoP, subscription, one-time use",
            response.status_code == 200
            and isinstance(device, dict)
            and device.get("iccid") == DEMO_DEVICE,
            {"request": f"GET {device_url}", "status": response.status_code, "response": device},
        )
    )


def _protections(
    walk: _Walk, key: PrivateKey, api_base: list[tuple[str, str]], call: dict[str, str]
) -> None:
    """The step-4 call replayed, a body changed after signing, a product not subscribed to."""
    walk.refusal(
        "replay",
        "Protection: the same PoP sent again is refused (one hop)",
        "GET",
        walk.sandbox.api_url + DEVICE_PATH,
        call,
        b"",
        (401, "pop_replayed"),
        "identical headers, identical PoP, a second time",
    )
    sms_url = walk.sandbox.api_url + SMS_PATH
    sms_pop, _ = _signed(key, "POST", SMS_PATH, api_base, SMS_BODY)
    tampered = SMS_BODY.replace(b"+14255550100", b"+14255550199")
    walk.refusal(
        "body tamper",
        "Protection: a body changed after signing is refused",
        "POST",
        sms_url,
        {**dict(api_base), "X-Authorization": sms_pop},
        tampered,
        (401, "pop_edts_mismatch"),
        "the PoP signed 'to' +14255550100, the request sends +14255550199; the PoP is "
        "checked before the subscription",
    )
    sms_pop, _ = _signed(key, "POST", SMS_PATH, api_base, SMS_BODY)
    walk.refusal(
        "unsubscribed product",
        "Protection: a product the client is not subscribed to is refused",
        "POST",
        sms_url,
        {**dict(api_base), "X-Authorization": sms_pop},
        SMS_BODY,
        (403, "not_subscribed"),
        "a correctly signed SMS Notification call; the client subscribes to Connectivity only",
    )


def _walk(walk: _Walk) -> None:
    """Setup, the four steps of TAAP and the protections; no API call without a token."""
    key, basic = _register_client(walk)
    token_request = walk.signing(
        "step-1 oauth pop",
        "Step 1: the client signs its token request (OAuth PoP)",
        key,
        "POST",
        walk.sandbox.token_url,
        TOKEN_PATH,
        [("Content-Type", "application/json"), ("Authorization", basic)],
    )
    access_token = _request_tokens(walk, walk.sandbox.token_url + TOKEN_PATH, token_request)
    if access_token is None:
        return
    # Content-Type is signed even on a GET (step 4 of docs/protocol.md#the-four-steps).
    api_base = [("Content-Type", "application/json"), ("Authorization", f"Bearer {access_token}")]
    call = walk.signing(
        "step-3 api pop",
        "Step 3: the client signs the API call and its access token (API PoP)",
        key,
        "GET",
        walk.sandbox.api_url,
        DEVICE_PATH,
        api_base,
    )
    _call_api(walk, walk.sandbox.api_url + DEVICE_PATH, call)
    _protections(walk, key, api_base, call)


def run_demo(
    *, on_step: Callable[[Step], None] | None = None, token_ttl: int | None = None
) -> DemoResult:
    """Start a sandbox, walk the four steps and the protections, stop the sandbox.

    Raises:
        UnavailableError: the sandbox servers did not start.
    """
    started = time.monotonic()
    with running_sandbox(token_ttl=token_ttl) as sandbox:
        walk = _Walk(sandbox, on_step)
        try:
            _walk(walk)
        except httpx.HTTPError as exc:
            walk.add(Step("transport", "A request failed", False, {"error": repr(exc)}))
        finally:
            walk.http.close()
    return DemoResult(walk.steps, time.monotonic() - started)
