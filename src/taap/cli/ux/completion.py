"""``taap completion SHELL``: the shell completion script (click's), printed for the user to
source or save (docs/cli.md, "Shell completion")."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from taap.cli.ux.helptext import examples

__all__ = ["completion", "register"]

#: The variable click's completion scripts call ``taap`` back with (``_<PROG>_COMPLETE``).
COMPLETE_VAR = "_TAAP_COMPLETE"

_EXAMPLES = examples(
    'eval "$(taap completion bash)"                      # this bash session',
    "taap completion bash > ~/.local/share/bash-completion/completions/taap",
    'taap completion zsh > "${fpath[1]}/_taap"            # then restart zsh',
    "taap completion fish > ~/.config/fish/completions/taap.fish",
)


@click.command(epilog=_EXAMPLES)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish) on stdout.

    Source it, or save it where the shell loads completions from; it completes commands,
    options and choices by calling taap itself.
    """
    root = ctx.find_root()
    complete = get_completion_class(shell)
    if complete is None:  # the Choice above admits only shells click knows
        raise click.UsageError(f"no completion for {shell}")
    script = complete(root.command, {}, root.info_name or "taap", COMPLETE_VAR).source()
    click.echo(script.rstrip("\n"))


def register(group: click.Group) -> None:
    """Add ``completion`` to ``group``."""
    group.add_command(completion)
