"""A request as a user captured it: a ``curl`` command line, raw HTTP/1.1 text or a HAR 1.2 entry.

Pure parsing (the caller reads files, with a cap): ``taap pop explain`` and the portal turn
what a browser's "Copy as cURL" or "Save as HAR" gives into method, target, headers and body.
Only what curl itself would send is modelled: ``-d`` implies ``POST`` and, without an explicit
``Content-Type``, the form content type curl adds.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from taap.core.strict_json import JsonError, loads_strict

__all__ = ["CapturedRequest", "parse_captured", "parse_curl", "parse_har", "parse_http"]

_FORM = "application/x-www-form-urlencoded"
_DATA = frozenset({"-d", "--data", "--data-raw", "--data-binary", "--data-ascii"})
_FLAGS = frozenset(
    {
        "-s", "--silent", "-S", "--show-error", "-k", "--insecure", "-L", "--location",
        "-v", "--verbose", "-i", "--include", "--compressed", "-f", "--fail", "-g", "--globoff",
        "--http1.1", "--http2", "-#", "--progress-bar", "-N", "--no-buffer",
    }
)  # fmt: skip
# Options with a value that does not change what is signed.
_IGNORED = frozenset(
    {"-o", "--output", "-m", "--max-time", "--connect-timeout", "--cacert", "--cert", "--key"}
)

_VALUED = _DATA | {
    "-X", "--request", "-H", "--header", "--url", "-A", "--user-agent", "-b", "--cookie",
    "-u", "--user",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CapturedRequest:
    """Method, target as sent (``/path?query``), headers in order, body bytes."""

    method: str
    uri: str
    headers: tuple[tuple[str, str], ...] = field(default=())
    body: bytes = b""


def _target(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _header(text: str, kind: str = "curl header") -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"{kind} {text[:60]!r} is not 'Name: value'")
    return name.strip(), value.strip()


# Bash's $'…' quoting, which browsers' "Copy as cURL" uses for bodies with newlines or quotes.
_ANSI_C = re.compile(r"(?<!\S)\$'((?:[^'\\]|\\.)*)'", re.S)
_ANSI_ESCAPE = re.compile(
    r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|.)", re.S
)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b",
           "f": "\f", "v": "\v"}  # fmt: skip


def _ansi_c(match: re.Match[str]) -> str:
    """One $'…' word as bash reads it (\\xHH is a byte), quoted again for shlex."""
    out = bytearray()
    position = 0
    body = match.group(1)
    for escape in _ANSI_ESCAPE.finditer(body):
        out += body[position : escape.start()].encode("utf-8")
        code = escape.group(1)
        if code[0] == "x":
            out.append(int(code[1:], 16))
        elif code[0] in "uU" and len(code) > 1:
            out += chr(min(int(code[1:], 16), 0x10FFFF)).encode("utf-8", "surrogatepass")
        elif code[0].isdigit():
            out.append(int(code, 8) & 0xFF)
        else:
            out += _SIMPLE.get(code, code).encode("utf-8")
        position = escape.end()
    out += body[position:].encode("utf-8")
    try:
        return shlex.quote(out.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError("a $'…' word of the curl command is not UTF-8 text") from exc


def _tokens(command: str) -> Iterator[str]:
    # Backslash-newline continuations, as shells and "Copy as cURL" write them.
    text = command.replace("\\\r\n", " ").replace("\\\n", " ")
    text = _ANSI_C.sub(_ansi_c, text)
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"the curl command does not parse as shell words: {exc}") from exc
    if not words or words[0] != "curl":
        raise ValueError("the curl command must begin with 'curl'")
    return iter(words[1:])


class _Curl:
    """What the options of one curl command set."""

    def __init__(self) -> None:
        self.method: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.data: list[str] = []
        self.urls: list[str] = []
        self.get = False  # -G: the data goes into the query

    def option(self, name: str, value: str) -> None:
        if name in ("-X", "--request"):
            self.method = value
        elif name in ("-H", "--header"):
            self.headers.append(_header(value))
        elif name in ("-A", "--user-agent"):
            self.headers.append(("User-Agent", value))
        elif name in ("-b", "--cookie"):
            if "=" not in value:
                raise ValueError(f"{name} FILE is not read here: give the cookie itself")
            self.headers.append(("Cookie", value))
        elif name in ("-u", "--user"):
            basic = base64.b64encode(value.encode("utf-8")).decode("ascii")
            self.headers.append(("Authorization", f"Basic {basic}"))
        elif name == "--url":
            self.urls.append(value)
        elif name in _DATA:
            if value.startswith("@") and name != "--data-raw":
                raise ValueError(f"{name} @file is not read here: give the body itself")
            self.data.append(value)

    def request(self) -> CapturedRequest:
        if len(self.urls) != 1:
            raise ValueError(f"the curl command must name one URL, found {len(self.urls)}")
        target = _target(self.urls[0])
        data = "&".join(self.data)
        if self.get and self.data:
            target += ("&" if "?" in target else "?") + data
            return CapturedRequest(self.method or "GET", target, tuple(self.headers))
        headers = list(self.headers)
        if self.data and not any(n.lower() == "content-type" for n, _ in headers):
            headers.append(("Content-Type", _FORM))
        method = self.method or ("POST" if self.data else "GET")
        return CapturedRequest(method, target, tuple(headers), data.encode("utf-8"))


def parse_curl(command: str) -> CapturedRequest:
    """The request a ``curl`` command line sends.

    Raises:
        ValueError: not a curl command, an option this parser does not know, ``@file`` data
            or a cookie file (files are not read here), no URL or more than one.
    """
    curl = _Curl()
    words = _tokens(command)
    for word in words:
        name, eq, glued = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in _VALUED or name in _IGNORED:
            value = glued if eq else next(words, None)
            if value is None:
                raise ValueError(f"curl option {name} needs a value")
            curl.option(name, value)
        elif name in ("-I", "--head"):
            curl.method = curl.method or "HEAD"
        elif name in ("-G", "--get"):
            curl.get = True
        elif name in _FLAGS:
            continue
        elif word.startswith("-") and word != "-":
            raise ValueError(f"unsupported curl option {word[:40]!r}")
        else:
            curl.urls.append(word)
    return curl.request()


def _field(mapping: Any, key: str, kind: type, where: str) -> Any:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(value, kind):
        raise ValueError(f"HAR {where}.{key} is missing or not a {kind.__name__}")
    return value


def _har_body(request: dict[str, Any]) -> bytes:
    post = request.get("postData")
    if post is None:
        return b""
    text: str = _field(post, "text", str, "request.postData")
    if post.get("encoding") == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("HAR request.postData.text is not valid base64") from exc
    return text.encode("utf-8")


def parse_har(data: bytes | str, entry: int = 0) -> CapturedRequest:
    """The request of entry ``entry`` (0-based) of a HAR 1.2 document.

    HTTP/2 pseudo-headers (``:authority``…) are left out: they are not header fields a
    server's PoP check sees.

    Raises:
        ValueError: not JSON, not a HAR document, no such entry, a field of the wrong type.
    """
    try:
        document = loads_strict(data, max_depth=64)
    except JsonError as exc:
        raise ValueError(f"the HAR file is not valid JSON ({exc})") from exc
    entries = _field(_field(document, "log", dict, "HAR"), "entries", list, "log")
    if not 0 <= entry < len(entries):
        raise ValueError(f"the HAR file has {len(entries)} entries; entry {entry} does not exist")
    request = _field(entries[entry], "request", dict, f"entries[{entry}]")
    method = _field(request, "method", str, "request")
    url = _field(request, "url", str, "request")
    headers: list[tuple[str, str]] = []
    for item in _field(request, "headers", list, "request"):
        name = _field(item, "name", str, "request.headers[]")
        value = _field(item, "value", str, "request.headers[]")
        if not name.startswith(":"):
            headers.append((name, value))
    return CapturedRequest(method, _target(url), tuple(headers), _har_body(request))


_REQUEST_LINE = re.compile(r"([A-Za-z]{1,20}) +(\S+)(?: +HTTP/[0-9.]{1,4})?")


def parse_http(text: str) -> CapturedRequest:
    """The request of raw HTTP/1.1 text: the request line, header lines, an empty line, the body.

    Lines may end in CRLF or LF; the body is taken as it stands after the empty line, cut to
    ``Content-Length`` when that header says less (a server reads no further). Header lines
    that start with ``:`` (HTTP/2 pseudo-headers copied from a browser) are left out.

    Raises:
        ValueError: no request line, or a header line that is not ``Name: value``.
    """
    blank = "\r\n\r\n" if "\r\n" in text else "\n\n"
    head, newline, body = text.lstrip("\r\n").partition(blank)
    if not newline:
        head, body = head.rstrip("\r\n"), ""
    lines = head.replace("\r\n", "\n").split("\n")
    match = _REQUEST_LINE.fullmatch(lines[0].strip())
    if match is None:
        raise ValueError("raw HTTP must begin with a request line such as 'GET /path HTTP/1.1'")
    fields = (line for line in lines[1:] if line.strip() and line[0] != ":")
    headers = tuple(_header(line, "header line") for line in fields)
    payload = body.encode("utf-8")
    for name, value in headers:
        if name.lower() == "content-length" and value.isdigit() and int(value) < len(payload):
            payload = payload[: int(value)]
    return CapturedRequest(match.group(1), _target(match.group(2)), headers, payload)


def parse_captured(text: str) -> CapturedRequest:
    """A pasted request: a curl command line when it begins with ``curl``, else raw HTTP.

    Raises:
        ValueError: as :func:`parse_curl` or :func:`parse_http`.
    """
    stripped = text.strip()
    if stripped.startswith("curl ") or stripped == "curl":
        return parse_curl(stripped)
    return parse_http(text)
