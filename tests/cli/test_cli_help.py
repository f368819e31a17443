"""Every command of the ``taap`` tree, walked (so a new command is covered without a line here):
``--help`` ends with an Examples section whose lines click left as written, every option says
what it does, and group listings show each command's first sentence whole."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from taap.cli.main import cli
from taap.client.profiles import ENV_VARS


def _walk(
    command: click.Command, path: tuple[str, ...], parent: click.Context | None
) -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(command, info_name=path[-1], parent=parent)
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            found += _walk(sub, (*path, name), ctx)
    return found


TREE = _walk(cli, ("taap",), None)
IDS = [" ".join(path) for path, _ in TREE]


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path[1:], "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_walk_finds_the_tree() -> None:
    assert {"taap token", "taap pop verify", "taap portal admins add", "taap completion"} <= set(
        IDS
    )
    assert len(TREE) > 50


@pytest.mark.parametrize(("path", "command"), TREE, ids=IDS)
def test_help_ends_with_examples_kept_as_written(
    path: tuple[str, ...], command: click.Command
) -> None:
    text = _help(path)
    assert re.search(r"^  Examples:$", text, re.MULTILINE), text
    # The examples of the epilog, or of the docstring for commands that keep them there.
    source = command.epilog or command.help or ""
    written = [
        line.strip()
        for line in source.split("Examples:", 1)[1].splitlines()
        if line.strip() and line.strip() != "\b"
    ]
    assert written, source
    # Each example on its own line, unwrapped: click's rewrapping would join or split them.
    shown = {line.strip() for line in text.splitlines()}
    missing = [line for line in written if line not in shown]
    assert missing == [], text


@pytest.mark.parametrize(("path", "command"), TREE, ids=IDS)
def test_every_option_says_what_it_does(path: tuple[str, ...], command: click.Command) -> None:
    silent = [
        param.opts[0]
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert silent == [], f"{' '.join(path)}: options without help: {silent}"


GROUPS = [(path, command) for path, command in TREE if isinstance(command, click.Group)]


@pytest.mark.parametrize(("path", "group"), GROUPS, ids=[" ".join(path) for path, _ in GROUPS])
def test_group_listings_are_not_cut_mid_sentence(path: tuple[str, ...], group: click.Group) -> None:
    text = _help(path)
    listing = text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
    assert not re.search(r"\.\.\.\s*$", listing, re.MULTILINE), listing
    joined = " ".join(listing.split())
    for name, sub in group.commands.items():
        first = " ".join((sub.help or "").strip().split("\n\n")[0].split())
        sentence = re.split(r"(?<=[.!?])\s", first, maxsplit=1)[0].rstrip(".")
        assert f"{name} {sentence}" in joined, (name, sentence, listing)


def test_token_help_names_the_variables_it_reads() -> None:
    text = " ".join(_help(("taap", "token")).split())
    for variable in [*ENV_VARS.values(), "TAAP_PROFILE", "TAAP_CONFIG", "TAAP_KEY_PASSWORD"]:
        assert f"${variable}" in text, variable


def test_pop_verify_help_explains_the_pairs_format() -> None:
    text = _help(("taap", "pop", "verify"))
    assert "JSON array\n  of [name, value] pairs of strings" in text
    assert '[["Content-Type", "application/json"], ["uri", "/v1/x?id=7"],' in text
