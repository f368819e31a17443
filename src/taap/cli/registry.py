"""Registry administration (docs/registry.md): `taap clients`, `taap apis`, `taap keys`, `taap db`.

Every command takes ``--database-url`` (env ``TAAP_DATABASE_URL``, default
``sqlite:///./taap.db``) and reads the pepper as docs/protocol.md#the-client-registry says
(``TAAP_PEPPER``, else the ``pepper`` file beside a SQLite database). The commands only parse
arguments, call the registry and print; `taap clients` is in :mod:`taap.cli.clients`, what they all
share in :mod:`taap.cli._admin`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table

from taap.cli._admin import (
    console,
    database_option,
    echo_json,
    iso,
    json_option,
    registry_settings,
    run_registry,
)
from taap.cli._args import LiteralValuesGroup
from taap.cli.clients import clients
from taap.server.registry.port import ApiProduct, SigningKeyRecord

__all__ = ["register"]


def _key_state(key: SigningKeyRecord, now: datetime) -> str:
    if key.retired:
        return "retired"
    if key.publish_until is None:
        return "active"
    if key.publish_until > now:
        return f"published until {iso(key.publish_until)}"
    return "expired"


def _signing_json(keys: Sequence[SigningKeyRecord]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "kid": k.kid,
            "state": _key_state(k, now).split(" ")[0],
            "bits": k.key.bits,
            "created_at": iso(k.created_at),
            "publish_until": iso(k.publish_until),
            "retired": k.retired,
        }
        for k in keys
    ]


# -- taap apis ------------------------------------------------------------------------------
@click.group(cls=LiteralValuesGroup)
def apis() -> None:
    """API products clients subscribe to."""


def _products_json(products: Sequence[ApiProduct]) -> list[dict[str, str]]:
    return [
        {"id": p.id, "name": p.name, "token_server": p.token_server, "base_path": p.base_path}
        for p in products
    ]


@apis.command("list")
@json_option
@database_option
def list_apis(as_json: bool, database_url: str) -> None:
    """List API products."""
    products = run_registry(database_url, lambda r: r.list_products())
    if as_json:
        echo_json(_products_json(products))
        return
    table = Table(title="API products")
    for column in ("id", "name", "token server", "base path"):
        table.add_column(column, no_wrap=True)
    for p in products:
        table.add_row(p.id, p.name, p.token_server, p.base_path)
    console().print(table)


@apis.command("create")
@click.argument("api_id")
@click.option("--name", help="Display name (default: the id).")
@click.option(
    "--token-server",
    type=click.Choice(["v2", "v6"]),
    required=True,
    help="Which token endpoint its clients use.",
)
@click.option("--base-path", required=True, help="Default base path, e.g. /weather/v1.")
@json_option
@database_option
def create_api(
    api_id: str,
    name: str | None,
    token_server: str,
    base_path: str,
    as_json: bool,
    database_url: str,
) -> None:
    """Add a custom API product."""
    product = ApiProduct(
        id=api_id,
        name=name or api_id,
        token_server=token_server,  # type: ignore[arg-type]
        base_path=base_path,
    )
    created = run_registry(database_url, lambda r: r.create_product(product))
    if as_json:
        echo_json(_products_json([created])[0])
    else:
        click.echo(f"created API {created.id} ({created.token_server}, {created.base_path})")


# -- taap keys ------------------------------------------------------------------------------
@click.group(cls=LiteralValuesGroup)
def keys() -> None:
    """Token-server signing keys (published in JWKS)."""


@keys.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired and retired keys.")
@json_option
@database_option
def list_keys(show_all: bool, as_json: bool, database_url: str) -> None:
    """List signing keys, the active one first."""
    found = run_registry(
        database_url, lambda r: r.all_signing_keys() if show_all else r.signing_keys()
    )
    if as_json:
        echo_json(_signing_json(found))
        return
    now = datetime.now(UTC)
    table = Table(title="signing keys")
    for column in ("kid", "state", "bits", "created (UTC)"):
        table.add_column(column, no_wrap=True)
    for k in found:
        table.add_row(k.kid, _key_state(k, now), str(k.key.bits), iso(k.created_at))
    console().print(table)


@keys.command("rotate")
@click.option(
    "--bits", type=click.Choice(["2048", "3072", "4096"]), default="2048", help="RSA key size."
)
@database_option
def rotate_keys(bits: str, database_url: str) -> None:
    """Create the next signing key; the previous one stays in JWKS until its tokens expire."""
    record = run_registry(database_url, lambda r: r.rotate_signing_key(bits=int(bits)))
    click.echo(f"new signing key {record.kid} ({record.key.bits} bits) is active")


@keys.command("encrypt")
@click.option(
    "--previous-key-env",
    metavar="NAME",
    help="Environment variable holding the previous key-encryption key (moving to a new one).",
)
@database_option
def encrypt_keys(previous_key_env: str | None, database_url: str) -> None:
    """Store the signing keys encrypted with TAAP_KEY_ENCRYPTION_KEY (plain ones, and with
    --previous-key-env those under the previous key)."""
    previous: bytes | None = None
    if previous_key_env is not None:
        # A variable's name, never its value, on the command line: ps and shell history
        # would show a passphrase.
        value = os.environ.get(previous_key_env, "")
        if not value:
            raise click.UsageError(f"environment variable {previous_key_env} is empty or unset")
        previous = value.encode("utf-8")
    rewritten, total = run_registry(
        database_url, lambda r: r.encrypt_signing_keys(previous_password=previous)
    )
    click.echo(f"{rewritten} of {total} signing keys written under the current key-encryption key")


@keys.command("retire")
@click.argument("kid")
@database_option
def retire_key(kid: str, database_url: str) -> None:
    """Withdraw a rotated-out signing key from JWKS now (its tokens stop verifying).

    KID is taken as given even when it begins with '-' (one kid in 64 does); only a KID that is
    exactly an option's name (-h, --help) must follow '--'.
    """
    run_registry(database_url, lambda r: r.retire_signing_key(kid))
    click.echo(f"signing key {kid} retired")


# -- taap db --------------------------------------------------------------------------------
@click.group(cls=LiteralValuesGroup)
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@database_option
def db_upgrade(revision: str, database_url: str) -> None:
    """Run the schema migrations (first start does this too); creates a signing key if none."""
    from taap.server.registry.database import parse_database_url
    from taap.server.registry.pepper import load_pepper
    from taap.server.registry.sql import upgrade_database

    settings = registry_settings(database_url)
    database = parse_database_url(database_url)
    if database.sqlite_path is not None:
        # Create the pepper file with the database, so a later CLI and server agree on it.
        load_pepper(database, settings.pepper_text())
    reached = asyncio.run(
        upgrade_database(database, revision=revision, key_password=settings.key_password())
    )
    click.echo(f"{database.masked}: schema at revision {reached}")


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, required=True, help="Confirm: data of newer tables is lost.")
@database_option
def db_downgrade(revision: str, yes: bool, database_url: str) -> None:
    """Take the schema back to REVISION ('base' drops every registry table)."""
    from taap.server.registry.database import parse_database_url
    from taap.server.registry.sql import downgrade_database

    database = parse_database_url(database_url)
    reached = asyncio.run(downgrade_database(database, revision))
    click.echo(f"{database.masked}: schema at revision {reached or 'base (empty)'}")


def register(group: click.Group) -> None:
    """Add ``clients``, ``apis``, ``keys`` and ``db`` to ``group``."""
    for command in (clients, apis, keys, db):
        group.add_command(command)
