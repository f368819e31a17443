"""Key loading in every format of the issue, thumbprints, size floor, secrets kept out of text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from taap.core import (
    PrivateKey,
    PublicKey,
    generate_private_key,
    jwk_thumbprint,
    load_private_key,
    load_public_key,
    public_key_from_jwk,
)
from taap.core._b64 import b64url_encode
from taap.errors import KeyFormatError

# RFC 7638 section 3.1 (the RFC 7517 appendix A.1 key) and its published thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FD"
        "W2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQ"
        "Fh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _int(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _private_jwk(key: PrivateKey, *, crt: bool = True) -> dict[str, Any]:
    numbers = key.key.private_numbers()
    jwk = {**key.public.jwk, "d": _int(numbers.d)}
    if crt:
        jwk.update(
            p=_int(numbers.p),
            q=_int(numbers.q),
            dp=_int(numbers.dmp1),
            dq=_int(numbers.dmq1),
            qi=_int(numbers.iqmp),
        )
    return jwk


def test_rfc7638_thumbprint_example() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    key = public_key_from_jwk(RFC7638_JWK)
    assert key.thumbprint == RFC7638_THUMBPRINT
    assert key.bits == 2048
    # padding in a member is tolerated on input and absent from our own JWK
    padded = {**RFC7638_JWK, "n": RFC7638_JWK["n"] + "="}
    assert public_key_from_jwk(padded).thumbprint == RFC7638_THUMBPRINT
    assert "=" not in key.jwk["n"]


def _pem(key: PrivateKey, fmt: serialization.PrivateFormat, password: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.key.private_bytes(serialization.Encoding.PEM, fmt, enc)


@pytest.mark.parametrize(
    ("fmt", "password", "marker"),
    [
        (serialization.PrivateFormat.PKCS8, None, b"BEGIN PRIVATE KEY"),
        (serialization.PrivateFormat.TraditionalOpenSSL, None, b"BEGIN RSA PRIVATE KEY"),
        (serialization.PrivateFormat.PKCS8, b"s3cret-pw", b"BEGIN ENCRYPTED PRIVATE KEY"),
        (serialization.PrivateFormat.TraditionalOpenSSL, b"s3cret-pw", b"Proc-Type: 4,ENCRYPTED"),
    ],
)
def test_private_pem_formats(
    rsa_key: PrivateKey, fmt: serialization.PrivateFormat, password: bytes | None, marker: bytes
) -> None:
    pem = _pem(rsa_key, fmt, password)
    assert marker in pem
    loaded = load_private_key(pem, password)
    assert loaded.public == rsa_key.public
    assert loaded.thumbprint == rsa_key.thumbprint
    # str input and a str password work as well
    text_password = password.decode() if password else None
    assert load_private_key(pem.decode(), text_password).public == rsa_key.public


@pytest.mark.parametrize("crt", [True, False])
def test_private_jwk(rsa_key: PrivateKey, crt: bool) -> None:
    jwk = _private_jwk(rsa_key, crt=crt)
    loaded = load_private_key(json.dumps(jwk))
    assert loaded.public == rsa_key.public
    assert loaded.sign_rs256(b"m") == rsa_key.sign_rs256(b"m")  # same private exponent
    # a JWKS holding exactly one key is accepted too
    assert load_private_key(json.dumps({"keys": [jwk]})).public == rsa_key.public


def test_private_jwk_refusals(rsa_key: PrivateKey) -> None:
    jwk = _private_jwk(rsa_key)
    for bad in (
        {k: v for k, v in jwk.items() if k != "d"},
        {**jwk, "d": _int(12345)},
        {**jwk, "kty": "EC"},
        {**jwk, "n": "!!"},
        {**jwk, "d": 7},
    ):
        with pytest.raises(KeyFormatError):
            load_private_key(json.dumps(bad))


def test_public_formats(rsa_key: PrivateKey) -> None:
    spki = rsa_key.public.to_pem()
    pkcs1 = rsa_key.public.key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    assert b"BEGIN PUBLIC KEY" in spki
    assert b"BEGIN RSA PUBLIC KEY" in pkcs1
    for data in (spki, pkcs1, spki.decode(), json.dumps(dict(rsa_key.public.jwk))):
        assert load_public_key(data) == rsa_key.public
    assert load_public_key(json.dumps({"keys": [dict(rsa_key.public.jwk)]})) == rsa_key.public


def test_vector_keys_in_legacy_forms(vectors: dict[str, Any]) -> None:
    by_name = {k["name"].split(" ")[0]: k for k in vectors["keys"]}
    go = by_name["go-encrypted-pkcs1-traditional"]
    assert "Proc-Type: 4,ENCRYPTED" in go["pem"]
    assert load_private_key(go["pem"], go["password"]).public == load_public_key(
        go["public_spki_pem"]
    )
    aes = by_name["java-aes256-encrypted-pkcs8"]
    assert "BEGIN ENCRYPTED PRIVATE KEY" in aes["pem"]
    assert load_private_key(aes["pem"], "foobar").bits == 2048
    pkcs1_pub = by_name["java-validator-utils-pkcs1-public"]
    assert "BEGIN RSA PUBLIC KEY" in pkcs1_pub["pem"]
    assert load_public_key(pkcs1_pub["pem"]) == load_public_key(pkcs1_pub["public_spki_pem"])


def test_wrong_or_missing_password(vectors: dict[str, Any]) -> None:
    key = next(k for k in vectors["keys"] if k["password"] == "foobar")
    for password in ("not-the-password-XYZZY", None, ""):
        with pytest.raises(KeyFormatError) as info:
            load_private_key(key["pem"], password)
        text = f"{info.value} {info.value.description} {info.value.log_detail} {info.value!r}"
        assert "password" in text.lower()
        assert "XYZZY" not in text
        assert "foobar" not in text


def test_password_for_an_unencrypted_key_is_ignored(rsa_key: PrivateKey) -> None:
    assert load_private_key(rsa_key.to_pem(), b"unused").public == rsa_key.public


def test_encrypted_export_round_trip(rsa_key: PrivateKey) -> None:
    pem = rsa_key.to_pem(b"pw")
    assert b"ENCRYPTED" in pem
    assert load_private_key(pem, b"pw").public == rsa_key.public
    with pytest.raises(KeyFormatError):
        load_private_key(pem, b"other")


def _weak() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_keys_under_2048_bits_are_refused() -> None:
    weak = _weak()
    pem = weak.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = weak.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    numbers = weak.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": _int(numbers.n), "e": _int(numbers.e)}
    attempts = [
        lambda: load_private_key(pem),
        lambda: load_public_key(public_pem),
        lambda: public_key_from_jwk(jwk),
        lambda: PrivateKey(weak),
        lambda: PublicKey(weak.public_key()),
        lambda: generate_private_key(1024),
        lambda: generate_private_key(2047),
    ]
    for attempt in attempts:
        with pytest.raises(KeyFormatError):
            attempt()


def test_keys_over_8192_bits_are_refused() -> None:
    # A huge client key would make every verification of its PoPs slow; only the public
    # numbers matter here, so no real 8k+ key needs generating.
    for bits, refused in ((8192, False), (8200, True)):
        n = (1 << (bits - 1)) | 1
        jwk = {"kty": "RSA", "n": _int(n), "e": _int(65537)}
        if refused:
            with pytest.raises(KeyFormatError, match="at most 8192"):
                public_key_from_jwk(jwk)
        else:
            assert public_key_from_jwk(jwk).bits == bits


def test_even_or_tiny_exponent_is_refused(rsa_key: PrivateKey) -> None:
    n = rsa_key.public.jwk["n"]
    for e in (1, 2, 65536):
        with pytest.raises(KeyFormatError):
            public_key_from_jwk({"kty": "RSA", "n": n, "e": _int(e)})


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_generate_sizes(bits: int) -> None:
    key = generate_private_key(bits)
    assert key.bits == bits
    assert key.public.verify_rs256(key.sign_rs256(b"m"), b"m")
    assert not key.public.verify_rs256(key.sign_rs256(b"m"), b"n")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\x00\x01\x02",
        b"{}",
        b'{"kty":"RSA"}',
        b"[1,2]",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
    ],
)
def test_unreadable_keys(data: bytes) -> None:
    with pytest.raises(KeyFormatError):
        load_private_key(data)
    with pytest.raises(KeyFormatError):
        load_public_key(data)


def test_wrong_kind_of_key(rsa_key: PrivateKey) -> None:
    with pytest.raises(KeyFormatError):
        load_public_key(rsa_key.to_pem())
    with pytest.raises(KeyFormatError):
        load_private_key(rsa_key.public.to_pem())
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError, match="not RSA"):
        load_private_key(ec_pem)


def test_reprs_never_show_key_material(rsa_key: PrivateKey) -> None:
    numbers = rsa_key.key.private_numbers()
    secrets = [
        str(numbers.d),
        str(numbers.p),
        _int(numbers.d)[:16],
        _int(numbers.p)[:16],
        rsa_key.public.jwk["n"][:16],
    ]
    pem_body = rsa_key.to_pem().decode().splitlines()[1]
    for text in (
        repr(rsa_key),
        str(rsa_key),
        repr(rsa_key.public),
        str(rsa_key.public),
        f"{rsa_key!r}",
    ):
        assert rsa_key.thumbprint in text
        assert pem_body[:16] not in text
        for secret in secrets:
            assert secret not in text


def test_keys_compare_by_thumbprint(rsa_key: PrivateKey, other_key: PrivateKey) -> None:
    again = load_public_key(rsa_key.public.to_pem())
    assert again == rsa_key.public
    assert hash(again) == hash(rsa_key.public)
    assert again != other_key.public
    assert len({again, rsa_key.public, other_key.public}) == 2
