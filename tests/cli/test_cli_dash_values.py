"""Kids, key thumbprints, client ids and tokens that begin with ``-`` are taken as given, with
or without ``--``, and no parsing accident ends in exit 0 without the work done.

Kids and thumbprints are base64url (one in 64 begins with ``-``): the values here are fixed,
written into the registry directly where the registry would pick them at random."""

from __future__ import annotations

import json
import sqlite3
import string
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from client._fake import FakeTaap
from client.conftest import CLIENT_ID, SECRET
from kit.loopback import serve
from taap.cli._args import literal_order
from taap.cli.main import cli
from taap.core import PrivateKey

#: The kid of the report: ``-o`` and ``-t`` are short-option letters and it holds an ``h``.
ISSUE_KID = "-ot4JCt1oIkPG3hOAJHLjP6pZKFk9qisY65f0-67Onw"
#: 43-character base64url values: a leading "-h", a leading "--", "-o" and "--" inside.
DASH_VALUES = [
    ISSUE_KID,
    "-hJCt1oIkPG3hOAJHLjP6pZKFk9qisY65f0-67Onw_x",
    "--help_IkPG3hOAJHLjP6pZKFk9qisY65f0-67Onw_x",
    "-o--h-Ct1oIkPG3hOAJHLjP6pZKFk9qisY65f0-67Ox",
    "-_-h--json-PG3hOAJHLjP6pZKFk9qisY65f0-67Oxy",
]
#: Values that are exactly an option's name: only after "--" are they values.
OPTION_NAMES = ["-h", "--help", "--json", "--database-url", "--"]
B64URL = string.ascii_letters + string.digits + "-_"


class Taap:
    """``taap …`` in-process against one SQLite registry; ``--database-url`` is passed in a
    different place each time so options before, between and after values are covered."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "taap.db"
        self.url = f"sqlite:///{self.path}"
        self.runner = CliRunner()
        self.calls = 0

    def __call__(self, *args: str, dashes: bool = False) -> Result:
        self.calls += 1
        where = self.calls % 3
        db = ["--database-url", self.url] if where else [f"--database-url={self.url}"]
        command, values = list(args[:2]), list(args[2:])
        if dashes:
            line = [*command, *db, "--", *values] if where == 1 else [*command, "--", *values, *db]
        else:
            line = [*command, *values, *db] if where == 1 else [*command, *db, *values]
        env = {"TAAP_PEPPER": "", "TAAP_DATABASE_URL": None}
        return self.runner.invoke(cli, line, env=env, catch_exceptions=False)

    def sql(self, statement: str, *params: str) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.execute(statement, params)


@pytest.fixture
def taap(tmp_path: Path) -> Taap:
    return Taap(tmp_path)


def _published_key(taap: Taap, kid: str) -> None:
    """A rotated-out signing key whose kid is ``kid``."""
    first = taap("keys", "list")
    assert first.exit_code == 0, first.output
    rotated = taap("keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    with sqlite3.connect(taap.path) as conn:
        (old,) = conn.execute(
            "SELECT kid FROM signing_keys WHERE publish_until IS NOT NULL AND NOT retired"
        ).fetchone()
        conn.execute("UPDATE signing_keys SET kid = ? WHERE kid = ?", (kid, old))


@pytest.mark.parametrize("dashes", [False, True], ids=["bare", "after--"])
@pytest.mark.parametrize("kid", DASH_VALUES)
def test_keys_retire_retires_a_kid_that_begins_with_a_dash(
    taap: Taap, kid: str, dashes: bool
) -> None:
    _published_key(taap, kid)
    result = taap("keys", "retire", kid, dashes=dashes)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"signing key {kid} retired\n"
    with sqlite3.connect(taap.path) as conn:
        rows = conn.execute("SELECT retired FROM signing_keys WHERE kid = ?", (kid,)).fetchall()
    assert rows == [(1,)]


@pytest.mark.parametrize("kid", OPTION_NAMES)
def test_a_kid_that_is_an_option_name_follows_dashes(taap: Taap, kid: str) -> None:
    _published_key(taap, kid)
    result = taap("keys", "retire", kid, dashes=True)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"signing key {kid} retired\n"


@pytest.mark.parametrize("dashes", [False, True], ids=["bare", "after--"])
def test_client_commands_take_dash_ids_and_thumbprints(
    taap: Taap, tmp_path: Path, rsa_key: PrivateKey, other_key: PrivateKey, dashes: bool
) -> None:
    client, print2 = DASH_VALUES[1], DASH_VALUES[3]
    (tmp_path / "k1.pub").write_bytes(rsa_key.public.to_pem())
    (tmp_path / "k2.pub").write_bytes(other_key.public.to_pem())
    created = taap(
        "clients", "create", "--name", "n", "--public-key", str(tmp_path / "k1.pub"),
        "--client-id", client,
    )  # fmt: skip
    assert created.exit_code == 0, created.output

    def ok(*args: str) -> str:
        result = taap(*args, dashes=dashes)
        assert result.exit_code == 0, result.output
        return result.stdout

    # After "--" too, once CLIENT_ID is filled, --json is the option again.
    assert json.loads(ok("clients", "show", client, "--json"))["client_id"] == client
    assert ok("clients", "disable", client) == f"{client}: disabled\n"
    assert ok("clients", "enable", client) == f"{client}: active\n"
    assert ok("clients", "subscribe", client, "location") == f"{client}: subscribed to location\n"
    assert ok("clients", "unsubscribe", client, "location") == f"{client}: subscribed to nothing\n"
    assert "client_secret: " in ok("clients", "rotate-secret", client)
    added = ok("clients", "add-key", client, str(tmp_path / "k2.pub"))
    assert added == f"{client}: added key {other_key.thumbprint}\n"
    taap.sql(
        "UPDATE client_keys SET thumbprint = ? WHERE thumbprint = ?", print2, other_key.thumbprint
    )
    assert ok("clients", "remove-key", client, print2) == f"{client}: removed key {print2}\n"
    with sqlite3.connect(taap.path) as conn:
        rows = conn.execute("SELECT thumbprint FROM client_keys WHERE client_id = ?", (client,))
        prints = [row[0] for row in rows]
    assert prints == [rsa_key.thumbprint]


def _value_commands(value: str) -> list[tuple[str, ...]]:
    """Every command taking a kid, thumbprint, client id or token, with ``value`` as it."""
    return [
        ("keys", "retire", value),
        ("clients", "show", value),
        ("clients", "disable", value),
        ("clients", "enable", value),
        ("clients", "rotate-secret", value),
        ("clients", "subscribe", value, "location"),
        ("clients", "unsubscribe", value, "location"),
        ("clients", "add-key", value, "k.pub"),
        ("clients", "remove-key", "known", value),
        ("clients", "revoke-tokens", value),
        ("resource-servers", "disable", value),
        ("resource-servers", "enable", value),
        ("resource-servers", "rotate-secret", value),
        ("resource-servers", "remove", value),
        ("pop", "decode", value),
    ]


@pytest.mark.parametrize(
    ("value", "dashes"),
    [*((v, False) for v in DASH_VALUES), *((v, True) for v in DASH_VALUES + OPTION_NAMES)],
)
def test_no_command_exits_0_having_done_nothing(
    taap: Taap,
    tmp_path: Path,
    rsa_key: PrivateKey,
    value: str,
    dashes: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unknown ids: each command must reach the registry with the value intact and fail there
    (exit 1 naming it), never print help or parse the value as options and exit 0."""
    monkeypatch.chdir(tmp_path)
    Path("k.pub").write_bytes(rsa_key.public.to_pem())
    created = taap(
        "clients", "create", "--name", "n", "--public-key", "k.pub", "--client-id", "known"
    )
    assert created.exit_code == 0, created.output
    for args in _value_commands(value):
        if args[0] == "pop":
            result = CliRunner().invoke(
                cli, ["pop", "decode", *(["--"] if dashes else []), value], catch_exceptions=False
            )
            assert result.exit_code == 1, (args, result.output)
            assert result.stderr.startswith("pop_malformed: "), (args, result.output)
            continue
        result = taap(*args, dashes=dashes)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("not_found: "), (args, result.output)
        assert repr(value) in result.stderr, (args, result.output)


@pytest.mark.parametrize(
    "line",
    [
        ["keys", "retire"],  # no kid
        ["keys", "retire", "-a", "-b"],  # two kids
        ["keys", "retire", "--", "-a", "-b"],
        ["keys", "retire", "--databse-url", "x", "-a"],  # a mistyped option
        ["keys", "rotate", "-ot4J"],  # a command without arguments
        ["clients", "show", "--database-url"],  # an option without its value
        ["clients", "remove-key", "-only-one"],
    ],
)
def test_parsing_mistakes_fail(taap: Taap, line: list[str]) -> None:
    result = CliRunner().invoke(
        cli, line, env={"TAAP_DATABASE_URL": taap.url, "TAAP_PEPPER": ""}, catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    assert "Error: " in result.output


def test_help_is_still_help(taap: Taap) -> None:
    for line in (["keys", "retire", "-h"], ["clients", "show", "--help"], ["pop", "decode", "-h"]):
        result = CliRunner().invoke(cli, line, catch_exceptions=False)
        assert result.exit_code == 0
        assert result.stdout.startswith("Usage: "), result.output
    assert "begins with '-'" in CliRunner().invoke(cli, ["keys", "retire", "-h"]).stdout


# -- the rule itself, on every leading pair of base64url characters ------------------------------
_PARAMS: list[click.Parameter] = [
    click.Argument(["kid"]),
    click.Option(["-o", "--output"]),
    click.Option(["--json"], is_flag=True),
    click.Option(["-h", "--help"], is_flag=True),
]


def test_every_leading_pair_is_a_value() -> None:
    tail = "t4JCt1oIkPG3hOAJHLjP6pZKFk9qisY65f0-67On"
    for first in B64URL:
        for second in B64URL:
            value = f"{first}{second}{tail}"
            assert literal_order(_PARAMS, [value]) == ["--", value]
            assert literal_order(_PARAMS, ["-o", "f", value, "--json"]) == [
                "-o", "f", "--json", "--", value,
            ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-h"], ["-h"]),
        (["--", "-h"], ["--", "-h"]),
        (["--", "-h", "--json"], ["--json", "--", "-h"]),
        (["--", "--", "--json"], ["--json", "--", "--"]),
        (["-o", "-h", "-x"], ["-o", "-h", "--", "-x"]),
        (["--output=-h", "-x"], ["--output=-h", "--", "-x"]),
        (["-ofile", "-x"], ["--", "-ofile", "-x"]),
        (["-x", "-y", "--nope"], ["--nope", "--", "-x", "-y", "--nope"]),
        (["--nope"], ["--", "--nope"]),
        ([], []),
    ],
)
def test_the_rule(args: list[str], expected: list[str]) -> None:
    assert literal_order(_PARAMS, args) == expected


@pytest.mark.parametrize("value", [*DASH_VALUES, "-h", "--help"])
def test_pop_verify_takes_a_dash_token(tmp_path: Path, rsa_key: PrivateKey, value: str) -> None:
    (tmp_path / "k.pub").write_bytes(rsa_key.public.to_pem())
    (tmp_path / "ehts.json").write_text("[]")
    for token in (["--token", value], [f"--token={value}"]):
        line = ["pop", "verify", "--public-key", str(tmp_path / "k.pub"), *token]
        result = CliRunner().invoke(
            cli, [*line, "--ehts-json", str(tmp_path / "ehts.json")], catch_exceptions=False
        )
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("pop_malformed: "), result.output


# -- taap revoke and taap introspect: a token that begins with '-' -------------------------------
@pytest.fixture
def token_server(
    rsa_key: PrivateKey, other_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeTaap, str]]:
    monkeypatch.setenv("DASH_SECRET", SECRET)
    fake = FakeTaap(
        client_id=CLIENT_ID, secret=SECRET, client_key=rsa_key.public, server_key=other_key
    )
    fake.resource_servers["rs-1"] = SECRET
    with serve(fake.app()) as url:
        yield fake, url


@pytest.mark.parametrize(
    ("value", "dashes"),
    [*((v, False) for v in DASH_VALUES), *((v, True) for v in DASH_VALUES + OPTION_NAMES)],
)
def test_revoke_and_introspect_send_a_dash_token_intact(
    token_server: tuple[FakeTaap, str],
    tmp_path: Path,
    rsa_key: PrivateKey,
    value: str,
    dashes: bool,
) -> None:
    fake, url = token_server
    (tmp_path / "k.pem").write_bytes(rsa_key.to_pem())
    creds = ["--client-id", CLIENT_ID, "--client-secret-env", "DASH_SECRET"]
    revoke = ["revoke", "--url", url, *creds, "--key", str(tmp_path / "k.pem")]
    introspect = ["introspect", "--url", url, "--id", "rs-1", "--secret-env", "DASH_SECRET"]
    for line in (revoke, introspect):
        options, command = line[1:], line[:1]
        # the value first, between the options, and last
        for args in ([*command, value, *options], [*command, *options[:2], value, *options[2:]]):
            if dashes:
                args = [*command, *options, "--", value]
            result = CliRunner().invoke(cli, args, catch_exceptions=False)
            assert result.exit_code == 0, (args, result.output)
            assert not result.stdout.startswith("Usage: "), (args, result.output)
    assert {r["token"] for r in fake.revocations} == {value}
