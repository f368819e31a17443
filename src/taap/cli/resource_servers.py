"""`taap resource-servers`: the resource servers allowed to introspect tokens, and their
credentials. A secret is printed once, when it is made, and never again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from taap.server.registry.port import ResourceServerRecord

__all__ = ["register", "resource_servers"]


def _server_json(record: ResourceServerRecord) -> dict[str, Any]:
    # Digests are derived from secrets: only their number is shown.
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "secrets": len(record.secret_digests),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }


def _print_secret(rs_id: str, secret: str, *, as_json: bool) -> None:
    if as_json:
        echo_json({"id": rs_id, "secret": secret})
        return
    click.echo(f"id:     {rs_id}")
    click.echo(f"secret: {secret}")
    click.echo("The secret is shown only now: store it safely.", err=True)


def _print_table(records: Sequence[ResourceServerRecord]) -> None:
    table = Table(title=f"{len(records)} resource server(s)")
    for column in ("id", "name", "status", "secrets", "created (UTC)"):
        table.add_column(column, no_wrap=column != "name")
    for r in records:
        table.add_row(r.id, r.name, r.status, str(len(r.secret_digests)), iso(r.created_at))
    console().print(table)


@click.group("resource-servers", cls=LiteralValuesGroup)
def resource_servers() -> None:
    """Resource servers: the callers of token introspection, with their own credentials."""


@resource_servers.command("create")
@click.option("--name", required=True, help="Display name of the resource server.")
@json_option
@database_option
def create_server(name: str, as_json: bool, database_url: str) -> None:
    """Register a resource server; prints its id and secret once."""
    record, plain = run_registry(database_url, lambda r: r.create_resource_server(name=name))
    _print_secret(record.id, plain, as_json=as_json)


@resource_servers.command("list")
@json_option
@database_option
def list_servers(as_json: bool, database_url: str) -> None:
    """List resource servers (never their secrets)."""
    records = run_registry(database_url, lambda r: r.list_resource_servers())
    if as_json:
        echo_json([_server_json(r) for r in records])
    else:
        _print_table(records)


def _status_command(name: str, status: str, help_text: str) -> click.Command:
    @click.command(name, cls=LiteralValuesCommand, help=help_text)
    @click.argument("rs_id")
    @database_option
    def command(rs_id: str, database_url: str) -> None:
        record = run_registry(
            database_url,
            lambda r: r.set_resource_server_status(rs_id, status),  # type: ignore[arg-type]
        )
        click.echo(f"{record.id}: {record.status}")

    return command


resource_servers.add_command(
    _status_command(
        "disable", "disabled", "Disable a resource server: its introspection calls fail at once."
    )
)
resource_servers.add_command(
    _status_command("enable", "active", "Enable a disabled resource server.")
)


@resource_servers.command("rotate-secret")
@click.argument("rs_id")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Seconds the previous secret keeps working (zero-downtime rotation).",
)
@json_option
@database_option
def rotate_secret(rs_id: str, grace: float, as_json: bool, database_url: str) -> None:
    """Give the resource server a new secret; prints it once."""
    plain = run_registry(
        database_url, lambda r: r.rotate_resource_server_secret(rs_id, grace=grace)
    )
    _print_secret(rs_id, plain, as_json=as_json)


@resource_servers.command("remove")
@click.argument("rs_id")
@database_option
def remove_server(rs_id: str, database_url: str) -> None:
    """Remove a resource server and its secrets."""
    run_registry(database_url, lambda r: r.remove_resource_server(rs_id))
    click.echo(f"{rs_id}: removed")


def register(group: click.Group) -> None:
    """Add ``resource-servers`` to ``group``."""
    group.add_command(resource_servers)
