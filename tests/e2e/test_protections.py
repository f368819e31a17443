"""What the guard refuses, end to end, each with its exact status and error_code (TAAP.md A6)."""

from __future__ import annotations

import time

import httpx
import pytest
from e2e_kit import Stack

from kit.clients import with_registry
from taap.core import issue_access_token
from taap.server.registry.port import Registry, SigningKeyRecord

pytestmark = pytest.mark.e2e

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
SMS = "/sms/v1/messages"
BODY = b'{"to": "+14255550100", "text": "original"}'
CHALLENGE = 'Bearer realm="taap", error="invalid_token"'


def expect(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json()["error_code"]) == (status, code), response.text
    if status == 401:
        assert response.headers["www-authenticate"] == CHALLENGE


@pytest.fixture(scope="module")
def access(stack: Stack) -> str:
    return str(stack.clients["a"].tokens(stack.token_url)["access_token"])


def test_replay(stack: Stack, access: str) -> None:
    client = stack.clients["a"]
    headers = client.headers("GET", DEVICE, access)
    assert httpx.get(stack.api.url + DEVICE, headers=headers).status_code == 200
    expect(httpx.get(stack.api.url + DEVICE, headers=headers), 401, "pop_replayed")


def test_body_tamper(stack: Stack, access: str) -> None:
    headers = stack.clients["a"].headers("POST", SMS, access, BODY)
    tampered = BODY.replace(b"original", b"changed!")
    expect(
        httpx.post(stack.api.url + SMS, headers=headers, content=tampered), 401, "pop_edts_mismatch"
    )


def test_query_tamper(stack: Stack, access: str) -> None:
    headers = stack.clients["a"].headers("GET", DEVICE + "?fields=status", access)
    response = httpx.get(stack.api.url + DEVICE + "?fields=plan", headers=headers)
    expect(response, 401, "pop_edts_mismatch")


def test_method_swap(stack: Stack, access: str) -> None:
    headers = stack.clients["a"].headers("GET", DEVICE, access)
    expect(httpx.delete(stack.api.url + DEVICE, headers=headers), 401, "pop_edts_mismatch")


def test_token_of_another_client(stack: Stack, access: str) -> None:
    # b's access token binds b's key; a signs the PoP with its own key.
    other = str(stack.clients["b"].tokens(stack.token_url)["access_token"])
    headers = stack.clients["a"].headers("GET", DEVICE, other)
    expect(httpx.get(stack.api.url + DEVICE, headers=headers), 401, "pop_signature_invalid")


def test_id_token_as_access_token(stack: Stack) -> None:
    client = stack.clients["a"]
    id_token = str(client.tokens(stack.token_url)["id_token"])
    headers = client.headers("GET", DEVICE, id_token)
    expect(httpx.get(stack.api.url + DEVICE, headers=headers), 401, "token_invalid")


def test_unsubscribed_product(stack: Stack) -> None:
    client = stack.clients["b"]
    access = str(client.tokens(stack.token_url)["access_token"])
    headers = client.headers("POST", SMS, access, BODY)
    expect(httpx.post(stack.api.url + SMS, headers=headers, content=BODY), 403, "not_subscribed")


def test_no_token(stack: Stack) -> None:
    expect(httpx.get(stack.api.url + DEVICE), 401, "token_invalid")


def test_no_pop(stack: Stack, access: str) -> None:
    headers = {"Authorization": f"Bearer {access}", "Content-Type": "application/json"}
    expect(httpx.get(stack.api.url + DEVICE, headers=headers), 401, "pop_missing")


def test_stale_pop(stack: Stack, access: str) -> None:
    headers = stack.clients["a"].headers("GET", DEVICE, access, now=time.time() - 80)
    expect(httpx.get(stack.api.url + DEVICE, headers=headers), 401, "pop_expired")


def _signing_key(stack: Stack) -> SigningKeyRecord:
    async def active(registry: Registry) -> SigningKeyRecord:
        return (await registry.signing_keys())[0]

    return with_registry(stack.database_url, active)


def _minted(stack: Stack, *, issued: float, issuer: str | None = None) -> str:
    # The token server's own key and kid; only the times (or issuer) differ from a real token.
    record = _signing_key(stack)
    client = stack.clients["a"]
    return issue_access_token(
        key=record.key,
        kid=record.kid,
        issuer=issuer or f"{stack.token.url}/oauth2/v1",
        client_id=client.client_id,
        apis=["connectivity"],
        cnf_jwk=client.key.public.jwk,
        now=issued,
        ttl=3600,
    )


def test_minted_control_is_accepted(stack: Stack) -> None:
    # Guards the two tests below: a token minted this way is good when its times are.
    client = stack.clients["a"]
    headers = client.headers("GET", DEVICE, _minted(stack, issued=time.time()))
    assert httpx.get(stack.api.url + DEVICE, headers=headers).status_code == 200


def test_expired_token(stack: Stack) -> None:
    # exp 20 s ago: past the 10 s leeway. (TAAP_TOKEN_TTL cannot go below 60 s, so a real
    # expiry would cost a minute of waiting; the token server's key signs this one.)
    token = _minted(stack, issued=time.time() - 3620)
    headers = stack.clients["a"].headers("GET", DEVICE, token)
    expect(httpx.get(stack.api.url + DEVICE, headers=headers), 401, "token_invalid")


def test_token_of_another_issuer(stack: Stack) -> None:
    token = _minted(stack, issued=time.time(), issuer="https://elsewhere.example/oauth2/v1")
    headers = stack.clients["a"].headers("GET", DEVICE, token)
    expect(httpx.get(stack.api.url + DEVICE, headers=headers), 401, "token_invalid")
