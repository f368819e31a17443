"""``POST /oauth2/v1/introspect`` (RFC 7662): a registered resource server asks whether an
access token is live, and what it says.

Callers authenticate with HTTP Basic and a resource server's id and secret (``taap
resource-servers create``); a client's credentials are not accepted. Order: method 405 → caps
431/413 → content type 415 → duplicate singleton headers / invalid UTF-8 400 → Basic,
resource server, secret, status 401 (``client_auth_failed``) → failed-auth limit 429 (buckets
``rs:<id>`` and the address's) → body 400 → answer.

The answer is ``{"active": false}`` for anything that is not a live access token of this
server: garbage, a bad signature, another issuer, expired, an ID token, a revoked token (its
``jti``, or a cutoff of its client), a token of a disabled or unknown client. A live one is
described by ``active``, ``client_id``, ``sub``, ``iss``, ``exp``, ``iat``, ``jti``,
``token_type`` (``Bearer``), ``apis`` (minus the products its client was unsubscribed from
since) and ``cnf.jkt``, plus ``storeId``/``dealerCode`` when the token carries them.

Every token costs the same steps, whatever it is: one read of the signing keys, one RS256
verification, one client lookup, one look at the revocation state. Only then is the answer
chosen, so its timing does not tell a revoked token from a live one.
"""

from __future__ import annotations

import logging
from typing import Any

from taap.asgi import NO_STORE, Receive, RequestHead, Response, Scope, json_bytes
from taap.core.revocation import RevocationState
from taap.errors import (
    ClientAuthError,
    NotSubscribedError,
    TaapError,
    TokenRevokedError,
    UnavailableError,
)
from taap.server.registry.port import ClientRecord, RegistryReader, ResourceServerRecord
from taap.server.registry.secrets import verify_secret
from taap.server.revocation.common import (
    MAX_BODY,
    TOKEN_MEDIA_TYPES,
    TOKEN_REFUSAL,
    Endpoint,
    parse_token_body,
)
from taap.server.revocation.source import RevocationSource
from taap.server.revocation.verify import TokenFacts, inspect_token, published_keys
from taap.server.tokens.clientauth import parse_basic
from taap.server.tokens.endpoint import Attempt, TokenEndpoints

__all__ = ["INACTIVE", "INTROSPECT_PATH", "IntrospectionEndpoint", "describe"]

INTROSPECT_PATH = "/oauth2/v1/introspect"
log = logging.getLogger("taap.server")
INACTIVE: dict[str, Any] = {"active": False}
#: the v6 claims an access token may carry, passed on as they are
_CONTEXT_CLAIMS = ("storeId", "dealerCode")


def describe(
    facts: TokenFacts | None, client: ClientRecord | None, state: RevocationState, now: float
) -> dict[str, Any]:
    """The RFC 7662 answer for a token, its client's record and the revocation state.

    Raises:
        UnavailableError: ``state`` is older than its bound (``TAAP_REVOCATION_MAX_AGE``).
    """
    if state.is_stale(now):
        raise UnavailableError(log_detail="revocation state is stale")
    if facts is None or facts.kind != "access" or client is None or client.status != "active":
        return dict(INACTIVE)
    try:
        state.check_token(client_id=facts.client_id, jti=facts.jti, iat=facts.iat, now=now)
    except TokenRevokedError:
        return dict(INACTIVE)
    apis: list[str] = []
    for api in facts.apis:
        try:
            state.check_product(client_id=facts.client_id, product=api, iat=facts.iat)
        except NotSubscribedError:
            continue
        apis.append(api)
    claims = facts.claims
    answer: dict[str, Any] = {
        "active": True,
        "client_id": facts.client_id,
        "sub": facts.client_id,
        "iss": claims["iss"],
        "exp": facts.exp,
        "iat": facts.iat,
        "jti": facts.jti,
        "token_type": "Bearer",
        "apis": apis,
        "cnf": {"jkt": facts.jkt},
    }
    for name in _CONTEXT_CLAIMS:
        if isinstance(claims.get(name), str):
            answer[name] = claims[name]
    return answer


class IntrospectionEndpoint(Endpoint):
    """The introspection handler. ``revocations`` may be replaced (the app's
    ``revocations`` attribute) by a state shared with an in-process guard."""

    label = "introspect"

    def __init__(
        self, tokens: TokenEndpoints, registry: RegistryReader, revocations: RevocationSource
    ) -> None:
        super().__init__(tokens.metrics, tokens.clock)
        self.tokens = tokens
        self.registry = registry
        self.revocations = revocations
        settings = tokens.settings
        self._issuer = settings.issuer_url
        self._leeway = settings.leeway
        self._max_body = min(settings.max_body, MAX_BODY)

    async def handle(
        self, scope: Scope, receive: Receive, head: RequestHead, attempt: Attempt, now: float
    ) -> Response:
        parts = await self.tokens.read_request(
            scope,
            receive,
            head,
            attempt,
            max_body=self._max_body,
            media_types=TOKEN_MEDIA_TYPES,
            refusal=TOKEN_REFUSAL,
        )
        await self.authenticate(parts.headers.get("authorization"), attempt, now)
        token = parse_token_body(parts.body, parts.headers["content-type"])
        return 200, list(NO_STORE), json_bytes(await self.judge(token, now))

    async def authenticate(
        self, authorization: str | None, attempt: Attempt, now: float
    ) -> ResourceServerRecord:
        """Basic credentials of an active resource server, then its rate limit.

        An unknown id is compared against a dummy digest, so it costs what a wrong secret does.

        Raises:
            ClientAuthError: missing or wrong credentials, unknown or disabled resource server.
            RateLimitedError: its bucket or the address's is empty.
            UnavailableError: the registry is unreachable.
        """
        auth = self.tokens.auth
        rs_id: str | None = None
        try:
            rs_id, secret = parse_basic(authorization)
            attempt.client_id = rs_id
            record = await self.registry.get_resource_server(rs_id)
            digests = record.secret_digests if record is not None else ()
            if not verify_secret(auth.pepper, secret, digests) or record is None:
                raise ClientAuthError(log_detail="unknown resource server or wrong secret")
            if record.status != "active":
                raise ClientAuthError(log_detail="resource server is disabled")
        except ClientAuthError:
            await auth.refuse(auth.buckets(rs_id, attempt.source, kind="rs"), now=now)
            raise
        await auth.admit(auth.buckets(rs_id, attempt.source, kind="rs"), now=now)
        return record

    async def judge(self, token: str, now: float) -> dict[str, Any]:
        """The answer for ``token``, after the same steps for every token.

        Raises:
            UnavailableError: the registry cannot be read, or the revocation state is stale.
        """
        keys = published_keys(await self.registry.signing_keys())
        facts = inspect_token(token, keys=keys, issuer=self._issuer, now=now, leeway=self._leeway)
        client = await self.registry.get_client(facts.client_id if facts is not None else "")
        state, at = await self.revocations.current()
        return describe(facts, client, state, at)

    def rejected(self, exc: TaapError | None, attempt: Attempt, now: float) -> None:
        self.audit_rejection(self.tokens.audit, "introspection_rejected", exc, attempt, now)
