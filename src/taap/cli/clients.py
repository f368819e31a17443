"""`taap clients` (docs/registry.md): register clients, their credentials, PoP keys and
subscriptions. A client secret is printed once, when it is made, and never again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from taap.cli._admin import (
    console,
    database_option,
    echo_json,
    iso,
    json_option,
    run_registry,
)
from taap.cli._args import LiteralValuesCommand, LiteralValuesGroup
from taap.cli._io import read_input
from taap.core.keys import load_public_key
from taap.errors import NotFoundError
from taap.server.registry.port import ClientRecord

if TYPE_CHECKING:
    from taap.server.registry.sql import SqlRegistry

__all__ = ["clients"]


def _client_json(record: ClientRecord) -> dict[str, Any]:
    # Digests are derived from secrets: they are not shown anywhere.
    return {
        "client_id": record.client_id,
        "name": record.name,
        "status": record.status,
        "weak_secret": record.weak_secret,
        "secrets": len(record.secret_digests),
        "apis": list(record.apis),
        "keys": [k.thumbprint for k in record.keys],
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }


def _print_secret(client_id: str, secret: str, *, as_json: bool) -> None:
    if as_json:
        echo_json({"client_id": client_id, "client_secret": secret})
        return
    click.echo(f"client_id:     {client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown only now: store it safely.", err=True)


def _show_client(record: ClientRecord, *, as_json: bool) -> None:
    if as_json:
        echo_json(_client_json(record))
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(no_wrap=True)
    data = _client_json(record)
    data["weak_secret"] = "yes (chosen secret: sandbox only)" if record.weak_secret else "no"
    data["apis"] = ", ".join(record.apis) or "-"
    data["keys"] = "\n".join(data["keys"]) or "-"
    for field, value in data.items():
        table.add_row(field, str(value))
    console().print(table)


# -- taap clients ---------------------------------------------------------------------------
@click.group(cls=LiteralValuesGroup)
def clients() -> None:
    """Registered clients: credentials, PoP keys, subscriptions.

    Client ids and key thumbprints are taken as given even when they begin with '-'; only a
    value that is exactly an option's name (-h, --json) must follow '--'.
    """


@clients.command("create")
@click.option("--name", required=True, help="Display name of the client.")
@click.option(
    "--public-key",
    "public_keys",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="PoP public key: SPKI PEM, PKCS#1 PEM or JWK ('-' = stdin). Repeatable.",
)
@click.option("--api", "apis", multiple=True, help="API product id to subscribe. Repeatable.")
@click.option("--secret", help="Chosen secret (sandbox use, flagged weak if short).")
@click.option("--client-id", help="Chosen client id (sandbox use).")
@click.option(
    "--id-prefix",
    envvar="TAAP_CLIENT_ID_PREFIX",
    default="taap-",
    show_default=True,
    help="Prefix of generated client ids (env TAAP_CLIENT_ID_PREFIX).",
)
@json_option
@database_option
def create_client(
    name: str,
    public_keys: tuple[str, ...],
    apis: tuple[str, ...],
    secret: str | None,
    client_id: str | None,
    id_prefix: str,
    as_json: bool,
    database_url: str,
) -> None:
    """Register a client; prints client_id and client_secret once."""
    keys = [load_public_key(read_input(path)) for path in public_keys]

    async def action(registry: SqlRegistry) -> tuple[ClientRecord, str]:
        return await registry.create_client(
            name=name, keys=keys, apis=list(apis), secret=secret, client_id=client_id
        )

    record, plain = run_registry(database_url, action, client_id_prefix=id_prefix)
    _print_secret(record.client_id, plain, as_json=as_json)


@clients.command("list")
@json_option
@database_option
def list_clients(as_json: bool, database_url: str) -> None:
    """List clients (weak secrets flagged)."""
    records = run_registry(database_url, lambda r: r.list_clients())
    if as_json:
        echo_json([_client_json(c) for c in records])
        return
    table = Table(title=f"{len(records)} client(s)")
    table.add_column("client_id", no_wrap=True)
    table.add_column("name")
    table.add_column("status")
    table.add_column("secret")
    table.add_column("keys", justify="right")
    table.add_column("apis")
    table.add_column("created (UTC)", no_wrap=True)
    for c in records:
        table.add_row(
            c.client_id,
            c.name,
            c.status,
            "WEAK" if c.weak_secret else "ok",
            str(len(c.keys)),
            ", ".join(c.apis) or "-",
            iso(c.created_at),
        )
    console().print(table)


@clients.command("show")
@click.argument("client_id")
@json_option
@database_option
def show_client(client_id: str, as_json: bool, database_url: str) -> None:
    """Show one client: status, key thumbprints, subscriptions (never its secret)."""
    record = run_registry(database_url, lambda r: r.get_client(client_id))
    if record is None:
        raise NotFoundError(f"unknown client {client_id!r}")
    _show_client(record, as_json=as_json)


def _status_command(name: str, status: str, help_text: str) -> click.Command:
    @click.command(name, cls=LiteralValuesCommand, help=help_text)
    @click.argument("client_id")
    @database_option
    def command(client_id: str, database_url: str) -> None:
        record = run_registry(database_url, lambda r: r.set_status(client_id, status))  # type: ignore[arg-type]
        click.echo(f"{record.client_id}: {record.status}")

    return command


clients.add_command(
    _status_command(
        "disable",
        "disabled",
        "Disable a client: its token requests fail at once and its live tokens are revoked.",
    )
)
clients.add_command(_status_command("enable", "active", "Enable a disabled client."))


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--secret", help="Chosen new secret (sandbox use).")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Seconds the previous secret keeps working (zero-downtime rotation).",
)
@json_option
@database_option
def rotate_secret(
    client_id: str, secret: str | None, grace: float, as_json: bool, database_url: str
) -> None:
    """Give the client a new secret; prints it once."""
    plain = run_registry(database_url, lambda r: r.rotate_secret(client_id, secret, grace=grace))
    _print_secret(client_id, plain, as_json=as_json)


@clients.command("add-key")
@click.argument("client_id")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@database_option
def add_key(client_id: str, path: str, database_url: str) -> None:
    """Register another PoP public key (SPKI PEM, PKCS#1 PEM or JWK)."""
    key = load_public_key(read_input(path))
    run_registry(database_url, lambda r: r.add_key(client_id, key))
    click.echo(f"{client_id}: added key {key.thumbprint}")


@clients.command("remove-key")
@click.argument("client_id")
@click.argument("thumbprint")
@database_option
def remove_key(client_id: str, thumbprint: str, database_url: str) -> None:
    """Remove a PoP public key by its RFC 7638 thumbprint."""
    run_registry(database_url, lambda r: r.remove_key(client_id, thumbprint))
    click.echo(f"{client_id}: removed key {thumbprint}")


def _subscription_command(name: str, subscribed: bool, help_text: str) -> click.Command:
    @click.command(name, cls=LiteralValuesCommand, help=help_text)
    @click.argument("client_id")
    @click.argument("api")
    @database_option
    def command(client_id: str, api: str, database_url: str) -> None:
        record = run_registry(
            database_url,
            lambda r: r.subscribe(client_id, api) if subscribed else r.unsubscribe(client_id, api),
        )
        click.echo(f"{client_id}: subscribed to {', '.join(record.apis) or 'nothing'}")

    return command


clients.add_command(
    _subscription_command("subscribe", True, "Subscribe a client to an API product.")
)
clients.add_command(
    _subscription_command(
        "unsubscribe",
        False,
        "Remove a client's subscription to an API product; its live tokens lose the product.",
    )
)


@clients.command("revoke-tokens")
@click.argument("client_id")
@click.option(
    "--jti",
    "jtis",
    multiple=True,
    help="Revoke only the token with this id (repeatable). Default: every live token.",
)
@json_option
@database_option
def revoke_tokens(client_id: str, jtis: tuple[str, ...], as_json: bool, database_url: str) -> None:
    """Revoke a client's live tokens: all of them, or those given with --jti. The client
    can ask for new tokens unless it is disabled."""
    if jtis:
        # An operator's jti comes without its token's exp: the registry keeps it as long as
        # the longest token can live.
        run_registry(database_url, lambda r: r.revoke_tokens(client_id, list(jtis)))
        if as_json:
            echo_json({"client_id": client_id, "revoked": list(dict.fromkeys(jtis))})
        else:
            click.echo(f"{client_id}: revoked {len(set(jtis))} token(s)")
        return
    not_before = run_registry(database_url, lambda r: r.revoke_client_tokens(client_id))
    if as_json:
        echo_json({"client_id": client_id, "revoked": "all", "not_before": not_before})
    else:
        since = iso(datetime.fromtimestamp(not_before, UTC))
        click.echo(f"{client_id}: revoked every token issued before {since}")
