"""``POST /oauth2/v1/revoke`` (RFC 7009): a client revokes one of its own tokens.

The client authenticates as at the token endpoints: Basic credentials and a PoP in
``X-Authorization`` that covers the request (the default coverage of
docs/protocol.md#the-pop-token, ``body`` included). Order (the first failure answers): method
405 → header and body caps 431/413 → content type 415 → duplicate singleton headers /
invalid UTF-8 400 → Basic, client, secret, status 401 → failed-auth limit 429 → body 400 → PoP
present and steps 1-6 of docs/protocol.md#verifying-a-pop 401 → replay record 401 → revoke → 200.

Whatever the token turns out to be (garbage, expired, another issuer's, another client's,
already revoked), a request that passed those checks is answered 200 with ``{}``: RFC 7009
§2.2 puts everything in the status, and the body is JSON like every other answer of this
server. So the answer never tells a client anything about a token. Only the client's own live
token is revoked: an access token together with the ID token of the same answer (its ``jti``
is derived from the access token's), an ID token alone. A registry that cannot record the
revocation answers 503, never 200.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from taap.asgi import NO_STORE, Receive, RequestHead, Response, Scope
from taap.errors import TaapError, UnavailableError
from taap.server.registry.port import RegistryReader
from taap.server.revocation.common import (
    MAX_BODY,
    TOKEN_MEDIA_TYPES,
    TOKEN_REFUSAL,
    Endpoint,
    parse_token_body,
)
from taap.server.revocation.verify import TokenFacts, inspect_token, published_keys
from taap.server.tokens.endpoint import Attempt, TokenEndpoints
from taap.server.tokens.minting import id_token_jti

__all__ = ["REVOKE_PATH", "RevocationEndpoint", "TokenRevoker"]

REVOKE_PATH = "/oauth2/v1/revoke"
log = logging.getLogger("taap.server")


class TokenRevoker(RegistryReader, Protocol):
    """The registry as the token server uses it: its reads, and the one write of revocation."""

    async def revoke_tokens(
        self, client_id: str, jtis: Sequence[str], *, expires_at: int | None = None
    ) -> None: ...


class RevocationEndpoint(Endpoint):
    """The revocation handler, built on the token endpoints' client authentication, PoP
    verification and replay store."""

    label = "revoke"

    def __init__(self, tokens: TokenEndpoints, registry: TokenRevoker) -> None:
        super().__init__(tokens.metrics, tokens.clock)
        self.tokens = tokens
        self.registry = registry
        settings = tokens.settings
        self._issuer = settings.issuer_url
        self._leeway = settings.leeway
        self._max_body = min(settings.max_body, MAX_BODY)

    async def handle(
        self, scope: Scope, receive: Receive, head: RequestHead, attempt: Attempt, now: float
    ) -> Response:
        tokens = self.tokens
        parts = await tokens.read_request(
            scope,
            receive,
            head,
            attempt,
            max_body=self._max_body,
            media_types=TOKEN_MEDIA_TYPES,
            refusal=TOKEN_REFUSAL,
        )
        client = await tokens.auth.authenticate(
            parts.headers.get("authorization"), source=attempt.source, now=now, claimant=attempt
        )
        token = parse_token_body(parts.body, parts.headers["content-type"])
        verified = await tokens.verify_pop(parts, client, attempt, now)
        keys = published_keys(await self.registry.signing_keys())
        facts = inspect_token(token, keys=keys, issuer=self._issuer, now=now, leeway=self._leeway)
        await tokens.spend_jti(client.client_id, attempt.jti or "", verified, now)
        mine = facts if facts is not None and facts.client_id == client.client_id else None
        if mine is not None:
            await self.registry.revoke_tokens(client.client_id, _jtis(mine), expires_at=mine.exp)
        self._audit_done(attempt, client.client_id, mine, now)
        return 200, list(NO_STORE), b"{}"

    def _audit_done(
        self, attempt: Attempt, client_id: str, revoked: TokenFacts | None, now: float
    ) -> None:
        try:
            self.tokens.audit.record(
                now=now,
                event="token_revoked" if revoked is not None else "revocation_ignored",
                endpoint=self.label,
                status=200,
                client_id=client_id,
                jti=attempt.jti,
                token_jti=revoked.jti if revoked is not None else None,
                exp=revoked.exp if revoked is not None else None,
                source=attempt.source,
                request_id=attempt.request_id,
            )
        except Exception as exc:
            self.metrics.audit_errors.inc()
            # The revocation stands; a 503 makes the client ask again (revoking twice changes
            # nothing), so the request ends up both done and on record.
            raise UnavailableError(
                "the audit log is unavailable", log_detail=f"audit sink: {type(exc).__name__}"
            ) from exc

    def rejected(self, exc: TaapError | None, attempt: Attempt, now: float) -> None:
        self.audit_rejection(
            self.tokens.audit, "revocation_rejected", exc, attempt, now, jti=attempt.jti
        )


def _jtis(facts: TokenFacts) -> list[str]:
    """What revoking ``facts`` revokes: an access token takes its answer's ID token along."""
    if facts.kind == "access":
        return [facts.jti, id_token_jti(facts.jti)]
    return [facts.jti]
