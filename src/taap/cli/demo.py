"""``taap demo``: what ``make demo`` runs.

Until the token server, SDK and guard land, the demo exercises the PoP core: generate a key,
build a PoP over a sample request, decode and verify it, and show a tampered body rejected.
"""

from __future__ import annotations

import json
import sys
import time

import click

from taap.core import (
    build_pop_token,
    decode_pop_token,
    generate_private_key,
    request_pairs,
    request_parts,
    verify_pop_token,
)
from taap.errors import TaapError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def demo(as_json: bool) -> None:
    """Walk the PoP core: build, decode, verify, and reject a tampered body."""
    steps: list[dict[str, object]] = []
    key = generate_private_key()
    body = b'{"to": "+14255550100", "text": "hello"}'
    headers = [("Content-Type", "application/json"), ("Authorization", "Bearer demo-token")]
    token = build_pop_token(request_pairs("POST", "/sms/v1/messages", headers, body), key)
    header, claims = decode_pop_token(token)
    steps.append({"name": "build", "ok": True, "detail": {"header": header, "claims": claims}})
    now = time.time()
    parts = request_parts("POST", "/sms/v1/messages", "", headers, body)
    verified = verify_pop_token(token, keys=[key.public], request=parts, now=now)
    steps.append({"name": "verify", "ok": True, "detail": {"jti": verified.jti}})
    tampered = request_parts(
        "POST", "/sms/v1/messages", "", headers, body.replace(b"hello", b"HELLO")
    )
    try:
        verify_pop_token(token, keys=[key.public], request=tampered, now=now)
        steps.append({"name": "tampered body", "ok": False, "detail": {"error_code": None}})
    except TaapError as exc:
        ok = exc.error_code == "pop_edts_mismatch"
        steps.append({"name": "tampered body", "ok": ok, "detail": {"error_code": exc.error_code}})
    ok = all(step["ok"] for step in steps)
    if as_json:
        click.echo(json.dumps({"ok": ok, "steps": steps}, indent=2))
    else:
        for step in steps:
            mark = "ok " if step["ok"] else "FAIL"
            click.echo(f"[{mark}] {step['name']}: {json.dumps(step['detail'])}")
    sys.exit(0 if ok else 1)


def register(group: click.Group) -> None:
    """Add ``demo`` to ``group``."""
    group.add_command(demo)
