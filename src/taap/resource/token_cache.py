"""A bounded memo of access tokens that already verified, so a client's hundredth call with the
same token costs a digest and a dict lookup instead of a JWS parse and an RSA verification.

A hit is only used when the very same bytes verified before (BLAKE2 digest of the token) and,
at the time of the hit, the key that verified it is still published under its ``kid`` with the
same modulus (a key rotated out of the JWKS stops working at once), the issuer is the same, and
the token's ``exp``/``iat`` still pass with the leeway (rechecked on every use).
``GuardSettings.token_cache`` = 0 turns it off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from taap.core.keys import PublicKey
from taap.core.tokens import AccessToken
from taap.errors import TokenInvalidError

__all__ = ["VerifiedTokens"]


@dataclass(frozen=True, slots=True)
class _Entry:
    token: AccessToken
    key: PublicKey
    issuer: str


class VerifiedTokens:
    """Access tokens verified earlier, by digest; at most ``capacity`` entries."""

    __slots__ = ("_entries", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: dict[bytes, _Entry] = {}

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.blake2b(token.encode(), digest_size=16).digest()

    def get(
        self, token: str, *, keys: Mapping[str, PublicKey], issuer: str, now: float, leeway: int
    ) -> AccessToken | None:
        """The earlier verification of ``token`` if it still holds now, else None.

        Raises:
            TokenInvalidError: the cached token has expired since (same answer as a full
                verification would give).
        """
        if not self.capacity:
            return None
        entry = self._entries.get(self._digest(token))
        if entry is None:
            return None
        if entry.issuer != issuer or keys.get(entry.token.kid) != entry.key:
            return None  # keys or issuer changed: verify from scratch
        if now > entry.token.exp + leeway:
            raise TokenInvalidError(log_detail="expired")
        if entry.token.iat > now + leeway:
            raise TokenInvalidError(log_detail="issued in the future")
        return entry.token

    def put(self, token: str, verified: AccessToken, *, key: PublicKey, issuer: str) -> None:
        """Remember a token that just verified with ``key`` for ``issuer``."""
        if not self.capacity:
            return
        if len(self._entries) >= self.capacity:
            # Cheaper than LRU bookkeeping on every hit; a full cache refills in one round.
            self._entries.clear()
        self._entries[self._digest(token)] = _Entry(verified, key, issuer)

    def __len__(self) -> int:
        return len(self._entries)
