"""``taap token`` / ``taap call`` / ``taap configure`` against servers on loopback."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from client._fake import FakeTaap
from client.conftest import CLIENT_ID, SECRET
from taap.cli.main import cli
from taap.core import PrivateKey

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


pytestmark = pytest.mark.usefixtures("no_taap_settings")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def creds(key_file: str) -> list[str]:
    return ["--client-id", CLIENT_ID, "--client-secret-env", "MY_SECRET", "--key", key_file]


# -- taap token ---------------------------------------------------------------------------


def test_token_prints_the_access_token(fake: FakeTaap, fake_url: str, key_file: str) -> None:
    result = run("token", "--url", f"{fake_url}/oauth2/v2/tokens", *creds(key_file))
    assert result.exit_code == 0, result.output
    assert result.output.strip().count(".") == 2
    assert fake.token_requests == 1


def test_token_json_v6_by_path_and_forced(fake: FakeTaap, fake_url: str, key_file: str) -> None:
    by_path = run("token", "--url", f"{fake_url}/oauth2/v6/tokens", *creds(key_file), "--json")
    assert by_path.exit_code == 0, by_path.output
    assert json.loads(by_path.output)["expires_in"] == "3599"
    assert json.loads(fake.token_bodies[-1])["scope"] == "response_mode"
    # --v6 against a v2 URL sends the v6 body, which this (A4-faithful) v2 server refuses.
    forced = run("token", "--url", f"{fake_url}/oauth2/v2/tokens", *creds(key_file), "--v6")
    assert forced.exit_code == 1
    assert forced.output.startswith("body_invalid:")


def test_token_store_id_needs_v6(fake_url: str, key_file: str) -> None:
    result = run(
        "token", "--url", f"{fake_url}/oauth2/v2/tokens", *creds(key_file), "--store-id", "S"
    )
    assert result.exit_code == 1
    assert "storeId" in result.output


def test_token_wrong_secret_is_one_clean_line(
    fake_url: str, key_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SECRET", "wrong-" + SECRET)
    result = run("token", "--url", f"{fake_url}/oauth2/v2/tokens", *creds(key_file))
    assert result.exit_code == 1
    assert result.output.startswith("client_auth_failed:")
    assert SECRET not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_token_missing_options_are_named(key_file: str) -> None:
    result = run("token", "--client-id", CLIENT_ID)
    assert result.exit_code == 1
    assert "--url" in result.output
    assert "--key" in result.output
    assert "--client-secret" in result.output


def test_token_encrypted_key_with_password_env(
    fake_url: str, tmp_path: Path, rsa_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    encrypted = tmp_path / "enc.pem"
    encrypted.write_bytes(rsa_key.to_pem(b"pw-123"))
    monkeypatch.setenv("KEY_PW", "pw-123")
    args = ["token", "--url", f"{fake_url}/oauth2/v2/tokens", "--client-id", CLIENT_ID]
    args += ["--client-secret-env", "MY_SECRET", "--key", str(encrypted)]
    assert run(*args, "--password-env", "KEY_PW").exit_code == 0
    refused = run(*args)
    assert refused.exit_code == 1
    assert refused.output.startswith("key_invalid:")


# -- taap call -----------------------------------------------------------------------------


def test_call_with_headers_and_data_file(
    fake: FakeTaap, fake_url: str, key_file: str, tmp_path: Path
) -> None:
    payload = tmp_path / "body.json"
    payload.write_bytes(b'{"exact":  "bytes"}\n')
    result = run(
        "call",
        "PUT",
        f"{fake_url}/api/items/1?x=a%20b",
        "--token-url",
        f"{fake_url}/oauth2/v2/tokens",
        *creds(key_file),
        "-H",
        "X-Trace: t-1",
        "--data-file",
        str(payload),
    )
    assert result.exit_code == 0, result.output
    seen = json.loads(result.output)
    assert seen["body"] == '{"exact":  "bytes"}\n'
    assert seen["uri"] == "/api/items/1?x=a b"
    assert seen["method"] == "PUT"


def test_call_signs_escaped_queries_and_refuses_ambiguous_ones_locally(
    fake: FakeTaap, fake_url: str, key_file: str
) -> None:
    flags = ["--token-url", f"{fake_url}/oauth2/v2/tokens", *creds(key_file)]
    result = run("call", "GET", f"{fake_url}/api/items?cursor=abc%3D%3D", *flags)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["uri"] == "/api/items?cursor=abc=="
    before = (fake.token_requests, fake.api_requests)
    for query in ("q=a%2Bb", "a%3Db=c", "a=%2541"):
        refused = run("call", "GET", f"{fake_url}/api/items?{query}", *flags)
        assert refused.exit_code == 1, refused.output
        assert refused.stderr.startswith("request_malformed: "), refused.stderr
        assert len(refused.stderr.splitlines()) == 1
    assert (fake.token_requests, fake.api_requests) == before  # nothing was sent


def test_call_refuses_data_and_data_file(fake_url: str, key_file: str) -> None:
    result = run("call", "GET", f"{fake_url}/api/x", "--data", "a", "--data-file", "b")
    assert result.exit_code == 2


# -- profiles and TAAP_* ---------------------------------------------------------------------


def test_configure_then_use_the_profile(
    fake: FakeTaap, fake_url: str, key_file: str, tmp_path: Path
) -> None:
    written = run(
        "configure",
        "--profile",
        "dev",
        "--token-url",
        f"{fake_url}/oauth2/v6/tokens",
        "--client-id",
        CLIENT_ID,
        "--client-secret-env",
        "MY_SECRET",
        "--key",
        key_file,
    )
    assert written.exit_code == 0, written.output
    path = tmp_path / "xdg" / "taap" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "[dev]" in text
    assert 'client_secret_env = "MY_SECRET"' in text
    assert SECRET not in text
    used = run("token", "--profile", "dev", "--json")
    assert used.exit_code == 0, used.output
    assert json.loads(fake.token_bodies[-1])["client_id"] == CLIENT_ID
    called = run("call", "GET", f"{fake_url}/api/x", "--profile", "dev")
    assert called.exit_code == 0, called.output


def test_profile_with_stored_secret_and_second_profile_kept(
    fake_url: str, key_file: str, tmp_path: Path
) -> None:
    common = ["--client-id", CLIENT_ID, "--key", key_file]
    url = ["--token-url", f"{fake_url}/oauth2/v2/tokens"]
    assert run("configure", *url, *common, "--client-secret", SECRET).exit_code == 0
    assert (
        run("configure", "--profile", "other", *url, *common, "--client-secret", "x").exit_code == 0
    )
    text = (tmp_path / "xdg" / "taap" / "config.toml").read_text()
    assert "[default]" in text
    assert "[other]" in text
    assert run("token").exit_code == 0  # the default profile, secret stored in the file


def test_env_overrides_the_profile(
    fake: FakeTaap, fake_url: str, key_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["configure", "--token-url", "http://127.0.0.1:9/oauth2/v2/tokens"]
    args += ["--client-id", "someone-else", "--client-secret-env", "NOPE", "--key", key_file]
    assert run(*args).exit_code == 0
    monkeypatch.setenv("TAAP_TOKEN_URL", f"{fake_url}/oauth2/v2/tokens")
    monkeypatch.setenv("TAAP_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TAAP_CLIENT_SECRET", SECRET)
    result = run("token")
    assert result.exit_code == 0, result.output
    # ...and flags override the environment.
    flagged = run("token", "--client-id", "not-registered")
    assert flagged.exit_code == 1
    assert flagged.output.startswith("client_auth_failed:")


def test_unknown_profile_is_an_error(key_file: str) -> None:
    result = run("token", "--profile", "nope")
    assert result.exit_code == 1
    assert "no profile 'nope'" in result.output


def test_missing_secret_variable_is_named(fake_url: str, key_file: str) -> None:
    args = ["token", "--url", f"{fake_url}/oauth2/v2/tokens", "--client-id", CLIENT_ID]
    result = run(*args, "--client-secret-env", "UNSET_VAR_X", "--key", key_file)
    assert result.exit_code == 1
    assert "UNSET_VAR_X" in result.output
