"""Build and verify TAAP PoP tokens (docs/pop.md).

Building is byte-compatible with T-Mobile's npm builder: header ``{"alg":"RS256","typ":"JWT"}``,
claims ``edts, v, exp, ehts, iat, jti`` in that order, compact UTF-8 JSON, unpadded base64url.

Verification runs the steps of docs/protocol.md#verifying-a-pop in order and raises the error of the
first failing step: structure and claim syntax (``pop_malformed``), signature
(``pop_signature_invalid``), time (``pop_expired``), coverage (``pop_ehts_insufficient``) and digest
(``pop_edts_mismatch``). Step 7 (one hop) is the caller's, through a
:class:`~taap.core.replay.ReplayStore`, after all of its own checks passed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from taap.core import _pop_reasons as reasons
from taap.core._b64 import b64url_encode
from taap.core.jws import JwsError, parse_compact_parts, sign_compact
from taap.core.keys import PrivateKey, PublicKey
from taap.core.request import RESERVED_NAMES, ValueSource
from taap.errors import (
    PopBuildError,
    PopDigestError,
    PopMalformedError,
    PopSignatureError,
)

__all__ = [
    "DEFAULT_TTL",
    "JAVA_COMPAT",
    "LENIENT",
    "MAX_EHTS",
    "MAX_TTL",
    "STRICT",
    "PolicyName",
    "PopPolicy",
    "VerifiedPop",
    "build_pop_token",
    "compute_edts",
    "decode_pop_token",
    "verify_pop_token",
]

DEFAULT_TTL = 60
MAX_TTL = 120
MAX_EHTS = 100
MAX_JTI = 128
_HEADER_SEGMENT = b64url_encode(b'{"alg":"RS256","typ":"JWT"}')

PolicyName = Literal["strict", "lenient", "java-compat"]
# What strict coverage requires besides an Authorization header (step 5 of
# docs/protocol.md#verifying-a-pop).
_RESERVED_REQUIRED = ("uri", "http-method")
_RESERVED_WITH_BODY = ("uri", "http-method", "body")


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def compute_edts(values: Iterable[str | bytes]) -> str:
    """``edts``: base64url (no padding) SHA-256 of the UTF-8 values concatenated in order."""
    digest = hashlib.sha256()
    for value in values:
        digest.update(_encode(value))
    return b64url_encode(digest.digest())


def _check_build_pairs(pairs: Sequence[tuple[str, str | bytes]]) -> None:
    if not pairs:
        raise PopBuildError("nothing to sign: the ehts map is empty")
    if len(pairs) > MAX_EHTS:
        raise PopBuildError(f"at most {MAX_EHTS} names can be signed, got {len(pairs)}")
    seen: set[str] = set()
    for name, value in pairs:
        if not isinstance(name, str) or not name.strip():
            raise PopBuildError("a signed name is blank")
        if name != name.strip():
            raise PopBuildError(f"signed name {name!r} has surrounding spaces")
        if ";" in name:
            raise PopBuildError(f"signed name {name!r} contains ';'")
        folded = _fold(name)
        if folded in seen:
            raise PopBuildError(f"signed name {name!r} appears twice")
        seen.add(folded)
        if isinstance(value, bytes):
            # A server refuses text that is not UTF-8 (request_malformed), so signing it would
            # only produce a token that can never verify.
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PopBuildError(f"value of {name!r} is not UTF-8") from exc
        elif isinstance(value, str):
            text = value
        else:
            raise PopBuildError(f"value of {name!r} must be str or bytes")
        # The verifier's own test (str.strip on text), so a token we build is never one it
        # refuses as blank (U+2003 alone is blank to both).
        if name != "body" and not text.strip():
            raise PopBuildError(f"value of {name!r} is blank")


def build_pop_token(
    pairs: Sequence[tuple[str, str | bytes]] | Mapping[str, str | bytes],
    key: PrivateKey,
    *,
    ttl: int = DEFAULT_TTL,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """Sign the ordered ``(name, value)`` pairs into a PoP token (docs/protocol.md#the-pop-token).

    ``now`` and ``jti`` are injectable for tests; by default the system clock and a UUID4.

    Raises:
        PopBuildError: empty map, more than 100 entries, blank names or names with ``;`` or
            surrounding spaces, duplicate names, blank values (other than ``body``), a value
            that is not valid Unicode (or, as bytes, not UTF-8), a ``ttl`` outside 1..120,
            or a ``jti`` that is not a non-empty string of at most 128 characters.
    """
    items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
    _check_build_pairs(items)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
        raise PopBuildError(f"ttl must be an integer of 1..{MAX_TTL} seconds")
    if jti is None:
        jti = str(uuid.uuid4())
    elif not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise PopBuildError(f"jti must be a non-empty string of at most {MAX_JTI} characters")
    iat = int(time.time() if now is None else now)
    try:
        edts = compute_edts(value for _, value in items)
    except UnicodeEncodeError as exc:
        raise PopBuildError("a signed value is not valid Unicode text") from exc
    claims = {
        "edts": edts,
        "v": "1",
        "exp": iat + ttl,
        "ehts": ";".join(name for name, _ in items),
        "iat": iat,
        "jti": jti,
    }
    return sign_compact(_HEADER_SEGMENT, claims, key)


_POLICY_FLOORS = (
    ("leeway", 0),
    ("max_ttl", 1),
    ("max_age", 1),
    ("max_token_bytes", 1),
    ("max_header_bytes", 1),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PopPolicy:
    """How strictly a PoP is judged (docs/protocol.md#verifying-a-pop, docs/protocol.md#settings).
    ``strict`` is the default everywhere."""

    name: PolicyName = "strict"
    leeway: int = 10
    max_ttl: int = MAX_TTL
    max_age: int = 60
    max_token_bytes: int = 8192
    max_header_bytes: int = 1024

    def __post_init__(self) -> None:
        # A negative leeway or a zero cap would silently reject (or, with NaN, accept) tokens.
        if self.name not in ("strict", "lenient", "java-compat"):
            raise ValueError(f"unknown PoP policy {self.name!r}")
        for field_name, low in _POLICY_FLOORS:
            value = getattr(self, field_name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < low
            ):
                raise ValueError(f"PoP policy {field_name} must be a number >= {low}")

    @classmethod
    def named(cls, name: str, **overrides: Any) -> PopPolicy:
        """The policy ``strict``, ``lenient`` or ``java-compat`` with optional overrides.

        Raises:
            ValueError: unknown policy name, a negative leeway, a cap below 1, or a value
                that is not a finite number.
        """
        if name not in ("strict", "lenient", "java-compat"):
            raise ValueError(f"unknown PoP policy {name!r}")
        return cls(name=name, **overrides)  # type: ignore[arg-type]


STRICT = PopPolicy()
LENIENT = PopPolicy(name="lenient")
JAVA_COMPAT = PopPolicy(name="java-compat")


@dataclass(frozen=True, slots=True)
class VerifiedPop:
    """A PoP that passed steps 1-6 of docs/protocol.md#verifying-a-pop."""

    claims: Mapping[str, Any]
    key: PublicKey
    names: tuple[str, ...]
    jti: str | None
    replay_until: float

    @property
    def key_thumbprint(self) -> str:
        return self.key.thumbprint


def decode_pop_token(
    token: str, *, policy: PopPolicy = STRICT
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a structurally valid PoP, **without** verifying anything else.

    Raises:
        PopMalformedError: the token fails step 1 of docs/protocol.md#verifying-a-pop.
    """
    header, payload, _, _ = _parse(token, policy)
    return header, payload


def _parse(token: str, policy: PopPolicy) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    try:
        parts = parse_compact_parts(
            token, max_bytes=policy.max_token_bytes, max_header_bytes=policy.max_header_bytes
        )
    except JwsError as exc:
        raise PopMalformedError(log_detail=str(exc)) from exc
    typ = parts[0].get("typ", "JWT")
    # An access token (typ at+jwt) must never pass as a PoP (SECURITY.md S9).
    if typ != "JWT" and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise PopMalformedError(log_detail="typ must be JWT")
    return parts


def _fold(name: str) -> str:
    """Identity of a signed name: reserved names exact, header names case-insensitive."""
    return name if name in RESERVED_NAMES else name.lower()


_ABSENT: Any = object()  # Any: the type checker sees the claims, not the sentinel


def _bad(why: str) -> PopMalformedError:
    return PopMalformedError(log_detail=why)


def _claims_syntax(claims: Mapping[str, Any], java: bool) -> tuple[str, ...]:
    get = claims.get
    iat, exp, nbf = get("iat", _ABSENT), get("exp", _ABSENT), get("nbf", _ABSENT)
    # type() and not isinstance(): bool is an int subclass and true/false are not times.
    if type(iat) is not int and iat is not _ABSENT:
        raise _bad("iat must be a JSON integer")
    if type(exp) is not int and exp is not _ABSENT:
        raise _bad("exp must be a JSON integer")
    if type(nbf) is not int and nbf is not _ABSENT:
        raise _bad("nbf must be a JSON integer")
    if not java and (iat is _ABSENT or exp is _ABSENT):
        raise _bad("iat and exp are required")
    ehts, edts, jti = get("ehts"), get("edts"), get("jti")
    if type(ehts) is not str or not ehts or type(edts) is not str or not edts:
        raise _bad("ehts and edts must be non-empty strings")
    if jti is not None or not java:
        if type(jti) is not str or not jti:
            raise _bad("jti must be a non-empty string")
        if len(jti) > MAX_JTI:
            raise _bad("jti too long")
    if not java:
        v = get("v")
        if not ((type(v) is str and v == "1") or (type(v) is int and v == 1)):
            raise _bad('v must be "1"')
        if exp <= iat:  # both checked to be int above
            raise _bad("exp must be after iat")
    names = tuple(ehts.split(";"))
    if len(names) > MAX_EHTS:
        raise _bad("ehts must name 1..100 items")
    folded: set[str] = set()
    for name in names:
        if not name or name != name.strip():
            raise _bad("ehts has an empty or padded name")
        # reserved names exact, header names case-insensitive (as _fold, inlined: hot path)
        folded.add(name if name in RESERVED_NAMES else name.lower())
    if len(folded) != len(names):
        raise _bad("ehts names an item twice")
    return names


def _check_time(claims: Mapping[str, Any], policy: PopPolicy, now: float, java: bool) -> None:
    leeway = policy.leeway
    iat, exp, nbf = claims.get("iat"), claims.get("exp"), claims.get("nbf")
    if exp is not None and now > exp + leeway:
        raise reasons.expired(exp, now, leeway)
    if iat is not None and iat > now + leeway:
        raise reasons.not_yet_valid("iat", iat, now, leeway)
    if nbf is not None and nbf > now + leeway:
        raise reasons.not_yet_valid("nbf", nbf, now, leeway)
    if java:
        return
    if iat is None or exp is None:  # required by the claims step; kept for the type checker
        raise PopMalformedError(log_detail="iat/exp missing")
    if exp - iat > policy.max_ttl:
        raise reasons.lifetime_over_cap(iat, exp, policy.max_ttl)
    if now - iat > policy.max_age + leeway:
        raise reasons.too_old(iat, now, policy.max_age, leeway)


def _covered_edts(names: tuple[str, ...], request: ValueSource, policy: PopPolicy) -> str:
    """Step 5 of docs/protocol.md#verifying-a-pop (coverage), and the edts of the request's values
    for step 6.

    One pass looks each value up, checks it and feeds the digest, so a body is touched once.
    """
    digest = hashlib.sha256()
    update = digest.update
    java = policy.name == "java-compat"
    for name in names:
        value = request.value(name)
        if value is None:
            raise reasons.absent(name)
        if (java or name != "body") and not value.strip():
            raise reasons.blank(name)
        update(value if isinstance(value, bytes) else value.encode("utf-8"))
    if policy.name == "strict":
        # Reserved names count only in their exact spelling: a header named "URI" or "Body"
        # must not stand in for the request's uri or body. No reserved name lower-cases to
        # "authorization", so the header test may lower-case every name.
        reserved = _RESERVED_WITH_BODY if request.has_body else _RESERVED_REQUIRED
        missing = [n for n in reserved if n not in names]
        if not any(n.lower() == "authorization" for n in names):
            missing.insert(0, "Authorization")
        if missing:
            raise reasons.not_covered(missing)
    return b64url_encode(digest.digest())


def verify_pop_token(
    token: str,
    *,
    keys: Sequence[PublicKey],
    request: ValueSource,
    now: float,
    policy: PopPolicy = STRICT,
) -> VerifiedPop:
    """Verify a PoP against candidate public keys and a request (steps 1-6 of
    docs/protocol.md#verifying-a-pop, in order).

    ``keys`` are the client's registered keys (token server) or the key bound in the access
    token's ``cnf.jwk`` (resource server); the first that verifies is reported.

    Raises:
        PopMalformedError, PopSignatureError, PopExpiredError, PopCoverageError,
        PopDigestError: the first failing step decides.
    """
    if not math.isfinite(now):
        raise ValueError("now must be a finite number of seconds")
    java = policy.name == "java-compat"
    _, claims, signing_input, signature = _parse(token, policy)
    names = _claims_syntax(claims, java)
    for matched in keys:
        if matched.verify_rs256(signature, signing_input):
            break
    else:
        raise PopSignatureError()
    _check_time(claims, policy, now, java)
    expected = _covered_edts(names, request, policy).encode("ascii")
    actual = claims["edts"].encode("utf-8")
    if java:
        expected, actual = expected.lower(), actual.lower()
    if not hmac.compare_digest(expected, actual):
        raise PopDigestError()
    # Keep the jti exactly as long as the PoP could still be accepted: strict and lenient refuse
    # it after iat + max_age + leeway even when exp is later (npm tokens live 120 s), which
    # halves the replay store's live entries for such tokens.
    exp, iat = claims.get("exp"), claims.get("iat")
    until = exp if exp is not None else now + policy.max_ttl
    if not java and iat is not None:
        until = min(until, iat + policy.max_age)
    until += policy.leeway
    jti = claims.get("jti")
    return VerifiedPop(claims=claims, key=matched, names=names, jti=jti, replay_until=float(until))
