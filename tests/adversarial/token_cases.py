"""Request builders for hostile token requests (TAAP.md A4): a valid request of a registered
client, from which each case changes exactly what it attacks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adversarial_kit import POP_HEADER, Arena, forge, http_request, pop_claims

from taap.core import PrivateKey, build_pop_token, request_pairs

__all__ = ["Case", "forged", "token_request", "v6_body"]

JSON = "application/json"


@dataclass
class Case:
    name: str
    build: Callable[[Arena], bytes]
    status: int
    error: str | None
    code: str | None
    counted: str | None = None  # "a" = client a's id, "=text" a literal id, "" = address only
    audited: bool = True
    surface: str = "token"

    def __str__(self) -> str:
        return self.name

    def counted_id(self, arena: Arena) -> str | None:
        if self.counted is None or self.counted == "":
            return self.counted
        if self.counted.startswith("="):
            return self.counted[1:]
        return arena.clients[self.counted].client_id


def v6_body(arena: Arena, client: str = "a", **changes: Any) -> str:
    c = arena.clients[client]
    obj: dict[str, Any] = {
        "client_id": c.client_id,
        "client_secret": c.secret,
        "scope": "response_mode",
        "grant-type": "client_credentials",
    }
    for name, value in changes.items():
        name = name.replace("__", "-")
        if value is ...:
            obj.pop(name, None)
        else:
            obj[name] = value
    return json.dumps(obj)


def token_request(
    arena: Arena,
    client: str = "a",
    version: str = "v2",
    *,
    body: str | bytes | None = None,
    auth: str | bytes | None = None,
    ctype: str | bytes = JSON,
    pop: str | bytes | None = None,
    no_pop: bool = False,
    extra: Sequence[tuple[str | bytes, str | bytes]] = (),
    method: str = "POST",
    target: str | None = None,
    key: PrivateKey | None = None,
    now: float | None = None,
    signed: Sequence[tuple[str, str | bytes]] | None = None,
) -> bytes:
    """A token request; by default complete and valid (PoP over Content-Type, Authorization,
    uri, http-method and the body). ``signed`` replaces the pairs the PoP signs."""
    c = arena.clients[client]
    path = f"/oauth2/{version}/tokens"
    if body is None:
        body = v6_body(arena, client) if version == "v6" else ""
    raw_body = body.encode("utf-8") if isinstance(body, str) else body
    authorization = c.basic if auth is None else auth
    headers: list[tuple[str | bytes, str | bytes]] = [
        ("Content-Type", ctype),
        ("Authorization", authorization),
    ]
    if pop is None and not no_pop:
        if signed is None:
            text_auth = authorization if isinstance(authorization, str) else c.basic
            text_ct = ctype if isinstance(ctype, str) else JSON
            signed = request_pairs(
                "POST", path, [("Content-Type", text_ct), ("Authorization", text_auth)], raw_body
            )
        pop = build_pop_token(signed, key or c.key, now=now)
    if pop is not None:
        headers.append(("X-Authorization", pop))
    headers += list(extra)
    return http_request(method, target or path, headers, raw_body)


def default_pairs(
    arena: Arena, client: str = "a", version: str = "v2", body: str = ""
) -> list[tuple[str, str | bytes]]:
    c = arena.clients[client]
    base = [("Content-Type", JSON), ("Authorization", c.basic)]
    return request_pairs("POST", f"/oauth2/{version}/tokens", base, body)


def forged(
    arena: Arena,
    *,
    client: str = "a",
    header: dict[str, Any] | bytes | str = POP_HEADER,
    payload: dict[str, Any] | bytes | str | None = None,
    key: PrivateKey | None = None,
    signature: str | None = None,
    pairs: Sequence[tuple[str, str | bytes]] | None = None,
    now: float | None = None,
    **changes: Any,
) -> str:
    """A PoP over the default v2 request of ``client`` with claims (or segments) changed."""
    if payload is None:
        claims = pop_claims(
            pairs or default_pairs(arena, client), now=time.time() if now is None else now
        )
        for name, value in changes.items():
            if value is ...:
                claims.pop(name, None)
            else:
                claims[name] = value
        payload = claims
    return forge(header, payload, key or arena.clients[client].key, signature=signature)
