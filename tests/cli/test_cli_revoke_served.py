"""``taap revoke`` and ``taap introspect`` as a user runs them (subprocesses) against a real
``taap serve --with-sample-apis`` process: what they print, their exit codes, one-line errors,
and what the token server and its guard then do with the token."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kit.clients import Client, register_clients
from kit.processes import TAAP, Service, clean_env, start_serve, taap_ok
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e

MAX_AGE = "1"
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
APIS = ("connectivity", "sms-notification")


def past_the_bound() -> None:
    time.sleep(float(MAX_AGE) + 0.1)


@dataclass
class Served:
    service: Service
    clients: dict[str, Client]
    key_file: str
    rs_id: str
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.service.url


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("revoke-cli")
    database = f"sqlite:///{folder / 'taap.db'}"
    clients = register_clients(database, {n: (rsa_key, APIS) for n in ("me", "other", "stdin")})
    service = start_serve(folder, database, "--with-sample-apis", TAAP_REVOCATION_MAX_AGE=MAX_AGE)
    made = taap_ok(
        "resource-servers", "create", "--name", "cli", "--json", "--database-url", database,
        cwd=folder,
    )  # fmt: skip
    rs = json.loads(made)
    key_file = folder / "client.pem"
    key_file.write_bytes(rsa_key.to_pem())
    env = clean_env(RS_SECRET=rs["secret"], ME_SECRET=clients["me"].secret)
    env["STDIN_SECRET"] = clients["stdin"].secret
    yield Served(service, clients, str(key_file), rs["id"], env)
    for client in clients.values():
        client.http.close()
    service.stop()


def taap(
    served: Served, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TAAP, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**served.env, **env},
        timeout=60,
        check=False,
    )


def revoke(
    served: Served, name: str, *args: str, **options: str
) -> subprocess.CompletedProcess[str]:
    client = served.clients[name]
    creds = [
        "--client-id", client.client_id, "--client-secret-env", f"{name.upper()}_SECRET",
        "--key", served.key_file,
    ]  # fmt: skip
    return taap(
        served, "revoke", "--url", served.url + "/oauth2/v2/tokens", *creds, *args, **options
    )


def introspect(served: Served, token: str, **env: str) -> subprocess.CompletedProcess[str]:
    return taap(
        served, "introspect", "--url", served.url, "--id", served.rs_id,
        "--secret-env", "RS_SECRET", token, **env,
    )  # fmt: skip


def token_of(served: Served, name: str) -> str:
    return str(served.clients[name].tokens(served.url + "/oauth2/v2/tokens")["access_token"])


def guard_says(served: Served, name: str, token: str) -> tuple[int, str]:
    answer = served.clients[name].call("GET", served.url + DEVICE, token)
    code = answer.json().get("error_code", "") if answer.status_code >= 400 else ""
    return answer.status_code, code


def test_revoke_prints_revoked_and_the_token_is_dead(served: Served) -> None:
    token = token_of(served, "me")
    before = introspect(served, token)
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["active"] is True
    done = revoke(served, "me", token)
    assert (done.returncode, done.stdout, done.stderr) == (0, "revoked\n", "")
    past_the_bound()
    after = introspect(served, token)
    assert (after.returncode, json.loads(after.stdout)) == (0, {"active": False})
    assert guard_says(served, "me", token) == (401, "token_revoked")


def test_revoke_from_standard_input(served: Served) -> None:
    token = token_of(served, "stdin")
    done = revoke(served, "stdin", "-", stdin=token + "\n")
    assert (done.returncode, done.stdout) == (0, "revoked\n"), done.stderr
    past_the_bound()
    assert json.loads(introspect(served, token).stdout) == {"active": False}


def test_another_clients_token_is_answered_revoked_and_stays_live(served: Served) -> None:
    """RFC 7009: 200 whatever the token, so the answer tells nothing; nothing is revoked."""
    theirs = token_of(served, "other")
    done = revoke(served, "me", theirs)
    assert (done.returncode, done.stdout) == (0, "revoked\n"), done.stderr
    garbage = revoke(served, "me", "not-a-token")
    assert (garbage.returncode, garbage.stdout) == (0, "revoked\n"), garbage.stderr
    past_the_bound()
    assert json.loads(introspect(served, theirs).stdout)["active"] is True
    assert guard_says(served, "other", theirs) == (200, "")


def test_errors_are_one_line_with_exit_1(served: Served) -> None:
    token = token_of(served, "other")
    wrong_rs = introspect(served, token, RS_SECRET="wrong")
    wrong_client = revoke(served, "me", token, ME_SECRET="wrong")
    unset = introspect(served, token, RS_SECRET="")
    for result, prefix in (
        (wrong_rs, "client_auth_failed: "),
        (wrong_client, "client_auth_failed: "),
        (unset, "configuration_error: --secret-env: environment variable RS_SECRET is not set"),
    ):
        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.startswith(prefix), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(served: Served) -> None:
    empty = revoke(served, "me", "")
    missing = taap(served, "introspect", "--url", served.url, "--secret-env", "RS_SECRET", "t")
    for result in (empty, missing):
        assert result.returncode == 2, result.stderr
        assert "Error: " in result.stderr
        assert "Traceback" not in result.stderr
