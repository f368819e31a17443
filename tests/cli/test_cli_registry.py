"""`taap clients | apis | keys | db` through click's CliRunner on a temp SQLite file (and one
real subprocess, and PostgreSQL with TAAP_PEPPER)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kit.clients import with_registry
from kit.postgres import temporary_database
from kit.processes import run_taap
from taap.cli.main import cli
from taap.core import PrivateKey
from taap.server.registry.database import DEFAULT_DATABASE_URL, parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.port import Registry
from taap.server.registry.secrets import verify_secret


@pytest.fixture
def workdir(tmp_path: Path, rsa_key: PrivateKey, other_key: PrivateKey) -> Path:
    (tmp_path / "k1.pub").write_bytes(rsa_key.public.to_pem())
    (tmp_path / "k2.pub").write_bytes(other_key.public.to_pem())
    (tmp_path / "k2.jwk").write_text(json.dumps(dict(other_key.public.jwk)))
    return tmp_path


class Taap:
    """Runs `taap …` in-process against one database."""

    def __init__(self, url: str, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.env = {"TAAP_DATABASE_URL": url, "TAAP_PEPPER": "", **(env or {})}
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(cli, list(args), env=self.env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code == 1, result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def taap(workdir: Path) -> Taap:
    return Taap(f"sqlite:///{workdir}/taap.db")


def _client(url: str, client_id: str, pepper: bytes) -> Any:
    async def get(registry: Registry) -> Any:
        return await registry.get_client(client_id)

    return with_registry(url, get, environ={"TAAP_PEPPER": pepper.decode()})


def test_create_prints_id_and_secret_once(taap: Taap, workdir: Path) -> None:
    out = taap.json(
        "clients",
        "create",
        "--name",
        "Acme",
        "--public-key",
        str(workdir / "k1.pub"),
        "--api",
        "location",
        "--api",
        "sms-notification",
    )
    assert set(out) == {"client_id", "client_secret"}
    assert out["client_id"].startswith("taap-")
    assert len(out["client_secret"]) == 43
    # The pepper file was made beside the database, 0600, and the secret verifies with it.
    pepper_path = workdir / "pepper"
    assert stat.S_IMODE(pepper_path.stat().st_mode) == 0o600
    pepper = load_pepper(parse_database_url(taap.url))
    record = _client(taap.url, out["client_id"], pepper)
    assert verify_secret(pepper, out["client_secret"], record.secret_digests)
    assert record.apis == ("location", "sms-notification")
    # Never shown again: not in list, show, or their JSON.
    for args in (("clients", "list"), ("clients", "show", out["client_id"])):
        for extra in ((), ("--json",)):
            assert out["client_secret"] not in taap(*args, *extra).output


def test_create_human_output(taap: Taap, workdir: Path) -> None:
    result = taap(
        "clients",
        "create",
        "--name",
        "Acme",
        "--public-key",
        str(workdir / "k1.pub"),
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("client_id:     taap-")
    assert lines[1].startswith("client_secret: ")
    assert "shown only now" in result.stderr


def test_sandbox_client_flagged_weak(taap: Taap, workdir: Path) -> None:
    out = taap.json(
        "clients",
        "create",
        "--name",
        "Sandbox",
        "--public-key",
        str(workdir / "k1.pub"),
        "--public-key",
        str(workdir / "k2.jwk"),
        "--secret",
        "123:abc",
        "--client-id",
        "sandbox",
        "--api",
        "connectivity",
    )
    assert out == {"client_id": "sandbox", "client_secret": "123:abc"}
    listed = taap.json("clients", "list")
    assert [(c["client_id"], c["weak_secret"], len(c["keys"])) for c in listed] == [
        ("sandbox", True, 2)
    ]
    table = taap("clients", "list").stdout
    assert "sandbox" in table
    assert "WEAK" in table
    assert "123:abc" not in table
    assert "yes" in taap("clients", "show", "sandbox").stdout


def test_full_lifecycle(taap: Taap, workdir: Path, other_key: PrivateKey) -> None:
    cid = taap.json(
        "clients",
        "create",
        "--name",
        "L",
        "--public-key",
        str(workdir / "k1.pub"),
        "--client-id",
        "life",
    )["client_id"]
    assert taap("clients", "disable", cid).stdout.strip() == "life: disabled"
    assert taap.json("clients", "show", cid)["status"] == "disabled"
    assert taap("clients", "enable", cid).stdout.strip() == "life: active"

    added = taap("clients", "add-key", cid, str(workdir / "k2.pub")).stdout
    assert other_key.thumbprint in added
    assert len(taap.json("clients", "show", cid)["keys"]) == 2
    taap("clients", "remove-key", cid, other_key.thumbprint)
    assert taap.json("clients", "show", cid)["keys"] != [other_key.thumbprint]
    assert len(taap.json("clients", "show", cid)["keys"]) == 1

    taap("clients", "subscribe", cid, "fraud-prevention")
    taap("clients", "subscribe", cid, "location")
    taap("clients", "unsubscribe", cid, "location")
    assert taap.json("clients", "show", cid)["apis"] == ["fraud-prevention"]

    rotated = taap.json("clients", "rotate-secret", cid, "--grace", "30")
    assert rotated["client_id"] == cid
    assert len(rotated["client_secret"]) == 43
    assert taap.json("clients", "show", cid)["secrets"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("clients", "show", "nobody"), "not_found: unknown client 'nobody'"),
        (("clients", "disable", "nobody"), "not_found: unknown client 'nobody'"),
        (("clients", "subscribe", "nobody", "location"), "not_found"),
        (("clients", "remove-key", "nobody", "x"), "not_found"),
        (("keys", "retire", "nokid"), "not_found: no signing key 'nokid'"),
        # base64url values may start with '-': still the argument, never an unknown option
        (("clients", "remove-key", "nobody", "-Eya_x"), "not_found"),
        (("keys", "retire", "-Eya_x"), "not_found: no signing key '-Eya_x'"),
    ],
)
def test_errors_are_one_line(taap: Taap, args: tuple[str, ...], message: str) -> None:
    result = taap(*args, ok=False)
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_bad_inputs(taap: Taap, workdir: Path, tmp_path: Path) -> None:
    (tmp_path / "private.pem").write_text("-----BEGIN PRIVATE KEY-----\nxx\n")
    result = taap(
        "clients",
        "create",
        "--name",
        "x",
        "--public-key",
        str(tmp_path / "private.pem"),
        ok=False,
    )
    assert "key_invalid" in result.stderr
    result = taap(
        "clients",
        "create",
        "--name",
        "x",
        "--public-key",
        str(workdir / "k1.pub"),
        "--api",
        "nope",
        ok=False,
    )
    assert "not_found: unknown API 'nope'" in result.stderr
    assert taap.json("clients", "list") == []


def test_public_key_from_stdin(taap: Taap, rsa_key: PrivateKey) -> None:
    result = taap.runner.invoke(
        cli,
        ["clients", "create", "--name", "s", "--public-key", "-", "--json"],
        input=rsa_key.public.to_pem().decode(),
        env=taap.env,
    )
    assert result.exit_code == 0, result.output
    cid = json.loads(result.stdout)["client_id"]
    assert taap.json("clients", "show", cid)["keys"] == [rsa_key.thumbprint]


def test_apis(taap: Taap, workdir: Path) -> None:
    ids = [p["id"] for p in taap.json("apis", "list")]
    assert ids == [
        "call-verification",
        "connectivity",
        "fraud-prevention",
        "location",
        "sms-notification",
    ]
    created = taap.json(
        "apis",
        "create",
        "weather",
        "--name",
        "Weather",
        "--token-server",
        "v6",
        "--base-path",
        "/weather/v1",
    )
    assert created == {
        "id": "weather",
        "name": "Weather",
        "token_server": "v6",
        "base_path": "/weather/v1",
    }
    assert "weather" in taap("apis", "list").stdout
    taap("apis", "create", "weather", "--token-server", "v2", "--base-path", "/w", ok=False)
    taap(
        "clients",
        "create",
        "--name",
        "w",
        "--public-key",
        str(workdir / "k1.pub"),
        "--api",
        "weather",
    )


def test_keys_rotate_and_retire(taap: Taap) -> None:
    first = taap.json("keys", "list")
    assert [k["state"] for k in first] == ["active"]
    out = taap("keys", "rotate").stdout
    new_kid = out.split()[3]
    listed = taap.json("keys", "list")
    assert [k["kid"] for k in listed] == [new_kid, first[0]["kid"]]
    assert [k["state"] for k in listed] == ["active", "published"]
    assert listed[1]["publish_until"] is not None
    assert "published until" in taap("keys", "list").stdout
    taap("keys", "retire", new_kid, ok=False)  # the active key
    taap("keys", "retire", first[0]["kid"])
    assert [k["kid"] for k in taap.json("keys", "list")] == [new_kid]
    history = taap.json("keys", "list", "--all")
    assert [(k["kid"], k["state"]) for k in history] == [
        (new_kid, "active"),
        (first[0]["kid"], "retired"),
    ]


def test_db_upgrade_creates_schema_key_and_pepper(workdir: Path) -> None:
    taap = Taap(f"sqlite:///{workdir}/fresh.db")
    out = taap("db", "upgrade").stdout
    assert "schema at revision 0005" in out
    assert (workdir / "fresh.db").exists()
    assert (workdir / "pepper").exists()
    assert len(taap.json("keys", "list")) == 1
    out = taap("db", "downgrade", "base", "--yes").stdout
    assert "base (empty)" in out
    refused = taap.runner.invoke(cli, ["db", "downgrade", "base"], env=taap.env)
    assert refused.exit_code == 2
    assert "Missing option '--yes'" in refused.output


def test_database_url_option_beats_env(workdir: Path) -> None:
    taap = Taap(f"sqlite:///{workdir}/env.db")
    taap("clients", "list", "--database-url", f"sqlite:///{workdir}/opt.db")
    assert (workdir / "opt.db").exists()
    assert not (workdir / "env.db").exists()


def test_default_database_url(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    result = CliRunner().invoke(
        cli, ["apis", "list", "--json"], env={"TAAP_DATABASE_URL": None, "TAAP_PEPPER": None}
    )
    assert result.exit_code == 0, result.output
    assert DEFAULT_DATABASE_URL == "sqlite:///./taap.db"
    assert (workdir / "taap.db").exists()
    assert (workdir / "pepper").exists()


def test_unparseable_url_is_one_line_without_password(workdir: Path) -> None:
    taap = Taap("mysql://root:hunter2@h/db")
    result = taap("clients", "list", ok=False)
    assert "configuration_error: unsupported database 'mysql'" in result.stderr
    assert "hunter2" not in result.output


def test_postgres_needs_pepper_then_works(postgres_url: str, workdir: Path) -> None:
    with temporary_database(postgres_url, "taap_cli") as url:
        without = Taap(url)
        result = without("clients", "list", ok=False)
        assert "TAAP_PEPPER is required with PostgreSQL" in result.stderr
        assert "taap:" not in result.stderr.split("required")[0].replace("configuration_error:", "")
        taap = Taap(url, env={"TAAP_PEPPER": "a-pepper-for-postgres-tests"})
        out = taap.json(
            "clients",
            "create",
            "--name",
            "pg",
            "--public-key",
            str(workdir / "k1.pub"),
            "--api",
            "location",
        )
        record = _client(url, out["client_id"], b"a-pepper-for-postgres-tests")
        assert verify_secret(
            b"a-pepper-for-postgres-tests", out["client_secret"], record.secret_digests
        )
        assert [c["client_id"] for c in taap.json("clients", "list")] == [out["client_id"]]


def test_real_subprocess(workdir: Path) -> None:
    """The installed console script, as a user runs it (SQLite default in the working dir)."""
    create = run_taap(
        "clients",
        "create",
        "--name",
        "Sub",
        "--public-key",
        "k1.pub",
        "--api",
        "connectivity",
        "--json",
        cwd=workdir,
    )
    assert create.returncode == 0, create.stderr
    out = json.loads(create.stdout)
    listing = run_taap("clients", "list", cwd=workdir)
    assert listing.returncode == 0, listing.stderr
    assert out["client_id"] in listing.stdout
    assert out["client_secret"] not in listing.stdout
    pepper = (workdir / "pepper").read_text().strip().encode()
    record = _client(f"sqlite:///{workdir}/taap.db", out["client_id"], pepper)
    assert verify_secret(pepper, out["client_secret"], record.secret_digests)


def test_id_prefix_option_and_env(taap: Taap, workdir: Path) -> None:
    pub = str(workdir / "k1.pub")
    out = taap.json("clients", "create", "--name", "p", "--public-key", pub, "--id-prefix", "acme-")
    assert out["client_id"].startswith("acme-")
    assert len(out["client_id"]) == len("acme-") + 32
    env_taap = Taap(taap.url, env={"TAAP_CLIENT_ID_PREFIX": "sbx_"})
    assert env_taap.json("clients", "create", "--name", "q", "--public-key", pub)[
        "client_id"
    ].startswith("sbx_")
    bad = taap(
        "clients", "create", "--name", "r", "--public-key", pub, "--id-prefix", "a:b", ok=False
    )
    assert "client id prefix" in bad.stderr
