"""``taap configure``: write a checked profile, asking for what the flags leave out."""

from __future__ import annotations

import os
from pathlib import Path

import click

from taap.cli._io import ask
from taap.cli.ux.helptext import examples
from taap.client.profiles import Profile, config_path, profile_name, save_profile
from taap.client.shell.checks import (
    check_client_id,
    check_env_name,
    check_profile,
    check_token_url,
)
from taap.errors import ConfigurationError

__all__ = ["configure", "register"]

_EXAMPLES = examples(
    "taap configure                               # asks for each value",
    "taap configure --token-url https://auth.example/oauth2/v2/tokens \\",
    "    --client-id my-app --client-secret-env MY_SECRET --key client.pem",
    "taap configure --profile staging --token-url https://auth.staging.example/oauth2/v6/tokens",
)


def _optional_env_name(value: str) -> object:
    return check_env_name(value) if value.strip() else value


def _readable_file(value: str) -> object:
    # The key is loaded once its password variable is known (check_profile); here only that
    # the answer names a file, so a typo is asked again at once.
    path = Path(value.strip()).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"{path} is not a file")
    return path


def _ask_missing(values: dict[str, str | None], everything: bool) -> None:
    """Fill the values the flags left out, asking again while an answer is refused."""
    if not values["token_url"]:
        values["token_url"] = ask("Token endpoint URL", check=check_token_url)
    if not values["client_id"]:
        values["client_id"] = ask("Client id", check=check_client_id)
    if not values["key"]:
        values["key"] = ask("PoP private key file", check=_readable_file)
    if not values["client_secret"] and not values["client_secret_env"]:
        values["client_secret_env"] = ask(
            "Environment variable holding the client secret",
            default="TAAP_CLIENT_SECRET",
            check=check_env_name,
        )
    if everything:
        answer = ask(
            "Environment variable holding the key's password (empty: none)",
            default="",
            check=_optional_env_name,
        )
        values["password_env"] = answer.strip() or None


@click.command(epilog=_EXAMPLES)
@click.option("--profile", help="Profile to write (default: $TAAP_PROFILE or 'default').")
@click.option("--token-url", metavar="URL", help="Token endpoint URL (asked when absent).")
@click.option("--client-id", metavar="ID", help="Client id (asked when absent).")
@click.option("--client-secret-env", metavar="VAR", help="Store a reference to $VAR (preferred).")
@click.option("--client-secret", metavar="S", help="Store the secret itself (file is 0600).")
@click.option("--key", metavar="PATH", help="PoP private key file (asked when absent).")
@click.option("--password-env", metavar="VAR", help="Variable holding the key's password.")
@click.option("--v6", "force_v6", is_flag=True, help="Always send the v6 body.")
@click.option("--store-id", metavar="S", help="v6 storeId to send (with --v6 or a v6 URL).")
@click.option("--dealer-code", metavar="S", help="v6 dealerCode to send (with --v6 or a v6 URL).")
def configure(profile: str | None, force_v6: bool, **given: str | None) -> None:
    """Write a profile to the config file so the other commands need fewer flags.

    Every value is checked before anything is written: the URL parses, the key file exists
    and loads (with its password when --password-env names a set variable), the variable
    names are valid. Values the flags leave out are asked for; with no flags at all, the
    key's password variable is asked for too. The file is
    $XDG_CONFIG_HOME/taap/config.toml (or $TAAP_CONFIG), mode 0600.
    """
    if given["client_secret"] and given["client_secret_env"]:
        raise click.UsageError("--client-secret and --client-secret-env exclude each other")
    everything = profile is None and not force_v6 and not any(given.values())
    _ask_missing(given, everything)
    stored = check_profile(Profile(**given, version="v6" if force_v6 else None), dict(os.environ))
    name = profile_name(profile, os.environ)
    path = save_profile(name, stored, config_path(os.environ))
    click.echo(f"profile {name!r} written to {path}")


def register(group: click.Group) -> None:
    """Add ``configure`` to ``group``."""
    group.add_command(configure)
