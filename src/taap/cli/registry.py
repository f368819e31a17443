"""Registry administration (TAAP.md A5): `taap clients`, `taap apis`, `taap keys`, `taap db`.

Every command takes ``--database-url`` (env ``TAAP_DATABASE_URL``, default
``sqlite:///./taap.db``) and reads the pepper as A5 says (``TAAP_PEPPER``, else the ``pepper``
file beside a SQLite database). A client secret is printed once, when it is made, and never
again. The commands only parse arguments, call the registry and print.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from taap.cli._io import read_input
from taap.core.keys import load_public_key
from taap.errors import NotFoundError
from taap.server.registry.port import ApiProduct, ClientRecord, SigningKeyRecord

if TYPE_CHECKING:
    from taap.server.registry.sql import SqlRegistry

# SQLAlchemy and Alembic load only when a registry command runs: every other `taap` command
# (pop, token, keygen ...) starts without paying their ~250 ms import.
_DEFAULT_DATABASE_URL = "sqlite:///./taap.db"  # TAAP.md A8

__all__ = ["register"]

T = TypeVar("T")

_database_option = click.option(
    "--database-url",
    envvar="TAAP_DATABASE_URL",
    default=_DEFAULT_DATABASE_URL,
    show_default=True,
    help="sqlite:///path/taap.db or postgresql://user:pass@host/db (env TAAP_DATABASE_URL).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def _run(
    database_url: str,
    action: Callable[[SqlRegistry], Awaitable[T]],
    *,
    client_id_prefix: str = "taap-",
) -> T:
    """Open the registry (migrating it if new), run ``action``, close it."""

    from taap.server.registry.database import parse_database_url
    from taap.server.registry.pepper import load_pepper
    from taap.server.registry.sql import open_registry

    async def main() -> T:
        database = parse_database_url(database_url)
        registry = await open_registry(
            database,
            pepper=load_pepper(database),
            client_id_prefix=client_id_prefix,
            key_password=_key_password(),
        )
        try:
            return await action(registry)
        finally:
            await registry.close()

    return asyncio.run(main())


def _key_password() -> bytes | None:
    # The same key-encryption key as `taap serve` (TAAP_KEY_ENCRYPTION_KEY), so both read and
    # write private signing keys the same way.
    value = os.environ.get("TAAP_KEY_ENCRYPTION_KEY", "")
    return value.encode("utf-8") if value else None


def _console() -> Console:
    # Piped output gets a wide console, so ids and thumbprints are never cut.
    console = Console()
    return console if console.is_terminal else Console(width=200, color_system=None)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
    }


def _key_state(key: SigningKeyRecord, now: datetime) -> str:
    if key.retired:
        return "retired"
    if key.publish_until is None:
        return "active"
    if key.publish_until > now:
        return f"published until {_iso(key.publish_until)}"
    return "expired"


def _signing_json(keys: Sequence[SigningKeyRecord]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "kid": k.kid,
            "state": _key_state(k, now).split(" ")[0],
            "bits": k.key.bits,
            "created_at": _iso(k.created_at),
            "publish_until": _iso(k.publish_until),
            "retired": k.retired,
        }
        for k in keys
    ]


def _print_secret(client_id: str, secret: str, *, as_json: bool) -> None:
    if as_json:
        _echo_json({"client_id": client_id, "client_secret": secret})
        return
    click.echo(f"client_id:     {client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown only now: store it safely.", err=True)


def _show_client(record: ClientRecord, *, as_json: bool) -> None:
    if as_json:
        _echo_json(_client_json(record))
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
    _console().print(table)


# -- taap clients ---------------------------------------------------------------------------
@click.group()
def clients() -> None:
    """Registered clients: credentials, PoP keys, subscriptions."""


#: Thumbprints and kids are base64url, so one in 64 starts with "-": without this click would
#: take such a value for an unknown option ("No such option '-E'") instead of the argument.
_DASH_VALUES = {"ignore_unknown_options": True}


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
@_json_option
@_database_option
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

    record, plain = _run(database_url, action, client_id_prefix=id_prefix)
    _print_secret(record.client_id, plain, as_json=as_json)


@clients.command("list")
@_json_option
@_database_option
def list_clients(as_json: bool, database_url: str) -> None:
    """List clients (weak secrets flagged)."""
    records = _run(database_url, lambda r: r.list_clients())
    if as_json:
        _echo_json([_client_json(c) for c in records])
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
            _iso(c.created_at),
        )
    _console().print(table)


@clients.command("show")
@click.argument("client_id")
@_json_option
@_database_option
def show_client(client_id: str, as_json: bool, database_url: str) -> None:
    """Show one client: status, key thumbprints, subscriptions (never its secret)."""
    record = _run(database_url, lambda r: r.get_client(client_id))
    if record is None:
        raise NotFoundError(f"unknown client {client_id!r}")
    _show_client(record, as_json=as_json)


def _status_command(name: str, status: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("client_id")
    @_database_option
    def command(client_id: str, database_url: str) -> None:
        record = _run(database_url, lambda r: r.set_status(client_id, status))  # type: ignore[arg-type]
        click.echo(f"{record.client_id}: {record.status}")

    return command


clients.add_command(
    _status_command("disable", "disabled", "Disable a client: its token requests fail at once.")
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
@_json_option
@_database_option
def rotate_secret(
    client_id: str, secret: str | None, grace: float, as_json: bool, database_url: str
) -> None:
    """Give the client a new secret; prints it once."""
    plain = _run(database_url, lambda r: r.rotate_secret(client_id, secret, grace=grace))
    _print_secret(client_id, plain, as_json=as_json)


@clients.command("add-key")
@click.argument("client_id")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@_database_option
def add_key(client_id: str, path: str, database_url: str) -> None:
    """Register another PoP public key (SPKI PEM, PKCS#1 PEM or JWK)."""
    key = load_public_key(read_input(path))
    _run(database_url, lambda r: r.add_key(client_id, key))
    click.echo(f"{client_id}: added key {key.thumbprint}")


@clients.command("remove-key", context_settings=_DASH_VALUES)
@click.argument("client_id")
@click.argument("thumbprint")
@_database_option
def remove_key(client_id: str, thumbprint: str, database_url: str) -> None:
    """Remove a PoP public key by its RFC 7638 thumbprint."""
    _run(database_url, lambda r: r.remove_key(client_id, thumbprint))
    click.echo(f"{client_id}: removed key {thumbprint}")


@clients.command("subscribe")
@click.argument("client_id")
@click.argument("api")
@_database_option
def subscribe(client_id: str, api: str, database_url: str) -> None:
    """Subscribe a client to an API product."""
    record = _run(database_url, lambda r: r.subscribe(client_id, api))
    click.echo(f"{client_id}: subscribed to {', '.join(record.apis)}")


@clients.command("unsubscribe")
@click.argument("client_id")
@click.argument("api")
@_database_option
def unsubscribe(client_id: str, api: str, database_url: str) -> None:
    """Remove a client's subscription to an API product."""
    record = _run(database_url, lambda r: r.unsubscribe(client_id, api))
    click.echo(f"{client_id}: subscribed to {', '.join(record.apis) or 'nothing'}")


# -- taap apis ------------------------------------------------------------------------------
@click.group()
def apis() -> None:
    """API products clients subscribe to."""


def _products_json(products: Sequence[ApiProduct]) -> list[dict[str, str]]:
    return [
        {"id": p.id, "name": p.name, "token_server": p.token_server, "base_path": p.base_path}
        for p in products
    ]


@apis.command("list")
@_json_option
@_database_option
def list_apis(as_json: bool, database_url: str) -> None:
    """List API products."""
    products = _run(database_url, lambda r: r.list_products())
    if as_json:
        _echo_json(_products_json(products))
        return
    table = Table(title="API products")
    for column in ("id", "name", "token server", "base path"):
        table.add_column(column, no_wrap=True)
    for p in products:
        table.add_row(p.id, p.name, p.token_server, p.base_path)
    _console().print(table)


@apis.command("create")
@click.argument("api_id")
@click.option("--name", help="Display name (default: the id).")
@click.option("--token-server", type=click.Choice(["v2", "v6"]), required=True)
@click.option("--base-path", required=True, help="Default base path, e.g. /weather/v1.")
@_json_option
@_database_option
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
    created = _run(database_url, lambda r: r.create_product(product))
    if as_json:
        _echo_json(_products_json([created])[0])
    else:
        click.echo(f"created API {created.id} ({created.token_server}, {created.base_path})")


# -- taap keys ------------------------------------------------------------------------------
@click.group()
def keys() -> None:
    """Token-server signing keys (published in JWKS)."""


@keys.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired and retired keys.")
@_json_option
@_database_option
def list_keys(show_all: bool, as_json: bool, database_url: str) -> None:
    """List signing keys, the active one first."""
    found = _run(database_url, lambda r: r.all_signing_keys() if show_all else r.signing_keys())
    if as_json:
        _echo_json(_signing_json(found))
        return
    now = datetime.now(UTC)
    table = Table(title="signing keys")
    for column in ("kid", "state", "bits", "created (UTC)"):
        table.add_column(column, no_wrap=True)
    for k in found:
        table.add_row(k.kid, _key_state(k, now), str(k.key.bits), _iso(k.created_at))
    _console().print(table)


@keys.command("rotate")
@click.option("--bits", type=click.Choice(["2048", "3072", "4096"]), default="2048")
@_database_option
def rotate_keys(bits: str, database_url: str) -> None:
    """Create the next signing key; the previous one stays in JWKS until its tokens expire."""
    record = _run(database_url, lambda r: r.rotate_signing_key(bits=int(bits)))
    click.echo(f"new signing key {record.kid} ({record.key.bits} bits) is active")


@keys.command("encrypt")
@click.option(
    "--previous-key-env",
    metavar="NAME",
    help="Environment variable holding the previous key-encryption key (moving to a new one).",
)
@_database_option
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
    rewritten, total = _run(
        database_url, lambda r: r.encrypt_signing_keys(previous_password=previous)
    )
    click.echo(f"{rewritten} of {total} signing keys written under the current key-encryption key")


@keys.command("retire", context_settings=_DASH_VALUES)
@click.argument("kid")
@_database_option
def retire_key(kid: str, database_url: str) -> None:
    """Withdraw a rotated-out signing key from JWKS now (its tokens stop verifying)."""
    _run(database_url, lambda r: r.retire_signing_key(kid))
    click.echo(f"signing key {kid} retired")


# -- taap db --------------------------------------------------------------------------------
@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@_database_option
def db_upgrade(revision: str, database_url: str) -> None:
    """Run the schema migrations (first start does this too); creates a signing key if none."""
    from taap.server.registry.database import parse_database_url
    from taap.server.registry.pepper import load_pepper
    from taap.server.registry.sql import upgrade_database

    database = parse_database_url(database_url)
    if database.sqlite_path is not None:
        # Create the pepper file with the database, so a later CLI and server agree on it.
        load_pepper(database)
    reached = asyncio.run(
        upgrade_database(database, revision=revision, key_password=_key_password())
    )
    click.echo(f"{database.masked}: schema at revision {reached}")


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, required=True, help="Confirm: data of newer tables is lost.")
@_database_option
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
