"""Third-party clients discover a real ``taap serve`` on loopback.

oauth4webapi (npm, run by node) derives the metadata URL from the issuer in its ``oauth2`` mode
(RFC 8414: the suffix inserted before the issuer's path) and its ``oidc`` mode (OIDC Discovery:
the suffix appended), and requires the document's ``issuer`` to equal the one it started from.
PyJWT's ``PyJWKClient`` then reads the ``jwks_uri`` found there and verifies tokens the server
issued, with the algorithms the document advertises.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from kit.clients import V2_TOKENS, create_client_with_cli, token_headers
from kit.processes import Service, clean_env, start_serve
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent


@dataclass
class Served:
    service: Service
    client_id: str
    secret: str
    key: PrivateKey

    @property
    def issuer(self) -> str:
        return f"{self.service.url}/oauth2/v1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Served]:
    """One ``taap serve`` (SQLite file) with one registered client, for the whole module."""
    folder = tmp_path_factory.mktemp("discovery")
    database_url = f"sqlite:///{folder / 'taap.db'}"
    service = start_serve(folder, database_url, name="serve")
    try:
        client_id, secret = create_client_with_cli(
            database_url, rsa_key, ["connectivity"], folder=folder, env=clean_env()
        )
        yield Served(service, client_id, secret, rsa_key)
    finally:
        service.stop()


def discover(module: Path, cases: list[dict[str, str]]) -> list[dict[str, Any]]:
    """oauth4webapi's discoveryRequest + processDiscoveryResponse for each case, one node run."""
    done = subprocess.run(
        [
            "node",
            str(HERE / "oauth4webapi_discover.mjs"),
            json.dumps({"module": str(module), "cases": cases}),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(results) == len(cases)
    return results


@pytest.mark.node
def test_oauth4webapi_discovers_the_issuer_in_both_modes(
    served: Served, oauth4webapi_module: Path
) -> None:
    base, issuer = served.service.url, served.issuer
    oauth2, oidc = discover(
        oauth4webapi_module,
        [{"issuer": issuer, "algorithm": "oauth2"}, {"issuer": issuer, "algorithm": "oidc"}],
    )
    assert oauth2["url"] == f"{base}/.well-known/oauth-authorization-server/oauth2/v1"
    assert oidc["url"] == f"{base}/oauth2/v1/.well-known/openid-configuration"
    for result in (oauth2, oidc):
        assert result["ok"], result
        assert result["status"] == 200
        assert result["metadata"]["issuer"] == issuer
    assert oauth2["metadata"] == oidc["metadata"]
    metadata = oauth2["metadata"]
    assert metadata["token_endpoint"] == f"{base}/oauth2/v2/tokens"
    assert metadata["jwks_uri"] == f"{base}/oauth2/v1/jwks"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert "response_types_supported" not in metadata


@pytest.mark.node
def test_oauth4webapi_refuses_the_base_url_as_the_issuer(
    served: Served, oauth4webapi_module: Path
) -> None:
    # Derived from the base URL, both modes land on the root documents, which answer; the
    # issuer they name is not the base URL, and a strict client must stop there.
    base = served.service.url
    results = discover(
        oauth4webapi_module,
        [{"issuer": base, "algorithm": "oauth2"}, {"issuer": base, "algorithm": "oidc"}],
    )
    assert [r["url"] for r in results] == [
        f"{base}/.well-known/oauth-authorization-server",
        f"{base}/.well-known/openid-configuration",
    ]
    for result in results:
        assert result["status"] == 200
        assert not result["ok"]
        assert result["code"] == "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED", result


def _tamper(token: str) -> str:
    """The token with the first character of its signature changed (always a different byte)."""
    head, payload, signature = token.split(".")
    first = "B" if signature[0] == "A" else "A"
    return ".".join([head, payload, first + signature[1:]])


def test_pyjwt_jwk_client_verifies_issued_tokens_from_the_discovered_jwks(
    served: Served,
) -> None:
    base = served.service.url
    metadata = httpx.get(f"{base}/.well-known/oauth-authorization-server/oauth2/v1").json()
    assert metadata["issuer"] == served.issuer
    response = httpx.post(
        base + V2_TOKENS, headers=token_headers(served.client_id, served.secret, served.key)
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    keys = jwt.PyJWKClient(metadata["jwks_uri"])
    advertised = {
        "access_token": metadata["access_token_signing_alg_values_supported"],
        "id_token": metadata["id_token_signing_alg_values_supported"],
    }
    for name, algorithms in advertised.items():
        token = tokens[name]
        signing_key = keys.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=algorithms,
            audience=served.client_id,
            issuer=metadata["issuer"],
            options={"require": ["iss", "sub", "aud", "iat", "exp", "jti"]},
        )
        assert claims["sub"] == served.client_id, name
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(
                _tamper(token),
                signing_key.key,
                algorithms=algorithms,
                audience=served.client_id,
                issuer=metadata["issuer"],
            )
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
