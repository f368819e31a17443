"""The two token endpoints (TAAP.md A4): every check in the normative order, then issuance.

Order (the first failure answers): method 405 → header and body caps 431/413 → content type
415 → duplicate singleton headers / invalid UTF-8 400 → Basic auth, client lookup, secret,
status 401 → failed-auth rate limit 429 → v6/v2 body rules 400 → PoP present 401 → PoP A3 steps
1-6 401 → subscription 403 → replay record 401 → issue.

Failed authentication (``client_auth_failed``, also for v6 body credentials that differ from
Basic) and ``pop_signature_invalid`` take one token from the client's and the address's
buckets; nothing else does. While a bucket is empty every request it covers is answered 429,
whether its credentials are right or wrong, so a limited guesser learns nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from time import perf_counter
from typing import Literal

from taap.core.jws import join_compact
from taap.core.pop import decode_pop_token, verify_pop_token
from taap.core.replay import MemoryReplayStore, ReplayStore
from taap.core.request import request_parts
from taap.core.tokens import access_token_input, id_token_input
from taap.errors import (
    BodyTooLargeError,
    ClientAuthError,
    ContentTypeError,
    HeadersTooLargeError,
    MethodNotAllowedError,
    NotSubscribedError,
    PopError,
    PopMalformedError,
    PopMissingError,
    PopReplayedError,
    PopSignatureError,
    RateLimitedError,
    TaapError,
    UnavailableError,
)
from taap.server.audit import AuditLog
from taap.server.clientauth import check_v2_body, parse_basic, parse_v6_body, source_address
from taap.server.logs import REQUEST_ID, RequestIds
from taap.server.metrics import ServerMetrics
from taap.server.registry.port import ApiProduct, ClientRecord, RegistryReader, SigningKeyRecord
from taap.server.registry.secrets import verify_secret
from taap.server.settings import ServerSettings, trusted_networks
from taap.server.signing import SigningThreads, sign_all
from taap.server.wire import (
    NO_STORE,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    error_response,
    read_body,
    send_response,
)
from taap.stores.ratelimit import Bucket, RateLimiter

__all__ = ["TokenEndpoints", "Version"]

Version = Literal["v2", "v6"]
log = logging.getLogger("taap.server")
_BASIC = b'Basic realm="taap"'
_POST = b"POST"
# Failures after which the PoP's jti is unknown or not the client's own (no signature yet).
_JTI_UNTRUSTED = (PopMissingError, PopMalformedError, PopSignatureError)
_MAX_CACHED_CLIENTS = 10_000


def _published_long_enough(
    keys: Sequence[SigningKeyRecord], *, now: float, delay: float
) -> SigningKeyRecord:
    """The newest key published at least ``delay`` seconds ago (else the oldest published one).

    Publish before use: a guard refetches the JWKS for an unknown ``kid`` at most once per
    ``TAAP_JWKS_MIN_REFRESH`` seconds, so a key that signs sooner after ``taap keys rotate``
    can be refused by a guard that fetched just before the rotation (seen in the cluster test).
    """
    for key in keys:
        created = key.created_at
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        if now - created.timestamp() >= delay:
            return key
    return keys[-1]


def _usable_cpus() -> int:
    """Cores this process may run on (its affinity mask where the OS has one, as on Linux)."""
    affinity = getattr(os, "sched_getaffinity", None)  # absent on macOS and Windows
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip(b" \t").lower()
    return media == b"application/json"


@dataclass(slots=True)
class _Attempt:
    """What the audit line of one request needs."""

    endpoint: Version
    source: str
    client_id: str | None = None
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
        request_ids: RequestIds | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        cpus: int | None = None,
    ) -> None:
        """``cpus``: usable cores for ``TAAP_SIGN_THREADS=auto`` (default: this process's)."""
        self.settings = settings
        self.registry = registry
        self.replay_store = replay_store
        self.limiter = limiter
        self.clock = clock
        self.audit = audit
        self.metrics = ServerMetrics() if metrics is None else metrics
        self._pepper = pepper
        self._monotonic = monotonic
        self._policy = settings.policy
        self._networks = trusted_networks(settings.forwarded_allow_ips)
        self._ids = RequestIds(self._networks) if request_ids is None else request_ids
        self._client_rate = settings.client_rate
        self._address_rate = settings.address_rate
        self._issuer = settings.issuer_url
        self._ttl = settings.token_ttl
        self._single = settings.token_mode == "single"
        self._tail = (
            b'","expires_in":"' + str(self._ttl - 1).encode() + b'","scope":"","status":"approved"}'
        )
        self._products: dict[str, ApiProduct] = {}
        self._signing: SigningKeyRecord | None = None
        self._signing_at = -math.inf
        self._clients: dict[str, tuple[float, ClientRecord | None]] = {}
        threads = settings.signing_threads(cpus if cpus is not None else _usable_cpus())
        self._in_flight = 0  # token requests between arrival and answer, on this loop
        self._signer = SigningThreads(threads) if threads else None

    def close(self) -> None:
        """Stop the signing threads (``TAAP_SIGN_THREADS``), if any; signatures under way finish."""
        if self._signer is not None:
            self._signer.close()

    # -- registry reads with their (short, documented) caches ---------------------------
    async def signing_key(self) -> SigningKeyRecord:
        """The active signing key, re-read every ``TAAP_KEY_REFRESH`` seconds.

        Raises:
            UnavailableError: the registry is unreachable or holds no signing key.
        """
        mono = self._monotonic()
        if self._signing is None or mono - self._signing_at >= self.settings.key_refresh:
            try:
                keys = await self.registry.signing_keys()
            except UnavailableError:
                self.metrics.database_errors.inc()
                raise
            if not keys:
                raise UnavailableError(log_detail="the registry holds no signing key")
            self._signing = _published_long_enough(
                keys, now=self.clock(), delay=self.settings.jwks_min_refresh
            )
            self._signing_at = mono
        return self._signing

    async def _client(self, client_id: str) -> ClientRecord | None:
        ttl = self.settings.registry_cache
        if ttl <= 0:
            try:
                return await self.registry.get_client(client_id)
            except UnavailableError:
                self.metrics.database_errors.inc()
                raise
        mono = self._monotonic()
        cached = self._clients.get(client_id)
        if cached is not None and mono - cached[0] < ttl:
            return cached[1]
        try:
            record = await self.registry.get_client(client_id)
        except UnavailableError:
            self.metrics.database_errors.inc()
            raise
        if len(self._clients) >= _MAX_CACHED_CLIENTS:
            self._clients.clear()
        self._clients[client_id] = (mono, record)
        return record

    async def _served(self, apis: Sequence[str], version: Version) -> list[str]:
        # Products never change once created, so the map is kept; an unknown id reloads it.
        if any(api not in self._products for api in apis):
            try:
                listed = await self.registry.list_products()
            except UnavailableError:
                self.metrics.database_errors.inc()
                raise
            self._products = {p.id: p for p in listed}
        products = self._products
        return [a for a in apis if a in products and products[a].token_server == version]

    def _buckets(self, client_id: str | None, source: str) -> list[Bucket]:
        buckets = [Bucket(f"addr:{source}", self._address_rate)]
        if client_id is not None:
            buckets.append(Bucket(f"client:{client_id}", self._client_rate))
        return buckets

    # -- ASGI ---------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send, version: Version) -> None:
        started = perf_counter()
        now = self.clock()
        client = scope.get("client")
        attempt = _Attempt(endpoint=version, source=client[0] if client else "unknown")
        error_code: str | None = None
        self._in_flight += 1
        try:
            if self._signer is not None:
                # One turn of the loop first: requests that arrived together all count
                # themselves in _in_flight before any of them decides where to sign.
                await asyncio.sleep(0)
            status, body, headers = await self._issue(scope, receive, attempt, now)
        except ClientDisconnected:
            return
        except TaapError as exc:
            error_code = exc.error_code
            status, body, headers = error_response(exc, www_authenticate=_BASIC, allow=_POST)
            self._audit_rejection(exc, attempt, now)
        except Exception:
            log.exception("unexpected error on the %s token endpoint", version)
            error_code = "internal"
            status, body, headers = error_response(None)
            self._audit_rejection(None, attempt, now)
        finally:
            self._in_flight -= 1
        request_id = attempt.request_id or self._ids.new()
        await send_response(
            send, status, body, [*headers, (b"x-request-id", request_id.encode("ascii"))]
        )
        self.metrics.token_request(version, error_code, perf_counter() - started)

    def _audit_rejection(self, exc: TaapError | None, attempt: _Attempt, now: float) -> None:
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
            )
        except Exception:
            self.metrics.audit_errors.inc()
            # The rejection is answered anyway: turning a 4xx into a 5xx would tell the caller
            # nothing more. The operator sees the lost line here.
            log.exception("audit line lost for a rejected %s token request", attempt.endpoint)

    async def _issue(
        self, scope: Scope, receive: Receive, attempt: _Attempt, now: float
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        settings = self.settings
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        size, declared = 0, b""
        content_types: list[bytes] = []
        forwarded: list[bytes] = []
        given_id: list[bytes] = []
        for name, value in raw_headers:
            size += len(name) + len(value) + 4
            if name == b"content-type":
                content_types.append(value)
            elif name == b"content-length":
                declared = value
            elif name == b"x-forwarded-for":
                forwarded.append(value)
            elif name == b"x-request-id":
                given_id.append(value)
        request_id = attempt.request_id = self._ids.pick(attempt.source, given_id)
        REQUEST_ID.set(request_id)  # for log lines written while this request runs
        if self._networks:
            attempt.source = source_address(attempt.source, forwarded, self._networks)
        # 1. method
        if scope["method"] != "POST":
            raise MethodNotAllowedError()
        # 2. caps, refused before reading (declared length) or while reading
        if size > settings.max_headers:
            raise HeadersTooLargeError(
                f"request headers are over the {settings.max_headers}-byte cap"
            )
        if declared.isdigit() and int(declared) > settings.max_body:
            raise BodyTooLargeError(f"request body is over the {settings.max_body}-byte cap")
        body = await read_body(receive, settings.max_body)
        # 3. content type
        if not content_types or not all(_is_json(v) for v in content_types):
            raise ContentTypeError()
        # 4. duplicate singletons, UTF-8, ambiguous URI
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        parts = request_parts(
            scope["method"],
            raw_path.partition(b"?")[0],
            scope.get("query_string", b""),
            raw_headers,
            body,
        )
        # 5. client authentication
        client_id: str | None = None
        try:
            client_id, secret = parse_basic(parts.headers.get("authorization"))
            attempt.client_id = client_id
            record = await self._client(client_id)
            digests = record.secret_digests if record is not None else ()
            if not verify_secret(self._pepper, secret, digests) or record is None:
                raise ClientAuthError(log_detail="unknown client or wrong secret")
            if record.status != "active":
                raise ClientAuthError(log_detail="client is disabled")
        except ClientAuthError:
            wait = await self.limiter.take(self._buckets(client_id, attempt.source), now=now)
            if wait > 0:
                raise RateLimitedError(retry_after=math.ceil(wait)) from None
            raise
        # 6. failed-auth rate limit
        buckets = self._buckets(client_id, attempt.source)
        wait = await self.limiter.check(buckets, now=now)
        if wait > 0:
            raise RateLimitedError(retry_after=math.ceil(wait))
        # 7. body rules
        claims: dict[str, str] = {}
        if attempt.endpoint == "v6":
            try:
                claims = parse_v6_body(body, client_id=client_id, client_secret=secret).claims
            except ClientAuthError:
                await self.limiter.take(buckets, now=now)
                raise
        else:
            check_v2_body(body)
        # 8. PoP present, 9. A3 steps 1-6 against the client's registered keys
        pop = parts.headers.get("x-authorization")
        if not pop or not pop.strip():
            raise PopMissingError()
        attempt.pop = pop
        try:
            verified = verify_pop_token(
                pop, keys=record.keys, request=parts, now=now, policy=self._policy
            )
        except TaapError as exc:
            self.metrics.pop_verification(exc.error_code)
            if isinstance(exc, PopSignatureError):
                await self.limiter.take(buckets, now=now)
            raise
        self.metrics.pop_verification(None)
        if not verified.jti:
            raise PopMalformedError(log_detail="a token request needs a jti (one hop)")
        attempt.jti = verified.jti
        # 10. subscription
        apis = await self._served(record.apis, attempt.endpoint)
        if not apis:
            raise NotSubscribedError(
                f"client subscribes to no API product served by /oauth2/{attempt.endpoint}/tokens"
            )
        signing = await self.signing_key()
        # 11. one hop: recorded only now that every other check passed
        store = self.replay_store
        try:
            if type(store) is MemoryReplayStore and "record" not in store.__dict__:
                # The in-process store never suspends: skip building and awaiting a coroutine
                # (unless ``record`` was replaced on the instance, as fault tests do).
                fresh = store.record_sync(
                    client_id, verified.jti, until=verified.replay_until, now=now
                )
            else:
                fresh = await store.record(
                    client_id, verified.jti, until=verified.replay_until, now=now
                )
        except Exception:
            self.metrics.replay_store_errors.inc()
            raise
        if not fresh:
            raise PopReplayedError()
        # 12. issue
        token_jti = str(uuid.uuid4())
        # Claims and encoding stay on the event loop; only the RSA work moves to a signing
        # thread (TAAP_SIGN_THREADS), where cryptography runs it without the GIL. A thread that
        # also ran the Python parts fought the loop for the GIL on every step (measured: 35-55 %
        # more CPU per request and no throughput gained).
        inputs = [
            access_token_input(
                kid=signing.kid,
                issuer=self._issuer,
                client_id=client_id,
                apis=apis,
                cnf_jwk=verified.key.jwk,
                now=now,
                ttl=self._ttl,
                jti=token_jti,
                extra=claims or None,
            )
        ]
        if not self._single:
            inputs.append(
                id_token_input(
                    kid=signing.kid,
                    issuer=self._issuer,
                    client_id=client_id,
                    now=now,
                    ttl=self._ttl,
                )
            )
        if self._signer is None or self._in_flight <= 1:
            # Alone on the loop: a hand-off to a thread and back only adds its wake-ups
            # (~80 µs measured through the old executor). With other requests waiting, the
            # loop serves them meanwhile.
            signatures = sign_all(signing.key, inputs)
        else:
            signatures = await self._signer.sign(signing.key, inputs)
        access = join_compact(inputs[0], signatures[0])
        id_token = access if self._single else join_compact(inputs[1], signatures[1])
        body_out = (
            b'{"id_token":"'
            + id_token.encode("ascii")
            + b'","access_token":"'
            + access.encode("ascii")
            + self._tail
        )
        try:
            self.audit.record(
                now=now,
                event="token_issued",
                endpoint=attempt.endpoint,
                status=200,
                client_id=client_id,
                jti=verified.jti,
                kid=signing.kid,
                token_jti=token_jti,
                exp=int(now) + self._ttl,
                apis=apis,
                source=attempt.source,
                request_id=request_id,
            )
        except Exception as exc:
            self.metrics.audit_errors.inc()
            # SECURITY.md §4: a token whose audit line was not written never leaves. The
            # PoP's jti stays spent (fail closed); the client retries with a new PoP.
            raise UnavailableError(
                "the audit log is unavailable", log_detail=f"audit sink: {type(exc).__name__}"
            ) from exc
        return 200, body_out, NO_STORE
