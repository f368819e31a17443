"""Helpers for the guard tests: fixed time, tokens, and signed step-4 calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from taap.core import (
    PrivateKey,
    build_pop_token,
    issue_access_token,
    request_pairs,
)

ISSUER = "https://issuer.test/oauth2/v1"
NOW = 1_800_000_000.0
KID = "sig-1"


@dataclass
class Caller:
    """A client holding a PoP key and an access token; builds signed step-4 requests."""

    key: PrivateKey
    token: str
    headers_extra: list[tuple[str, str]] = field(default_factory=list)

    def headers(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        *,
        now: float = NOW,
        jti: str | None = None,
        names: Sequence[str] | None = None,
    ) -> dict[str, str]:
        """Headers of a step-4 call; ``names`` restricts what the PoP signs."""
        base = [("Content-Type", "application/json"), ("Authorization", f"Bearer {self.token}")]
        pairs = request_pairs(method, unquote(target), base + self.headers_extra, body)
        if names is not None:
            pairs = [(n, v) for n, v in pairs if n in names]
        pop = build_pop_token(pairs, self.key, now=now, jti=jti)
        return {**dict(base + self.headers_extra), "X-Authorization": pop}


def make_token(
    server_key: PrivateKey,
    client_key: PrivateKey,
    *,
    apis: Sequence[str] = ("connectivity",),
    client_id: str = "taap-client-a",
    now: float = NOW,
    kid: str = KID,
    issuer: str = ISSUER,
    ttl: int = 3600,
) -> str:
    return issue_access_token(
        key=server_key,
        kid=kid,
        issuer=issuer,
        client_id=client_id,
        apis=list(apis),
        cnf_jwk=client_key.public.jwk,
        now=now,
        ttl=ttl,
    )
