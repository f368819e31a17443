"""``taap token``, ``taap call``, ``taap configure``: the client SDK from the shell.

The commands only parse flags and call :mod:`taap.client`; precedence of flags, ``TAAP_*``
variables and profiles is :func:`taap.client.profiles.resolve_settings`'s.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from taap.cli._io import ask, body_cap, read_body
from taap.client import build_token_request, curl_command
from taap.client.calls import call_api, response_head
from taap.client.profiles import (
    ClientSettings,
    Profile,
    config_path,
    load_profile,
    profile_name,
    resolve_settings,
    save_profile,
)
from taap.client.token_client import TokenClient

__all__ = ["HTTP_ERROR_EXIT", "client_settings", "credential_options", "register"]

F = TypeVar("F", bound=Callable[..., Any])

#: curl's exit status for an HTTP error with --fail; scripts can tell it from a local error (1).
HTTP_ERROR_EXIT = 22


def credential_options(
    url_flag: str, *, url_help: str = "Token endpoint URL.", token_body: bool = True
) -> Callable[[F], F]:
    """The options naming the client and its token server (flags over ``TAAP_*`` over the
    profile); ``token_body`` adds the v6 body's (``--v6``, ``--store-id``, ``--dealer-code``)."""

    def decorate(func: F) -> F:
        options = [
            click.option("--profile", help="Profile of the config file (default: $TAAP_PROFILE)."),
            click.option(url_flag, "token_url", metavar="URL", help=url_help),
            click.option("--client-id", metavar="ID"),
            click.option("--client-secret-env", metavar="VAR", help="Take the secret from $VAR."),
            click.option("--client-secret", metavar="S", help="The secret (visible in ps!)."),
            click.option("--key", "key", metavar="PATH", help="PoP private key (PEM or JWK)."),
            click.option("--password-env", metavar="VAR", help="Key password from $VAR."),
        ]
        if token_body:
            options += [
                click.option("--v6", "force_v6", is_flag=True, help="Send the v6 body."),
                click.option("--store-id", metavar="S", help="v6 storeId."),
                click.option("--dealer-code", metavar="S", help="v6 dealerCode."),
            ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def client_settings(options: dict[str, Any], *, require_url: bool = True) -> ClientSettings:
    """The settings the :func:`credential_options` of a command resolve to.

    Raises:
        click.UsageError: ``--client-secret`` and ``--client-secret-env`` together.
        ConfigurationError: a value is missing or refused.
    """
    if options["client_secret"] and options["client_secret_env"]:
        raise click.UsageError("--client-secret and --client-secret-env exclude each other")
    name = profile_name(options["profile"], os.environ)
    profile = load_profile(name, config_path(os.environ), required=options["profile"] is not None)
    flags = Profile(
        token_url=options["token_url"],
        client_id=options["client_id"],
        client_secret=options["client_secret"],
        client_secret_env=options["client_secret_env"],
        key=options["key"],
        password_env=options["password_env"],
        version="v6" if options.get("force_v6") else None,
        store_id=options.get("store_id"),
        dealer_code=options.get("dealer_code"),
    )
    return resolve_settings(flags, profile=profile, environ=os.environ, require_url=require_url)


@click.command()
@credential_options("--url")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON response.")
@click.option("--print-curl", is_flag=True, help="Print the curl command instead of sending.")
def token(as_json: bool, print_curl: bool, **options: Any) -> None:
    """Steps 1-2: get an access token (prints it, or the whole response with --json)."""
    settings = client_settings(options)
    endpoint, credentials = settings.endpoint(), settings.credentials()
    if print_curl:
        click.echo(curl_command(build_token_request(endpoint, credentials)))
        return
    with TokenClient(endpoint, credentials) as client:
        result = client.fetch()
    if as_json:
        click.echo(result.body.decode("utf-8"))
    else:
        click.echo(result.access_token)


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r} is not 'Name: value'", param_hint="-H")
    return name.strip(), value.strip()


@click.command()
@click.argument("method")
@click.argument("url")
@credential_options("--token-url")
@click.option("-H", "--header", "headers", multiple=True, metavar="'Name: value'")
@click.option("--data", metavar="TEXT", help="Request body (sent and signed as given).")
@click.option(
    "--data-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Body from a file; - = stdin. At most --max-body bytes.",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=0),
    metavar="BYTES",
    help="Largest --data-file accepted (default: TAAP_MAX_BODY, the server's cap, 1 MiB).",
)
@click.option("-i", "--include", is_flag=True, help="Print the status line and headers too.")
def call(
    method: str,
    url: str,
    headers: tuple[str, ...],
    data: str | None,
    data_file: str | None,
    max_body: int | None,
    include: bool,
    **options: Any,
) -> None:
    """Steps 1-4: call METHOD URL with a token and a fresh PoP; print the answer like curl."""
    if data is not None and data_file:
        raise click.UsageError("--data and --data-file exclude each other")
    if data_file:
        body = read_body(data_file, body_cap(max_body), "--data-file")
    else:
        body = (data or "").encode("utf-8")
    settings = client_settings(options)
    response = call_api(settings, method, url, headers=[_header(h) for h in headers], body=body)
    out = sys.stdout.buffer
    if include:
        out.write(response_head(response).encode("latin-1", "replace"))
    out.write(response.content)
    out.flush()
    if response.status_code >= 400:
        sys.exit(HTTP_ERROR_EXIT)


@click.command()
@click.option("--profile", help="Profile to write (default: $TAAP_PROFILE or 'default').")
@click.option("--token-url", metavar="URL", help="Token endpoint URL (asked when absent).")
@click.option("--client-id", metavar="ID", help="Client id (asked when absent).")
@click.option("--client-secret-env", metavar="VAR", help="Store a reference to $VAR (preferred).")
@click.option("--client-secret", metavar="S", help="Store the secret itself (file is 0600).")
@click.option("--key", metavar="PATH", help="PoP private key file (asked when absent).")
@click.option("--password-env", metavar="VAR", help="Variable holding the key's password.")
@click.option("--v6", "force_v6", is_flag=True, help="Always send the v6 body.")
@click.option("--store-id", metavar="S")
@click.option("--dealer-code", metavar="S")
def configure(
    profile: str | None,
    token_url: str | None,
    client_id: str | None,
    client_secret_env: str | None,
    client_secret: str | None,
    key: str | None,
    password_env: str | None,
    force_v6: bool,
    store_id: str | None,
    dealer_code: str | None,
) -> None:
    """Write a profile to the config file so the other commands need fewer flags."""
    if client_secret and client_secret_env:
        raise click.UsageError("--client-secret and --client-secret-env exclude each other")
    token_url = token_url or ask("Token endpoint URL")
    client_id = client_id or ask("Client id")
    key = key or ask("PoP private key file")
    if not client_secret and not client_secret_env:
        client_secret_env = ask(
            "Environment variable holding the client secret", default="TAAP_CLIENT_SECRET"
        )
    stored = Profile(
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        client_secret_env=client_secret_env,
        key=str(Path(key).expanduser().resolve()),
        password_env=password_env,
        version="v6" if force_v6 else None,
        store_id=store_id,
        dealer_code=dealer_code,
    )
    name = profile_name(profile, os.environ)
    path = save_profile(name, stored, config_path(os.environ))
    click.echo(f"profile {name!r} written to {path}")


def register(group: click.Group) -> None:
    """Add ``token``, ``call`` and ``configure`` to ``group``."""
    group.add_command(token)
    group.add_command(call)
    group.add_command(configure)
