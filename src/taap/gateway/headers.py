"""Which headers the gateway passes on, in each direction (docs/gateway.md, "What the upstream
receives").

Towards the upstream: every header of the verified call, except the PoP (``X-Authorization``),
optionally ``Authorization``, anything a client names ``X-Taap-*`` (only the gateway speaks for
the caller's identity), the hop-by-hop fields of RFC 9110 §7.6.1 (``Connection``, the fields it
names, ``Keep-Alive``, ``Proxy-Connection``, ``TE``, ``Transfer-Encoding``, ``Upgrade``; and
``Proxy-Authorization``, meant for a proxy), ``Expect`` (the body has already been read),
``Host`` and ``Content-Length`` (set anew). Added: the caller (``X-Taap-Client-Id``,
``X-Taap-Product``), ``X-Request-Id``, ``X-Forwarded-For``/``-Proto``/``-Host``.

Back to the caller: the upstream's headers without the hop-by-hop ones and ``Date`` (the
listener writes its own, as nginx does).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import count

from taap.asgi import Headers

__all__ = [
    "HOP_BY_HOP",
    "Forwarding",
    "RequestIds",
    "connection_named",
    "response_headers",
    "upstream_headers",
]

#: RFC 9110 §7.6.1 and its kin: meaningful for one connection only
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"transfer-encoding",
        b"upgrade",
        b"trailer",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
# Replaced or set anew by the gateway (the X-Forwarded-* set unless from a trusted proxy).
_REPLACED = frozenset({b"host", b"content-length", b"expect", b"x-authorization", b"x-request-id"})
_FORWARDED = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"}
)
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def connection_named(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The field names a ``Connection`` header lists (they are hop-by-hop too)."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(part.strip().lower() for part in value.split(b",") if part.strip())
    return frozenset(named)


class RequestIds:
    """``X-Request-Id``: the caller's when it sent exactly one sane value, else a new one
    (``<12 random hex digits of this process>-<counter in hex>``, unique across processes)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex() + "-"
        self._counter = count(1)

    def pick(self, given: list[bytes]) -> bytes:
        if len(given) == 1 and _SANE_ID.fullmatch(given[0]):
            return given[0]
        return f"{self._prefix}{next(self._counter):x}".encode("ascii")


@dataclass(frozen=True, slots=True)
class Forwarding:
    """What the gateway tells the upstream about the call it forwards."""

    client_id: str
    product: str
    request_id: bytes
    #: the caller's address as the gateway saw it
    peer: str
    scheme: str
    #: the upstream's ``host[:port]``, sent as ``Host``
    upstream_host: bytes
    #: the peer is a trusted proxy: its ``X-Forwarded-*`` are kept and extended
    trusted: bool
    strip_authorization: bool = False


def upstream_headers(headers: Iterable[tuple[bytes, bytes]], how: Forwarding) -> Headers:
    """The headers (lower-case names, order kept) the upstream receives for a call."""
    headers = list(headers)
    dropped = HOP_BY_HOP | connection_named(headers) | _REPLACED
    if how.strip_authorization:
        dropped = dropped | {b"authorization"}
    out: Headers = []
    forwarded_for: list[bytes] = []
    proto: bytes | None = None
    host: bytes | None = None
    original_host = b""
    for raw_name, value in headers:
        name = raw_name.lower()
        if name == b"host":
            original_host = value
        if name in dropped or name.startswith(b"x-taap-"):
            continue
        if name in _FORWARDED:
            if how.trusted:
                if name == b"x-forwarded-for":
                    forwarded_for.append(value)
                elif name == b"x-forwarded-proto":
                    proto = proto or value
                elif name == b"x-forwarded-host":
                    host = host or value
                else:
                    out.append((name, value))
            continue
        out.append((name, value))
    forwarded_for.append(how.peer.encode("latin-1"))
    out += [
        (b"host", how.upstream_host),
        (b"x-taap-client-id", how.client_id.encode("latin-1")),
        (b"x-taap-product", how.product.encode("latin-1")),
        (b"x-request-id", how.request_id),
        (b"x-forwarded-for", b", ".join(forwarded_for)),
        (b"x-forwarded-proto", proto or how.scheme.encode("latin-1")),
    ]
    if host or original_host:
        out.append((b"x-forwarded-host", host or original_host))
    return out


def response_headers(headers: Iterable[tuple[bytes, bytes]], request_id: bytes) -> Headers:
    """The upstream's response headers as the caller gets them (lower-case names)."""
    headers = list(headers)
    dropped = HOP_BY_HOP | connection_named(headers) | {b"date"}
    out: Headers = []
    has_id = False
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in dropped:
            continue
        has_id = has_id or name == b"x-request-id"
        out.append((name, value))
    if not has_id:
        out.append((b"x-request-id", request_id))
    return out
