"""The revocation endpoints of one token server, by path, and the revocation state they share."""

from __future__ import annotations

from taap.server.revocation.common import Endpoint
from taap.server.revocation.feed import FEED_PATH, RevocationFeedEndpoint
from taap.server.revocation.introspect import INTROSPECT_PATH, IntrospectionEndpoint
from taap.server.revocation.revoke import REVOKE_PATH, RevocationEndpoint, TokenRevoker
from taap.server.revocation.source import (
    FetchRevocations,
    RegistryRevocations,
    RevocationSource,
    registry_revocations,
)
from taap.server.tokens.endpoint import TokenEndpoints

__all__ = ["RevocationEndpoints"]


class RevocationEndpoints:
    """``POST /oauth2/v1/revoke``, ``POST /oauth2/v1/introspect`` and
    ``GET /oauth2/v1/revocations`` over the token endpoints' authentication and stores.

    ``revocations`` (default: a :class:`RegistryRevocations` over ``registry``, bounded by
    ``TAAP_REVOCATION_MAX_AGE``) is the state introspection judges with; :attr:`fetch` reads
    the registry's log for a guard in this process.
    """

    def __init__(
        self,
        tokens: TokenEndpoints,
        registry: TokenRevoker,
        *,
        revocations: RevocationSource | None = None,
    ) -> None:
        settings = tokens.settings
        #: the registry's revocation log, page by page (an in-process guard's fetch function)
        self.fetch: FetchRevocations = registry_revocations(registry)
        if revocations is None:
            revocations = RegistryRevocations(
                self.fetch, max_age=settings.revocation_max_age, clock=tokens.clock
            )
        self.introspection = IntrospectionEndpoint(tokens, registry, revocations)
        self.routes: dict[str, Endpoint] = {
            REVOKE_PATH: RevocationEndpoint(tokens, registry),
            INTROSPECT_PATH: self.introspection,
            FEED_PATH: RevocationFeedEndpoint(
                registry,
                max_headers=settings.max_headers,
                metrics=tokens.metrics,
                clock=tokens.clock,
            ),
        }

    @property
    def revocations(self) -> RevocationSource:
        """The revocation state introspection judges with."""
        return self.introspection.revocations

    @revocations.setter
    def revocations(self, source: RevocationSource) -> None:
        # An in-process guard's watcher can take over, so both judge from one state.
        self.introspection.revocations = source
