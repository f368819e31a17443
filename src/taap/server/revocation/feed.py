"""``GET /oauth2/v1/revocations?after=SEQ&limit=N``: the revocation log, for guards in other
processes (docs/server.md, "Revocation feed").

The answer is ``{"seq": S, "entries": [...]}``: the live rows with a ``seq`` above ``after``,
oldest first, at most ``limit`` (1-5000, default 5000) of them, each a JSON array in the order
of :func:`taap.core.revocation.entries_to_wire`; ``S`` is the highest ``seq`` returned, or
``after`` when there is none. Read from the registry on every request, never cached (here or
by a proxy: ``Cache-Control: no-store``), because a guard's freshness bound counts from the
moment it asked. Public, like the JWKS: client ids are identifiers, not secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from taap.asgi import NO_STORE, Receive, RequestHead, Response, Scope, json_bytes
from taap.core.revocation import entries_to_wire
from taap.errors import (
    HeadersTooLargeError,
    MethodNotAllowedError,
    RequestMalformedError,
    TaapError,
)
from taap.server.metrics import ServerMetrics
from taap.server.registry.port import RegistryReader
from taap.server.revocation.common import Endpoint
from taap.server.revocation.source import FEED_PAGE
from taap.server.tokens.endpoint import Attempt

__all__ = ["FEED_PATH", "RevocationFeedEndpoint", "feed_query"]

FEED_PATH = "/oauth2/v1/revocations"
#: ``seq`` is a signed 64-bit column
_MAX_SEQ = 2**63 - 1


def _number(text: str, name: str, low: int, high: int) -> int:
    # Digits only: no sign, no spaces, no underscores (int() would take all three).
    if not text.isascii() or not text.isdigit() or len(text) > 19 or not low <= int(text) <= high:
        raise RequestMalformedError(f"'{name}' must be an integer from {low} to {high}")
    return int(text)


def feed_query(query: bytes) -> tuple[int, int]:
    """``(after, limit)`` from the query string; other parameters are ignored.

    Raises:
        RequestMalformedError: a value that is not a whole number in range, a parameter given
            twice, a query that does not parse.
    """
    try:
        pairs = parse_qsl(
            query.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=bool(query),
            max_num_fields=16,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestMalformedError("query string does not parse") from exc
    seen: dict[str, str] = {}
    for name, value in pairs:
        if name in ("after", "limit"):
            if name in seen:
                raise RequestMalformedError(f"'{name}' must appear once")
            seen[name] = value
    after = _number(seen["after"], "after", 0, _MAX_SEQ) if "after" in seen else 0
    limit = _number(seen["limit"], "limit", 1, FEED_PAGE) if "limit" in seen else FEED_PAGE
    return after, limit


class RevocationFeedEndpoint(Endpoint):
    """The feed handler: no authentication, no audit line, no cache."""

    label = "revocations"
    allow = b"GET"
    challenge = None

    def __init__(
        self,
        registry: RegistryReader,
        *,
        max_headers: int,
        metrics: ServerMetrics,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(metrics, clock)
        self.registry = registry
        self.max_headers = max_headers

    async def handle(
        self, scope: Scope, receive: Receive, head: RequestHead, attempt: Attempt, now: float
    ) -> Response:
        if scope["method"] != "GET":
            raise MethodNotAllowedError()
        if head.size > self.max_headers:
            raise HeadersTooLargeError()
        after, limit = feed_query(scope.get("query_string", b""))
        rows = await self.registry.revocations_after(after, limit=limit)
        seq = max((row.seq for row in rows), default=after)
        return 200, NO_STORE, json_bytes({"seq": seq, "entries": entries_to_wire(rows)})

    def rejected(self, exc: TaapError | None, attempt: Attempt, now: float) -> None:
        """No audit line: the feed is public and only reads, like the JWKS."""
