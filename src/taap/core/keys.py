"""RSA keys: generate, load (PEM and JWK), serialize, RFC 7638 thumbprints (docs/pop.md,
docs/registry.md).

Keys are wrapped once in :class:`PrivateKey` / :class:`PublicKey`, which cache the public JWK
and thumbprint, so the ~45 ms cost of parsing a PEM is paid at load time and never per token.
Their reprs show only the size and thumbprint: private material never reaches a log line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from taap.core._b64 import b64url_decode_lenient, b64url_encode
from taap.core.strict_json import JsonError, dumps_compact, loads_strict
from taap.errors import KeyFormatError

__all__ = [
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "PrivateKey",
    "PublicKey",
    "generate_private_key",
    "jwk_thumbprint",
    "load_private_key",
    "load_public_key",
    "public_key_from_jwk",
]

MIN_RSA_BITS = 2048
#: An upper bound too: a client registering a huge key would make every verification of its
#: PoPs slow (a 16k-bit verify costs ~50x a 2048-bit one).
MAX_RSA_BITS = 8192
ALLOWED_GENERATE_BITS = (2048, 3072, 4096)
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def _int_to_b64(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def _b64_to_int(text: object, member: str) -> int:
    if not isinstance(text, str) or not text:
        raise KeyFormatError(f"JWK member {member!r} missing or not a string")
    try:
        return int.from_bytes(b64url_decode_lenient(text), "big")
    except ValueError as exc:
        raise KeyFormatError(f"JWK member {member!r} is not base64url") from exc


def _check_strength(key: rsa.RSAPublicKey) -> None:
    if key.key_size < MIN_RSA_BITS:
        raise KeyFormatError(f"RSA key of {key.key_size} bits refused: at least 2048 required")
    if key.key_size > MAX_RSA_BITS:
        raise KeyFormatError(f"RSA key of {key.key_size} bits refused: at most 8192 allowed")
    exponent = key.public_numbers().e
    if exponent < 3 or exponent % 2 == 0:
        raise KeyFormatError("RSA public exponent refused")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an RSA JWK's required members."""
    canonical = dumps_compact({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]})
    return b64url_encode(hashlib.sha256(canonical).digest())


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PublicKey:
    """An RSA public key (>= 2048 bits) with its JWK and RFC 7638 thumbprint cached."""

    key: rsa.RSAPublicKey
    jwk: Mapping[str, str] = field(init=False)
    thumbprint: str = field(init=False)

    def __post_init__(self) -> None:
        _check_strength(self.key)
        numbers = self.key.public_numbers()
        jwk = {"kty": "RSA", "n": _int_to_b64(numbers.n), "e": _int_to_b64(numbers.e)}
        object.__setattr__(self, "jwk", jwk)
        object.__setattr__(self, "thumbprint", jwk_thumbprint(jwk))

    @property
    def bits(self) -> int:
        return self.key.key_size

    def verify_rs256(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature."""
        try:
            self.key.verify(signature, message, _PKCS1, _SHA256)
        except InvalidSignature:
            return False
        return True

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM."""
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.thumbprint == self.thumbprint

    def __hash__(self) -> int:
        return hash(self.thumbprint)

    def __repr__(self) -> str:
        return f"PublicKey(bits={self.bits}, thumbprint={self.thumbprint!r})"


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PrivateKey:
    """An RSA private key (>= 2048 bits). Its repr never shows key material."""

    key: rsa.RSAPrivateKey
    public: PublicKey = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public", PublicKey(self.key.public_key()))

    @property
    def bits(self) -> int:
        return self.key.key_size

    @property
    def thumbprint(self) -> str:
        return self.public.thumbprint

    def sign_rs256(self, message: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 over ``message``."""
        return self.key.sign(message, _PKCS1, _SHA256)

    def to_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted with the best available scheme when ``password`` is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def __repr__(self) -> str:
        return f"PrivateKey(bits={self.bits}, thumbprint={self.thumbprint!r})"


def generate_private_key(bits: int = 2048) -> PrivateKey:
    """A fresh RSA key of 2048, 3072 or 4096 bits (e = 65537).

    Raises:
        KeyFormatError: any other size.
    """
    if bits not in ALLOWED_GENERATE_BITS:
        raise KeyFormatError(f"key size must be one of {ALLOWED_GENERATE_BITS}")
    return PrivateKey(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _parse_jwk(data: bytes) -> dict[str, Any]:
    try:
        jwk = loads_strict(data, max_depth=4)
    except JsonError as exc:
        raise KeyFormatError("key is neither PEM nor a JSON Web Key") from exc
    if isinstance(jwk.get("keys"), list) and len(jwk["keys"]) == 1:
        jwk = jwk["keys"][0]
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
        raise KeyFormatError("JWK is not an RSA key")
    return jwk


def load_private_key(data: bytes | str, password: bytes | str | None = None) -> PrivateKey:
    """Load PKCS#8, PKCS#1, encrypted PKCS#8, legacy encrypted PKCS#1 PEM or a private JWK.

    Raises:
        KeyFormatError: unreadable, wrong password, not RSA, or under 2048 bits. The message
            never contains key material or the password.
    """
    raw = _as_bytes(data).strip()
    secret = _as_bytes(password) if password is not None else None
    if raw.startswith(b"{"):
        return _private_from_jwk(_parse_jwk(raw))
    if b"-----BEGIN" not in raw:
        raise KeyFormatError("private key is neither PEM nor a JSON Web Key")
    encrypted = b"ENCRYPTED" in raw
    if encrypted and not secret:
        raise KeyFormatError("private key is encrypted: a password is required")
    try:
        key = serialization.load_pem_private_key(raw, password=secret if encrypted else None)
    except TypeError as exc:
        raise KeyFormatError("private key is not encrypted but a password was given") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        reason = "wrong password or unreadable key" if encrypted else "unreadable private key"
        raise KeyFormatError(reason) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError("private key is not RSA")
    return PrivateKey(key)


def _private_from_jwk(jwk: Mapping[str, Any]) -> PrivateKey:
    if "d" not in jwk:
        raise KeyFormatError("JWK has no private member 'd'")
    n, e, d = (_b64_to_int(jwk.get(m), m) for m in ("n", "e", "d"))
    public = rsa.RSAPublicNumbers(e, n)
    try:
        if all(m in jwk for m in ("p", "q", "dp", "dq", "qi")):
            p, q, dp, dq, qi = (_b64_to_int(jwk[m], m) for m in ("p", "q", "dp", "dq", "qi"))
        else:
            p, q = rsa.rsa_recover_prime_factors(n, e, d)
            dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
        key = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()
    except ValueError as exc:
        raise KeyFormatError("JWK private key is inconsistent") from exc
    return PrivateKey(key)


def load_public_key(data: bytes | str) -> PublicKey:
    """Load an SPKI PEM (``BEGIN PUBLIC KEY``), PKCS#1 PEM (``BEGIN RSA PUBLIC KEY``) or JWK.

    Raises:
        KeyFormatError: unreadable, not RSA, or under 2048 bits.
    """
    raw = _as_bytes(data).strip()
    if raw.startswith(b"{"):
        jwk = _parse_jwk(raw)
        return public_key_from_jwk(jwk)
    if b"PRIVATE KEY" in raw:
        raise KeyFormatError("a private key was given where a public key is expected")
    try:
        key = serialization.load_pem_public_key(raw)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(
            "unreadable public key (expected SPKI PEM, PKCS#1 PEM or JWK)"
        ) from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError("public key is not RSA")
    return PublicKey(key)


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """Build a public key from an RSA JWK mapping (``n``/``e``; padding tolerated).

    Raises:
        KeyFormatError: not an RSA JWK, or under 2048 bits.
    """
    if jwk.get("kty") != "RSA":
        raise KeyFormatError("JWK is not an RSA key")
    n, e = _b64_to_int(jwk.get("n"), "n"), _b64_to_int(jwk.get("e"), "e")
    try:
        key = rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise KeyFormatError("JWK public key is invalid") from exc
    return PublicKey(key)
