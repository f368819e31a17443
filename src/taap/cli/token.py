"""``taap token`` and ``taap call``: the client SDK from the shell (``taap configure`` is in
:mod:`taap.cli.ux.configure`).

The commands only parse flags and call :mod:`taap.client` (:mod:`taap.client.shell` for the
token kept between runs, the ``-v`` trace and the announced retries); precedence of flags,
``TAAP_*`` variables and profiles is :func:`taap.client.profiles.resolve_settings`'s.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from taap.cli._io import body_cap, read_body
from taap.cli.ux.helptext import examples
from taap.cli.ux.output import Reporter, echo_json_text, write_body
from taap.client import build_token_request, curl_command
from taap.client.calls import response_head
from taap.client.profiles import (
    ClientSettings,
    Profile,
    config_path,
    load_profile,
    profile_name,
    resolve_settings,
)
from taap.client.shell import ShellOptions, call, get_token
from taap.client.shell import forget as forget_cached

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
            click.option(
                "--profile",
                help="Profile of the config file ($TAAP_PROFILE; file: $TAAP_CONFIG).",
            ),
            click.option(
                url_flag,
                "token_url",
                metavar="URL",
                help=f"{url_help.rstrip('.')} ($TAAP_TOKEN_URL).",
            ),
            click.option("--client-id", metavar="ID", help="Client id ($TAAP_CLIENT_ID)."),
            click.option(
                "--client-secret-env",
                metavar="VAR",
                help="Take the secret from $VAR (default: $TAAP_CLIENT_SECRET).",
            ),
            click.option("--client-secret", metavar="S", help="The secret (visible in ps!)."),
            click.option(
                "--key", "key", metavar="PATH", help="PoP private key, PEM or JWK ($TAAP_KEY_FILE)."
            ),
            click.option(
                "--password-env",
                metavar="VAR",
                help="Key password from $VAR (default: $TAAP_KEY_PASSWORD).",
            ),
        ]
        if token_body:
            options += [
                click.option(
                    "--v6", "force_v6", is_flag=True, help="Send the v6 body ($TAAP_TOKEN_VERSION)."
                ),
                click.option("--store-id", metavar="S", help="v6 storeId ($TAAP_STORE_ID)."),
                click.option(
                    "--dealer-code", metavar="S", help="v6 dealerCode ($TAAP_DEALER_CODE)."
                ),
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


def run_options(func: F) -> F:
    """``-v``, ``--quiet`` and ``--no-cache``: how ``token`` and ``call`` behave around the
    request (what stdout carries never changes)."""
    for option in reversed(
        [
            click.option(
                "-v",
                "--verbose",
                is_flag=True,
                help="Show on stderr each request, what its PoP signs and its claims "
                "(secrets and tokens masked).",
            ),
            click.option(
                "-q", "--quiet", is_flag=True, help="No notes on stderr (retries announced)."
            ),
            click.option(
                "--no-cache",
                is_flag=True,
                help="Neither reuse nor keep a token between runs (always ask the server).",
            ),
        ]
    ):
        func = option(func)
    return func


def _shell(reporter: Reporter, no_cache: bool) -> ShellOptions:
    return ShellOptions(
        environ=dict(os.environ),
        use_cache=not no_cache,
        trace=reporter.trace if reporter.verbose else None,
        on_retry=reporter.retrying,
    )


_TOKEN_EXAMPLES = examples(
    "taap token --url https://auth.example/oauth2/v2/tokens --client-id my-app \\",
    "    --client-secret-env MY_SECRET --key client.pem",
    "taap token --profile staging --json          # the whole response",
    "taap token -v                                # show what was sent and signed",
    "taap token --print-curl | sh                 # the same request by curl",
    "taap token --forget                          # drop the token kept between runs",
)


@click.command(epilog=_TOKEN_EXAMPLES)
@credential_options("--url")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON response.")
@click.option("--print-curl", is_flag=True, help="Print the curl command instead of sending.")
@click.option("--forget", is_flag=True, help="Delete the token kept between runs, and exit.")
@run_options
def token(
    as_json: bool,
    print_curl: bool,
    forget: bool,
    verbose: bool,
    quiet: bool,
    no_cache: bool,
    **options: Any,
) -> None:
    """Steps 1-2: get an access token (prints it, or the whole response with --json).

    A token is kept in the user's cache folder ($XDG_CACHE_HOME/taap, else ~/.cache/taap;
    mode 0600) and reused by the next token or call until a minute before it expires;
    --no-cache skips that. Settings come from the flags, then the TAAP_* variables named
    beside each option, then the profile.
    """
    settings = client_settings(options)
    reporter = Reporter(verbose=verbose, quiet=quiet)
    shell = _shell(reporter, no_cache)
    if print_curl:
        request = build_token_request(settings.endpoint(), settings.credentials())
        click.echo(curl_command(request))
        return
    if forget:
        forgotten = forget_cached(settings, shell)
        click.echo("cached token deleted" if forgotten else "no cached token")
        return
    result = get_token(settings, shell)
    if as_json:
        echo_json_text(result.body.decode("utf-8"))
    else:
        click.echo(result.access_token)


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r} is not 'Name: value'", param_hint="-H")
    return name.strip(), value.strip()


_CALL_EXAMPLES = examples(
    "taap call GET https://api.example/iot-connectivity/v1/devices/8901260000000000001",
    'taap call POST https://api.example/sms/v1/messages --data \'{"to": "+15550100"}\'',
    "taap call POST URL --data-file body.json -H 'X-Request-Id: 42' -i",
    "taap call GET URL -v 2> trace.txt | jq .     # trace on stderr, answer on stdout",
)


@click.command("call", epilog=_CALL_EXAMPLES)
@click.argument("method")
@click.argument("url")
@credential_options("--token-url")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'Name: value'",
    help="Send this header too (repeatable).",
)
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
@run_options
def call_command(
    method: str,
    url: str,
    headers: tuple[str, ...],
    data: str | None,
    data_file: str | None,
    max_body: int | None,
    include: bool,
    verbose: bool,
    quiet: bool,
    no_cache: bool,
    **options: Any,
) -> None:
    """Steps 1-4: call METHOD URL with a token and a fresh PoP; print the answer like curl.

    The answer's body goes to stdout (JSON pretty and coloured on a terminal); the exit
    status is 22 for an HTTP error, as curl --fail. The token is reused between runs as
    for taap token.
    """
    if data is not None and data_file:
        raise click.UsageError("--data and --data-file exclude each other")
    if data_file:
        body = read_body(data_file, body_cap(max_body), "--data-file")
    else:
        body = (data or "").encode("utf-8")
    settings = client_settings(options)
    shell = _shell(Reporter(verbose=verbose, quiet=quiet), no_cache)
    pairs = [_header(h) for h in headers]
    response = call(settings, shell, method, url, headers=pairs, body=body)
    if include:
        sys.stdout.buffer.write(response_head(response).encode("latin-1", "replace"))
        sys.stdout.buffer.flush()
    write_body(response.content, response.headers.get("content-type", ""))
    if response.status_code >= 400:
        sys.exit(HTTP_ERROR_EXIT)


def register(group: click.Group) -> None:
    """Add ``token`` and ``call`` to ``group``."""
    group.add_command(token)
    group.add_command(call_command)
