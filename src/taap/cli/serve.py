"""``taap serve``: the token server (docs/server.md) on uvicorn, and ``taap portal admins``
for the developer portal it can mount (``--with-portal``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import click

from taap.cli._listen import StartFailure, listen_on, listener_options
from taap.cli.ux.banner import print_banner, wants_text_logs
from taap.errors import ConfigurationError
from taap.listener import ListenerConfig, ListenerLimits
from taap.server.app import ASGIApp, TokenServerApp
from taap.server.logs import uvicorn_log_config
from taap.server.registry.database import parse_database_url
from taap.server.settings import ServerSettings

if TYPE_CHECKING:
    from taap.portal.store_apps import PortalStore
    from taap.server.runtime import FallbackFactory

__all__ = ["register", "sample_fallback"]

# CLI option name -> settings field; each is also read from TAAP_<FIELD>.
_OPTIONS = (
    "host",
    "port",
    "workers",
    "database_url",
    "redis_url",
    "issuer",
    "public_url",
    "token_mode",
    "with_sample_apis",
    "with_portal",
    "header_timeout",
    "body_min_rate",
    "max_connections",
)
# uvicorn's exit status when the server did not start (what uvicorn.run exits with).
_STARTUP_FAILURE = 3


def _check_database_folder(database_url: str) -> None:
    # SQLite creates the file, never its folder: say so before anything writes there.
    path = parse_database_url(database_url).sqlite_path
    if path is None:
        return
    folder = path.absolute().parent
    if not folder.exists():
        raise StartFailure(f"taap serve: database folder {folder} does not exist")
    if not folder.is_dir():
        raise StartFailure(f"taap serve: database folder {folder} is not a folder")


def sample_fallback(app: TokenServerApp) -> ASGIApp:
    """The sample APIs behind the guard, sharing this server's replay store and registry.

    Raises:
        ConfigurationError: the sample APIs are not installed in this build.
    """
    try:
        from taap.resource.revocations import RevocationWatcher
        from taap.resource.sample import create_sample_app
        from taap.resource.settings import GuardSettings
    except ImportError as exc:  # the resource package is optional at run time
        raise ConfigurationError("--with-sample-apis needs taap.resource.sample") from exc
    from taap.server.revocation.source import registry_revocations

    # The guard judges with this server's settings (JWKS refresh, leeway, PoP policy, caps):
    # its jwks_min_refresh is the node's publish-before-use delay, so it never waits longer
    # than that for a rotated-in key (taap.server.tokens.registry_cache). It reads the
    # revocation log from this server's registry, with no HTTP hop to the feed.
    guard = GuardSettings.from_settings(app.settings)
    revocations = RevocationWatcher(
        registry_revocations(app.registry), max_age=guard.revocation_max_age
    )
    sample: ASGIApp = create_sample_app(
        app.settings.base_url,
        replay_store=app.replay_store,
        settings=guard,
        revocations=revocations,
        usage=app.usage,
    )
    return sample


@click.command("serve")
@click.option("--host", help="Interface to bind (TAAP_HOST; default 127.0.0.1).")
@click.option("--port", type=int, help="Port (TAAP_PORT; default 8000; 0 = any free port).")
@click.option("--workers", type=int, help="Worker processes (TAAP_WORKERS; >1 needs --redis-url).")
@click.option(
    "--database-url", help="sqlite:///path/taap.db or postgresql://… (TAAP_DATABASE_URL)."
)
@click.option("--redis-url", help="Shared replay store and rate limits (TAAP_REDIS_URL).")
@click.option(
    "--issuer", help="iss of issued tokens (TAAP_ISSUER; default <public URL>/oauth2/v1)."
)
@click.option(
    "--public-url", help="Public base URL (TAAP_PUBLIC_URL; default http://127.0.0.1:<port>)."
)
@click.option(
    "--token-mode",
    type=click.Choice(["separate", "single"]),
    help="single: the access token is returned as both tokens (TAAP_TOKEN_MODE).",
)
@click.option(
    "--with-sample-apis",
    is_flag=True,
    default=None,
    help="Also serve the sample APIs behind the guard (TAAP_WITH_SAMPLE_APIS).",
)
@click.option(
    "--with-portal",
    is_flag=True,
    default=None,
    help="Also serve the developer portal at /portal/ (TAAP_WITH_PORTAL; docs/portal.md).",
)
@listener_options(per_worker=True)
def serve(**options: Any) -> None:
    """Run the token server: POST /oauth2/v2/tokens and /oauth2/v6/tokens, JWKS, discovery."""
    settings = ServerSettings.load(**{name: options.get(name) for name in _OPTIONS})
    terminal = sys.stderr.isatty()
    if wants_text_logs(settings, terminal=terminal):
        settings = settings.model_copy(update={"log_format": "text"})
    _check_database_folder(settings.database_url)
    _check_portal_mail(settings)
    # Bound before the registry is opened: a port in use ends here, with nothing created.
    sock = listen_on("taap serve", settings.host, settings.port)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        # X-Forwarded-For is trusted by the app itself, only from TAAP_FORWARDED_ALLOW_IPS.
        "proxy_headers": False,
        "server_header": False,
        "date_header": True,
        "access_log": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "lifespan": "on",
    }
    log_config = uvicorn_log_config(settings.log_format)
    if log_config is not None:
        common["log_config"] = log_config
    # Open (and on first start create) the registry once here: configuration and database
    # errors end as one line before uvicorn starts, and workers never race on migrations.
    asyncio.run(_preflight(settings))
    # uvicorn re-raises the SIGTERM it shut down on once it is done; this handler turns it
    # into exit status 0 (a requested, completed shutdown), not death by signal.
    signal.signal(signal.SIGTERM, _exit_zero)
    from taap.server.runtime import DeferredApp

    if terminal:
        host, port = sock.getsockname()[:2]
        print_banner(settings, host, port)

    with _metrics_directory(settings) as metrics_dir:
        # Called in each worker process: a spawned worker gets it (the validated settings
        # with it) pickled inside uvicorn's Config, so nothing goes through the environment.
        app_factory = functools.partial(
            DeferredApp,
            settings,
            fallback=_fallback(settings),
            install_signals=True,
            metrics_dir=metrics_dir,
        )
        limits = ListenerLimits.from_settings(settings)
        config = ListenerConfig(
            app_factory, limits=limits, factory=True, workers=settings.workers, **common
        )
        _run(config, sock)


def _check_portal_mail(settings: ServerSettings) -> None:
    # The portal builds its mailer on its first request; a bad mail setting would only show
    # there, as a sign-in that cannot send codes. Said at start-up instead, in one line.
    if not settings.with_portal:
        return
    from taap.portal.mail import open_mailer

    try:
        open_mailer(settings.smtp_url.get_secret_value(), settings.mail_from)
    except ConfigurationError as exc:
        raise StartFailure(f"taap serve: {exc}") from None


def _fallback(settings: ServerSettings) -> FallbackFactory | None:
    sample = sample_fallback if settings.with_sample_apis else None
    if not settings.with_portal:
        return sample
    try:
        from taap.portal.site import portal_fallback
    except ImportError as exc:  # jinja2 and python-multipart come with the server extra
        raise StartFailure(f"taap serve: --with-portal needs the server extra ({exc})") from exc
    return portal_fallback(sample)


def _run(config: ListenerConfig, sock: socket.socket) -> None:
    # What uvicorn.run does, on the socket bound above. For workers > 1 uvicorn.run wants an
    # import string (then each worker would rebuild the app, settings included, from the
    # environment): here the parent spawns the workers with the config and supervises them
    # until SIGTERM/SIGINT.
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    host, port = sock.getsockname()[:2]
    logging.getLogger("uvicorn.error").info("listening on http://%s:%d", host, port)
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        if config.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
            return
        server.run(sockets=[sock])
    if not server.started:
        sys.exit(_STARTUP_FAILURE)


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def _metrics_directory(settings: ServerSettings) -> Iterator[str | None]:
    # prometheus-client's multi-process mode is its own contract: each worker process finds
    # PROMETHEUS_MULTIPROC_DIR as it starts and keeps its values in files there; the app is
    # told the same directory, so /metrics on any worker sums every worker's files.
    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    if chosen or not settings.metrics or settings.workers == 1:
        yield chosen  # the operator's own directory (they empty it between runs), or none
        return
    with tempfile.TemporaryDirectory(prefix="taap-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        try:
            yield folder
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


async def _preflight(settings: ServerSettings) -> None:
    from taap.server.runtime import build_app, configure_logging

    configure_logging(settings.log_format)
    app = await build_app(settings)
    try:
        # Loads the signing key: a missing or wrong TAAP_KEY_ENCRYPTION_KEY stops here.
        await app.tokens.signing_key()
    finally:
        await app.aclose()


# -- taap portal admins: the operators of the portal this server mounts (docs/portal.md) ----
T = TypeVar("T")


def _portal_run(database_url: str | None, action: Callable[[PortalStore], Awaitable[T]]) -> T:
    from taap.portal.store_apps import PortalStore
    from taap.server.registry.sql import open_runner, upgrade_database
    from taap.server.settings import RegistrySettings

    url = RegistrySettings.load(database_url=database_url).database_url

    async def main() -> T:
        await upgrade_database(url)
        store = PortalStore(open_runner(url), clock=time.time)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(main())


def _email(text: str) -> str:
    from taap.portal.mail import check_address

    try:
        return check_address(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_db = click.option("--database-url", help="The registry database (TAAP_DATABASE_URL).")


@click.group("portal")
def portal() -> None:
    """The developer portal (taap serve --with-portal)."""


@portal.group("admins")
def admins() -> None:
    """Operators of the portal's console."""


@admins.command("add")
@click.argument("email")
@_db
def add(email: str, database_url: str | None) -> None:
    """Make EMAIL an operator."""
    address = _email(email)
    added = _portal_run(database_url, lambda s: s.add_admin(address))
    click.echo(f"{address} is an operator" + ("" if added else " (already)"))


@admins.command("remove")
@click.argument("email")
@_db
def remove(email: str, database_url: str | None) -> None:
    """Take EMAIL off the operators' list."""
    address = _email(email)
    if not _portal_run(database_url, lambda s: s.remove_admin(address)):
        raise click.ClickException(f"{address} is not an operator")
    click.echo(f"{address} is no longer an operator")


@admins.command("list")
@_db
def list_admins(database_url: str | None) -> None:
    """The operators, one address a line."""
    for address in _portal_run(database_url, lambda s: s.list_admins()):
        click.echo(address)


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    group.add_command(serve)
    group.add_command(portal)
