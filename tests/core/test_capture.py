"""parse_curl and parse_har: what a captured request sends, and hostile captures refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from taap.core import CapturedRequest, parse_curl, parse_har


def test_curl_as_a_browser_copies_it() -> None:
    command = (
        "curl 'https://api.example.com/v1/devices?page=2&q=a%20b' \\\n"
        "  -X PATCH \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  -H 'Authorization:  Bearer abc ' \\\n"
        '  --data-raw \'{"name": "x"}\' \\\n'
        "  --compressed -s"
    )
    assert parse_curl(command) == CapturedRequest(
        "PATCH",
        "/v1/devices?page=2&q=a%20b",
        (("Content-Type", "application/json"), ("Authorization", "Bearer abc")),
        b'{"name": "x"}',
    )


def test_curl_defaults() -> None:
    assert parse_curl("curl https://h/x") == CapturedRequest("GET", "/x")
    assert parse_curl("curl h.example") == CapturedRequest("GET", "/")
    posted = parse_curl("curl -d a=1 --data b=2 https://h/form")
    assert posted.method == "POST"
    assert posted.body == b"a=1&b=2"
    assert posted.headers == (("Content-Type", "application/x-www-form-urlencoded"),)
    assert parse_curl("curl -G -d a=1 https://h/x?b=2") == CapturedRequest("GET", "/x?b=2&a=1")
    assert parse_curl("curl -I https://h/x").method == "HEAD"
    assert parse_curl("curl --request=DELETE --url=https://h/x#frag").uri == "/x"
    user = parse_curl("curl -u me:pw -A agent/1 https://h/x").headers
    assert user == (("Authorization", "Basic bWU6cHc="), ("User-Agent", "agent/1"))


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("wget https://h/x", "must begin with 'curl'"),
        ("curl 'https://h/x", "shell words"),
        ("curl", "one URL, found 0"),
        ("curl https://a/ https://b/", "one URL, found 2"),
        ("curl --upload-file f https://h/x", "unsupported curl option '--upload-file'"),
        ("curl -d @body.json https://h/x", "@file is not read here"),
        ("curl -b cookies.txt https://h/x", "FILE is not read here"),
        ("curl https://h/x -H", "needs a value"),
        ("curl -H nocolon https://h/x", "is not 'Name: value'"),
    ],
)
def test_curl_refused(command: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_curl(command)


def har(request: dict[str, Any], *more: dict[str, Any]) -> bytes:
    entries = [{"request": r} for r in (request, *more)]
    return json.dumps({"log": {"version": "1.2", "entries": entries}}).encode()


REQUEST = {
    "method": "POST",
    "url": "https://api.example.com/v1/x?a=1",
    "headers": [
        {"name": ":authority", "value": "api.example.com"},
        {"name": "authorization", "value": "Bearer t"},
    ],
    "postData": {"mimeType": "application/json", "text": '{"a": 1}\n'},
}


def test_har_entries() -> None:
    first = parse_har(har(REQUEST))
    assert first == CapturedRequest(
        "POST", "/v1/x?a=1", (("authorization", "Bearer t"),), b'{"a": 1}\n'
    )
    binary = {**REQUEST, "postData": {"text": base64.b64encode(b"caf\xc3\xa9").decode()}}
    binary["postData"]["encoding"] = "base64"
    second = parse_har(har(REQUEST, binary), entry=1)
    assert second.body == b"caf\xc3\xa9"
    get = parse_har(har({"method": "GET", "url": "https://h/", "headers": []}))
    assert get == CapturedRequest("GET", "/")


@pytest.mark.parametrize(
    ("data", "entry", "message"),
    [
        (b"not json", 0, "not valid JSON"),
        (b"[" * 10_000, 0, "not valid JSON"),
        (b"{}", 0, "HAR.log is missing"),
        (b'{"log": {"entries": {}}}', 0, "log.entries is missing or not a list"),
        (har(REQUEST), 1, "has 1 entries; entry 1 does not exist"),
        (har(REQUEST), -1, "entry -1 does not exist"),
        (har({"method": 1, "url": "/", "headers": []}), 0, "request.method"),
        (har({**REQUEST, "headers": [{"name": "a"}]}), 0, r"request.headers\[\].value"),
        (har({**REQUEST, "postData": {"text": "!!", "encoding": "base64"}}), 0, "base64"),
    ],
)
def test_har_refused(data: bytes, entry: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_har(data, entry)


def test_curl_bash_ansi_c_quoting() -> None:
    # As Chrome's "Copy as cURL (bash)" writes a body with a quote, a newline and non-ASCII.
    command = (
        "curl 'https://h/x' -H 'content-type: application/json' "
        '--data-raw $\'{"a":"it\\\'s\\nok \\u00e9 \\xc3\\xa9 \\101"}\''
    )
    assert parse_curl(command).body == '{"a":"it\'s\nok é é A"}'.encode()
    with pytest.raises(ValueError, match="not UTF-8"):
        parse_curl("curl https://h/x -d $'\\xff'")
    with pytest.raises(ValueError, match="not UTF-8"):
        parse_curl("curl https://h/x -d $'\\ud800'")
