"""`taap clients revoke-tokens | disable | unsubscribe` and `taap resource-servers` through
click's CliRunner on a temp SQLite file and on PostgreSQL: what they write to the registry,
their human and --json output, and one-line errors."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kit.clients import with_registry
from kit.postgres import temporary_database
from taap.cli.main import cli
from taap.core import PrivateKey
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.port import Registry, RevocationEntry
from taap.server.registry.secrets import verify_secret

PG_PEPPER = "a-pepper-for-postgres-tests"


class Taap:
    """Runs `taap …` in-process against one database."""

    def __init__(self, url: str, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.env = {"TAAP_DATABASE_URL": url, "TAAP_PEPPER": "", **(env or {})}
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(cli, list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == (0 if ok else 1), result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def registry(self, work: Any) -> Any:
        return with_registry(self.url, work, environ=self.env)

    def revocations(self) -> Sequence[RevocationEntry]:
        async def read(registry: Registry) -> Sequence[RevocationEntry]:
            return await registry.revocations_after(0)

        return list(self.registry(read))

    def client(self, public_key: Path, *apis: str) -> str:
        args = [f"--api={api}" for api in apis]
        made = self.json("clients", "create", "--name", "c", "--public-key", str(public_key), *args)
        return str(made["client_id"])


@pytest.fixture
def taap(tmp_path: Path) -> Taap:
    return Taap(f"sqlite:///{tmp_path}/taap.db")


@pytest.fixture
def public_key(tmp_path: Path, rsa_key: PrivateKey) -> Path:
    path = tmp_path / "k.pub"
    path.write_bytes(rsa_key.public.to_pem())
    return path


def test_revoke_all_tokens(taap: Taap, public_key: Path) -> None:
    cid = taap.client(public_key)
    line = taap("clients", "revoke-tokens", cid).stdout
    assert line.startswith(f"{cid}: revoked every token issued before 20")
    assert line.count("\n") == 1
    out = taap.json("clients", "revoke-tokens", cid)
    assert set(out) == {"client_id", "revoked", "not_before"}
    assert (out["client_id"], out["revoked"]) == (cid, "all")
    entries = taap.revocations()
    assert [(e.kind, e.client_id) for e in entries] == [("client", cid), ("client", cid)]
    assert entries[-1].not_before == out["not_before"]
    assert taap.json("clients", "show", cid)["status"] == "active"  # revoked, not disabled


def test_revoke_given_jtis(taap: Taap, public_key: Path) -> None:
    cid = taap.client(public_key)
    line = taap("clients", "revoke-tokens", cid, "--jti", "j-1").stdout
    assert line == f"{cid}: revoked 1 token(s)\n"
    out = taap.json("clients", "revoke-tokens", cid, "--jti", "j-2", "--jti", "j-3", "--jti", "j-2")
    assert out == {"client_id": cid, "revoked": ["j-2", "j-3"]}
    entries = taap.revocations()
    assert [(e.kind, e.jti) for e in entries] == [("token", f"j-{n}") for n in (1, 2, 3)]
    # An operator's jti comes without its exp: kept as long as the longest token lives.
    assert all(e.expires_at > time.time() + 86400 for e in entries)


def test_disable_and_unsubscribe_revoke_live_tokens(taap: Taap, public_key: Path) -> None:
    cid = taap.client(public_key, "location", "sms-notification")
    assert taap("clients", "disable", cid).stdout == f"{cid}: disabled\n"
    taap("clients", "enable", cid)
    taap("clients", "unsubscribe", cid, "location")
    taap("clients", "subscribe", cid, "location")
    entries = taap.revocations()
    assert [(e.kind, e.api_id) for e in entries] == [("client", None), ("product", "location")]
    helps = {
        command: " ".join(taap("clients", command, "--help").stdout.split())
        for command in ("disable", "unsubscribe")
    }
    assert "its live tokens are revoked" in helps["disable"]
    assert "its live tokens lose the product" in helps["unsubscribe"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("clients", "revoke-tokens", "nobody"), "not_found: unknown client 'nobody'"),
        (("clients", "revoke-tokens", "nobody", "--jti", "x"), "not_found: unknown client"),
        (("resource-servers", "disable", "rs_nobody"), "not_found: unknown resource server"),
        (("resource-servers", "enable", "nobody"), "not_found: unknown resource server"),
        (("resource-servers", "rotate-secret", "rs_x"), "not_found: unknown resource server"),
        (("resource-servers", "remove", "rs_x"), "not_found: unknown resource server 'rs_x'"),
        (("resource-servers", "create", "--name", " "), "resource server name must be"),
    ],
)
def test_errors_are_one_line(taap: Taap, args: tuple[str, ...], message: str) -> None:
    result = taap(*args, ok=False)
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_bad_jti_is_one_line(taap: Taap, public_key: Path) -> None:
    cid = taap.client(public_key)
    result = taap("clients", "revoke-tokens", cid, "--jti", "x" * 300, ok=False)
    assert result.stderr.strip() == (
        "configuration_error: a token id (jti) must be 1-256 printable characters"
    )
    assert taap.revocations() == []


def test_resource_server_lifecycle(taap: Taap) -> None:
    made = taap.json("resource-servers", "create", "--name", "Gateway")
    assert set(made) == {"id", "secret"}
    rs_id, secret = made["id"], made["secret"]
    assert rs_id.startswith("rs_")

    def stored() -> Any:
        async def read(registry: Registry) -> Any:
            return await registry.get_resource_server(rs_id)

        return taap.registry(read)

    pepper = load_pepper(parse_database_url(taap.url), None)
    assert verify_secret(pepper, secret, stored().secret_digests)

    listed = taap("resource-servers", "list").stdout
    assert rs_id in listed
    assert "Gateway" in listed
    as_json = taap.json("resource-servers", "list")
    assert [(r["id"], r["name"], r["status"], r["secrets"]) for r in as_json] == [
        (rs_id, "Gateway", "active", 1)
    ]
    assert taap("resource-servers", "disable", rs_id).stdout == f"{rs_id}: disabled\n"
    assert stored().status == "disabled"
    assert taap("resource-servers", "enable", rs_id).stdout == f"{rs_id}: active\n"

    rotated = taap.json("resource-servers", "rotate-secret", rs_id, "--grace", "60")
    assert rotated["id"] == rs_id
    digests = stored().secret_digests
    assert verify_secret(pepper, rotated["secret"], digests)
    assert verify_secret(pepper, secret, digests)  # during the grace period
    human = taap("resource-servers", "rotate-secret", rs_id)
    new = human.stdout.splitlines()[1].removeprefix("secret: ")
    assert human.stdout.startswith(f"id:     {rs_id}\nsecret: ")
    assert "shown only now" in human.stderr
    assert not verify_secret(pepper, rotated["secret"], stored().secret_digests)
    assert verify_secret(pepper, new, stored().secret_digests)

    # Listings never show a secret or a digest.
    for text in (taap("resource-servers", "list").stdout, json.dumps(as_json)):
        for value in (secret, rotated["secret"], new, *(d.hex() for d in digests)):
            assert value not in text

    assert taap("resource-servers", "remove", rs_id).stdout == f"{rs_id}: removed\n"
    assert stored() is None
    assert taap.json("resource-servers", "list") == []


def test_resource_servers_on_postgres(postgres_url: str, public_key: Path) -> None:
    with temporary_database(postgres_url, "taap_cli_rev") as url:
        taap = Taap(url, env={"TAAP_PEPPER": PG_PEPPER})
        made = taap.json("resource-servers", "create", "--name", "pg")
        assert [r["id"] for r in taap.json("resource-servers", "list")] == [made["id"]]
        cid = taap.client(public_key, "location")
        taap("clients", "unsubscribe", cid, "location")
        out = taap.json("clients", "revoke-tokens", cid)
        entries = taap.revocations()
        assert [e.kind for e in entries] == ["product", "client"]
        assert entries[-1].not_before == out["not_before"]
        taap("resource-servers", "remove", made["id"])
        assert taap.json("resource-servers", "list") == []
