"""Base64url without padding: a strict decoder for tokens, a lenient one for JWK members.

Python's stock decoders are lenient (they skip junk characters, accept surplus ``=`` and
``+``/``/`` in the URL-safe alphabet), so two different strings could decode to the same bytes.
Tokens are decoded strictly (SECURITY.md S6): alphabet ``A-Za-z0-9-_`` only, no padding and a
canonical final character, so each byte string has exactly one accepted spelling.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["b64url_decode", "b64url_decode_lenient", "b64url_encode"]

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode strict, canonical, unpadded base64url.

    Raises:
        ValueError: any character outside the alphabet, padding, an impossible length
            or non-zero unused trailing bits.
    """
    if not _ALPHABET.fullmatch(text):
        raise ValueError("not base64url")
    rem = len(text) % 4
    if rem == 1:
        raise ValueError("impossible base64url length")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # Unused low bits of the last symbol must be zero ("YR" and "YQ" both decode to b"a").
    if rem and b64url_encode(data) != text:
        raise ValueError("non-canonical base64url")
    return data


def b64url_decode_lenient(text: str) -> bytes:
    """Decode a JWK member: base64url, ``=`` padding tolerated (T-Mobile's JWK carries it).

    Raises:
        ValueError: characters outside the base64url alphabet.
    """
    stripped = text.rstrip("=")
    if not _ALPHABET.fullmatch(stripped) or len(stripped) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except binascii.Error as exc:  # pragma: no cover - alphabet checked above
        raise ValueError("not base64url") from exc
