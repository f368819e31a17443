"""``taap token`` and ``taap call`` as a user runs them, one process after another, against a
real ``taap serve --with-sample-apis``: the token kept between runs (counted by the server's
own ``/metrics``), the ``-v`` trace, and the output on a pipe and on a terminal (a pty)."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kit.clients import ServedClient, serve_with_a_client
from kit.processes import TAAP
from kit.terminal import run_on_terminal, terminal_env
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


Served = ServedClient


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Served]:
    with serve_with_a_client(
        tmp_path_factory.mktemp("serve"), rsa_key, ["connectivity"], "cache"
    ) as it:
        yield it


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _env(served: Served, cache: Path) -> dict[str, str]:
    return dict(served.env, E2E_SECRET=served.secret, XDG_CACHE_HOME=str(cache))


def _creds(served: Served) -> list[str]:
    return [
        "--token-url",
        f"{served.base}/oauth2/v2/tokens",
        "--client-id",
        served.client_id,
        "--client-secret-env",
        "E2E_SECRET",
        "--key",
        served.key_file,
    ]


def _taap(served: Served, cache: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [TAAP, *args], capture_output=True, env=_env(served, cache), timeout=60, check=False
    )


def _call(served: Served, cache: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return _taap(served, cache, "call", "GET", served.base + DEVICE, *_creds(served), *extra)


def _issued(served: Served) -> float:
    text = httpx.get(f"{served.base}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "taap_token_requests_total" and sample.labels["outcome"] == "issued"
    )


def _files(cache: Path) -> list[Path]:
    folder = cache / "taap" / "tokens"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_three_calls_in_a_row_cost_one_token(served: Served, cache: Path) -> None:
    before = _issued(served)
    for _ in range(3):
        done = _call(served, cache)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["iccid"] == "8901260000000000001"
    assert _issued(served) - before == 1
    # taap token takes the same token (same URL, client and key)
    token = _taap(
        served, cache, "token", "--url", f"{served.base}/oauth2/v2/tokens", *_creds(served)[2:]
    )
    assert token.returncode == 0, token.stderr
    assert _issued(served) - before == 1
    [kept] = _files(cache)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700


def test_no_cache_asks_every_time_and_keeps_nothing(served: Served, cache: Path) -> None:
    before = _issued(served)
    for _ in range(2):
        assert _call(served, cache, "--no-cache").returncode == 0
    assert _issued(served) - before == 2
    assert _files(cache) == []


def test_forget_drops_the_kept_token(served: Served, cache: Path) -> None:
    assert _call(served, cache).returncode == 0
    assert len(_files(cache)) == 1
    token_args = ["token", "--url", f"{served.base}/oauth2/v2/tokens", *_creds(served)[2:]]
    forgot = _taap(served, cache, *token_args, "--forget")
    assert (forgot.returncode, forgot.stdout) == (0, b"cached token deleted\n")
    assert _files(cache) == []
    again = _taap(served, cache, *token_args, "--forget")
    assert again.stdout == b"no cached token\n"
    before = _issued(served)
    assert _call(served, cache).returncode == 0
    assert _issued(served) - before == 1


def test_a_cache_file_others_may_read_is_refused(served: Served, cache: Path) -> None:
    assert _call(served, cache).returncode == 0
    [kept] = _files(cache)
    kept.chmod(0o640)
    refused = _call(served, cache)
    assert refused.returncode == 1
    assert refused.stdout == b""
    assert refused.stderr.decode().strip() == (
        f"configuration_error: token cache {kept} may be read by others (mode 640); it holds "
        "a Bearer token: remove it (taap token --forget) or chmod 600 it"
    )
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640  # left as it was


def test_a_kept_token_the_api_refuses_is_replaced(served: Served, cache: Path) -> None:
    assert _call(served, cache).returncode == 0
    [kept] = _files(cache)
    stored = json.loads(kept.read_text())
    body = json.dumps({"access_token": "not-a-token", "expires_in": "3599"}).encode()
    stored["body"] = base64.b64encode(body).decode()
    kept.write_text(json.dumps(stored))
    before = _issued(served)
    done = _call(served, cache)
    assert done.returncode == 0, done.stderr  # 401 invalid_token, a new token, one retry
    assert json.loads(done.stdout)["iccid"] == "8901260000000000001"
    assert _issued(served) - before == 1
    assert "not-a-token" not in base64.b64decode(json.loads(kept.read_text())["body"]).decode()
    assert _call(served, cache).returncode == 0
    assert _issued(served) - before == 1  # the new token was kept


def test_revoking_the_kept_token_drops_it(served: Served, cache: Path) -> None:
    token_args = ["--url", f"{served.base}/oauth2/v2/tokens", *_creds(served)[2:]]
    first = _taap(served, cache, "token", *token_args).stdout.decode().strip()
    assert len(_files(cache)) == 1
    revoked = _taap(served, cache, "revoke", *token_args, first)
    assert (revoked.returncode, revoked.stdout) == (0, b"revoked\n"), revoked.stderr
    assert _files(cache) == []
    second = _taap(served, cache, "token", *token_args).stdout.decode().strip()
    assert second not in ("", first)


def test_piped_output_is_the_answer_with_a_final_newline(served: Served, cache: Path) -> None:
    done = _call(served, cache)
    assert done.stdout.endswith(b"}\n")
    assert b"\n" not in done.stdout[:-1]  # compact, as the API sent it
    assert b"\x1b[" not in done.stdout
    assert done.stderr == b""


def test_verbose_traces_on_stderr_with_secrets_masked(served: Served, cache: Path) -> None:
    token = _taap(
        served,
        cache,
        "token",
        "--url",
        f"{served.base}/oauth2/v2/tokens",
        *_creds(served)[2:],
        "-v",
    )
    assert token.returncode == 0, token.stderr
    access = token.stdout.decode().strip()
    trace = token.stderr.decode()
    assert f"> POST {served.base}/oauth2/v2/tokens" in trace
    assert "> authorization: Basic " in trace
    assert "PoP claims: {" in trace
    assert "    uri: /oauth2/v2/tokens\n" in trace
    assert "    http-method: POST\n" in trace
    assert "< HTTP/1.1 200 OK" in trace
    assert served.secret not in trace
    assert access not in trace
    done = _call(served, cache, "-v")
    assert done.returncode == 0, done.stderr
    trace = done.stderr.decode()
    assert f"> GET {served.base}{DEVICE}" in trace
    assert "  token kept from a previous run (" in trace  # taap token's, no token request
    assert "/oauth2/v2/tokens" not in trace
    assert f"    uri: {DEVICE}\n" in trace
    assert "    Authorization: Bearer " + access[:8] + "*** (" in trace
    assert access not in trace
    assert json.loads(done.stdout)["iccid"] == "8901260000000000001"  # stdout: the answer


def test_on_a_terminal_json_is_indented_and_coloured(served: Served, cache: Path) -> None:
    env = terminal_env(_env(served, cache))
    run = run_on_terminal([TAAP, "call", "GET", served.base + DEVICE, *_creds(served)], env=env)
    assert run.returncode == 0, run.text
    assert _coloured(run.text)
    plain = _strip_ansi(run.text)
    assert '\n  "iccid": "8901260000000000001"' in plain
    assert json.loads(plain)["iccid"] == "8901260000000000001"
    no_colour = run_on_terminal(
        [TAAP, "call", "GET", served.base + DEVICE, *_creds(served)],
        env=dict(env, NO_COLOR="1"),
    )
    assert not _coloured(no_colour.text)  # bold stays: NO_COLOR is about colour
    assert '\n  "iccid": "8901260000000000001"' in _strip_ansi(no_colour.text)


def _coloured(text: str) -> bool:
    """Whether an SGR escape of ``text`` sets a foreground colour (30-38, 90-97)."""
    for params in re.findall(r"\x1b\[([0-9;]*)m", text):
        if any(p and (30 <= int(p) <= 38 or 90 <= int(p) <= 97) for p in params.split(";")):
            return True
    return False


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def test_the_cache_folder_is_the_users(served: Served, tmp_path: Path) -> None:
    """Without XDG_CACHE_HOME the token goes to ~/.cache/taap."""
    home = tmp_path / "home"
    home.mkdir()
    env = dict(served.env, E2E_SECRET=served.secret, HOME=str(home))
    env.pop("XDG_CACHE_HOME", None)
    done = subprocess.run(
        [TAAP, "call", "GET", served.base + DEVICE, *_creds(served)],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(list((home / ".cache" / "taap" / "tokens").iterdir())) == 1
    assert os.stat(home / ".cache" / "taap" / "tokens").st_mode & 0o077 == 0
