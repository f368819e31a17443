"""Helpers for the hostile-input suite: one real ``taap serve --with-sample-apis`` process over a
temporary SQLite registry and a Redis database of its own, raw HTTP over sockets (so nothing
normalises an attack away), forged JOSE objects, and the observations every case asserts (at
the token endpoints, the guard, revocation and introspection):

- the answer (status, ``error``, ``error_code``, no token in it);
- the audit log (no ``token_issued`` / ``api_call_accepted`` / ``token_revoked`` line, the
  rejection line's code);
- Redis (no replay key added; rate-limit buckets moved only for the failures A8 names);
- the registry (every SQLite table unchanged).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from kit import jose
from kit.jose import forge, segment
from kit.processes import taap_ok
from kit.stores import adopt_redis
from kit.wire import basic
from logkit import audit_records
from taap.core import PrivateKey, build_pop_token, request_pairs

__all__ = [
    "COUNTED",
    "Arena",
    "Client",
    "Reply",
    "Snapshot",
    "claim_redis_db",
    "cli",
    "forge",
    "http_request",
    "raw_exchange",
    "segment",
]

# TAAP.md A8: the only failures that take a token from the failed-auth buckets.
COUNTED = frozenset({"client_auth_failed", "pop_signature_invalid"})
LOCK_KEY = "taap-adversarial:lock"


def pop_claims(
    pairs: Sequence[tuple[str, str | bytes]], *, now: float | None = None, **changes: Any
) -> dict[str, Any]:
    """Valid strict PoP claims over ``pairs``, issued now, with a fresh jti; ``changes``
    override (``...`` removes)."""
    return jose.pop_claims(
        pairs, int(time.time() if now is None else now), str(uuid.uuid4()), changes
    )


POP_HEADER = {"alg": "RS256", "typ": "JWT"}


# -- raw HTTP -----------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    method: str | bytes,
    target: str | bytes,
    headers: Sequence[tuple[str | bytes, str | bytes]],
    body: bytes = b"",
    *,
    host: str = "127.0.0.1",
    content_length: bool = True,
) -> bytes:
    """The bytes of one HTTP/1.1 request, headers exactly as given (plus Host, Connection)."""

    def raw(value: str | bytes) -> bytes:
        return value if isinstance(value, bytes) else value.encode("latin-1")

    lines = [raw(method) + b" " + raw(target) + b" HTTP/1.1", b"Host: " + host.encode()]
    lines += [raw(n) + b": " + raw(v) for n, v in headers]
    if content_length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def raw_exchange(port: int, data: bytes, *, timeout: float = 10.0) -> Reply:
    """Send ``data`` on a fresh connection and parse the one response that comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # The server may answer (e.g. 413) and close before reading everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if _complete(b"".join(chunks)):
                break
    return _parse(b"".join(chunks))


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def _parse(data: bytes) -> Reply:
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no HTTP response: {data[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return Reply(status, headers, body)


# -- registry, Redis and audit observations -------------------------------------------------
def claim_redis_db(base_url: str) -> tuple[str, redis.Redis]:
    """A Redis database of this suite's own (a lock key claims it), emptied of ``taap:*``."""
    parts = urlsplit(base_url)
    # Not 0 (shared) and not 9-14 (tests/cluster picks those at random).
    for db in (15, 8, 7, 6, 5, 4):
        url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))
        client = redis.Redis.from_url(url)
        if client.set(LOCK_KEY, str(uuid.uuid4()), nx=True, ex=900):
            for key in client.scan_iter(match="taap:*", count=1000):
                client.delete(key)
            adopt_redis(url)
            return url, client
        client.close()
    raise RuntimeError("no free Redis database for the adversarial suite")


@dataclass(frozen=True)
class Snapshot:
    events: dict[str, int]
    last: dict[str, Any] | None
    jti_keys: frozenset[bytes]
    buckets: dict[bytes, dict[bytes, bytes]]
    tables: dict[str, str]


@dataclass
class Client:
    name: str
    client_id: str
    secret: str
    key: PrivateKey

    @property
    def basic(self) -> str:
        return basic(self.client_id, self.secret)


@dataclass
class Arena:
    """The running server and everything a case observes."""

    folder: Path
    database_url: str
    db_path: Path
    port: int
    log: Path
    redis: redis.Redis
    redis_url: str
    clients: dict[str, Client] = field(default_factory=dict)
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # observations
    def audit_lines(self) -> Iterator[dict[str, Any]]:
        yield from audit_records(self.log)

    def snapshot(self) -> Snapshot:
        events: dict[str, int] = {}
        last = None
        for line in self.audit_lines():
            events[line["event"]] = events.get(line["event"], 0) + 1
            last = line
        jti = frozenset(self.redis.scan_iter(match="taap:jti:*", count=1000))
        buckets = {k: self.redis.hgetall(k) for k in self.redis.scan_iter(match="taap:rl:*")}
        return Snapshot(events, last, jti, buckets, self.tables())

    def tables(self) -> dict[str, str]:
        """A digest of each table's rows (digests, not rows: a failing comparison must not
        print the server's signing key or the secret verifiers). The usage counters are left
        out: like the audit log (checked on its own) they count refusals too, and they are
        written a second later, so an earlier request's count may land during any case."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        try:
            names = [
                r[0]
                for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if r[0] != "usage_counts"
            ]
            return {
                name: hashlib.sha256(
                    repr(sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"')))).encode()
                ).hexdigest()
                for name in names
            }
        finally:
            conn.close()

    def reset_buckets(self) -> None:
        for key in self.redis.scan_iter(match="taap:rl:*"):
            self.redis.delete(key)

    def send(self, data: bytes) -> Reply:
        return raw_exchange(self.port, data)

    # building valid requests
    def pop(
        self,
        client: Client,
        method: str,
        uri: str,
        headers: Sequence[tuple[str, str]],
        body: str | bytes = b"",
        *,
        key: PrivateKey | None = None,
        now: float | None = None,
        ttl: int = 60,
    ) -> str:
        pairs = request_pairs(method, uri, headers, body)
        return build_pop_token(pairs, key or client.key, now=now, ttl=ttl)


# -- the assertions every hostile case makes --------------------------------------------------
_ISSUING = ("token_issued", "api_call_accepted", "token_revoked", "revocation_ignored")
_REJECTED = {
    "token": "token_rejected",
    "guard": "api_call_refused",
    "revoke": "revocation_rejected",
    "introspect": "introspection_rejected",
}
# Whose failed-auth bucket a surface charges besides the address's (A8; docs/server.md).
_CALLER_BUCKET = {"token": "client", "revoke": "client", "introspect": "rs"}
_ADDRESS_BUCKET = b"taap:rl:addr:127.0.0.1"


def expect_refused(
    arena: Arena,
    data: bytes,
    status: int,
    error: str | None,
    code: str | None,
    *,
    surface: str = "token",
    counted: str | None = None,
    audited: bool = True,
) -> Reply:
    """Send ``data`` and assert the refusal and that nothing was issued, burned or changed.

    ``counted``: the claimed client_id (resource-server id at introspection) whose bucket
    must move ("" = only the address bucket); None = no bucket may move. ``code`` None:
    refused by the HTTP layer before the app. ``surface``: ``token``, ``guard``, ``revoke``
    or ``introspect``.
    """
    arena.reset_buckets()
    before = arena.snapshot()
    reply = arena.send(data)
    after = arena.snapshot()
    arena.reset_buckets()
    assert reply.status == status, (reply.status, reply.body[:500])
    assert b"eyJ" not in reply.body  # no JWT of any kind in a refusal
    assert b"Traceback" not in reply.body
    if code is not None:
        body = reply.json()
        assert set(body) == {"error", "error_description", "error_code"}, body
        assert (body["error"], body["error_code"]) == (error, code), body
        assert reply.header("content-type") == "application/json"
        assert reply.header("cache-control") == "no-store"  # a refusal is never cached
        # RFC 6749 §5.2: error_description only in %x20-21 / %x23-5B / %x5D-7E.
        assert re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]+", body["error_description"])
        if status == 401:
            expected = "Bearer" if surface == "guard" else 'Basic realm="taap"'
            assert (reply.header("www-authenticate") or "").startswith(expected)
        if status in (429, 503):
            assert reply.header("retry-after")
        if status == 405:
            assert reply.header("allow")
    # The audit log: nothing issued or accepted; the refusal logged with its code.
    for event in _ISSUING:
        assert after.events.get(event, 0) == before.events.get(event, 0), event
    logged = sum(after.events.values()) - sum(before.events.values())
    assert logged == (1 if audited else 0), (logged, after.last)
    if audited:
        assert after.last is not None
        assert after.last["event"] == _REJECTED[surface], after.last
        assert after.last["error_code"] == code, after.last
        assert after.last["status"] == status
    # Redis: no replay entry consumed; only the A8 failures move the buckets.
    # Only additions count: keys of earlier successes may expire meanwhile (TTL ≤ 70 s).
    assert not after.jti_keys - before.jti_keys, after.jti_keys - before.jti_keys
    assert before.buckets == {}
    if counted is None or surface == "guard":
        assert after.buckets == {}, after.buckets
    else:
        assert code in COUNTED
        wanted = {_ADDRESS_BUCKET}
        if counted:
            wanted.add(f"taap:rl:{_CALLER_BUCKET[surface]}:{counted}".encode())
        assert set(after.buckets) == wanted, after.buckets
    # The registry: every table as it was.
    assert after.tables == before.tables
    return reply


def cli(arena: Arena, *args: str) -> str:
    """Run the real ``taap`` CLI against the server's database; its stdout."""
    return taap_ok(*args, "--database-url", arena.database_url)
