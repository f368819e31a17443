"""Step 3, sans I/O: the API PoP over the request actually sent (docs/pop.md).

Signed, in order: ``Content-Type``, ``Authorization`` (``Bearer …``), any extra headers the
caller names, ``uri`` (decoded path and query), ``http-method`` and ``body`` when non-empty.
"""

from __future__ import annotations

from collections.abc import Sequence

from taap.core.keys import PrivateKey
from taap.core.pop import DEFAULT_TTL, build_pop_token
from taap.core.request import canonical_uri, request_pairs
from taap.errors import PopBuildError

__all__ = ["DEFAULT_CONTENT_TYPE", "api_pop"]

#: Step 4 of docs/protocol.md#the-four-steps: Content-Type is sent and signed even on a GET without
#: a body.
DEFAULT_CONTENT_TYPE = "application/json"


def api_pop(
    *,
    method: str,
    target: str,
    content_type: str,
    authorization: str,
    body: bytes,
    key: PrivateKey,
    extra: Sequence[tuple[str, str | None]] = (),
    now: float | None = None,
    ttl: int = DEFAULT_TTL,
) -> str:
    """The PoP for one API call; ``target`` is the path and query as sent (still encoded).

    Raises:
        RequestMalformedError: the target is ambiguous (docs/protocol.md#errors) or not UTF-8.
        PopBuildError: an extra header to sign is absent or blank.
    """
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = [
        ("Content-Type", content_type),
        ("Authorization", authorization),
    ]
    for name, value in extra:
        if value is None or not value.strip():
            raise PopBuildError(f"header {name!r} is to be signed but the request lacks it")
        headers.append((name, value))
    pairs = request_pairs(method, canonical_uri(path, query), headers, body)
    return build_pop_token(pairs, key, ttl=ttl, now=now)
