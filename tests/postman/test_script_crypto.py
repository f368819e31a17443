"""The collection's JavaScript crypto under plain node, against Python's: RS256 signatures
(PKCS#1 v1.5 is deterministic) and PoP tokens byte for byte, the signed ``uri`` and its query
rule, and clear refusals of keys the script cannot use."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from postman_kit import SCRIPT

from taap.core import build_pop_token, canonical_uri, generate_private_key, load_private_key
from taap.errors import RequestMalformedError

pytestmark = pytest.mark.node

HERE = Path(__file__).resolve().parent
MESSAGES = [
    b"",
    b"a",
    b"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.e30",
    "Jos\u00e9 \u2713 \U0001f600".encode(),
]


def run_script(crypto_js: Path, job: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        ["node", str(HERE / "node_sign.js"), str(SCRIPT), str(crypto_js)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _sign(private: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return private.sign(message, padding.PKCS1v15(), hashes.SHA256())


def _signatures(crypto_js: Path, pem: str) -> list[bytes]:
    job = {"pem": pem, "messages": [base64.b64encode(m).decode() for m in MESSAGES]}
    return [base64.b64decode(s) for s in run_script(crypto_js, job)["signatures"]]


def test_vector_keys_sign_like_python(crypto_js: Path, vectors: dict[str, Any]) -> None:
    plain = [k for k in vectors["keys"] if k["kind"] == "private" and not k["password"]]
    assert len(plain) == 3  # T-Mobile's demo key, the Java repo's second key, the C# one
    for entry in plain:
        private = load_private_key(entry["pem"]).key
        assert _signatures(crypto_js, entry["pem"]) == [_sign(private, m) for m in MESSAGES]


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_generated_keys_sign_like_python(crypto_js: Path, bits: int) -> None:
    key = generate_private_key(bits)
    assert _signatures(crypto_js, key.to_pem().decode()) == [_sign(key.key, m) for m in MESSAGES]


def test_pkcs1_and_a_flattened_pem_sign_too(crypto_js: Path) -> None:
    key = generate_private_key(2048)
    pkcs1 = key.key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    one_line = key.to_pem().decode().replace("\n", " ")  # pasted into a one-line field
    escaped = key.to_pem().decode().replace("\n", "\\n")
    expected = [_sign(key.key, m) for m in MESSAGES]
    for pem in (pkcs1.decode(), one_line, escaped):
        assert _signatures(crypto_js, pem) == expected


def test_pop_tokens_equal_the_python_core(crypto_js: Path, demo_key: Any) -> None:
    pairs = [
        [
            ["Content-Type", "application/json"],
            ["Authorization", "Basic YTpi"],
            ["uri", "/oauth2/v2/tokens"],
            ["http-method", "POST"],
        ],
        [
            ["Authorization", "Bearer x.y.z"],
            ["uri", "/items?name=Jos\u00e9&q=a b"],
            ["http-method", "GET"],
        ],
        [
            ["Content-Type", "application/json; charset=utf-8"],
            ["Authorization", "Bearer t"],
            ["uri", "/sms/v1/messages"],
            ["http-method", "POST"],
            ["body", '{"to":"+14255550100","text":"\u00e9\u00e8 \\"quoted\\" \U0001f600"}'],
        ],
    ]
    jtis = ["f3b1c3a4-3c5e-4d6f-8a9b-0c1d2e3f4a5b", 'needs "escaping" \\ \u00e9', "j"]
    job = {
        "pem": demo_key.to_pem().decode(),
        "pops": [
            {"pairs": p, "now": 1700000000 + i, "jti": j}
            for i, (p, j) in enumerate(zip(pairs, jtis, strict=True))
        ],
    }
    tokens = run_script(crypto_js, job)["pops"]
    expected = [
        build_pop_token([tuple(pair) for pair in p], demo_key, now=1700000000 + i, jti=j)
        for i, (p, j) in enumerate(zip(pairs, jtis, strict=True))
    ]
    assert tokens == expected


# docs/pop.md "Escapes in the query": its allowed and refused examples, plus path refusals.
TARGETS = [
    ("/items", "cursor=abc%3D%3D"),
    ("/items", "q=a+b"),
    ("/items", "q=a%20b"),
    ("/items", "path=%2Fa%2Fb%3Fc"),
    ("/items", "name=Jos%C3%A9&pct=50%25off"),
    ("/items", "a=b%26c=d"),
    ("/items", "a%3Db=c"),
    ("/items", "x%3D"),
    ("/items", "a=%23b"),
    ("/items", "a=%2541"),
    ("/items", "q=a%2Bb"),
    ("/items", "q=%2b"),
    ("/items", "a=%"),
    ("/items", "a=%zz"),
    ("/items", "a=%C3"),
    ("/items", "a;b=c%3Bd"),
    ("/items", "a=b#c"),
    ("/a%2Fb", ""),
    ("/a/../b", ""),
    ("/a/%2e", ""),
    ("/caf%C3%A9", ""),
    ("/x%FF", ""),
    ("/a", "=x&&y="),
    ("/a", "k=%0A"),
]


def test_the_signed_uri_follows_the_python_rule(crypto_js: Path) -> None:
    got = run_script(crypto_js, {"uris": TARGETS})["uris"]
    for (path, query), answer in zip(TARGETS, got, strict=True):
        try:
            expected: Any = canonical_uri(path, query)
        except RequestMalformedError:
            assert isinstance(answer, dict), (path, query, answer)
        else:
            assert answer == expected, (path, query)


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("", "no private key: set private_key"),
        ("   ", "no private key: set private_key"),
        ("not a key", "private key is malformed"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            "private key is malformed",
        ),
        ("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----", "malformed (bad base64)"),
    ],
)
def test_unusable_keys_are_named(crypto_js: Path, pem: str, message: str) -> None:
    assert message in run_script(crypto_js, {"pem": pem})["key_error"]


def test_encrypted_and_non_rsa_keys_are_named(crypto_js: Path, vectors: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    encrypted = [k["pem"] for k in vectors["keys"] if k["kind"] == "private" and k["password"]]
    assert len(encrypted) == 3  # AES-256 and 3DES PKCS#8, legacy encrypted PKCS#1
    for pem in encrypted:
        assert "private key is encrypted" in run_script(crypto_js, {"pem": pem})["key_error"]
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    error = run_script(crypto_js, {"pem": ec_pem.decode()})["key_error"]
    assert "not an RSA key" in error
