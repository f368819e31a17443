"""Base64url without padding: a strict decoder for tokens, a lenient one for JWK members.

Python's stock decoders are lenient (they skip junk characters, accept surplus ``=`` and
``+``/``/`` in the URL-safe alphabet), so two different strings could decode to the same bytes.
Tokens are decoded strictly (SECURITY.md S6): alphabet ``A-Za-z0-9-_`` only, no padding and a
canonical final character, so each byte string has exactly one accepted spelling.
"""

from __future__ import annotations

import binascii
import re

__all__ = ["b64url_decode", "b64url_decode_lenient", "b64url_encode"]

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# A final symbol after 2 (resp. 3) symbols of a quantum carries 4 (resp. 2) unused low bits,
# which must be zero: only these symbols are canonical there ("YQ" is b"a", "YR" is not).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_PADDING = (b"", b"", b"==", b"=")


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as base64url without padding."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode strict, canonical, unpadded base64url.

    Raises:
        ValueError: any character outside the alphabet, padding, an impossible length
            or non-zero unused trailing bits.
    """
    # The standard alphabet's "+", "/" and "=" would survive the translation below; anything
    # else outside the URL-safe alphabet (spaces, newlines, non-ASCII) fails in strict mode.
    if "=" in text or "+" in text or "/" in text:
        raise ValueError("not base64url")
    rem = len(text) % 4
    if rem == 1:
        raise ValueError("impossible base64url length")
    if rem and text[-1] not in _CANONICAL_LAST[rem]:
        raise ValueError("non-canonical base64url")
    try:
        data = text.encode("ascii").translate(_TO_STANDARD) + _PADDING[rem]
        return binascii.a2b_base64(data, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("not base64url") from exc


def b64url_decode_lenient(text: str) -> bytes:
    """Decode a JWK member: base64url, ``=`` padding tolerated (T-Mobile's JWK carries it).

    Raises:
        ValueError: characters outside the base64url alphabet.
    """
    stripped = text.rstrip("=")
    if not _ALPHABET.fullmatch(stripped) or len(stripped) % 4 == 1:
        raise ValueError("not base64url")
    data = stripped.encode("ascii").translate(_TO_STANDARD)
    return binascii.a2b_base64(data + _PADDING[len(stripped) % 4])
