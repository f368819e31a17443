"""Client secrets (docs/registry.md, SECURITY.md A2-A4): generated 256-bit, stored as HMAC-SHA-256
with a server-side pepper, compared in constant time on bytes.

HMAC rather than a password hash: the secrets are server-generated and high-entropy, so a fast
keyed hash is safe, and a slow one on an unauthenticated endpoint would be a CPU-exhaustion lever.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["DUMMY_DIGEST", "generate_secret", "hash_secret", "is_weak_secret", "verify_secret"]

#: Compared against when the client is unknown, so both failures cost the same work.
DUMMY_DIGEST = hashlib.sha256(b"taap-unknown-client").digest()


def generate_secret() -> str:
    """256 random bits, base64url without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_secret(pepper: bytes, secret: str) -> bytes:
    """HMAC-SHA-256(pepper, UTF-8 secret)."""
    return hmac.new(pepper, secret.encode("utf-8"), hashlib.sha256).digest()


def verify_secret(pepper: bytes, secret: str, digests: tuple[bytes, ...]) -> bool:
    """Constant-time check of ``secret`` against stored digests (``()`` = unknown client).

    Always does at least one comparison, so unknown client and wrong secret cost the same.
    """
    candidate = hash_secret(pepper, secret)
    ok = False
    for digest in digests or (DUMMY_DIGEST,):
        ok |= hmac.compare_digest(candidate, digest)
    return ok and bool(digests)


def is_weak_secret(secret: str) -> bool:
    """A chosen secret shorter than 32 characters is flagged weak in listings (sandbox use)."""
    return len(secret) < 32
