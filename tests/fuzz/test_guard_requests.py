"""No client input yields a 5xx at the guard (SECURITY.md E3): random methods, targets, headers
and bodies sent to the guarded A9 sample app, some built on a valid token and PoP so that the
later checks (coverage, digest, product, replay, the sample handlers) are reached too.

The app runs in-process (ASGI) with static keys, the in-process replay store and a fixed clock;
the token server's side has the same test in ``tests/server/test_fuzz_input.py``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taap.core import build_pop_token, generate_private_key, issue_access_token, request_pairs
from taap.resource import StaticKeys
from taap.resource.sample import create_sample_app

NOW = 1_800_000_000
ISSUER = "https://issuer.test/oauth2/v1"
KID = "k1"
SERVER_KEY = generate_private_key(2048)
CLIENT_KEY = generate_private_key(2048)
TOKEN = issue_access_token(
    key=SERVER_KEY,
    kid=KID,
    issuer=ISSUER,
    client_id="taap-fuzz",
    apis=["connectivity", "sms-notification"],
    cnf_jwk=CLIENT_KEY.public.jwk,
    now=NOW,
)
APP = create_sample_app(
    keys=StaticKeys({KID: SERVER_KEY.public}, issuer=ISSUER), clock=lambda: float(NOW)
)

targets = st.sampled_from(
    [
        "/iot-connectivity/v1/devices/8901260000000000001",
        "/iot-connectivity/v1/devices/8901260000000000099",
        "/iot-connectivity/v1/devices/12",
        "/iot-connectivity/v1/devices/%38%39",
        "/sms/v1/messages",
        "/sms/v1/messages?x=1",
        "/sms/v1x",
        "/healthz",
        "/",
        "/iot-connectivity/v1/../sms/v1/messages",
        "/iot-connectivity/v1/devices/a%2Fb",
        "/sms/v1/messages?a=%26",
    ]
) | st.text(max_size=30).map(lambda t: "/" + t)
header_names = st.sampled_from(
    [b"authorization", b"x-authorization", b"content-type", b"content-length-x", b"x-extra"]
)
bodies = (
    st.binary(max_size=200)
    | st.sampled_from([b"", b"{}", b'{"to":"+14255550100","text":"hi"}', b"[]", b"null"])
    | st.fixed_dictionaries({"to": st.text(max_size=20), "text": st.text(max_size=30)}).map(
        lambda d: json.dumps(d).encode()
    )
)


def _signed(method: str, target: str, body: bytes) -> list[tuple[bytes, bytes]]:
    base = [("Content-Type", "application/json"), ("Authorization", f"Bearer {TOKEN}")]
    try:
        pairs = request_pairs(method, unquote(target), base, body)
        pop = build_pop_token(pairs, CLIENT_KEY, now=NOW)
    except Exception:  # a value the builder refuses (e.g. not UTF-8): send without a PoP
        return [(k.lower().encode(), v.encode()) for k, v in base]
    return [(k.lower().encode(), v.encode()) for k, v in [*base, ("X-Authorization", pop)]]


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "get"]),
    target=targets,
    body=bodies,
    signed=st.booleans(),
    extra=st.lists(
        st.tuples(
            header_names,
            st.binary(max_size=120)
            | st.text(max_size=60).map(lambda t: t.encode("utf-8", "replace")),
        ),
        max_size=2,
    )
    | st.just([]),
)
def test_random_guarded_requests_never_5xx(
    method: str, target: str, body: bytes, signed: bool, extra: list[tuple[bytes, bytes]]
) -> None:
    try:
        raw = target.encode("utf-8")
    except UnicodeEncodeError:
        raw = target.encode("utf-8", "surrogatepass")
    path_raw, _, query = raw.partition(b"?")
    headers = (_signed(method, target, body) if signed else []) + extra
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path_raw.decode("latin-1")),
        "raw_path": path_raw,
        "query_string": query,
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("198.51.100.3", 1),
        "server": ("127.0.0.1", 8001),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(APP(scope, receive, send))
    start = sent[0]
    assert start["status"] < 500, (start, sent[1:])
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    if start["status"] >= 400 and method != "HEAD":
        assert json.loads(payload)["error_code"]
    if start["status"] < 300 and target != "/healthz":
        assert signed
        assert not extra or all(n not in (b"authorization", b"x-authorization") for n, _ in extra)
