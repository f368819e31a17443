"""The two token endpoints (docs/server.md): every check in the normative order, then issuance.

Order (the first failure answers): method 405 → header and body caps 431/413 → content type
415 → duplicate singleton headers / invalid UTF-8 400 → Basic auth, client lookup, secret,
status 401 → failed-auth rate limit 429 → v6/v2 body rules 400 → PoP present 401 → PoP steps
1-6 401 → subscription 403 → replay record 401 → issue.

:meth:`TokenEndpoints._issue` reads as that list: each step is one named method. Failed
authentication and ``pop_signature_invalid`` take one token from the client's and the address's
buckets (see :mod:`taap.server.tokens.clientauth`); nothing else does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

from taap.asgi import (
    NO_STORE,
    ClientDisconnected,
    Receive,
    RequestHead,
    Response,
    Scope,
    Send,
    raw_path_of,
    read_body,
    render_error,
    send_response,
)
from taap.core.pop import VerifiedPop, decode_pop_token, verify_pop_token
from taap.core.replay import ReplayStore, issued_at
from taap.core.request import RequestParts, request_parts
from taap.errors import (
    ContentTypeError,
    HeadersTooLargeError,
    MethodNotAllowedError,
    NotSubscribedError,
    PopError,
    PopMalformedError,
    PopMissingError,
    PopReplayedError,
    PopSignatureError,
    TaapError,
    UnavailableError,
)
from taap.server.audit import AuditLog
from taap.server.metrics import ServerMetrics
from taap.server.registry.port import RegistryReader, SigningKeyRecord
from taap.server.settings import ServerSettings, trusted_networks
from taap.server.tokens.clientauth import Authenticated, ClientAuthenticator, source_address
from taap.server.tokens.minting import Minted, TokenMinter
from taap.server.tokens.registry_cache import RegistryCache, Version
from taap.server.tokens.signing import SigningThreads, usable_cpus
from taap.stores.ratelimit import RateLimiter

__all__ = ["JSON_ONLY", "Attempt", "TokenEndpoints", "Version", "media_type"]

log = logging.getLogger("taap.server")
_BASIC = b'Basic realm="taap"'
_POST = b"POST"
# Failures after which the PoP's jti is unknown or not the client's own (no signature yet).
_JTI_UNTRUSTED = (PopMissingError, PopMalformedError, PopSignatureError)


JSON_ONLY = frozenset({b"application/json"})


def media_type(content_type: bytes) -> bytes:
    """The media type of a ``Content-Type`` value, lower-cased, without its parameters."""
    return content_type.split(b";", 1)[0].strip(b" \t").lower()


@dataclass(slots=True)
class Attempt:
    """What the audit line of one request needs (``endpoint``: v2, v6, revoke...)."""

    endpoint: str
    source: str
    client_id: str | None = None
    #: the registry knows ``client_id`` (a made-up one is not counted in any app's usage)
    registered: bool = False
    pop: str | None = None
    jti: str | None = None
    request_id: str | None = None


class TokenEndpoints:
    """``POST /oauth2/v2/tokens`` and ``POST /oauth2/v6/tokens`` as one ASGI handler."""

    def __init__(
        self,
        settings: ServerSettings,
        registry: RegistryReader,
        *,
        pepper: bytes,
        replay_store: ReplayStore,
        limiter: RateLimiter,
        clock: Callable[[], float],
        audit: AuditLog,
        metrics: ServerMetrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        cpus: int | None = None,
    ) -> None:
        """``cpus``: usable cores for ``TAAP_SIGN_THREADS=auto`` (default: this process's)."""
        self.settings = settings
        self.registry = registry
        self.replay_store = replay_store
        self.clock = clock
        self.audit = audit
        self.metrics = ServerMetrics() if metrics is None else metrics
        self._policy = settings.policy
        self._networks = trusted_networks(settings.forwarded_allow_ips)
        self.reads = RegistryCache(
            registry, self.metrics, settings, clock=clock, monotonic=monotonic
        )
        self.auth = ClientAuthenticator(
            cache=self.reads,
            limiter=limiter,
            pepper=pepper,
            client_rate=settings.client_rate,
            address_rate=settings.address_rate,
        )
        threads = settings.signing_threads(cpus if cpus is not None else usable_cpus())
        self.signer = SigningThreads(threads)
        self.minter = TokenMinter(
            signer=self.signer,
            issuer=settings.issuer_url,
            ttl=settings.token_ttl,
            single=settings.token_mode == "single",
        )

    @property
    def limiter(self) -> RateLimiter:
        return self.auth.limiter

    def close(self) -> None:
        """Stop the signing threads (``TAAP_SIGN_THREADS``), if any; signatures under way finish."""
        self.signer.close()

    async def signing_key(self) -> SigningKeyRecord:
        """The active signing key (cached, see :class:`RegistryCache`).

        Raises:
            UnavailableError: the registry is unreachable or holds no signing key.
        """
        return await self.reads.signing_key()

    # -- ASGI ---------------------------------------------------------------------------
    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        version: Version,
        head: RequestHead,
        request_id: str,
    ) -> None:
        """Answer one token request; ``head`` and ``request_id`` come from the app's edge."""
        started = perf_counter()
        now = self.clock()
        client = scope.get("client")
        attempt = Attempt(
            endpoint=version,
            source=client[0] if client else "unknown",
            request_id=request_id,
        )
        error_code: str | None = None
        await self.signer.arrive()
        try:
            status, headers, body = await self._issue(scope, receive, head, attempt, version, now)
        except ClientDisconnected:
            return
        except TaapError as exc:
            error_code = exc.error_code
            status, headers, body = render_error(exc, www_authenticate=_BASIC, allow=_POST)
            self._audit_rejection(exc, attempt, now)
        except Exception:
            log.exception("unexpected error on the %s token endpoint", version)
            error_code = "internal"
            status, headers, body = render_error(None)
            self._audit_rejection(None, attempt, now)
        finally:
            self.signer.depart()
        await send_response(
            send, status, [*headers, (b"x-request-id", request_id.encode("ascii"))], body
        )
        self.metrics.token_request(version, error_code, perf_counter() - started)

    async def _issue(
        self,
        scope: Scope,
        receive: Receive,
        head: RequestHead,
        attempt: Attempt,
        version: Version,
        now: float,
    ) -> Response:
        parts = await self.read_request(scope, receive, head, attempt)  # 1-4
        client = await self.auth.authenticate(  # 5-6
            parts.headers.get("authorization"), source=attempt.source, now=now, claimant=attempt
        )
        claims = await self.auth.body_claims(parts.body, attempt.endpoint, client, now=now)  # 7
        verified = await self.verify_pop(parts, client, attempt, now)  # 8-9
        apis = await self._subscribed(client, version)  # 10
        signing = await self.reads.signing_key()
        await self.spend_jti(client.client_id, attempt.jti or "", verified, now)  # 11
        minted = await self.minter.mint(  # 12
            signing,
            client_id=client.client_id,
            apis=apis,
            cnf_jwk=verified.key.jwk,
            claims=claims,
            now=now,
            not_before=client.record.tokens_not_before,
        )
        self._audit_issued(attempt, client.client_id, verified, signing, minted, apis, now)
        return 200, NO_STORE, minted.body

    # -- the steps, in the order of docs/protocol.md#order-of-checks --------------------
    async def read_request(
        self,
        scope: Scope,
        receive: Receive,
        head: RequestHead,
        attempt: Attempt,
        *,
        max_body: int | None = None,
        media_types: frozenset[bytes] = JSON_ONLY,
        refusal: str | None = None,
    ) -> RequestParts:
        """Steps 1-4: method, caps, content type, one reading of the request as sent.

        ``max_body`` (default ``TAAP_MAX_BODY``), the accepted ``media_types`` and the 415's
        text (``refusal``) are the token endpoints' unless an endpoint says otherwise.
        """
        settings = self.settings
        if self._networks:
            attempt.source = source_address(attempt.source, head.forwarded_for, self._networks)
        if scope["method"] != "POST":
            raise MethodNotAllowedError()
        if head.size > settings.max_headers:
            raise HeadersTooLargeError(
                f"request headers are over the {settings.max_headers}-byte cap"
            )
        limit = settings.max_body if max_body is None else max_body
        body = await read_body(receive, limit, declared=head.declared_length())
        if not head.content_types or not all(
            media_type(v) in media_types for v in head.content_types
        ):
            raise ContentTypeError(refusal)
        return request_parts(
            scope["method"],
            raw_path_of(scope),
            scope.get("query_string", b""),
            scope["headers"],
            body,
        )

    async def verify_pop(
        self, parts: RequestParts, client: Authenticated, attempt: Attempt, now: float
    ) -> VerifiedPop:
        """Steps 8-9: a PoP is present and passes steps 1-6 of docs/protocol.md#verifying-a-pop
        under a registered key."""
        pop = parts.headers.get("x-authorization")
        if not pop or not pop.strip():
            raise PopMissingError()
        attempt.pop = pop
        try:
            verified = verify_pop_token(
                pop, keys=client.record.keys, request=parts, now=now, policy=self._policy
            )
        except TaapError as exc:
            self.metrics.pop_verification(exc.error_code)
            if isinstance(exc, PopSignatureError):
                await self.auth.penalise(client.buckets, now=now)
            raise
        self.metrics.pop_verification(None)
        if not verified.jti:
            raise PopMalformedError(log_detail="a token request needs a jti (one hop)")
        attempt.jti = verified.jti
        return verified

    async def _subscribed(self, client: Authenticated, version: Version) -> list[str]:
        """Step 10: the client's products that this endpoint serves (none: 403)."""
        apis = await self.reads.served(client.record.apis, version)
        if not apis:
            raise NotSubscribedError(
                f"client subscribes to no API product served by /oauth2/{version}/tokens"
            )
        return apis

    async def spend_jti(self, client_id: str, jti: str, verified: VerifiedPop, now: float) -> None:
        """Step 11: one hop, recorded only now that every other check passed."""
        until, iat = verified.replay_until, issued_at(verified.claims)
        try:
            fresh = await self.replay_store.record(client_id, jti, until=until, now=now, iat=iat)
        except Exception:
            self.metrics.replay_store_errors.inc()
            raise
        if not fresh:
            raise PopReplayedError()

    # -- audit --------------------------------------------------------------------------
    def _audit_issued(
        self,
        attempt: Attempt,
        client_id: str,
        verified: VerifiedPop,
        signing: SigningKeyRecord,
        minted: Minted,
        apis: list[str],
        now: float,
    ) -> None:
        try:
            self.audit.record(
                now=now,
                event="token_issued",
                endpoint=attempt.endpoint,
                status=200,
                client_id=client_id,
                jti=verified.jti,
                kid=signing.kid,
                token_jti=minted.token_jti,
                exp=minted.exp,
                apis=apis,
                source=attempt.source,
                request_id=attempt.request_id,
            )
        except Exception as exc:
            self.metrics.audit_errors.inc()
            # SECURITY.md §4: a token whose audit line was not written never leaves. The
            # PoP's jti stays spent (fail closed); the client retries with a new PoP.
            raise UnavailableError(
                "the audit log is unavailable", log_detail=f"audit sink: {type(exc).__name__}"
            ) from exc

    def _audit_rejection(self, exc: TaapError | None, attempt: Attempt, now: float) -> None:
        if (
            exc is not None
            and attempt.jti is None
            and attempt.pop
            and not isinstance(exc, _JTI_UNTRUSTED)
        ):
            # The signature verified, so the jti is the client's own: worth a log line.
            try:
                jti = decode_pop_token(attempt.pop, policy=self._policy)[1].get("jti")
                attempt.jti = jti if isinstance(jti, str) else None
            except PopError:
                pass
        try:
            self.audit.record(
                now=now,
                event="token_rejected",
                endpoint=attempt.endpoint,
                status=exc.status_code if exc is not None else 500,
                error_code=exc.error_code if exc is not None else "internal",
                client_id=attempt.client_id,
                jti=attempt.jti,
                source=attempt.source,
                request_id=attempt.request_id,
                registered=attempt.registered,
            )
        except Exception:
            self.metrics.audit_errors.inc()
            # The rejection is answered anyway: turning a 4xx into a 5xx would tell the caller
            # nothing more. The operator sees the lost line here.
            log.exception("audit line lost for a rejected %s token request", attempt.endpoint)
