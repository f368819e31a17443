"""Signing inputs of the server's tokens: signing them elsewhere gives the same bytes."""

from __future__ import annotations

import pytest

from taap.core import PrivateKey, issue_access_token, issue_id_token
from taap.core.jws import join_compact, parse_compact
from taap.core.tokens import access_token_input, id_token_input

NOW = 1_700_000_000.0


def test_split_signing_equals_issuing(rsa_key: PrivateKey) -> None:
    # RSASSA-PKCS1-v1_5 is deterministic, so input + signature joined later must equal the
    # token issued in one call (the server signs inputs on a thread, TAAP_SIGN_THREADS).
    common = {"kid": "k1", "issuer": "https://iss.example/oauth2/v1", "client_id": "c1"}
    access_args = common | {
        "apis": ["connectivity"],
        "cnf_jwk": rsa_key.public.jwk,
        "now": NOW,
        "ttl": 3600,
        "jti": "j-1",
        "extra": {"storeId": "s1"},
    }
    signed = access_token_input(**access_args)
    whole = issue_access_token(key=rsa_key, **access_args)
    assert join_compact(signed, rsa_key.sign_rs256(signed)) == whole
    parsed = parse_compact(whole, max_bytes=16384, max_header_bytes=1024)
    assert parsed.signing_input == signed
    assert parsed.payload["storeId"] == "s1"
    assert parsed.header == {"kid": "k1", "typ": "at+jwt", "alg": "RS256"}

    id_args = common | {"now": NOW, "ttl": 60, "jti": "j-2"}
    signed_id = id_token_input(**id_args)
    assert join_compact(signed_id, rsa_key.sign_rs256(signed_id)) == issue_id_token(
        key=rsa_key, **id_args
    )
    assert parse_compact(
        issue_id_token(key=rsa_key, **id_args), max_bytes=16384, max_header_bytes=1024
    ).payload == {
        "sub": "c1",
        "aud": "c1",
        "iss": common["issuer"],
        "exp": int(NOW) + 60,
        "iat": int(NOW),
        "jti": "j-2",
    }


def test_misspelt_claim_keyword_is_refused(rsa_key: PrivateKey) -> None:
    # The claims arrive as keywords; a typo must not fall back to the default lifetime.
    common = {"kid": "k1", "issuer": "https://iss.example/oauth2/v1", "client_id": "c1", "now": NOW}
    with pytest.raises(TypeError, match="tll"):
        issue_id_token(key=rsa_key, tll=60, **common)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="apis"):
        id_token_input(apis=["connectivity"], **common)  # type: ignore[call-arg]
