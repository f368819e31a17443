"""What ``taap serve`` tells a person at a terminal as it starts: where it listens, what it
serves, with which database (password masked) and how many workers. Not shown when standard
error is not a terminal: there the JSON log lines are the whole story."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

from rich.console import Console
from rich.table import Table
from rich.text import Text

from taap.server.registry.database import mask_url
from taap.server.settings import ServerSettings

__all__ = ["banner_rows", "print_banner", "wants_text_logs"]


def wants_text_logs(settings: ServerSettings, *, terminal: bool) -> bool:
    """Human-readable logs: on a terminal, unless ``TAAP_LOG_FORMAT`` chose the format."""
    if "log_format" in settings.model_fields_set:
        return settings.log_format == "text"
    return terminal


def _on_off(flag: bool, where: str = "") -> str:
    return f"on{f' ({where})' if where else ''}" if flag else "off"


def banner_rows(settings: ServerSettings, host: str, port: int) -> list[tuple[str, str]]:
    """The banner's ``(label, value)`` rows for a server bound to ``host``:``port``."""
    # --port 0 binds any free port: the URLs name the one the socket got.
    base = settings.public_url or f"http://127.0.0.1:{port}"
    rows = [
        ("listening", f"http://{host}:{port}"),
        ("tokens", f"POST {base}/oauth2/v2/tokens, {base}/oauth2/v6/tokens"),
        ("JWKS", f"{base}/oauth2/v1/jwks"),
        ("discovery", f"{base}/.well-known/openid-configuration"),
        ("revocation", f"{base}/oauth2/v1/revoke, {base}/oauth2/v1/introspect"),
        ("issuer", settings.issuer_url),
        ("database", mask_url(settings.database_url)),
        ("redis", mask_url(settings.redis_url) if settings.redis_url else "none (in-process)"),
        ("workers", str(settings.workers)),
        ("portal", _on_off(settings.with_portal, f"{base}/portal/")),
        (
            "sample APIs",
            _on_off(settings.with_sample_apis, "/iot-connectivity/v1/…, /sms/v1/messages"),
        ),
        ("metrics", _on_off(settings.metrics, f"{base}/metrics")),
        ("logs", f"{settings.log_format} (TAAP_LOG_FORMAT=json|text)"),
    ]
    return rows


def _version() -> str:
    try:
        return version("taap")
    except PackageNotFoundError:  # a source tree that was never installed
        return "(not installed)"


def print_banner(settings: ServerSettings, host: str, port: int) -> None:
    """The banner on standard error, in colour when the terminal takes it."""
    console = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    console.print(Text(f"taap serve {_version()}", style="bold cyan"))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in banner_rows(settings, host, port):
        table.add_row(f"  {label}", value)
    console.print(table)
    console.print(Text("  Ctrl-C stops the server.", style="dim"))
