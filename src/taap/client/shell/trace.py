"""What a request carried, for a person reading along (``taap call -v``): the request line and
headers, each signed ehts name with the value taken from the request, and the PoP's claims.

Secrets and tokens are masked: the Basic credentials show as their length only, the Bearer
token and a PoP as their first characters (a JWT's header) and length; a token response's body
is never traced (it holds tokens). The lines go to a ``write`` callable, so the caller decides
where (stderr) and whether.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from taap.core import decode_pop_token, request_parts
from taap.errors import TaapError

__all__ = ["RequestTracer", "mask_value"]

_SHOWN_PREFIX = 8
_MAX_BODY_SHOWN = 2048
_MASKED_HEADERS = frozenset(
    {"authorization", "x-authorization", "cookie", "set-cookie", "proxy-authorization"}
)


def mask_value(name: str, value: str) -> str:
    """``value`` of header ``name`` fit to print: credentials cut to a prefix and a length."""
    if name.lower() not in _MASKED_HEADERS:
        return value
    scheme, sep, credential = value.partition(" ")
    if sep and scheme.lower() == "basic":
        # base64 of "id:secret": any prefix of it may hold bytes of the secret.
        return f"{scheme} *** ({len(credential)} chars)"
    if sep and scheme.lower() == "bearer":
        return f"{scheme} {_cut(credential)}"
    return _cut(value)


def _cut(secret: str) -> str:
    if len(secret) <= _SHOWN_PREFIX * 2:
        return f"*** ({len(secret)} chars)"
    return f"{secret[:_SHOWN_PREFIX]}*** ({len(secret)} chars)"


def _printable(value: str | bytes | None) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, bytes):
        text = value[:_MAX_BODY_SHOWN].decode("utf-8", "replace")
        more = f"… ({len(value)} bytes)" if len(value) > _MAX_BODY_SHOWN else ""
        return json.dumps(text, ensure_ascii=False) + more
    return value


class RequestTracer:
    """httpx event hooks (``event_hooks=tracer.hooks``) writing each request and answer.

    ``write`` takes one line at a time. Only what the client sends and the status and headers
    of what it gets back are written; an answer's body is the caller's to show.
    """

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    @property
    def hooks(self) -> Mapping[str, list[Callable[[Any], None]]]:
        """The ``event_hooks`` argument of an ``httpx.Client``."""
        return {"request": [self.request], "response": [self.response]}

    def request(self, request: httpx.Request) -> None:
        """Write the request line, the headers (masked) and what its PoP signs."""
        self.write(f"> {request.method} {request.url}")
        for name, value in request.headers.multi_items():
            self.write(f"> {name}: {mask_value(name, value)}")
        body = request.content
        self.write(f"> ({len(body)} bytes of body)")
        pop = request.headers.get("x-authorization")
        if pop:
            self._pop(request, pop)

    def _pop(self, request: httpx.Request, pop: str) -> None:
        try:
            _, claims = decode_pop_token(pop)
        except TaapError:
            self.write("  PoP: not a readable token")
            return
        names = [n for n in str(claims.get("ehts", "")).split(";") if n]
        shown = {k: v for k, v in claims.items() if k != "ehts"}
        self.write(f"  PoP claims: {json.dumps(shown, sort_keys=True)}")
        self.write("  signed (ehts), in order:")
        try:
            parts = request_parts(
                request.method,
                request.url.raw_path.partition(b"?")[0],
                request.url.query,
                request.headers.raw,
                request.content,
            )
        except TaapError as exc:
            self.write(f"    (the request's values cannot be read: {exc.description})")
            return
        for name in names:
            value = parts.value(name)
            text = mask_value(name, value) if isinstance(value, str) else _printable(value)
            self.write(f"    {name}: {text}")

    def response(self, response: httpx.Response) -> None:
        """Write the status line and headers of an answer."""
        self.write(f"< {response.http_version} {response.status_code} {response.reason_phrase}")
        for name, value in response.headers.multi_items():
            self.write(f"< {name}: {mask_value(name, value)}")
