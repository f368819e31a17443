"""The framework-free guard: one request in, a :class:`Principal` out or an error
(docs/guard.md).

Order (the first failure answers):

0. no ``access_token`` in the query (RFC 6750 §2.3: a token in a URL ends up in logs and
   browser history) → 400 ``request_malformed``, whether or not a header carries one too;
1. Bearer access token: RS256 with a ``kid`` of the token server's JWKS (one refetch on an
   unknown ``kid``, rate-limited by the key provider), ``typ`` ``at+jwt`` (an ID token is
   refused), exact ``iss``, ``exp`` with leeway → 401 ``token_invalid``;
2. with a revocation watcher: the token was not revoked, nor its client cut off after its
   ``iat`` → 401 ``token_revoked``; a state the watcher cannot vouch for (older than
   ``TAAP_REVOCATION_MAX_AGE``) → 503 ``unavailable``;
3. the PoP in ``X-Authorization`` (401 ``pop_missing`` without one), steps 1-6 of
   docs/protocol.md#verifying-a-pop against the token's ``cnf.jwk`` only; strict coverage means
   ``Authorization`` is signed, which binds the PoP to this very token;
4. the API product: the path's base path names a product that must be in the token's ``apis``
   and, with a watcher, not unsubscribed after the token's ``iat`` → 403 ``not_subscribed``;
5. one hop: ``(client_id, jti)`` recorded in the replay store shared with the token server
   → 401 ``pop_replayed``; store full or down → 503 ``unavailable``.

Nothing is recorded unless 0-4 passed (SECURITY.md R3).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from taap.core.pop import verify_pop_token
from taap.core.replay import MemoryReplayStore, ReplayStore, issued_at
from taap.core.request import RequestParts
from taap.core.revocation import RevocationState
from taap.core.tokens import AccessToken, verify_access_token
from taap.errors import (
    ConfigurationError,
    NotSubscribedError,
    PopMalformedError,
    PopMissingError,
    PopReplayedError,
    RequestMalformedError,
    TaapError,
    TokenInvalidError,
    UnavailableError,
    UnknownKeyIdError,
)
from taap.resource.keys import JwksKeys, KeyProvider, KeySet
from taap.resource.principal import Principal
from taap.resource.products import ProductMap
from taap.resource.revocations import RevocationFeed, RevocationWatcher
from taap.resource.settings import GuardSettings
from taap.resource.token_cache import VerifiedTokens

__all__ = ["Validator", "bearer_token", "refuse_query_token"]

log = logging.getLogger("taap.resource")


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` value (scheme case-insensitive).

    Raises:
        TokenInvalidError: no Authorization value, another scheme, or a malformed token.
    """
    if not authorization:
        raise TokenInvalidError("Bearer access token is missing", log_detail="no Authorization")
    scheme, _, token = authorization.partition(" ")
    token = token.strip(" ")
    if scheme.lower() != "bearer" or not token or " " in token:
        raise TokenInvalidError(
            "Authorization must be 'Bearer <access token>'", log_detail="not a Bearer value"
        )
    return token


def refuse_query_token(uri: str) -> None:
    """Refuse a decoded ``uri`` whose query has a parameter named ``access_token``.

    The decoded query splits as the raw one did (docs/protocol.md#the-pop-token refuses escapes that
    would change that), so ``access%5Ftoken=`` is caught and ``x=access_token`` is not.

    Raises:
        RequestMalformedError: there is one (400 request_malformed).
    """
    _, _, query = uri.partition("?")
    if "access_token" in query and any(
        part.partition("=")[0] == "access_token" for part in query.split("&")
    ):
        raise RequestMalformedError(
            "the access token goes in the Authorization header only, never in the query "
            "(access_token)",
            log_detail="access_token in the query",
        )


class Validator:
    """Verifies step-4 requests: access token, revocations, PoP, product, one hop.

    ``revocations`` is how the guard learns of revoked tokens, disabled clients and
    unsubscriptions; without one (the default, e.g. static keys and no token server) it cannot
    learn of them and accepts a token until its ``exp``. :meth:`for_token_server` always
    gives one, reading the token server's feed.
    """

    def __init__(
        self,
        keys: KeyProvider,
        *,
        issuer: str | None = None,
        products: ProductMap | Mapping[str, str] | None = None,
        replay: ReplayStore | None = None,
        settings: GuardSettings | None = None,
        clock: Callable[[], float] = time.time,
        revocations: RevocationWatcher | None = None,
    ) -> None:
        """Without ``replay``, ``settings.redis_url`` selects the Redis store shared with the
        token server (same default key prefix); otherwise the in-process store serves this
        process alone.

        Raises:
            ConfigurationError: ``settings.workers`` > 1 without a shared ``replay`` store.
        """
        self.keys = keys
        self.issuer = issuer
        if products is None:
            self.products = ProductMap.default()
        elif isinstance(products, ProductMap):
            self.products = products
        else:
            self.products = ProductMap(products)
        self.settings = settings or GuardSettings()
        if replay is None and self.settings.redis_url:
            from taap.stores.redis import RedisReplayStore, connect

            replay = RedisReplayStore(connect(self.settings.redis_url), policy=self.settings.policy)
        if self.settings.workers > 1 and (replay is None or isinstance(replay, MemoryReplayStore)):
            # Each worker would keep its own store: a PoP could be used once per worker.
            raise ConfigurationError(
                f"{self.settings.workers} worker processes (WEB_CONCURRENCY) need a shared "
                "replay store: set TAAP_REDIS_URL (the in-process store knows one process)"
            )
        self.replay: ReplayStore = replay if replay is not None else MemoryReplayStore()
        self.clock = clock
        self.revocations = revocations
        self.tokens = VerifiedTokens(self.settings.token_cache)

    @classmethod
    def for_token_server(
        cls,
        base_url: str,
        *,
        products: ProductMap | Mapping[str, str] | None = None,
        replay: ReplayStore | None = None,
        settings: GuardSettings | None = None,
        clock: Callable[[], float] = time.time,
        revocations: RevocationWatcher | None = None,
    ) -> Validator:
        """A validator trusting the token server at ``base_url`` (discovery, JWKS, its issuer).

        The replay store is chosen as by the constructor. Without ``revocations``, a watcher
        reads the token server's revocation feed and keeps the state within
        ``settings.revocation_max_age``.

        Raises:
            ConfigurationError: ``base_url`` is neither https nor http on a loopback host.
        """
        settings = settings or GuardSettings()
        keys = JwksKeys(base_url, ttl=settings.jwks_ttl, min_refresh=settings.jwks_min_refresh)
        if revocations is None:
            revocations = RevocationWatcher(
                RevocationFeed(base_url), max_age=settings.revocation_max_age, clock=clock
            )
        return cls(
            keys,
            products=products,
            replay=replay,
            settings=settings,
            clock=clock,
            revocations=revocations,
        )

    def _issuer(self, keyset: KeySet) -> str:
        issuer = self.issuer or keyset.issuer
        if not issuer:
            raise UnavailableError(log_detail="no issuer configured or discovered")
        return issuer

    async def _access_token(self, token: str, now: float) -> AccessToken:
        keyset = await self.keys.current()
        leeway = self.settings.leeway
        issuer = self._issuer(keyset)
        cached = self.tokens.get(token, keys=keyset.keys, issuer=issuer, now=now, leeway=leeway)
        if cached is not None:
            return cached
        try:
            verified = verify_access_token(
                token, keys=keyset.keys, issuer=issuer, now=now, leeway=leeway
            )
        except UnknownKeyIdError:
            # A key rotated in since the last fetch: one (rate-limited) refetch, one retry.
            keyset = await self.keys.refresh()
            issuer = self._issuer(keyset)
            verified = verify_access_token(
                token, keys=keyset.keys, issuer=issuer, now=now, leeway=leeway
            )
        self.tokens.put(token, verified, key=keyset.keys[verified.kid], issuer=issuer)
        return verified

    async def verify(
        self, request: RequestParts, *, path: str | None = None, product: str | None = None
    ) -> Principal:
        """Verify a request and record its PoP.

        ``path`` is the decoded path without query (default: from ``request.uri``); ``product``,
        when given, is the route's product and replaces the base-path lookup.

        Raises:
            RequestMalformedError: ``access_token`` in the query (400 request_malformed).
            TokenInvalidError: the Bearer access token (401 token_invalid).
            TokenRevokedError: the token was revoked or its client cut off (401).
            PopError: the PoP (401; pop_missing, pop_malformed, ... pop_replayed).
            NotSubscribedError: the token's ``apis`` lack this path's product, or the client
                was unsubscribed from it after the token was issued (403).
            UnavailableError: keys, revocation state or replay store unavailable (503).
        """
        refuse_query_token(request.uri)
        now = self.clock()
        token = await self._access_token(bearer_token(request.headers.get("authorization")), now)
        try:
            return await self._judge(request, token, now, path, product)
        except TaapError as exc:
            # The token verified, so the refusal is this client's (its usage counts it).
            exc.client_id = token.client_id
            raise

    async def _judge(
        self,
        request: RequestParts,
        token: AccessToken,
        now: float,
        path: str | None,
        product: str | None,
    ) -> Principal:
        """The checks after the access token: revocation, PoP, product, one hop."""
        revocations: RevocationState | None = None
        if self.revocations is not None:
            # A fresh state costs a clock read and two dict lookups, no await; only a state due
            # for a refresh awaits (and only a stale one waits for the fetch).
            revocations, at = self.revocations.fresh_state() or await self.revocations.current()
            revocations.check_token(client_id=token.client_id, jti=token.jti, iat=token.iat, now=at)
        pop = request.headers.get("x-authorization")
        if not pop:
            raise PopMissingError()
        verified = verify_pop_token(
            pop, keys=[token.cnf_key], request=request, now=now, policy=self.settings.policy
        )
        if verified.jti is None:
            # Only java-compat lets a PoP omit its jti; one hop needs one.
            raise PopMalformedError(log_detail="jti required for one-hop use")
        route = path if path is not None else request.uri.partition("?")[0]
        if product is None:
            product = self.products.product_for(route)
        if product is None:
            raise NotSubscribedError(
                "no API product is served at this path", log_detail=f"unmapped path {route!r}"
            )
        if product not in token.apis:
            raise NotSubscribedError(log_detail=f"{token.client_id} lacks {product}")
        if revocations is not None:
            revocations.check_product(client_id=token.client_id, product=product, iat=token.iat)
        iat = issued_at(verified.claims)
        if not await self.replay.record(
            token.client_id, verified.jti, until=verified.replay_until, now=now, iat=iat
        ):
            raise PopReplayedError()
        return Principal(
            client_id=token.client_id,
            apis=token.apis,
            product=product,
            claims=token.claims,
            pop_jti=verified.jti,
            token_jti=token.jti,
            kid=token.kid,
        )
