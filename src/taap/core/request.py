"""From an HTTP request to the values a PoP signs (docs/pop.md; SECURITY.md B5, B6).

Both sides use these rules, so a client signs exactly what the server will recompute:

* ``uri`` = percent-decoded path, plus ``?`` and the percent-decoded query when there is one;
  ``+`` stays ``+``. Decoded bytes must be UTF-8, and every ``%`` must start a ``%XX`` escape.
  The path refuses ``%2F``, ``%2E``, ``%3F``, ``%23`` and dot segments. The query refuses an
  escape only where decoding could make two different queries sign alike (see
  :func:`canonical_uri`); ``cursor=abc%3D%3D`` signs as ``cursor=abc==``.
* header names match case-insensitively; the value is the field value without surrounding
  spaces or tabs; a repeated header's values are joined with ``", "``, except
  ``Authorization``, ``X-Authorization`` and ``Content-Type``, which must appear once.
* ``http-method`` is the method as sent; ``body`` is the exact body bytes (valid UTF-8).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_to_bytes

from taap.core.strict_json import JsonError, loads_strict
from taap.errors import RequestMalformedError

__all__ = [
    "SINGLETON_HEADERS",
    "RequestParts",
    "SignedValues",
    "ValueSource",
    "canonical_uri",
    "parse_pairs_json",
    "request_pairs",
    "request_parts",
    "split_target",
]

SINGLETON_HEADERS = frozenset({"authorization", "x-authorization", "content-type"})
RESERVED_NAMES = frozenset({"uri", "http-method", "body"})

_PATH_FORBIDDEN = re.compile(r"%2[fFeE]|%3[fF]|%23")
_PLUS_ESCAPE = re.compile(r"%2[bB]")
_HEX_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BAD_VALUE_CHARS = re.compile(r"[\x00\r\n]")
_OWS = " \t"


class ValueSource(Protocol):
    """What the verifier compares: a value per signed name, and whether a body was sent."""

    @property
    def has_body(self) -> bool: ...

    def value(self, name: str) -> str | bytes | None: ...


def _text(data: str | bytes, what: str) -> str:
    if isinstance(data, str):
        # A str from argv or a file read with surrogateescape can hold lone surrogates.
        if not data.isascii():
            try:
                data.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise RequestMalformedError(f"{what} is not valid Unicode") from exc
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestMalformedError(f"{what} is not valid UTF-8") from exc


def _decode_component(raw: str, what: str) -> str:
    if _BAD_ESCAPE.search(raw):
        raise RequestMalformedError(f"invalid percent-escape in the {what}")
    return _text(unquote_to_bytes(raw), f"decoded {what}")


def _split_query(query: bytes) -> list[tuple[bytes, bytes | None]]:
    """``&``-separated parts, each split on its first ``=`` (``None``: the part has none)."""
    pairs: list[tuple[bytes, bytes | None]] = []
    for part in query.split(b"&"):
        name, sep, value = part.partition(b"=")
        pairs.append((name, value if sep else None))
    return pairs


def _decode_query(query: str) -> str:
    """The signed form of a raw query, or RequestMalformedError when it is ambiguous."""
    if "%" not in query:
        if "#" in query:
            raise RequestMalformedError("'#' in the query")
        return query
    if _BAD_ESCAPE.search(query):
        raise RequestMalformedError("invalid percent-escape in the query ('%' must start %XX)")
    # Form decoders read '+' as a space and '%2B' as '+'; both would sign as '+'.
    if _PLUS_ESCAPE.search(query):
        raise RequestMalformedError("'%2B' in the query: it would sign like '+'")
    decoded = unquote_to_bytes(query)
    text = _text(decoded, "decoded query")
    if "#" in text:
        raise RequestMalformedError("'#' in the query (raw or as %23)")
    # A decoded "%41" would be read as "A" by anything that decodes twice.
    if _HEX_ESCAPE.search(text):
        raise RequestMalformedError("an escape in the query decodes to another escape (%25XX)")
    raw_pairs = [
        (unquote_to_bytes(name), None if value is None else unquote_to_bytes(value))
        for name, value in _split_query(query.encode("utf-8"))
    ]
    if raw_pairs != _split_query(decoded):
        raise RequestMalformedError(
            "an escape in the query changes how it splits into name=value pairs "
            "(%26 anywhere, or %3D in a name)"
        )
    return text


def canonical_uri(raw_path: str | bytes, raw_query: str | bytes = "") -> str:
    """The signed ``uri`` value of a request target (path and query as sent).

    The query is refused when decoding it could make two different queries sign alike:
    (a) the decoded query, split on ``&`` and then on the first ``=`` of each part, does not
    give the same (name, value) pairs as the raw query split the same way with each name and
    value decoded (``a=b%26c=d``, ``a%3Db=c``); (b) the decoded query contains ``#``; (c) a
    decoded ``%`` is followed by two hex digits (``a=%2541``); (d) the raw query contains
    ``%2B``, which form decoders read as ``+`` while a raw ``+`` reads as a space. A ``%`` not
    starting an escape and decoded bytes that are not UTF-8 are refused too.

    Raises:
        RequestMalformedError: the target is ambiguous (see above and the module docstring)
            or not UTF-8.
    """
    path = _text(raw_path, "path")
    query = _text(raw_query, "query")
    if not path.startswith("/"):
        raise RequestMalformedError("path must start with '/'")
    if "?" in path or "#" in path:
        raise RequestMalformedError("path contains '?' or '#'")
    if _PATH_FORBIDDEN.search(path):
        raise RequestMalformedError("encoded '/', '.', '?' or '#' in the path")
    segments = path.split("/")
    if "." in segments or ".." in segments:
        raise RequestMalformedError("dot segment in the path")
    uri = _decode_component(path, "path")
    if query:
        uri += "?" + _decode_query(query)
    return uri


def split_target(target: str) -> tuple[str, str]:
    """Split ``/path?query`` as sent into its path and query (no decoding)."""
    path, _, query = target.partition("?")
    return path, query


@dataclass(frozen=True, slots=True)
class RequestParts:
    """A request reduced to what a PoP can sign. Build it with :func:`request_parts`."""

    method: str
    uri: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def has_body(self) -> bool:
        return bool(self.body)

    def value(self, name: str) -> str | bytes | None:
        """The value signed under ``name`` (reserved names exact, headers case-insensitive)."""
        if name == "uri":
            return self.uri
        if name == "http-method":
            return self.method
        if name == "body":
            return self.body
        return self.headers.get(name.lower())


def request_parts(
    method: str,
    raw_path: str | bytes,
    raw_query: str | bytes,
    headers: Iterable[tuple[str | bytes, str | bytes]],
    body: bytes,
) -> RequestParts:
    """Extract the signed values of a request.

    Raises:
        RequestMalformedError: ambiguous URI, a repeated singleton header, a header value with
            CR/LF/NUL, or text that is not valid UTF-8 (header values, body).
    """
    joined: dict[str, list[str]] = {}
    for raw_name, raw_value in headers:
        name = (raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name).lower()
        value = _text(raw_value, f"header {name!r}").strip(_OWS)
        if _BAD_VALUE_CHARS.search(value):
            raise RequestMalformedError(f"header {name!r} contains a control character")
        values = joined.setdefault(name, [])
        if values and name in SINGLETON_HEADERS:
            raise RequestMalformedError(f"header {name!r} must appear once")
        values.append(value)
    if body:
        _text(body, "request body")
    return RequestParts(
        method=method,
        uri=canonical_uri(raw_path, raw_query),
        headers={name: ", ".join(values) for name, values in joined.items()},
        body=body,
    )


class SignedValues:
    """Values keyed by their exact ehts spelling, as a server extracted them (the vectors' form).

    The request has a body iff a non-empty ``body`` value is present.
    """

    __slots__ = ("_values",)

    def __init__(self, pairs: Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes]):
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        self._values: dict[str, str | bytes] = dict(items)

    @property
    def has_body(self) -> bool:
        return bool(self._values.get("body"))

    def value(self, name: str) -> str | bytes | None:
        return self._values.get(name)

    def items(self) -> list[tuple[str, str | bytes]]:
        return list(self._values.items())


def request_pairs(
    method: str,
    uri: str,
    headers: Sequence[tuple[str, str]],
    body: str | bytes = b"",
) -> list[tuple[str, str | bytes]]:
    """the default signing order (docs/protocol.md#the-pop-token): the given headers in order,
    ``uri``, ``http-method``, then ``body`` when it is non-empty. ``uri`` must already be the
    decoded form."""
    pairs: list[tuple[str, str | bytes]] = list(headers)
    pairs.append(("uri", uri))
    pairs.append(("http-method", method))
    if body:
        pairs.append(("body", body))
    return pairs


def parse_pairs_json(data: bytes | str) -> list[tuple[str, str]]:
    """Read a JSON array of ``[name, value]`` string pairs (the CLI's ``--ehts-json`` form).

    Raises:
        ValueError: not strict JSON, or not an array of two-string arrays.
    """
    try:
        items = loads_strict(data, require_object=False)
    except JsonError as exc:
        raise ValueError(f"not strict JSON: {exc}") from exc
    if not isinstance(items, list):
        raise ValueError("expected a JSON array of [name, value] pairs")
    pairs: list[tuple[str, str]] = []
    for item in items:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(part, str) for part in item)
        ):
            raise ValueError("each entry must be a [name, value] pair of strings")
        pairs.append((item[0], item[1]))
    return pairs
