"""The ``-v`` trace (``taap.client.shell.trace``): each request line and header, what its PoP
signs with the values taken from the request, its claims; credentials masked."""

from __future__ import annotations

import base64

import httpx
import pytest

from taap.client import api_pop
from taap.client.retry import RetryNotice, RetryPolicy
from taap.client.shell.trace import RequestTracer, mask_value
from taap.core import PrivateKey

BEARER = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjbGllbnQifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("Authorization", f"Bearer {BEARER}", f"Bearer {BEARER[:8]}*** ({len(BEARER)} chars)"),
        ("authorization", "Basic Y2xpZW50OnNlY3JldA==", "Basic *** (20 chars)"),
        ("X-Authorization", BEARER, f"{BEARER[:8]}*** ({len(BEARER)} chars)"),
        ("Cookie", "session=abc", "*** (11 chars)"),
        ("Content-Type", "application/json", "application/json"),
    ],
)
def test_mask_value(name: str, value: str, shown: str) -> None:
    assert mask_value(name, value) == shown


def test_a_signed_request_is_traced_with_its_signed_values(rsa_key: PrivateKey) -> None:
    body = b'{"to": "+14255550100"}'
    authorization = f"Bearer {BEARER}"
    pop = api_pop(
        method="POST",
        target="/sms/v1/messages?x=%41",
        content_type="application/json",
        authorization=authorization,
        body=body,
        key=rsa_key,
    )
    request = httpx.Request(
        "POST",
        "http://api.test/sms/v1/messages?x=%41",
        headers=[
            ("Content-Type", "application/json"),
            ("Authorization", authorization),
            ("X-Authorization", pop),
        ],
        content=body,
    )
    lines: list[str] = []
    RequestTracer(lines.append).request(request)
    text = "\n".join(lines)
    assert lines[0] == "> POST http://api.test/sms/v1/messages?x=%41"
    assert "    uri: /sms/v1/messages?x=A" in lines  # as signed: decoded
    assert "    http-method: POST" in lines
    assert '    body: "{\\"to\\": \\"+14255550100\\"}"' in lines
    assert f"    Authorization: Bearer {BEARER[:8]}*** ({len(BEARER)} chars)" in lines
    assert "  PoP claims: {" in text
    assert BEARER not in text
    assert pop not in text
    names = [
        line.strip().split(":")[0]
        for line in lines[lines.index("  signed (ehts), in order:") + 1 :]
    ]
    assert names == ["Content-Type", "Authorization", "uri", "http-method", "body"]


def test_basic_credentials_never_show(rsa_key: PrivateKey) -> None:
    basic = "Basic " + base64.b64encode(b"client:s3cret-value").decode()
    request = httpx.Request(
        "POST", "http://auth.test/oauth2/v2/tokens", headers={"Authorization": basic}
    )
    lines: list[str] = []
    RequestTracer(lines.append).request(request)
    assert basic.split()[1] not in "\n".join(lines)


def test_retry_notice_reads_as_a_sentence() -> None:
    assert str(RetryNotice("rate limited", 4.0, 1)) == "rate limited, retrying in 4 s"
    assert str(RetryNotice("connection refused", 0.5, 2)) == "connection refused, retrying in 0.5 s"


def test_the_policy_announces_only_with_a_hook() -> None:
    heard: list[RetryNotice] = []
    RetryPolicy(on_retry=heard.append).announce("rate limited", 2.0, 0)
    RetryPolicy().announce("rate limited", 2.0, 0)  # no hook: nothing happens
    assert heard == [RetryNotice("rate limited", 2.0, 1)]
    assert RetryPolicy(on_retry=heard.append) == RetryPolicy()  # the hook is not a setting
