"""Entry point: the ``taap`` group, one-line errors, and the sub-command modules."""

from __future__ import annotations

from typing import IO, Any

import click

from taap.errors import TaapError

__all__ = ["cli", "main"]


class _Failure(click.ClickException):
    """A library error shown as one line, ``error_code: description``; exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.message, err=True)


class TaapGroup(click.Group):
    """A group that turns library and OS errors into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TaapError as exc:
            # The shell user is the operator: the log-only detail helps and holds no secrets.
            detail = f" ({exc.log_detail})" if exc.log_detail else ""
            raise _Failure(f"{exc.error_code}: {exc.description}{detail}") from exc
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise _Failure(f"error: {exc.strerror or exc}{where}") from exc


@click.group(cls=TaapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taap")
def cli() -> None:
    """TAAP (T-Mobile API Access Protocol): PoP tokens, token server, client and guard."""


def _register() -> None:
    # Each module adds its own commands; the order here is the order in --help.
    from taap.cli import demo, keys, pop, registry, sample, serve, token

    for module in (keys, pop, token, serve, registry, sample, demo):
        module.register(cli)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="taap")
