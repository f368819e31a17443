"""What every guard knows of revocations, without I/O (docs/guard.md, "Live authorization").

The registry keeps an append-only log of :class:`RevocationEntry` rows, each with a growing
``seq``. A guard holds a :class:`RevocationState`, feeds it the rows after the last ``seq`` it
has (from the registry itself, or from the token server's feed), and asks it about each
request. Three kinds of row exist:

``token``
    one access or ID token (by ``jti``) is revoked until its ``exp``;
``client``
    every token of the client with ``iat < not_before`` is revoked (a disabled client, or an
    operator's "revoke all");
``product``
    every token of the client with ``iat < not_before`` loses the product ``api_id``
    (an unsubscription).

Cutoffs only grow, so applying rows in any order, twice, or after a restart gives the same
state: the state is the union of what it was told. The state also knows when it was last
confirmed complete (:attr:`RevocationState.fresh_at`); a guard refuses to answer from a state
older than its bound (``TAAP_REVOCATION_MAX_AGE``) rather than risk serving a revoked token.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from taap.errors import NotSubscribedError, TokenRevokedError, UnavailableError

__all__ = [
    "FetchRevocations",
    "RevocationEntry",
    "RevocationKind",
    "RevocationState",
    "entries_from_wire",
    "entries_to_wire",
]

RevocationKind = Literal["token", "client", "product"]
_KINDS: frozenset[str] = frozenset(get_args(RevocationKind))
#: the feed's row shape, in order: what a JSON array row of ``entries_to_wire`` holds
_WIRE_FIELDS = ("seq", "kind", "client_id", "jti", "api_id", "not_before", "expires_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationEntry:
    """One row of the registry's revocation log (times are POSIX seconds)."""

    seq: int
    kind: RevocationKind
    client_id: str
    jti: str | None = None
    api_id: str | None = None
    not_before: int | None = None
    #: after this time the row changes nothing (the last token it could concern has expired)
    expires_at: int


#: how a guard reads the log: the rows with a ``seq`` above the argument, oldest first;
#: raises ``UnavailableError`` when the log cannot be read (the feed, or a registry)
FetchRevocations = Callable[[int], Awaitable[Sequence[RevocationEntry]]]


def entries_to_wire(entries: Iterable[RevocationEntry]) -> list[list[Any]]:
    """Rows as compact JSON arrays, in the order of ``_WIRE_FIELDS``."""
    return [
        [e.seq, e.kind, e.client_id, e.jti, e.api_id, e.not_before, e.expires_at] for e in entries
    ]


def _optional_str(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("expected a string or null")


def _integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("expected an integer")


def entries_from_wire(rows: object) -> list[RevocationEntry]:
    """Parse the feed's ``entries`` array (strictly: a bad row fails the whole batch).

    Raises:
        ValueError: not a list of well-formed rows.
    """
    if not isinstance(rows, list):
        raise ValueError("entries must be an array")
    parsed: list[RevocationEntry] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(_WIRE_FIELDS):
            raise ValueError("each entry must be an array of seven values")
        seq, kind, client_id, jti, api_id, not_before, expires_at = row
        if kind not in _KINDS or not isinstance(client_id, str) or not client_id:
            raise ValueError("entry kind or client_id invalid")
        entry = RevocationEntry(
            seq=_integer(seq),
            kind=kind,
            client_id=client_id,
            jti=_optional_str(jti),
            api_id=_optional_str(api_id),
            not_before=None if not_before is None else _integer(not_before),
            expires_at=_integer(expires_at),
        )
        _check_shape(entry)
        parsed.append(entry)
    return parsed


def _check_shape(entry: RevocationEntry) -> None:
    if entry.kind == "token" and not entry.jti:
        raise ValueError("a token entry needs a jti")
    if entry.kind != "token" and entry.not_before is None:
        raise ValueError("a cutoff entry needs not_before")
    if entry.kind == "product" and not entry.api_id:
        raise ValueError("a product entry needs api_id")


def _grow(table: dict[Any, int], key: Any, not_before: int) -> None:
    if not_before > table.get(key, 0):
        table[key] = not_before


class RevocationState:
    """The guard's in-memory copy of the revocation log, and how fresh it is.

    ``max_age`` is the bound of ``TAAP_REVOCATION_MAX_AGE``: :meth:`check` refuses (503) when
    the state was last confirmed complete longer ago than that.
    """

    __slots__ = ("_clients", "_jtis", "_products", "fresh_at", "max_age", "seq")

    def __init__(self, *, max_age: float) -> None:
        self.max_age = max_age
        #: highest ``seq`` applied: the next fetch asks for rows after it
        self.seq = 0
        #: when the last successful fetch started; -inf until the first one
        self.fresh_at = -math.inf
        self._jtis: dict[str, int] = {}
        self._clients: dict[str, int] = {}
        self._products: dict[tuple[str, str], int] = {}

    def __len__(self) -> int:
        return len(self._jtis) + len(self._clients) + len(self._products)

    def apply(self, entries: Sequence[RevocationEntry], *, fetched_at: float) -> None:
        """Merge rows fetched by a fetch that started at ``fetched_at`` and mark the state
        complete as of then. Rows already known, or out of order, change nothing extra."""
        for entry in entries:
            not_before = entry.not_before or 0
            if entry.kind == "token" and entry.jti:
                self._jtis[entry.jti] = max(self._jtis.get(entry.jti, 0), entry.expires_at)
            elif entry.kind == "client":
                _grow(self._clients, entry.client_id, not_before)
            elif entry.kind == "product" and entry.api_id:
                _grow(self._products, (entry.client_id, entry.api_id), not_before)
            self.seq = max(self.seq, entry.seq)
        self.fresh_at = max(self.fresh_at, fetched_at)

    def prune(self, now: float) -> None:
        """Forget revoked jtis whose tokens have expired (cutoffs are one per client/product)."""
        expired = [jti for jti, until in self._jtis.items() if until < now]
        for jti in expired:
            del self._jtis[jti]

    def is_stale(self, now: float) -> bool:
        """True when the state cannot vouch for changes made more than ``max_age`` ago."""
        return now - self.fresh_at > self.max_age

    def check_token(self, *, client_id: str, jti: str, iat: int, now: float) -> None:
        """The revocation step of docs/protocol.md#the-guard for a verified access token.

        Raises:
            UnavailableError: the state is older than ``max_age`` (503, fail closed).
            TokenRevokedError: the token, or every token of its client issued before a
                cutoff, was revoked.
        """
        if self.is_stale(now):
            raise UnavailableError(
                "revocation state unavailable", log_detail="revocation state is stale"
            )
        if jti in self._jtis:
            raise TokenRevokedError(log_detail=f"{client_id}: token {jti} revoked")
        if iat < self._clients.get(client_id, 0):
            raise TokenRevokedError(log_detail=f"{client_id}: tokens before a cutoff revoked")

    def check_product(self, *, client_id: str, product: str, iat: int) -> None:
        """Whether a token issued at ``iat`` still carries ``product`` (call after
        :meth:`check_token` in the same request, which vouched for freshness).

        Raises:
            NotSubscribedError: the client was unsubscribed from ``product`` after ``iat``.
        """
        if iat < self._products.get((client_id, product), 0):
            raise NotSubscribedError(log_detail=f"{client_id} unsubscribed from {product}")

    def revoked_jtis(self) -> Mapping[str, int]:
        """Revoked jtis and when each stops mattering (for introspection and tests)."""
        return dict(self._jtis)
