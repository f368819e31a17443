"""Discovery metadata: every URL a client derives from the issuer (RFC 8414 sections 3 and 5,
OIDC Discovery 1.0 section 4) or from the base URL answers with one document whose members say
only what the server does (docs/server.md, "Discovery metadata")."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from server_kit import BASE, Harness, decode, make_harness

from taap.core import PrivateKey
from taap.server.discovery import DISCOVERY_PATHS

ISSUER = f"{BASE}/oauth2/v1"


def inserted(issuer: str, suffix: str) -> str:
    """RFC 8414 section 3: ``/.well-known/<suffix>`` between the host and the issuer's path."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}/.well-known/{suffix}{path}"


def appended(issuer: str) -> str:
    """OIDC Discovery section 4: ``/.well-known/openid-configuration`` after the issuer."""
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def derived_urls(issuer: str) -> dict[str, str]:
    return {
        "rfc8414": inserted(issuer, "oauth-authorization-server"),
        "rfc8414-oidc-suffix": inserted(issuer, "openid-configuration"),
        "oidc": appended(issuer),
    }


def test_the_derived_urls_are_the_ones_served() -> None:
    # The helpers above, applied to the default issuer, give literal paths (so a mistake in them
    # cannot hide one in DISCOVERY_PATHS).
    assert {urlsplit(url).path for url in derived_urls(ISSUER).values()} == {
        "/.well-known/oauth-authorization-server/oauth2/v1",
        "/.well-known/openid-configuration/oauth2/v1",
        "/oauth2/v1/.well-known/openid-configuration",
    }
    assert set(DISCOVERY_PATHS) == {
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/oauth2/v1",
        "/.well-known/openid-configuration/oauth2/v1",
        "/oauth2/v1/.well-known/openid-configuration",
    }


@pytest.mark.parametrize("form", ["rfc8414", "rfc8414-oidc-suffix", "oidc"])
@pytest.mark.parametrize("public_url", [BASE, "https://taap.example", "https://taap.example/"])
async def test_each_issuer_derived_url_answers_with_exactly_that_issuer(
    rsa_key: PrivateKey, signing_key: PrivateKey, public_url: str, form: str
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, public_url=public_url)
    issuer = h.settings.issuer_url
    assert issuer == public_url.rstrip("/") + "/oauth2/v1"
    url = derived_urls(issuer)[form]
    async with h.http() as client:
        r = await client.get(urlsplit(url).path)
    assert r.status_code == 200, url
    assert r.headers["content-type"].startswith("application/json")
    # a strict client compares the strings as they are: no trailing slash, same scheme and host
    assert r.json()["issuer"] == issuer


async def test_every_form_serves_the_same_document(harness: Harness) -> None:
    async with harness.http() as client:
        bodies = {path: (await client.get(path)).content for path in DISCOVERY_PATHS}
    assert len(set(bodies.values())) == 1


async def test_the_root_forms_name_the_issuer_not_the_base_url(harness: Harness) -> None:
    # A client given the base URL finds the metadata at the root and learns the issuer there; a
    # client that takes the base URL itself as the issuer must see the mismatch and stop.
    async with harness.http() as client:
        for suffix in ("openid-configuration", "oauth-authorization-server"):
            path = f"/.well-known/{suffix}"
            assert (await client.get(path)).json()["issuer"] == ISSUER != BASE


async def test_the_document_says_only_what_the_server_does(harness: Harness) -> None:
    async with harness.http() as client:
        doc = (await client.get("/.well-known/oauth-authorization-server/oauth2/v1")).json()
    assert doc == {
        "issuer": ISSUER,
        "token_endpoint": f"{BASE}/oauth2/v2/tokens",
        "taap_token_endpoints": [f"{BASE}/oauth2/v2/tokens", f"{BASE}/oauth2/v6/tokens"],
        "jwks_uri": f"{BASE}/oauth2/v1/jwks",
        "revocation_endpoint": f"{BASE}/oauth2/v1/revoke",
        "introspection_endpoint": f"{BASE}/oauth2/v1/introspect",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "access_token_signing_alg_values_supported": ["RS256"],
        "taap_pop_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["response_mode"],
        "request_uri_parameter_supported": False,
    }
    # No authorization endpoint, so no response type (not even the implicit "token") and none
    # of the members that only describe authorization requests.
    for absent in (
        "authorization_endpoint",
        "response_types_supported",
        "response_modes_supported",
        "code_challenge_methods_supported",
        # only meaningful with private_key_jwt or client_secret_jwt, which are not offered
        "token_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "userinfo_endpoint",
        "registration_endpoint",
    ):
        assert absent not in doc, absent
    # RFC 8414 section 3.2 and OIDC Discovery section 4.2: zero-element members are omitted
    assert all(value != [] for value in doc.values())


async def test_every_url_in_the_document_is_served_here(harness: Harness) -> None:
    async with harness.http() as client:
        doc = (await client.get("/oauth2/v1/.well-known/openid-configuration")).json()
        urls = [
            doc["jwks_uri"],
            doc["token_endpoint"],
            *doc["taap_token_endpoints"],
            doc["revocation_endpoint"],
            doc["introspection_endpoint"],
        ]
        for url in urls:
            assert url.startswith(f"{BASE}/"), url  # absolute, on the public base URL
        jwks = await client.get(urlsplit(doc["jwks_uri"]).path)
        assert jwks.status_code == 200
        assert jwks.json()["keys"]
        posts = {
            doc["token_endpoint"],
            *doc["taap_token_endpoints"],
            doc["revocation_endpoint"],
            doc["introspection_endpoint"],
        }
        for url in posts:
            # a POST endpoint exists there: it refuses GET with 405, never 404
            wrong_method = await client.get(urlsplit(url).path)
            assert wrong_method.status_code == 405, url
            assert wrong_method.headers["allow"] == "POST"


@pytest.mark.parametrize("version", ["v2", "v6"])
async def test_issued_tokens_use_the_advertised_algorithms_and_keys(
    harness: Harness, version: str
) -> None:
    async with harness.http() as client:
        doc = (await client.get("/.well-known/openid-configuration/oauth2/v1")).json()
        jwks = (await client.get(urlsplit(doc["jwks_uri"]).path)).json()
    response = await harness.post(version)
    assert response.status_code == 200, response.text
    kids = {key["kid"] for key in jwks["keys"]}
    access_header, access_claims = decode(response.json()["access_token"])
    id_header, id_claims = decode(response.json()["id_token"])
    assert access_header["alg"] in doc["access_token_signing_alg_values_supported"]
    assert id_header["alg"] in doc["id_token_signing_alg_values_supported"]
    assert {access_header["kid"], id_header["kid"]} <= kids
    assert access_claims["iss"] == id_claims["iss"] == doc["issuer"]


async def test_only_get_on_the_new_forms(harness: Harness) -> None:
    async with harness.http() as client:
        for path in (
            "/.well-known/oauth-authorization-server/oauth2/v1",
            "/.well-known/openid-configuration/oauth2/v1",
        ):
            r = await client.post(path)
            assert r.status_code == 405
            assert r.headers["allow"] == "GET"


async def test_the_new_forms_are_measured_as_discovery(harness: Harness) -> None:
    async with harness.http() as client:
        await client.get("/.well-known/oauth-authorization-server/oauth2/v1")
        metrics = (await client.get("/metrics")).text
    counts: dict[str, Any] = {}
    for line in metrics.splitlines():
        if line.startswith("taap_request_duration_seconds_count{"):
            label = line.split('endpoint="', 1)[1].split('"', 1)[0]
            counts[label] = float(line.rsplit(" ", 1)[1])
    assert counts.get("discovery") == 1.0
    assert "other" not in counts
