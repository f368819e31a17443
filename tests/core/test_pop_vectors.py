"""T-Mobile's vectors: strict and java-compat outcomes, key loading, byte-exact npm tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taap.core import (
    PopPolicy,
    SignedValues,
    build_pop_token,
    load_private_key,
    load_public_key,
    public_key_from_jwk,
    verify_pop_token,
)
from taap.core.keys import PublicKey
from taap.errors import PopError

_DATA = json.loads((Path(__file__).parents[1] / "vectors" / "tmo-vectors.json").read_text())
_WITH_KEY = [v for v in _DATA["vectors"] if v["public_key"] is not None]
_NPM_FIXED = [v for v in _DATA["vectors"] if v["id"].startswith("js-npm-fixed_")]


def _public(vector: dict[str, Any]) -> PublicKey:
    raw = vector["public_key"]
    return public_key_from_jwk(raw) if isinstance(raw, dict) else load_public_key(raw)


def _outcome(vector: dict[str, Any], policy: PopPolicy) -> str:
    try:
        verify_pop_token(
            vector["token"],
            keys=[_public(vector)],
            request=SignedValues([tuple(p) for p in vector["ehts_values"]]),
            now=vector["frozen_now"],
            policy=policy,
        )
    except PopError as exc:
        return f"reject:{exc.error_code}"
    return "accept"


def test_vector_file_has_the_cases_we_rely_on() -> None:
    assert len(_WITH_KEY) >= 30
    assert len(_NPM_FIXED) == 3
    assert len(_DATA["keys"]) == 8


@pytest.mark.parametrize("vector", _WITH_KEY, ids=[v["id"] for v in _WITH_KEY])
def test_strict_policy_matches_taap_strict(vector: dict[str, Any]) -> None:
    assert _outcome(vector, PopPolicy.named("strict")) == vector["expected"]["taap_strict"]


@pytest.mark.parametrize("vector", _WITH_KEY, ids=[v["id"] for v in _WITH_KEY])
def test_java_compat_matches_java_reference(vector: dict[str, Any]) -> None:
    expected = vector["expected"]["java_reference_validator"].split(":", 1)[0]
    got = _outcome(vector, PopPolicy.named("java-compat")).split(":", 1)[0]
    assert got == expected


@pytest.mark.parametrize("key", _DATA["keys"], ids=[k["name"][:30] for k in _DATA["keys"]])
def test_every_key_loads_and_matches_its_public_half(key: dict[str, Any]) -> None:
    spki = load_public_key(key["public_spki_pem"])
    if key["kind"] == "private":
        private = load_private_key(key["pem"], key["password"])
        public = private.public
    else:
        public = load_public_key(key["pem"])
    assert public.bits == key["modulus_bits"]
    assert public == spki
    from_jwk = public_key_from_jwk(key["public_jwk"])
    assert from_jwk == public
    assert public.jwk["n"] == key["public_jwk"]["n"].rstrip("=")


@pytest.mark.parametrize("vector", _NPM_FIXED, ids=[v["id"] for v in _NPM_FIXED])
def test_npm_fixed_tokens_are_reproduced_byte_for_byte(
    vector: dict[str, Any], demo_key: Any
) -> None:
    payload = vector["decoded_payload"]
    token = build_pop_token(
        [tuple(p) for p in vector["ehts_values"]],
        demo_key,
        ttl=120,
        now=1700000000,
        jti=payload["jti"],
    )
    assert token == vector["token"]


def test_demo_key_is_the_npm_vectors_signer(demo_key: Any) -> None:
    # Guards the fixture: the byte-exact test above is meaningless with another key.
    assert demo_key.public == load_public_key(_NPM_FIXED[0]["public_key"])
