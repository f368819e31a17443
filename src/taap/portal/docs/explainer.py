"""Explain a PoP in the portal: the pasted token and request through the same analysis as
``taap pop explain`` (:func:`taap.core.explain_pop`, :func:`taap.core.parse_captured`), shaped
for the Result region.

Nothing here stores or logs what was pasted: the token and the request live in local variables
of one request, and the view holds only what the page shows back to the person who pasted it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from taap.core import STRICT, Explanation, PublicKey, explain_pop, parse_captured
from taap.errors import PopMalformedError, RequestMalformedError

__all__ = [
    "MAX_REQUEST",
    "MAX_TOKEN",
    "ExplainView",
    "FormError",
    "check_form",
    "chosen_key",
    "explain_pasted",
    "key_choices",
]

MAX_TOKEN = 8 * 1024
MAX_REQUEST = 16 * 1024  # url-encoded (up to 3x) with the token, still under the 64 KiB body cap
_SHOWN = 300  # characters of a signed value shown


class FormError(ValueError):
    """The form cannot be explained as filled in: ``errors`` is ``[(field, message)]``."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class ExplainView:
    """What the Result region shows; ``verdict`` is ``Valid`` or ``Refused: CODE``."""

    verdict: str
    valid: bool
    reasons: tuple[str, ...]
    header: str = ""
    claims: str = ""
    times: tuple[tuple[str, str], ...] = ()
    items: tuple[tuple[str, str | None], ...] = ()
    claimed_edts: str = ""
    expected_edts: str = ""
    digest_matches: bool = False
    signature: str = ""
    findings: tuple[tuple[str, str], ...] = ()


def _cut(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "…"


def _when(value: int | None, now: float) -> str:
    if value is None:
        return "absent"
    delta = round(value - now)
    relative = f"in {delta} s" if delta > 0 else f"{-delta} s ago" if delta < 0 else "now"
    stamp = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{value} ({stamp}, {relative})"


def _times(result: Explanation) -> tuple[tuple[str, str], ...]:
    life = result.lifetime
    lifetime = "—" if life.lifetime is None else f"{life.lifetime} s (at most {life.max_ttl} s)"
    age = "—" if life.age is None else f"{round(life.age)} s (at most {life.max_age} s)"
    return (
        ("Now", _when(round(life.now), life.now)),
        ("Issued (iat)", _when(life.iat, life.now)),
        ("Expires (exp)", _when(life.exp, life.now)),
        ("Lifetime (exp − iat)", lifetime),
        ("Age (now − iat)", age),
        ("Leeway", f"{life.leeway} s"),
        ("Time checks", "pass" if life.ok else "fail"),
    )


def _view(result: Explanation) -> ExplainView:
    code = result.error_code
    reasons = tuple(f.message for f in result.findings)
    if code is None:
        signature_note = (
            "the signature verifies with the chosen key"
            if result.signature_valid
            else "the signature was not checked: choose one of your app's keys to check it"
        )
        reasons = (
            "The request matches its PoP: a server would accept it if this PoP was not "
            f"used before; {signature_note}.",
        )
    signature = {None: "not checked (no key chosen)", True: "valid", False: "INVALID"}
    return ExplainView(
        verdict="Valid" if code is None else f"Refused: {code}",
        valid=code is None,
        reasons=reasons,
        header=json.dumps(dict(result.header), indent=2, ensure_ascii=False),
        claims=json.dumps(dict(result.claims), indent=2, ensure_ascii=False),
        times=_times(result),
        items=tuple((i.name, None if i.value is None else _cut(i.value)) for i in result.items),
        claimed_edts=result.claimed_edts,
        expected_edts=result.expected_edts or "",
        digest_matches=result.digest_matches,
        signature=signature[result.signature_valid],
        findings=tuple((f.kind, f.message) for f in result.findings),
    )


def check_form(token: str, request: str) -> tuple[str, str]:
    """The token and request text, trimmed, or a :class:`FormError` naming each bad field."""
    errors = []
    token = token.strip()
    if not token:
        errors.append(("token", "Paste the PoP token (the X-Authorization header's value)."))
    elif len(token) > MAX_TOKEN:
        errors.append(("token", f"A PoP token is at most {MAX_TOKEN // 1024} KiB here."))
    if not request.strip():
        errors.append(("request", "Paste the request: a curl command line or raw HTTP."))
    elif len(request) > MAX_REQUEST:
        errors.append(("request", f"The request is at most {MAX_REQUEST // 1024} KiB here."))
    if errors:
        raise FormError(errors)
    return token, request


def explain_pasted(
    token: str,
    request: str,
    *,
    now: float,
    key: PublicKey | None = None,
) -> ExplainView:
    """The Result of explaining ``token`` against the pasted ``request``.

    The browser submits a textarea with CRLF line ends whatever was pasted, so the request's
    line ends are read as LF (a body signed with CRLF is still named, as a variant).

    Raises:
        FormError: a field is empty, too long, or the request cannot be parsed.
    """
    token, request = check_form(token, request)
    try:
        captured = parse_captured(request.replace("\r\n", "\n"))
    except ValueError as exc:
        raise FormError([("request", f"The request cannot be read: {exc}.")]) from None
    try:
        result = explain_pop(
            token,
            method=captured.method,
            uri=captured.uri,
            headers=captured.headers,
            body=captured.body,
            public_key=key,
            now=now,
            policy=STRICT,
        )
    except PopMalformedError as exc:
        detail = f": {exc.log_detail}" if exc.log_detail else ""
        return ExplainView(f"Refused: {exc.error_code}", False, (f"{exc.description}{detail}",))
    except RequestMalformedError as exc:
        return ExplainView(f"Refused: {exc.error_code}", False, (exc.description,))
    return _view(result)


def key_choices(apps: Sequence[tuple[str, str, Sequence[PublicKey]]]) -> list[tuple[str, str]]:
    """``(value, label)`` of each key of the developer's apps for the key picker."""
    return [
        (f"{app_id}:{key.thumbprint}", f"{name}: {key.thumbprint[:16]}…")
        for app_id, name, keys in apps
        for key in keys
    ]


def chosen_key(choice: str, apps: Mapping[str, Sequence[PublicKey]]) -> PublicKey | None:
    """The key ``choice`` (``APP_ID:THUMBPRINT``) names among ``apps`` (the caller's own)."""
    app_id, _, thumbprint = choice.partition(":")
    for key in apps.get(app_id, ()):
        if key.thumbprint == thumbprint:
            return key
    return None
