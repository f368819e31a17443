"""``taap keygen``: a PoP key pair for a client."""

from __future__ import annotations

import click

from taap.cli._io import password_from_env, write_file
from taap.cli.pop import OneLineCommand
from taap.core import generate_private_key

__all__ = ["keygen", "register"]


@click.command(cls=OneLineCommand)
@click.option("--private-out", required=True, type=click.Path(dir_okay=False), help="PKCS#8 PEM.")
@click.option("--public-out", required=True, type=click.Path(dir_okay=False), help="SPKI PEM.")
@click.option(
    "--bits",
    type=click.Choice(["2048", "3072", "4096"]),
    default="2048",
    show_default=True,
    help="RSA key size.",
)
@click.option("--password-env", metavar="VAR", help="Encrypt the private key with $VAR.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def keygen(
    private_out: str, public_out: str, bits: str, password_env: str | None, force: bool
) -> None:
    """Generate an RSA key pair: PKCS#8 private key (0600) and SPKI public key."""
    password = password_from_env(password_env)
    key = generate_private_key(int(bits))
    write_file(private_out, key.to_pem(password), private=True, force=force)
    write_file(public_out, key.public.to_pem(), private=False, force=force)
    click.echo(f"thumbprint {key.thumbprint}", err=True)


def register(group: click.Group) -> None:
    """Add ``keygen`` to ``group``."""
    group.add_command(keygen)
