"""Arguments that may begin with ``-``: kids, key thumbprints, client ids, tokens.

Kids and thumbprints are base64url, so one in 64 begins with ``-`` (``-ot4JCt1o…``); client ids
may too. click reads such a value as a cluster of short options: ``-ot4J…h…`` is ``-o``,
``-t``, … and ``-h``, which prints the help and exits 0 without doing anything. Commands of
:class:`LiteralValuesCommand` read their arguments by this rule instead:

* a token that is exactly one of the command's options (``--json``, ``-h``, ``--help``), or a
  long option with ``=`` (``--database-url=…``), is that option, and takes its value(s) from
  the following tokens whatever they look like;
* every other token is a value for the command's arguments, in order, even when it begins
  with ``-``. Short options are never clustered or glued to their value here (``-ab``,
  ``-ofile``): such a token is a value.
* after ``--``, tokens fill the arguments still open; once all are filled, options are read
  again, so ``taap keys retire -- -h --database-url URL`` retires the key ``-h``.

A value that is exactly an option's name (a client id ``--json``) must follow ``--``. Too many
values is an error (exit 2), never a silent success; when some of them look like long options
(``--databse-url``), click's "No such option" error names them.
"""

from __future__ import annotations

import itertools
import math

import click

__all__ = ["LiteralValuesCommand", "LiteralValuesGroup", "literal_order"]


def _option_arity(params: list[click.Parameter]) -> dict[str, int]:
    """Every option string of ``params`` → how many values follow it (0 for a flag)."""
    arity: dict[str, int] = {}
    for param in params:
        if isinstance(param, click.Option):
            takes = 0 if param.is_flag or param.count else param.nargs
            for name in (*param.opts, *param.secondary_opts):
                arity[name] = takes
    return arity


def _slots(params: list[click.Parameter]) -> float:
    arguments = [p.nargs for p in params if isinstance(p, click.Argument)]
    return math.inf if any(n < 0 for n in arguments) else float(sum(arguments))


def literal_order(params: list[click.Parameter], args: list[str]) -> list[str]:
    """``args`` rewritten as ``[options..., "--", values...]`` by the rule of this module, so
    click's own parser can only take a value for a value."""
    arity, slots = _option_arity(params), _slots(params)
    options: list[str] = []
    values: list[str] = []
    loose: list[str] = []  # values not forced by "--" that look like long options
    seen_dashes = False
    tokens = iter(args)
    for token in tokens:
        if seen_dashes and len(values) < slots:
            values.append(token)
        elif token == "--" and not seen_dashes:
            seen_dashes = True
        elif token in arity:
            options.append(token)
            options.extend(itertools.islice(tokens, arity[token]))
        elif token.startswith("--") and arity.get(token.partition("=")[0], 0) > 0:
            options.append(token)
        else:
            values.append(token)
            if token.startswith("--"):
                loose.append(token)
    if len(values) > slots and loose:
        # Too many values and some look like long options: most likely a mistyped option.
        # Handing those to click gets its "No such option: --x (did you mean --y?)" error.
        options = [*loose, *options]
    return [*options, "--", *values] if values else options


class LiteralValuesCommand(click.Command):
    """A command whose arguments may begin with ``-`` (the module's rule)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:  # keeps no_args_is_help and click's own missing-argument errors
            return super().parse_args(ctx, args)
        return super().parse_args(ctx, literal_order(self.get_params(ctx), args))


class LiteralValuesGroup(click.Group):
    """A group whose commands (made with ``@group.command``) are :class:`LiteralValuesCommand`."""

    command_class = LiteralValuesCommand
