"""Compact JWS with RS256 only: strict parsing and signing (SECURITY.md S1-S8).

Both kinds of token `taap` handles (PoPs and the token server's access/ID tokens) are compact
RS256 JWS. The parser checks sizes before decoding anything, accepts exactly three segments of
canonical base64url, strict-JSON objects for header and payload, and refuses any header that
could name a key or an extension. The algorithm is fixed here, never read from the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from taap.core._b64 import b64url_decode, b64url_encode
from taap.core.keys import PrivateKey
from taap.core.strict_json import JsonError, dumps_compact, loads_strict

__all__ = [
    "FORBIDDEN_HEADERS",
    "JwsError",
    "ParsedJws",
    "join_compact",
    "parse_compact",
    "parse_compact_parts",
    "sign_compact",
    "sign_input",
    "signing_input",
]

#: Header members that would let a token choose its own key or extension (S3, S4, S5).
FORBIDDEN_HEADERS = frozenset({"crit", "jku", "x5u", "jwk", "x5c", "b64", "zip", "enc", "cty"})
_MAX_JSON_DEPTH = 8
# Header segments every TAAP builder emits (JS/Python, Java's HashMap order, our access tokens
# carry a kid and take the slow path). Decoding is deterministic, so a byte-equal segment can
# skip base64 and JSON: a copy of the decoded header is returned instead.
_KNOWN_HEADERS: dict[str, dict[str, Any]] = {
    b64url_encode(dumps_compact(header)): header
    for header in ({"alg": "RS256", "typ": "JWT"}, {"typ": "JWT", "alg": "RS256"}, {"alg": "RS256"})
}

# The exact payload shape of the JS and Python builders (docs/protocol.md#the-pop-token): compact
# JSON, claims in JS order, strings without escapes or control characters, unsigned integers of at
# most 18 digits. Text this regex matches is valid, duplicate-free, depth-1 JSON, so building the
# dict from its groups gives exactly what loads_strict returns, ~3x faster; anything else takes
# loads_strict.
_S = r'"([^"\\\x00-\x1f]*)"'
_I = r"(0|[1-9][0-9]{0,17})"
_BUILDER_PAYLOAD = re.compile(
    rf'\{{"edts":{_S},"v":(?:{_S}|{_I}),"exp":{_I},"ehts":{_S},"iat":{_I},"jti":{_S}\}}'
)


def _loads_payload(raw: bytes) -> dict[str, Any]:
    try:
        match = _BUILDER_PAYLOAD.fullmatch(raw.decode("utf-8"))
    except UnicodeDecodeError:
        match = None
    if match is None:
        payload: dict[str, Any] = loads_strict(raw, max_depth=_MAX_JSON_DEPTH)
        return payload
    edts, v_text, v_int, exp, ehts, iat, jti = match.groups()
    return {
        "edts": edts,
        "v": v_text if v_int is None else int(v_int),
        "exp": int(exp),
        "ehts": ehts,
        "iat": int(iat),
        "jti": jti,
    }


class JwsError(ValueError):
    """The token is not a strict compact RS256 JWS. The message is safe to log."""


@dataclass(frozen=True, slots=True)
class ParsedJws:
    """A structurally valid compact JWS whose signature has not been checked yet."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes
    header_segment: str


def parse_compact(token: str, *, max_bytes: int, max_header_bytes: int) -> ParsedJws:
    """Split and decode a compact JWS strictly.

    Raises:
        JwsError: oversize, not three segments, empty signature, non-canonical base64url,
            non-object or non-strict JSON, ``alg`` other than RS256, a forbidden header.
    """
    header, payload, signing_input, signature = parse_compact_parts(
        token, max_bytes=max_bytes, max_header_bytes=max_header_bytes
    )
    return ParsedJws(
        header=header,
        payload=payload,
        signing_input=signing_input,
        signature=signature,
        header_segment=token.partition(".")[0],
    )


def parse_compact_parts(
    token: str, *, max_bytes: int, max_header_bytes: int
) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """:func:`parse_compact` as a plain ``(header, payload, signing_input, signature)`` tuple,
    for hot paths (a frozen dataclass costs ~0.8 us to build).

    Raises:
        JwsError: as :func:`parse_compact`.
    """
    if len(token) > max_bytes:
        raise JwsError("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwsError("token must have exactly three segments")
    head, body, sig = parts
    if len(head) > max_header_bytes:
        raise JwsError("header segment too large")
    if not head or not body or not sig:
        raise JwsError("empty segment")
    known = _KNOWN_HEADERS.get(head)
    try:
        header_raw = b"" if known is not None else b64url_decode(head)
        payload_raw = b64url_decode(body)
        signature = b64url_decode(sig)
    except ValueError as exc:
        raise JwsError(f"segment is not canonical base64url: {exc}") from exc
    try:
        header = (
            dict(known)
            if known is not None
            else loads_strict(header_raw, max_depth=_MAX_JSON_DEPTH)
        )
        payload = _loads_payload(payload_raw)
    except JsonError as exc:
        raise JwsError(f"segment is not a strict JSON object: {exc}") from exc
    # A known header is RS256 without forbidden members by construction.
    if known is None:
        if header.get("alg") != "RS256":
            raise JwsError("alg must be RS256")
        bad = FORBIDDEN_HEADERS.intersection(header)
        if bad:
            raise JwsError(f"forbidden header member {sorted(bad)[0]!r}")
    return header, payload, f"{head}.{body}".encode("ascii"), signature


def encode_segment(value: dict[str, Any]) -> str:
    """Compact JSON (key order kept), base64url without padding."""
    return b64url_encode(dumps_compact(value))


def signing_input(header_segment: str, payload: dict[str, Any]) -> bytes:
    """The bytes an RS256 signature covers: ``header.payload`` (ASCII)."""
    return f"{header_segment}.{encode_segment(payload)}".encode("ascii")


def join_compact(signed: bytes, signature: bytes) -> str:
    """The compact JWS of a :func:`signing_input` and its signature."""
    return f"{signed.decode('ascii')}.{b64url_encode(signature)}"


def sign_input(signed: bytes, key: PrivateKey) -> str:
    """Sign a :func:`signing_input` with RS256; returns the compact JWS."""
    return join_compact(signed, key.sign_rs256(signed))


def sign_compact(header_segment: str, payload: dict[str, Any], key: PrivateKey) -> str:
    """Sign ``payload`` under an already-encoded header segment; returns the compact JWS."""
    return sign_input(signing_input(header_segment, payload), key)
