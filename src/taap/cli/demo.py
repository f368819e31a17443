"""``taap demo``: what ``make demo`` runs.

Starts a sandbox (token server and sample APIs on free loopback ports, fresh SQLite registry),
walks the four TAAP steps and the protections, and exits 0 only if every expectation held.
``--pop-only`` walks the PoP core alone (no servers).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from rich.console import Console
from rich.json import JSON
from rich.text import Text

from taap.core import (
    build_pop_token,
    decode_pop_token,
    generate_private_key,
    request_pairs,
    request_parts,
    verify_pop_token,
)
from taap.errors import TaapError

__all__ = ["demo", "register"]

_LONG = 72


def _shorten(value: Any) -> Any:
    # Tokens run to a thousand characters; the terminal view keeps their ends, --json all.
    if isinstance(value, str) and len(value) > _LONG:
        return f"{value[:28]}…{value[-10:]} ({len(value)} chars)"
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    return value


def _show_json(console: Console, label: str, data: Any) -> None:
    console.print(Text(label, style="bold"))
    console.print(JSON.from_data(_shorten(data), indent=2))


def _render(console: Console, step: Any) -> None:
    detail: dict[str, Any] = step.detail
    mark = Text("  ✔ ", style="bold green") if step.ok else Text("  ✘ ", style="bold red")
    console.rule(Text(step.title, style="bold cyan"), align="left")
    if "request" in detail:
        console.print(Text(detail["request"], style="bold yellow"))
    if step.name == "setup":
        for key in ("token_server", "sample_apis", "database", "client_id", "subscriptions"):
            console.print(f"  {key.replace('_', ' ')}: {detail[key]}")
    elif step.name.endswith(" pop"):
        console.print(f"  signs (ehts): {detail['ehts']}")
        _show_json(console, "  PoP header", detail["header"])
        _show_json(console, "  PoP claims", detail["claims"])
    elif step.name == "step-2 token":
        _show_json(console, "  request headers", detail["headers"])
        console.print("  body: '' (empty, as the document's --data-raw '')")
        _show_json(console, f"  response {detail['status']}", detail["response"])
        if detail.get("access_token_claims"):
            _show_json(console, "  access-token claims", detail["access_token_claims"])
    else:
        if "note" in detail:
            console.print(f"  {detail['note']}")
        if "status" in detail:
            _show_json(console, f"  response {detail['status']}", detail.get("response"))
        if detail.get("www_authenticate"):
            console.print(f"  WWW-Authenticate: {detail['www_authenticate']}")
        if "expected" in detail:
            exp = detail["expected"]
            console.print(f"  expected: {exp['status']} {exp['error_code']}")
        if "error" in detail:
            console.print(f"  error: {detail['error']}")
    console.print(mark + Text("as expected" if step.ok else "NOT as expected"))


def _pop_only() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
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
    return steps


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@click.option("--pop-only", is_flag=True, help="Walk the PoP core only (no servers).")
def demo(as_json: bool, pop_only: bool) -> None:
    """Run TAAP's four steps against a local token server and sample APIs."""
    if pop_only:
        steps = _pop_only()
        ok = all(step["ok"] for step in steps)
        if as_json:
            click.echo(json.dumps({"ok": ok, "steps": steps}, indent=2))
        else:
            for step in steps:
                mark = "ok " if step["ok"] else "FAIL"
                click.echo(f"[{mark}] {step['name']}: {json.dumps(step['detail'])}")
        sys.exit(0 if ok else 1)

    from taap.sandbox import run_demo

    console = Console(highlight=False)
    if not as_json:
        console.print(Text("taap demo: the four TAAP steps against a local sandbox", style="bold"))
    try:
        result = run_demo(on_step=None if as_json else (lambda step: _render(console, step)))
    except TaapError as exc:
        if not as_json:
            raise
        # --json promises one document even when the sandbox cannot start.
        detail = {"error_code": exc.error_code, "error": exc.description, "why": exc.log_detail}
        doc = {"ok": False, "steps": [{"name": "setup", "ok": False, "detail": detail}]}
        click.echo(json.dumps(doc, indent=2))
        sys.exit(1)
    if as_json:
        doc = {"ok": result.ok, "steps": [step.as_json() for step in result.steps]}
        click.echo(json.dumps(doc, indent=2))
    else:
        console.rule()
        passed = sum(step.ok for step in result.steps)
        style = "bold green" if result.ok else "bold red"
        console.print(
            Text(
                f"{passed}/{len(result.steps)} steps as expected in {result.seconds:.1f} s",
                style=style,
            )
        )
    sys.exit(0 if result.ok else 1)


def register(group: click.Group) -> None:
    """Add ``demo`` to ``group``."""
    group.add_command(demo)
