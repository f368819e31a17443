"""The plausible variants of a request that :mod:`taap.core.explain` tries against a claimed
``edts``: the changes clients and HTTP libraries most often make between signing a request and
sending it. Each says, in words, what the client would have signed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from taap.core.request import RESERVED_NAMES, RequestParts, split_target
from taap.core.strict_json import JsonError, loads_strict

__all__ = ["Variant", "variants"]


class Variant(NamedTuple):
    """One changed value: ``kind``, what the client signed, the signed name, its value there."""

    kind: str
    text: str
    name: str
    value: str | bytes


# A request sent with another method than the one signed (a client that signs "GET" and
# then posts, or a proxy that rewrites the method).
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _uri_variants(method: str, target: str, parts: RequestParts) -> Iterator[Variant]:
    if split_target(target)[1]:
        text = "the uri without its query (the query was left out of `uri`)"
        yield Variant("query", text, "uri", parts.uri.partition("?")[0])
    if target != parts.uri:
        yield Variant(
            "uri_encoding", f"the uri as sent, not percent-decoded ({target!r})", "uri", target
        )
    base, mark, rest = parts.uri.partition("?")
    if base != "/":
        other = base[:-1] if base.endswith("/") else base + "/"
        change = "without its trailing '/'" if base.endswith("/") else "with a trailing '/'"
        yield Variant("uri_slash", f"the uri path {change}", "uri", other + mark + rest)
    for other in (method.lower(), method.upper()):
        if other != method:
            text = f"the method as {other!r}, not {method!r}"
            yield Variant("method_case", text, "http-method", other)
    for other in _METHODS:
        if other != method.upper():
            text = f"the method {other!r}, but the request was sent as {method!r}"
            yield Variant("method", text, "http-method", other)


def _json_forms(value: Any) -> Iterator[tuple[str, str, bytes]]:
    forms = (
        ("compact", (",", ":"), None),
        ("spaced (Python's default)", (", ", ": "), None),
        ("pretty-printed (indent 2)", (",", ": "), 2),
        ("pretty-printed (indent 4)", (",", ": "), 4),
    )
    for sort in (False, True):
        order = ", keys sorted" if sort else ""
        for ascii_only in (False, True):
            kind = "json_escaping" if ascii_only else "json"
            chars = "non-ASCII as \\u escapes" if ascii_only else "UTF-8 characters"
            for label, seps, indent in forms:
                text = json.dumps(
                    value, separators=seps, indent=indent, ensure_ascii=ascii_only, sort_keys=sort
                )
                yield kind, f"the JSON body re-serialised: {label}, {chars}{order}", text.encode()


def _body_variants(body: bytes) -> Iterator[Variant]:
    if body.endswith(b"\n"):
        yield Variant(
            "body_newline", "the body without its trailing newline", "body", body.rstrip(b"\r\n")
        )
    else:
        yield Variant("body_newline", "the body with a trailing newline", "body", body + b"\n")
        yield Variant("body_newline", "the body with a trailing CRLF", "body", body + b"\r\n")
    if b"\r\n" in body:
        lf = body.replace(b"\r\n", b"\n")
        yield Variant("body_line_endings", "the body with LF line endings, not CRLF", "body", lf)
    elif b"\n" in body:
        crlf = body.replace(b"\n", b"\r\n")
        yield Variant("body_line_endings", "the body with CRLF line endings, not LF", "body", crlf)
    try:
        value = loads_strict(body, require_object=False)
    except JsonError:
        return
    seen = {body}
    for kind, text, form in _json_forms(value):
        for candidate in (form, form + b"\n"):
            if candidate not in seen:
                seen.add(candidate)
                end = " and a trailing newline" if candidate is not form else ""
                yield Variant(kind, f"{text}{end}", "body", candidate)


def _changed_values(name: str, value: str) -> Iterator[tuple[str, str]]:
    """Header values an HTTP library commonly rewrites: a charset added to or dropped from
    Content-Type, the case of an Authorization scheme, the scheme left out."""
    lower = name.lower()
    if lower == "content-type":
        media, sep, _ = value.partition(";")
        if sep:
            yield media.strip(), "without its parameters"
        else:
            yield f"{value}; charset=utf-8", "with '; charset=utf-8'"
            yield f"{value};charset=UTF-8", "with ';charset=UTF-8'"
    elif lower in ("authorization", "x-authorization"):
        scheme, space, credentials = value.partition(" ")
        if space and credentials:
            for other in (scheme.lower(), scheme.capitalize(), scheme.upper()):
                if other != scheme:
                    yield f"{other} {credentials}", f"with the scheme written {other!r}"
            yield credentials, f"without the {scheme!r} scheme"


def _header_variants(names: Sequence[str], parts: RequestParts) -> Iterator[Variant]:
    for name in names:
        value = None if name in RESERVED_NAMES else parts.value(name)
        if not isinstance(value, str):
            continue
        for padded, where in ((value + " ", "trailing"), (" " + value, "leading")):
            text = f"header {name!r} with a {where} space (a server strips it before checking)"
            yield Variant("header_spaces", text, name, padded)
        for other, how in _changed_values(name, value):
            yield Variant("header_value", f"header {name!r} {how}", name, other)


def variants(
    names: tuple[str, ...], parts: RequestParts, method: str, target: str
) -> list[Variant]:
    """The variants of the request that change a value ``names`` signs."""
    found = list(_uri_variants(method, target, parts))
    if "body" in names and parts.body:
        found.extend(_body_variants(parts.body))
    found.extend(_header_variants(names, parts))
    return [v for v in found if v.name in names]
