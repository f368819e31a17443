"""JOSE objects built by hand, so a test can make exactly the token it attacks: any header,
payload or signature, each segment taken as given."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from taap.core import PrivateKey, compute_edts
from taap.core._b64 import b64url_encode

__all__ = ["forge", "pop_claims", "segment"]


def segment(part: Mapping[str, Any] | bytes | str) -> str:
    """A JOSE segment: a mapping as compact JSON, bytes as they are, a str taken verbatim (an
    already-encoded segment)."""
    if isinstance(part, Mapping):
        return b64url_encode(json.dumps(dict(part), separators=(",", ":")).encode())
    if isinstance(part, bytes):
        return b64url_encode(part)
    return part


def forge(
    header: Mapping[str, Any] | bytes | str,
    payload: Mapping[str, Any] | bytes | str,
    key: PrivateKey | None,
    *,
    signature: str | None = None,
) -> str:
    """A compact JWS signed RS256 by ``key`` over exactly the given segments (or carrying
    ``signature`` as given)."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    if signature is None:
        assert key is not None
        signature = b64url_encode(key.sign_rs256(signing_input.encode("ascii")))
    return f"{signing_input}.{signature}"


def pop_claims(
    pairs: Sequence[tuple[str, str | bytes]], iat: int, jti: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Valid strict PoP claims over ``pairs``, issued at ``iat`` for 60 s; ``changes`` override
    members, or with the value ``...`` remove them."""
    claims: dict[str, Any] = {
        "edts": compute_edts(v for _, v in pairs),
        "v": "1",
        "exp": iat + 60,
        "ehts": ";".join(n for n, _ in pairs),
        "iat": iat,
        "jti": jti,
    }
    for name, value in changes.items():
        if value is ...:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims
