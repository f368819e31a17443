"""Entry point: the ``taap`` group, one-line errors, and the sub-command modules."""

from __future__ import annotations

import importlib
from typing import IO, Any

import click

from taap.cli.ux.helptext import EXAMPLES, examples, finish_help
from taap.errors import TaapError

__all__ = ["cli", "main"]


class _Failure(click.ClickException):
    """A library error shown as one line, ``error_code: description``; exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.message, err=True)


#: command name -> the ``taap.cli`` module whose ``register(group)`` adds it. Modules load on
#: first use, so ``taap pop build`` does not pay for importing the server stack (~0.6 s).
_COMMANDS = {
    "keygen": "keys",
    "pop": "pop",
    "token": "token",
    "call": "token",
    "configure": "ux.configure",
    "completion": "ux.completion",
    "revoke": "revocation",
    "introspect": "revocation",
    "serve": "serve",
    "clients": "registry",
    "apis": "registry",
    "keys": "registry",
    "db": "registry",
    "resource-servers": "resource_servers",
    "sample-api": "sample",
    "gateway": "gateway",
    "demo": "demo",
    "postman": "postman",
    "portal": "serve",
}


class TaapGroup(click.Group):
    """Loads sub-commands lazily and turns library and OS errors into one clear line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(dict.fromkeys([*_COMMANDS, *super().list_commands(ctx)]))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            importlib.import_module(f"taap.cli.{_COMMANDS[cmd_name]}").register(self)
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            finish_help(command, f"taap {cmd_name}")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TaapError as exc:
            # The shell user is the operator: the log-only detail helps and holds no secrets
            # (left out when the description already says it).
            shown = exc.log_detail and exc.log_detail not in exc.description
            detail = f" ({exc.log_detail})" if shown else ""
            raise _Failure(f"{exc.error_code}: {exc.description}{detail}") from exc
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise _Failure(f"error: {exc.strerror or exc}{where}") from exc


@click.group(
    "taap",
    cls=TaapGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=examples(*EXAMPLES["taap"]),
)
@click.version_option(package_name="taap", message="%(prog)s, version %(version)s")
def cli() -> None:
    """TAAP (T-Mobile API Access Protocol): PoP tokens, token server, client and guard."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="taap")
