"""What ``taap serve`` and ``taap sample-api`` share before they serve: the listener's limits as
options, the bound socket, and one plain line (``taap serve: port 8080 on 127.0.0.1 is already
in use``) when they cannot."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from taap.errors import ConfigurationError
from taap.listener import bind_socket

__all__ = ["StartFailure", "listen_on", "listener_options"]

F = TypeVar("F", bound=Callable[..., Any])


def listener_options(*, per_worker: bool) -> Callable[[F], F]:
    """``--header-timeout``, ``--body-min-rate`` and ``--max-connections`` (docs/deploy.md)."""
    where = " per worker" if per_worker else ""

    def add(command: F) -> F:
        for option in reversed(
            (
                click.option(
                    "--header-timeout",
                    type=float,
                    help="Seconds a request head may take in all "
                    "(TAAP_HEADER_TIMEOUT; default 10).",
                ),
                click.option(
                    "--body-min-rate",
                    type=int,
                    help="Bytes/s a request body must average after 5 s "
                    "(TAAP_BODY_MIN_RATE; default 1024).",
                ),
                click.option(
                    "--max-connections",
                    type=int,
                    help=f"Open connections{where}; more are refused "
                    "(TAAP_MAX_CONNECTIONS; default 1000).",
                ),
            )
        ):
            command = option(command)
        return command

    return add


class StartFailure(click.ClickException):
    """A server that cannot start: one plain line on stderr, exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.message, err=True)


def listen_on(command: str, host: str, port: int) -> socket.socket:
    """The socket ``command`` (``taap serve``) will serve on, bound and not yet listening.

    Raises:
        StartFailure: the address cannot be bound; the line names it and says why.
    """
    try:
        return bind_socket(host, port)
    except ConfigurationError as exc:
        raise StartFailure(f"{command}: {exc.description}") from None
