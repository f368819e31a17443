"""What the registry commands (`taap clients`, `apis`, `keys`, `db`) share: the options every
one takes, opening the registry around one call, and output helpers.

SQLAlchemy and Alembic load only when a registry command runs: every other `taap` command
(pop, token, keygen ...) starts without paying their ~250 ms import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from taap.cli.ux.output import echo_json as show_json

if TYPE_CHECKING:
    from taap.server.registry.sql import SqlRegistry
    from taap.server.settings import RegistrySettings

__all__ = [
    "console",
    "database_option",
    "echo_json",
    "iso",
    "json_option",
    "registry_settings",
    "run_registry",
]

_DEFAULT_DATABASE_URL = "sqlite:///./taap.db"  # docs/server.md

T = TypeVar("T")

database_option = click.option(
    "--database-url",
    envvar="TAAP_DATABASE_URL",
    default=_DEFAULT_DATABASE_URL,
    show_default=True,
    help="sqlite:///path/taap.db or postgresql://user:pass@host/db (env TAAP_DATABASE_URL).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def run_registry(
    database_url: str,
    action: Callable[[SqlRegistry], Awaitable[T]],
    *,
    client_id_prefix: str = "taap-",
) -> T:
    """Open the registry (migrating it if new), run ``action``, close it."""

    from taap.server.registry.database import parse_database_url
    from taap.server.registry.pepper import load_pepper
    from taap.server.registry.sql import open_registry

    settings = registry_settings(database_url)

    async def main() -> T:
        database = parse_database_url(database_url)
        registry = await open_registry(
            database,
            pepper=load_pepper(database, settings.pepper_text()),
            client_id_prefix=client_id_prefix,
            key_password=settings.key_password(),
        )
        try:
            return await action(registry)
        finally:
            await registry.close()

    return asyncio.run(main())


def registry_settings(database_url: str) -> RegistrySettings:
    """``TAAP_PEPPER`` and ``TAAP_KEY_ENCRYPTION_KEY``, read here once as `taap serve` reads
    them, so the CLI and the server hash secrets and store signing keys the same way.

    Raises:
        ConfigurationError: a value is refused (e.g. a key-encryption key under 16 characters).
    """
    from taap.server.settings import RegistrySettings

    return RegistrySettings.load(database_url=database_url)


def console() -> Console:
    """Where tables go: the terminal, or a wide plain console when output is piped."""
    # Piped output gets a wide console, so ids and thumbprints are never cut.
    terminal = Console()
    return terminal if terminal.is_terminal else Console(width=200, color_system=None)


def echo_json(value: Any) -> None:
    """``value`` as JSON on standard output (``--json``): pretty on a terminal, compact when
    piped (:func:`taap.cli.ux.output.echo_json`)."""
    show_json(value)


def iso(value: datetime | None) -> str | None:
    """``value`` in UTC to the second, ``Z``-suffixed (``None`` stays ``None``)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
