"""``taap revoke`` and ``taap introspect`` against a token server on loopback (the client
tests' fake, which follows the endpoints' contract): output, standard input, one-line errors
and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from client._fake import FakeTaap
from client.conftest import CLIENT_ID, SECRET
from taap.cli.main import cli
from taap.client import ClientCredentials, Secret, TokenClient
from taap.core import PrivateKey

SIGNED = "Content-Type,Authorization,uri,http-method,body"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TAAP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MY_SECRET", SECRET)
    monkeypatch.setenv("RS_SECRET", "rs-secret")


@pytest.fixture
def key_file(tmp_path: Path, rsa_key: PrivateKey) -> str:
    path = tmp_path / "client.pem"
    path.write_bytes(rsa_key.to_pem())
    return str(path)


def run(*args: str, stdin: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def revoke(url: str, key_file: str, *args: str, stdin: str | bytes | None = None) -> Result:
    creds = ["--client-id", CLIENT_ID, "--client-secret-env", "MY_SECRET", "--key", key_file]
    return run("revoke", "--url", url, *creds, *args, stdin=stdin)


def introspect(url: str, *args: str, stdin: str | None = None) -> Result:
    return run(
        "introspect", "--url", url, "--id", "rs-1", "--secret-env", "RS_SECRET", *args, stdin=stdin
    )


def _live_token(fake_url: str, rsa_key: PrivateKey) -> str:
    credentials = ClientCredentials(client_id=CLIENT_ID, client_secret=Secret(SECRET), key=rsa_key)
    with TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials) as client:
        return client.fetch().access_token


# -- taap revoke ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/oauth2/v2/tokens", "/oauth2/v6/tokens", ""])
def test_revoke_prints_one_line(fake: FakeTaap, fake_url: str, key_file: str, path: str) -> None:
    result = revoke(fake_url + path, key_file, "tok.en-1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "revoked\n"
    assert result.stderr == ""
    assert fake.revocations == [{"token": "tok.en-1", "signed": SIGNED}]


def test_revoke_reads_standard_input(fake: FakeTaap, fake_url: str, key_file: str) -> None:
    result = revoke(fake_url, key_file, "-", stdin="  tok-from-stdin\n")
    assert result.exit_code == 0, result.output
    assert fake.revocations[0]["token"] == "tok-from-stdin"


def test_revoke_at_an_explicit_url(fake: FakeTaap, fake_url: str, key_file: str) -> None:
    result = revoke(
        "http://127.0.0.1:9/oauth2/v2/tokens",
        key_file,
        "--revocation-url",
        f"{fake_url}/oauth2/v1/revoke",
        "t",
    )
    assert result.exit_code == 0, result.output
    assert fake.revocations[0]["token"] == "t"


def test_revoke_takes_the_url_from_the_environment(
    fake: FakeTaap, fake_url: str, key_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAAP_TOKEN_URL", f"{fake_url}/oauth2/v2/tokens")
    creds = ["--client-id", CLIENT_ID, "--client-secret-env", "MY_SECRET", "--key", key_file]
    result = run("revoke", *creds, "t")
    assert result.exit_code == 0, result.output
    assert len(fake.revocations) == 1


@pytest.mark.parametrize(
    ("token", "stdin", "message"),
    [
        ("", None, "the token is empty"),
        ("-", "  \n", "the token is empty"),
        ("-", b"\xff\xfe", "standard input is not UTF-8"),
    ],
)
def test_revoke_bad_token_is_a_usage_error(
    fake: FakeTaap, fake_url: str, key_file: str, token: str, stdin: str | None, message: str
) -> None:
    result = revoke(fake_url, key_file, token, stdin=stdin)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert fake.revocations == []


def test_revoke_standard_input_is_capped(fake: FakeTaap, fake_url: str, key_file: str) -> None:
    result = revoke(fake_url, key_file, "-", stdin="t" * (1024 * 1024 + 1))
    assert result.exit_code == 1
    assert result.stderr == "body_too_large: standard input too large (> 1 MiB)\n"
    assert fake.revocations == []


def test_revoke_wrong_secret_is_one_line(
    fake: FakeTaap, fake_url: str, key_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SECRET", "wrong-" + SECRET)
    result = revoke(fake_url, key_file, "t")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("client_auth_failed: ")
    assert result.stderr.count("\n") == 1
    assert SECRET not in result.output


def test_revoke_unreachable_server_is_one_line(key_file: str) -> None:
    result = revoke("http://127.0.0.1:9/oauth2/v2/tokens", key_file, "t")
    assert result.exit_code == 1
    assert result.stderr == (
        "transport_error: cannot connect to the token server http://127.0.0.1:9/oauth2/v1/revoke:"
        " connection refused (4 attempts)\n"
    )


def test_revoke_missing_credentials(fake_url: str) -> None:
    result = run("revoke", "--url", fake_url, "t")
    assert result.exit_code == 1
    assert result.stderr.startswith("configuration_error: missing --client-id, --key")


@pytest.mark.parametrize("option", ["--revocation-url", "--url"])
def test_revoke_refuses_a_relative_url(key_file: str, option: str) -> None:
    result = revoke("http://127.0.0.1:9", key_file, option, "/oauth2/v1/revoke", "t")
    assert result.exit_code in (1, 2), result.output
    assert "absolute http(s) URL" in result.stderr


def test_revoke_help_has_examples() -> None:
    result = run("revoke", "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "taap revoke --url http://127.0.0.1:8000/oauth2/v2/tokens" in result.stdout
    assert "200 also for a token it" in " ".join(result.stdout.split())


# -- taap introspect --------------------------------------------------------------------------
def test_introspect_live_then_revoked(
    fake: FakeTaap, fake_url: str, key_file: str, rsa_key: PrivateKey
) -> None:
    fake.resource_servers["rs-1"] = "rs-secret"
    token = _live_token(fake_url, rsa_key)
    live = introspect(f"{fake_url}/oauth2/v2/tokens", token)
    assert live.exit_code == 0, live.output
    answer = json.loads(live.stdout)
    assert answer["active"] is True
    assert answer["client_id"] == CLIENT_ID
    # Piped, as every JSON output: compact, one line (a terminal gets it indented)
    assert live.stdout.startswith('{"active":true,')
    assert live.stdout.count("\n") == 1
    assert revoke(fake_url, key_file, token).exit_code == 0
    dead = introspect(fake_url, "-", stdin=token + "\n")
    assert dead.exit_code == 0, dead.output
    assert json.loads(dead.stdout) == {"active": False}


def test_introspect_wrong_credentials(fake: FakeTaap, fake_url: str) -> None:
    fake.resource_servers["rs-1"] = "another-secret"
    result = introspect(fake_url, "t")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("client_auth_failed: ")
    assert result.stderr.count("\n") == 1


def test_introspect_secret_variable_unset(fake_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RS_SECRET")
    result = introspect(fake_url, "t")
    assert result.exit_code == 1
    assert result.stderr == (
        "configuration_error: --secret-env: environment variable RS_SECRET is not set\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--url", "http://127.0.0.1:9", "--id", "rs:1", "--secret-env", "RS_SECRET", "t"],
        ["--url", "127.0.0.1:9", "--id", "rs-1", "--secret-env", "RS_SECRET", "t"],
        ["--url", "http://127.0.0.1:9", "--secret-env", "RS_SECRET", "t"],
        ["--url", "http://127.0.0.1:9", "--id", "rs-1", "--secret-env", "RS_SECRET"],
    ],
)
def test_introspect_usage_errors(args: list[str]) -> None:
    result = run("introspect", *args)
    assert result.exit_code == 2, result.output
    assert "Error: " in result.stderr


def test_introspect_help_has_examples() -> None:
    result = run("introspect", "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert '{"active": false}' in result.stdout
