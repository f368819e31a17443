"""``taap gateway``: verify every call as the guard does, forward the verified ones to the
product's upstream (docs/gateway.md).

A package of one module: ``taap/cli`` holds its 16-module limit already.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
from types import FrameType
from typing import Any

import click

from taap.cli._listen import StartFailure, listen_on
from taap.listener import ListenerConfig, ListenerLimits

__all__ = ["gateway", "register"]


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    found: dict[str, str] = {}
    for value in values:
        name, sep, item = value.partition("=")
        if not sep or not name.strip() or not item.strip():
            raise click.BadParameter(f"expected PRODUCT=VALUE, got {value!r}")
        found[name.strip()] = item.strip()
    return found or None


@click.command("gateway")
@click.option("--config", type=click.Path(dir_okay=False), help="A TOML file of settings.")
@click.option("--token-server", help="Token server base URL (TAAP_TOKEN_SERVER).")
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    callback=_pairs,
    metavar="PRODUCT=URL",
    help="Forward PRODUCT's calls to URL (scheme://host:port); repeatable (TAAP_UPSTREAMS).",
)
@click.option(
    "--base-path",
    "base_paths",
    multiple=True,
    callback=_pairs,
    metavar="PRODUCT=PATH",
    help="PRODUCT's base path when not the default one; repeatable (TAAP_BASE_PATHS).",
)
@click.option("--redis-url", help="The token server's Redis: replay and shared state.")
@click.option("--host", help="Interface to bind (TAAP_HOST; default 127.0.0.1).")
@click.option("--port", type=int, help="Port (TAAP_PORT; default 8080; 0 = any free port).")
@click.option("--workers", type=int, help="Worker processes (TAAP_WORKERS; >1 needs Redis).")
@click.option(
    "--upstream-timeout",
    type=float,
    help="Seconds an upstream may take to answer (TAAP_UPSTREAM_TIMEOUT; default 30).",
)
@click.option(
    "--strip-authorization/--keep-authorization",
    default=None,
    help="Remove the Bearer token before forwarding (TAAP_STRIP_AUTHORIZATION; default keep).",
)
@click.option(
    "--auth-request/--no-auth-request",
    default=None,
    help="Serve GET /auth for nginx auth_request (TAAP_AUTH_REQUEST).",
)
def gateway(config: str | None, **flags: Any) -> None:
    """Verify TAAP calls and forward them to the product's upstream, any language."""
    from taap.gateway import create_gateway_app, load_settings

    settings = load_settings(config=config, **flags)
    sock = listen_on("taap gateway", settings.host, settings.port)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    audit = logging.getLogger("taap.audit")
    audit.setLevel(logging.INFO)
    host, port = sock.getsockname()[:2]
    upstreams = ", ".join(f"{p} -> {u}" for p, u in settings.upstreams.items()) or "none"
    click.echo(f"taap gateway on http://{host}:{port} (upstreams: {upstreams})", err=True)
    config_ = ListenerConfig(
        functools.partial(create_gateway_app, settings),
        limits=ListenerLimits.from_settings(settings),
        factory=True,
        workers=settings.workers,
        lifespan="on",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=True,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )
    # uvicorn re-raises the SIGTERM it shut down on once it is done; a requested, completed
    # shutdown exits 0.
    signal.signal(signal.SIGTERM, _exit_zero)
    _run(config_, sock)


def _run(config: ListenerConfig, sock: Any) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        if config.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
            return
        server.run(sockets=[sock])
    if not server.started:
        raise StartFailure("taap gateway: the server did not start")


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def register(group: click.Group) -> None:
    group.add_command(gateway)
