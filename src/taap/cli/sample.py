"""``taap sample-api``: serve the A9 sample APIs behind the guard."""

from __future__ import annotations

from dataclasses import replace

import click

from taap.resource.settings import GuardSettings

__all__ = ["register", "sample_api"]


@click.command("sample-api")
@click.option(
    "--token-server",
    "token_server",
    envvar="TAAP_TOKEN_SERVER",
    required=True,
    help="Base URL of the token server (discovery and JWKS are read there).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to bind (0: any).")
@click.option(
    "--redis-url",
    envvar="TAAP_REDIS_URL",
    default=None,
    help="Shared replay store (use the token server's); default in-process.",
)
def sample_api(token_server: str, host: str, port: int, redis_url: str | None) -> None:
    """Serve Connectivity and SMS Notification (TAAP.md A9), guarded by TAAP."""
    import uvicorn

    from taap.resource.sample import create_sample_app

    # One process, whatever WEB_CONCURRENCY says: its in-process store is the whole guard's.
    settings = replace(GuardSettings.from_env(), workers=1)
    app = create_sample_app(token_server, settings=settings, redis_url=redis_url)
    click.echo(f"sample APIs on http://{host}:{port} (token server {token_server})", err=True)
    uvicorn.run(app, host=host, port=port, workers=1, log_level="warning", access_log=False)


def register(group: click.Group) -> None:
    """Add ``sample-api`` to ``group``."""
    group.add_command(sample_api)
