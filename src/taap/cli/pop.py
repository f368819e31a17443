"""``taap pop build | verify | decode``: the PoP core from the shell."""

from __future__ import annotations

import json
import time
from typing import IO, Any

import click

from taap.cli._args import LiteralValuesCommand
from taap.cli._io import body_cap, load_key_file, read_body, read_input
from taap.core import (
    PopPolicy,
    SignedValues,
    build_pop_token,
    canonical_uri,
    decode_pop_token,
    load_public_key,
    parse_pairs_json,
    request_pairs,
    split_target,
    verify_pop_token,
)
from taap.errors import PopMalformedError, RequestMalformedError

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
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--password-env", metavar="VAR", help="Password of an encrypted key, from $VAR.")
@click.option("--ttl", type=click.IntRange(1, 120), default=60, show_default=True)
@click.option("--ehts-json", metavar="FILE", help="JSON array of [name, value] pairs; - = stdin.")
@click.option("--method", help="HTTP method (with --uri).")
@click.option("--uri", help="Path and query as sent, e.g. /oauth2/v2/tokens.")
@click.option("--header", "headers", multiple=True, metavar="'Name: value'")
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
@click.option("--public-key", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--token", required=True, help="The PoP token; - = stdin.")
@click.option(
    "--ehts-json", required=True, metavar="FILE", help="Values as the server sees them; - = stdin."
)
@click.option(
    "--policy",
    type=click.Choice(["strict", "lenient", "java-compat"]),
    default="strict",
    show_default=True,
)
@click.option("--now", type=int, metavar="EPOCH_SECONDS", help="Clock (default: now).")
@click.option("--leeway", type=click.IntRange(0, 300), default=10, show_default=True)
@click.option("--max-ttl", type=click.IntRange(1, 3600), default=120, show_default=True)
@click.option("--max-age", type=click.IntRange(1, 3600), default=60, show_default=True)
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
    """Verify a PoP; print its claims as JSON, or fail with 'error_code: reason'."""
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
    click.echo(json.dumps(dict(verified.claims), indent=2, ensure_ascii=False))


class _DecodeCommand(LiteralValuesCommand, OneLineCommand):
    """TOKEN as given even when it begins with '-' (a bare '-' is standard input)."""


@pop.command(cls=_DecodeCommand)
@click.argument("token")
def decode(token: str) -> None:
    """Print header and claims as JSON WITHOUT verifying anything (TOKEN - = stdin)."""
    header, claims = decode_pop_token(_read_text(token, "TOKEN").strip())
    click.echo("note: decoded only, NOT verified", err=True)
    click.echo(json.dumps({"header": header, "claims": claims}, indent=2, ensure_ascii=False))


def register(group: click.Group) -> None:
    """Add the ``pop`` group to ``group``."""
    group.add_command(pop)
