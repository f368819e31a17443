"""What ``taap serve`` and ``taap sample-api`` share before they serve: the bound socket, and
one plain line (``taap serve: port 8080 on 127.0.0.1 is already in use``) when they cannot."""

from __future__ import annotations

import socket
from typing import IO, Any

import click

from taap.errors import ConfigurationError
from taap.listener import bind_socket

__all__ = ["StartFailure", "listen_on"]


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
