"""``taap revoke`` and ``taap introspect``: RFC 7009 and RFC 7662 from the shell.

The commands only parse arguments and call :mod:`taap.client`. A TOKEN is taken as given even
when it begins with ``-`` (:mod:`taap.cli._args`); ``-`` alone reads it from standard input.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import click

from taap.cli._args import LiteralValuesCommand
from taap.cli._io import read_input
from taap.cli.token import client_settings, credential_options
from taap.cli.ux.output import echo_json
from taap.client.revocation import INTROSPECTION_PATH, introspect, server_endpoint
from taap.client.shell import ShellOptions
from taap.client.shell import revoke as revoke_token
from taap.errors import BodyTooLargeError, ConfigurationError

__all__ = ["introspect_command", "register", "revoke"]


def _token(value: str) -> str:
    """TOKEN itself, or standard input for ``-`` (at most 1 MiB, whitespace around it cut)."""
    if value == "-":
        try:
            value = read_input("-", BodyTooLargeError).decode("utf-8").strip()
        except UnicodeDecodeError:
            raise click.BadParameter("standard input is not UTF-8", param_hint="TOKEN") from None
    if not value:
        raise click.BadParameter("the token is empty", param_hint="TOKEN")
    return value


def _absolute_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("must be an absolute http(s) URL", ctx=ctx, param=param)
    return value


def _resource_server_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value or ":" in value:
        raise click.BadParameter("must be non-empty and contain no ':'", ctx=ctx, param=param)
    return value


@click.command(cls=LiteralValuesCommand)
@credential_options(
    "--url",
    url_help="The token server: its token endpoint URL (as for taap token) or its base URL.",
    token_body=False,
)
@click.option(
    "--revocation-url",
    metavar="URL",
    callback=_absolute_url,
    help="The revocation endpoint, when it is not <server>/oauth2/v1/revoke.",
)
@click.argument("token")
def revoke(token: str, revocation_url: str | None, **options: Any) -> None:
    """Revoke TOKEN, an access or ID token of this client (RFC 7009); prints 'revoked'.

    The request is signed like a token request: Basic with the client's credentials and a
    PoP over it. The server answers 200 also for a token it does not know, has already
    revoked or that belongs to another client (RFC 7009 says so: no oracle), so 'revoked'
    means the server was asked, and the token, if it was this client's and live, no longer
    works. Revoking an access token revokes the ID token issued with it. TOKEN '-' reads it
    from standard input; a TOKEN that begins with '-' is taken as given.

    Examples:

    \b
      taap revoke --url http://127.0.0.1:8000/oauth2/v2/tokens --client-id taap-... \\
          --client-secret-env MY_SECRET --key private.pem "$ACCESS_TOKEN"
      taap token --profile dev | taap revoke --profile dev -
      taap revoke --profile dev --revocation-url https://gw.example/revoke "$TOKEN"
    """
    value = _token(token)
    settings = client_settings(options)
    # The token kept between runs (taap token, taap call) is dropped when it is the one revoked.
    revoke_token(
        settings, ShellOptions(environ=dict(os.environ)), value, revocation_url=revocation_url
    )
    click.echo("revoked")


@click.command("introspect", cls=LiteralValuesCommand)
@click.option(
    "--url",
    required=True,
    metavar="URL",
    callback=_absolute_url,
    help="The token server: its base URL or any of its /oauth2/ URLs (the token endpoint's).",
)
@click.option(
    "--id",
    "rs_id",
    required=True,
    metavar="RS_ID",
    callback=_resource_server_id,
    help="The resource server's id (taap resource-servers create).",
)
@click.option(
    "--secret-env",
    required=True,
    metavar="VAR",
    help="The environment variable holding the resource server's secret.",
)
@click.argument("token")
def introspect_command(url: str, rs_id: str, secret_env: str, token: str) -> None:
    """Ask the token server whether TOKEN is live (RFC 7662); prints its JSON answer.

    The answer is {"active": false} for anything not live (revoked, expired, a disabled
    client, garbage), else "active": true with client_id, sub, iss, exp, iat, jti,
    token_type, apis and cnf.jkt. The exit status is 0 either way; wrong resource-server
    credentials give 'client_auth_failed: ...' and exit 1. TOKEN '-' reads it from standard
    input; a TOKEN that begins with '-' is taken as given.

    Examples:

    \b
      export RS_SECRET='...'      # printed once by taap resource-servers create
      taap introspect --url http://127.0.0.1:8000 --id rs-... --secret-env RS_SECRET "$TOKEN"
      taap token --profile dev | taap introspect --url http://127.0.0.1:8000 \\
          --id rs-... --secret-env RS_SECRET -
    """
    value = _token(token)
    secret = os.environ.get(secret_env)
    if not secret:
        raise ConfigurationError(f"--secret-env: environment variable {secret_env} is not set")
    answer = introspect(
        server_endpoint(url, INTROSPECTION_PATH), value, resource_server_id=rs_id, secret=secret
    )
    echo_json(answer)


def register(group: click.Group) -> None:
    """Add ``revoke`` and ``introspect`` to ``group``."""
    group.add_command(revoke)
    group.add_command(introspect_command)
