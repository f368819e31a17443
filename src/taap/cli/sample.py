"""``taap sample-api``: serve the sample APIs behind the guard."""

from __future__ import annotations

from dataclasses import replace

import click

from taap.cli._listen import StartFailure, listen_on, listener_options
from taap.listener import ListenerConfig, ListenerLimits
from taap.resource.settings import GuardSettings
from taap.settings import SharedSettings

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
@listener_options(per_worker=False)
def sample_api(
    token_server: str,
    host: str,
    port: int,
    redis_url: str | None,
    header_timeout: float | None,
    body_min_rate: int | None,
    max_connections: int | None,
) -> None:
    """Serve Connectivity and SMS Notification (docs/guard.md), guarded by TAAP."""
    import uvicorn

    from taap.resource.sample import create_sample_app

    shared = SharedSettings.load(
        header_timeout=header_timeout,
        body_min_rate=body_min_rate,
        max_connections=max_connections,
    )
    # One process, whatever WEB_CONCURRENCY says: its in-process store is the whole guard's.
    settings = replace(GuardSettings.from_settings(shared), workers=1)
    sock = listen_on("taap sample-api", host, port)
    app = create_sample_app(token_server, settings=settings, redis_url=redis_url)
    bound = sock.getsockname()[1]
    click.echo(f"sample APIs on http://{host}:{bound} (token server {token_server})", err=True)
    config = ListenerConfig(
        app,
        limits=ListenerLimits.from_settings(shared),
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise StartFailure("taap sample-api: the server did not start")


def register(group: click.Group) -> None:
    """Add ``sample-api`` to ``group``."""
    group.add_command(sample_api)
