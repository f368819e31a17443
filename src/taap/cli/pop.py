"""``taap pop build | verify | decode | explain``: the PoP core from the shell."""

from __future__ import annotations

import json
import time
from typing import IO, Any
from urllib.parse import urlsplit

import click

from taap.cli._args import LiteralValuesCommand
from taap.cli._io import body_cap, load_key_file, read_body, read_capped, read_input
from taap.cli.ux.output import echo_json
from taap.core import (
    CapturedRequest,
    Explanation,
    PopPolicy,
    SignedValues,
    build_pop_token,
    canonical_uri,
    decode_pop_token,
    explain_pop,
    load_public_key,
    parse_curl,
    parse_har,
    parse_pairs_json,
    request_pairs,
    split_target,
    verify_pop_token,
)
from taap.errors import PopMalformedError, RequestMalformedError, TaapError

__all__ = ["OneLineCommand", "OneLineGroup", "pop", "register"]


class _UsageLine(click.ClickException):
    """A usage error as one line (``usage_error: ...``), exit status 2 like click's own."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"usage_error: {self.message}", err=True)


def _one_line(exc: click.UsageError) -> click.ClickException:
    # "taap pop" alone shows the help, as click intends; only real mistakes become one line.
    if type(exc).__name__ == "NoArgsIsHelpError":
        return exc
    return _UsageLine(exc.format_message().replace("\n", " "))


class OneLineCommand(click.Command):
    """A command whose usage errors are one line on stderr, like library errors (no usage
    block, no traceback), so scripts can read ``usage_error: ...`` as they read codes."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from exc


class OneLineGroup(OneLineCommand, click.Group):
    """A group with :class:`OneLineCommand` behaviour (unknown sub-command, bad options).

    The method resolution order puts the one-line handling in front of ``click.Group``'s."""

    command_class = OneLineCommand


def _read_text(value: str, what: str) -> str:
    """``value`` itself, or standard input when it is ``-``."""
    if value != "-":
        return value
    data = read_input("-", PopMalformedError)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.BadParameter("standard input is not UTF-8", param_hint=what) from exc


def _pairs(ehts_json: str) -> list[tuple[str, str]]:
    try:
        return parse_pairs_json(read_input(ehts_json, RequestMalformedError))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ehts-json") from exc


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r} is not 'Name: value'", param_hint="--header")
    return name.strip(), value.strip()


@click.group(cls=OneLineGroup)
def pop() -> None:
    """Build, verify and decode PoP tokens."""


@pop.command()
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The client's private key (PEM or JWK).")  # fmt: skip
@click.option("--password-env", metavar="VAR", help="Password of an encrypted key, from $VAR.")
@click.option("--ttl", type=click.IntRange(1, 120), default=60, show_default=True,
              help="Seconds the PoP is valid (exp - iat).")  # fmt: skip
@click.option("--ehts-json", metavar="FILE", help="JSON array of [name, value] pairs; - = stdin.")
@click.option("--method", help="HTTP method (with --uri).")
@click.option("--uri", help="Path and query as sent, e.g. /oauth2/v2/tokens.")
@click.option("--header", "headers", multiple=True, metavar="'Name: value'",
              help="A header to sign, in order; repeat for more.")  # fmt: skip
@click.option("--body", help="Request body text.")
@click.option(
    "--body-file",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="Request body from a file; - = stdin. At most --max-body bytes.",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=0),
    metavar="BYTES",
    help="Largest --body-file accepted (default: TAAP_MAX_BODY, the server's cap, 1 MiB).",
)
def build(
    key_path: str,
    password_env: str | None,
    ttl: int,
    ehts_json: str | None,
    method: str | None,
    uri: str | None,
    headers: tuple[str, ...],
    body: str | None,
    body_file: str | None,
    max_body: int | None,
) -> None:
    """Print a PoP token signing the given pairs or request."""
    if ehts_json is not None:
        if method or uri or headers or body is not None or body_file:
            raise click.UsageError("--ehts-json excludes --method/--uri/--header/--body")
        pairs: list[tuple[str, str | bytes]] = list(_pairs(ehts_json))
    else:
        if not method or not uri:
            raise click.UsageError("give --ehts-json, or --method and --uri")
        if body is not None and body_file:
            raise click.UsageError("--body and --body-file exclude each other")
        payload = (
            read_body(body_file, body_cap(max_body), "--body-file")
            if body_file
            else (body or "").encode()
        )
        path, query = split_target(uri)
        pairs = request_pairs(
            method, canonical_uri(path, query), [_header(h) for h in headers], payload
        )
    key = load_key_file(key_path, password_env)
    click.echo(build_pop_token(pairs, key, ttl=ttl))


@pop.command()
@click.option("--public-key", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The client's public key (PEM or JWK).")  # fmt: skip
@click.option("--token", required=True, help="The PoP token; - = stdin.")
@click.option(
    "--ehts-json", required=True, metavar="FILE", help="Values as the server sees them; - = stdin."
)
@click.option("--policy", type=click.Choice(["strict", "lenient", "java-compat"]),
              default="strict", show_default=True, help="The server's PoP policy.")  # fmt: skip
@click.option("--now", type=int, metavar="EPOCH_SECONDS", help="Clock (default: now).")
@click.option("--leeway", type=click.IntRange(0, 300), default=10, show_default=True,
              help="Seconds of clock skew allowed.")  # fmt: skip
@click.option("--max-ttl", type=click.IntRange(1, 3600), default=120, show_default=True,
              help="Longest exp - iat accepted.")  # fmt: skip
@click.option("--max-age", type=click.IntRange(1, 3600), default=60, show_default=True,
              help="Oldest iat accepted, in seconds.")  # fmt: skip
def verify(
    public_key: str,
    token: str,
    ehts_json: str,
    policy: str,
    now: int | None,
    leeway: int,
    max_ttl: int,
    max_age: int,
) -> None:
    """Verify a PoP; print its claims as JSON, or fail with 'error_code: reason'.

    --ehts-json is a JSON array of [name, value] string pairs (see below)."""
    if token == "-" and ehts_json == "-":
        raise click.UsageError("--token and --ehts-json cannot both read standard input")
    token = _read_text(token, "--token")
    key = load_public_key(read_input(public_key))
    values = SignedValues(_pairs(ehts_json))
    rules = PopPolicy.named(policy, leeway=leeway, max_ttl=max_ttl, max_age=max_age)
    verified = verify_pop_token(
        token.strip(),
        keys=[key],
        request=values,
        now=time.time() if now is None else now,
        policy=rules,
    )
    echo_json(dict(verified.claims))


class _TokenCommand(LiteralValuesCommand, OneLineCommand):
    """TOKEN as given even when it begins with '-' (a bare '-' is standard input)."""


@pop.command(cls=_TokenCommand)
@click.argument("token")
def decode(token: str) -> None:
    """Print header and claims as JSON WITHOUT verifying anything (TOKEN - = stdin)."""
    header, claims = decode_pop_token(_read_text(token, "TOKEN").strip())
    click.echo("note: decoded only, NOT verified", err=True)
    echo_json({"header": header, "claims": claims})


#: A HAR file holds every response too; a browser's export of a session rarely nears this.
HAR_CAP = 16 * 1024 * 1024
_SHOWN_VALUE = 200


class _BadInput(click.ClickException):
    """Bad input to ``explain`` as one line, exit status 2 (1 means "does not match")."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.message, err=True)


def _captured(
    curl: str | None,
    har: str | None,
    entry: int,
    manual: tuple[str | None, str | None, tuple[str, ...], str | None, str | None],
) -> CapturedRequest:
    method, uri, headers, body, body_file = manual
    given = [curl is not None, har is not None, bool(method or uri or headers or body or body_file)]
    if sum(given) != 1:
        raise click.UsageError("give exactly one of --curl, --har, or --method and --uri")
    if curl is not None:
        return parse_curl(_read_text(curl, "--curl"))
    if har is not None:
        return parse_har(read_capped(har, HAR_CAP, RequestMalformedError), entry)
    if not method or not uri:
        raise click.UsageError("--method and --uri go together")
    if body is not None and body_file:
        raise click.UsageError("--body and --body-file exclude each other")
    payload = read_body(body_file, body_cap(None), "--body-file") if body_file else None
    if "://" in uri:
        parts = urlsplit(uri)
        uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    fields = tuple(_header(h) for h in headers)
    return CapturedRequest(method, uri, fields, payload or (body or "").encode("utf-8"))


def _shown(value: str | None) -> str:
    if value is None:
        return click.style("MISSING from the request", fg="red", bold=True)
    cut = value[:_SHOWN_VALUE] + ("…" if len(value) > _SHOWN_VALUE else "")
    return repr(cut)


def _when(claim: str, value: int | None, delta: float | None) -> str:
    if value is None or delta is None:
        return f"no {claim}"
    ago = f"{round(delta)} s ago" if delta >= 0 else f"in {round(-delta)} s"
    return f"{claim} {value} ({ago})"


def _safe(text: str) -> str:
    """``text`` from the token, with the characters a terminal could act on escaped."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _report(result: Explanation) -> None:
    echo, life = click.echo, result.lifetime
    echo(f"header   {_safe(json.dumps(dict(result.header), ensure_ascii=False))}")
    echo(f"claims   {_safe(json.dumps(dict(result.claims), ensure_ascii=False))}")
    expires = None if life.expires_in is None else -life.expires_in
    lifetime = "" if life.lifetime is None else f", lifetime {life.lifetime} s"
    verdict = click.style("ok", fg="green") if life.ok else click.style("FAILS", fg="red")
    echo(
        f"time     now {life.now:.0f}: {_when('iat', life.iat, life.age)}, "
        f"{_when('exp', life.exp, expires)}{lifetime} (cap {life.max_ttl} s), max age "
        f"{life.max_age} s, leeway {life.leeway} s: {verdict}"
    )
    signature = {None: "not checked (give --public-key)", True: "valid", False: "INVALID"}
    echo(f"signature {signature[result.signature_valid]}")
    echo("signed values (ehts order, as taken from the request):")
    width = min(max(len(item.name) for item in result.items), 24)
    for number, item in enumerate(result.items, 1):
        echo(f"  {number:>2}. {_safe(item.name):<{width}}  {_shown(item.value)}")
    echo(f"edts     claimed    {_safe(result.claimed_edts)}")
    recomputed = result.expected_edts or "(cannot: a signed value is missing)"
    verdict = "same" if result.digest_matches else "DIFFERENT"
    echo(f"         recomputed {recomputed} ({verdict})")
    for finding in result.findings:
        echo(click.style(f"- [{finding.kind}] ", fg="yellow") + finding.message)
    if result.matches:
        echo(click.style("MATCH: the request matches its PoP", fg="green", bold=True))
    else:
        echo(click.style("NO MATCH: a server would refuse this request", fg="red", bold=True))


@pop.command(cls=_TokenCommand)
@click.argument("token")
@click.option("--curl", metavar="'curl …'", help="The request as a curl command line; - = stdin.")
@click.option("--har", type=click.Path(dir_okay=False), help="A HAR 1.2 file (at most 16 MiB).")
@click.option("--entry", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which request of the HAR file (0 = the first).")  # fmt: skip
@click.option("--method", help="HTTP method, as sent (with --uri).")
@click.option("--uri", help="Path and query as sent (or a full URL), e.g. '/v1/x?a=b'.")
@click.option("--header", "headers", multiple=True, metavar="'Name: value'",
              help="A request header; repeat for more.")  # fmt: skip
@click.option("--body", help="Request body text.")
@click.option("--body-file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Request body from a file; - = stdin (cap: TAAP_MAX_BODY).")  # fmt: skip
@click.option("--public-key", type=click.Path(dir_okay=False),
              help="The client's public key (PEM or JWK): also check the signature.")  # fmt: skip
@click.option("--now", type=int, metavar="EPOCH_SECONDS", help="Clock (default: now).")
@click.option("--policy", type=click.Choice(["strict", "lenient", "java-compat"]),
              default="strict", show_default=True, help="The server's PoP policy.")  # fmt: skip
def explain(
    token: str,
    curl: str | None,
    har: str | None,
    entry: int,
    method: str | None,
    uri: str | None,
    headers: tuple[str, ...],
    body: str | None,
    body_file: str | None,
    public_key: str | None,
    now: int | None,
    policy: str,
) -> None:
    """Explain whether a request matches its PoP TOKEN, and if not, why.

    Decodes the PoP, checks its lifetime and age, lists each signed name with the value the
    request gives it, recomputes edts and, when it differs, names the likely cause by trying
    common variants of the request (query left out of the uri, JSON re-serialised, method
    case, trailing newline, line endings, padded header values). Exit 0: the request
    matches; 1: it does not; 2: bad input. TOKEN - reads it from standard input.

    Examples:

    \b
      taap pop explain "$POP" --curl "curl -X POST https://api.example/v1/x \\
          -H 'Authorization: Bearer …' -d '{}'"
      taap pop explain "$POP" --har session.har --entry 3 --public-key client.pub.pem
      taap pop explain "$POP" --method GET --uri '/v1/devices?page=2' \\
          --header "Authorization: Bearer $TOKEN" --now 1760000000
    """
    if token == "-" and "-" in (curl, har, body_file):
        raise click.UsageError("TOKEN and the request cannot both read standard input")
    try:
        request = _captured(curl, har, entry, (method, uri, headers, body, body_file))
        key = None if public_key is None else load_public_key(read_input(public_key))
        result = explain_pop(
            _read_text(token, "TOKEN").strip(),
            method=request.method,
            uri=request.uri,
            headers=request.headers,
            body=request.body,
            public_key=key,
            now=time.time() if now is None else now,
            policy=PopPolicy.named(policy),
        )
    except TaapError as exc:
        detail = (
            f" ({exc.log_detail})"
            if exc.log_detail and exc.log_detail not in exc.description
            else ""
        )
        raise _BadInput(f"{exc.error_code}: {exc.description}{detail}") from exc
    except (ValueError, OSError) as exc:
        raise _BadInput(f"usage_error: {exc}") from exc
    _report(result)
    if not result.matches:
        raise SystemExit(1)


def register(group: click.Group) -> None:
    """Add the ``pop`` group to ``group``."""
    group.add_command(pop)
