"""newman sends the exported collection to a loopback server that records each request as it
arrived: with the clock and jti frozen through the environment, every PoP equals the Python
core's byte for byte and verifies under strict; a request that cannot be signed is not sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from postman_kit import Recorded, export, recording, run_newman

from kit.processes import clean_env
from kit.wire import basic
from taap.core import (
    PrivateKey,
    build_pop_token,
    canonical_uri,
    request_pairs,
    request_parts,
    verify_pop_token,
)
from taap.postman import COLLECTION_FILE

pytestmark = pytest.mark.node

NOW = 1700000000
JTI = "postman-fixed-jti"
SECRET = "s3cr3t-Value_0123456789"
QUERY_OK = "cursor=abc%3D%3D&name=Jos%C3%A9&q=a+b&pct=50%25off"


def _export(out: Path, url: str, key: PrivateKey) -> None:
    key_file = out.parent / f"{out.name}.pem"
    out.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(key.to_pem())
    export(
        out,
        "--token-url",
        f"{url}/oauth2/v2/tokens",
        "--client-id",
        "taap-client-1",
        "--product",
        "connectivity",
        "--product",
        "sms-notification",
        "--product",
        "fraud-prevention",
        "--key",
        str(key_file),
        "--client-secret-env",
        "SECRET",
        env=clean_env(SECRET=SECRET),
    )
    # Two requests of the user's own, with a query: one the rule accepts, one it refuses.
    collection = json.loads((out / COLLECTION_FILE).read_text())
    calls = collection["item"][1]["item"]
    for name, query in (("Query ok", QUERY_OK), ("Query refused", "a=b%26c=d")):
        calls.append(
            {
                "name": name,
                "request": {
                    "method": "GET",
                    "header": [{"key": "Authorization", "value": "Bearer {{access_token_v2}}"}],
                    "url": "{{api_url}}/items?" + query,
                },
            }
        )
    (out / COLLECTION_FILE).write_text(json.dumps(collection))


def _expected(request: Recorded, key: PrivateKey) -> str:
    headers = [
        (name, value)
        for name in ("Content-Type", "Authorization")
        if (value := request.header(name)) is not None
    ]
    uri = canonical_uri(request.path, request.query)
    pairs = request_pairs(request.method, uri, headers, request.body)
    return build_pop_token(pairs, key, now=NOW, jti=JTI)


def test_fixed_clock_and_jti_give_the_core_token(
    tmp_path: Path, newman: Path, rsa_key: PrivateKey
) -> None:
    with recording() as (url, recorder):
        _export(tmp_path / "out", url, rsa_key)
        run = run_newman(
            newman, tmp_path / "out", env_vars={"taap_test_now": str(NOW), "taap_test_jti": JTI}
        )
    assert "taap: request not sent: an escape in the query changes how it splits" in run.console, (
        run.output
    )
    seen = [(r.method, r.path, r.query) for r in recorder.requests]
    assert seen == [
        ("POST", "/oauth2/v2/tokens", ""),
        ("POST", "/oauth2/v6/tokens", ""),
        ("GET", "/iot-connectivity/v1/devices/8901260000000000001", ""),
        ("POST", "/sms/v1/messages", ""),
        ("GET", "/items", QUERY_OK),
    ]
    v2, v6 = recorder.requests[:2]
    assert (
        v2.header("Authorization") == v6.header("Authorization") == basic("taap-client-1", SECRET)
    )
    assert v2.body == b""
    assert json.loads(v6.body) == {
        "client_id": "taap-client-1",
        "client_secret": SECRET,
        "scope": "response_mode",
        "grant-type": "client_credentials",
    }
    for request in recorder.requests[2:]:
        assert request.header("Authorization") == "Bearer recorded-token"
    for request in recorder.requests:
        token = request.header("X-Authorization")
        assert token == _expected(request, rsa_key), request.path
        parts = request_parts(
            request.method, request.path, request.query, request.headers, request.body
        )
        verified = verify_pop_token(token, keys=[rsa_key.public], request=parts, now=NOW + 1)
        assert verified.jti == JTI
    assert verified.names == ("Authorization", "uri", "http-method")
    # The refused query is the run's one failure: newman exits 1.
    assert [f["source"]["name"] for f in run.failures] == ["Query refused"]
    assert run.returncode == 1


ENCRYPTED_HINT = "private key is encrypted"


@pytest.mark.parametrize(
    ("pem", "reason"),
    [
        ("", "no private key: set private_key in the environment"),
        ("-----BEGIN PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END PRIVATE KEY-----", "malformed"),
        ("just some text", "private key is malformed"),
        ("encrypted", ENCRYPTED_HINT),
    ],
)
def test_an_unusable_key_sends_nothing_and_says_why(
    tmp_path: Path,
    newman: Path,
    rsa_key: PrivateKey,
    vectors: dict[str, Any],
    pem: str,
    reason: str,
) -> None:
    if pem == "encrypted":
        pem = next(k["pem"] for k in vectors["keys"] if "aes256" in k["name"])
    with recording() as (url, recorder):
        _export(tmp_path / "out", url, rsa_key)
        run = run_newman(newman, tmp_path / "out", env_vars={"private_key": pem})
    assert recorder.requests == []
    # Every request (the two token requests, the two sample calls, the query the rule accepts
    # and the one it refuses) is held back, each with its reason in the console.
    assert run.console.count("taap: request not sent: ") == 6, run.output
    assert reason in run.console
    assert not [e for e in run.executions if e.get("response")]
    # A CI run fails: each held-back request is a failed test, so newman exits 1.
    assert run.returncode == 1
    assert len(run.failures) == 6
    assert {f["error"]["test"] for f in run.failures} == {"taap: the request is signed"}


def test_no_client_secret_sends_nothing(tmp_path: Path, newman: Path, rsa_key: PrivateKey) -> None:
    with recording() as (url, recorder):
        _export(tmp_path / "out", url, rsa_key)
        run = run_newman(newman, tmp_path / "out", env_vars={"client_secret": ""})
    assert recorder.requests == []
    reason = "taap: request not sent: no client credentials: set client_id and client_secret"
    assert run.console.count(reason) == 6, run.output
    assert run.returncode == 1
