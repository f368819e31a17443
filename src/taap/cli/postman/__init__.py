"""``taap postman export``: the Postman collection and environment of one client.

A package of one module: ``taap/cli`` holds its 16-module limit already.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from taap.cli._io import load_key_file
from taap.errors import ConfigurationError
from taap.postman import PostmanExport, write_postman_files

__all__ = ["export", "postman", "register"]


@click.group()
def postman() -> None:
    """Postman files whose requests sign their own PoP tokens (docs/postman.md)."""


@postman.command()
@click.option("--token-url", required=True, metavar="URL", help="…/oauth2/v2/tokens (or v6).")
@click.option("--client-id", required=True, metavar="ID", help="The client's id.")
@click.option("--api-url", metavar="URL", help="APIs' base URL (default: the token server's).")
@click.option(
    "--product",
    "products",
    multiple=True,
    metavar="NAME",
    help="A product the client uses (repeatable; default: every built-in one).",
)
@click.option("--key", metavar="PATH", help="Put this private key in the environment (secret).")
@click.option("--password-env", metavar="VAR", help="The key's password from $VAR.")
@click.option(
    "--client-secret-env", metavar="VAR", help="Put $VAR's client secret in the environment."
)
@click.option(
    "--out",
    "out_dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to write the two files into.",
)
def export(
    token_url: str,
    client_id: str,
    api_url: str | None,
    products: tuple[str, ...],
    key: str | None,
    password_env: str | None,
    client_secret_env: str | None,
    out_dir: str,
) -> None:
    """Write taap.postman_collection.json and taap.postman_environment.json into --out."""
    secret = None
    if client_secret_env is not None:
        secret = os.environ.get(client_secret_env)
        if not secret:
            raise ConfigurationError(f"environment variable {client_secret_env} is not set")
    # Postman's script reads unencrypted PKCS#8 only: any format taap reads is converted.
    pem = load_key_file(key, password_env).to_pem().decode("ascii") if key else None
    try:
        spec = PostmanExport(
            token_url=token_url,
            client_id=client_id,
            api_url=api_url,
            products=products,
            client_secret=secret,
            private_key_pem=pem,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    written = write_postman_files(spec, Path(out_dir))
    click.echo(f"collection:  {written.collection}")
    click.echo(f"environment: {written.environment}")
    held = [name for name, value in (("client_secret", secret), ("private_key", pem)) if value]
    if held:
        click.echo(
            f"The environment holds secrets ({', '.join(held)}); it was written with mode 0600. "
            "Keep it out of version control and share it with no one."
        )
    missing = [name for name in ("client_secret", "private_key") if name not in held]
    if missing:
        click.echo(
            f"Left empty: {', '.join(missing)}. Fill them in Postman's environment "
            "(type secret) before sending."
        )


def register(group: click.Group) -> None:
    group.add_command(postman)
