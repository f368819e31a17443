"""The CLI's manners through click's runner (a pipe, not a terminal): retries announced on
stderr, ``--quiet``, compact JSON, ``taap configure``'s checks and questions, ``taap
completion``, ``taap --version``."""

from __future__ import annotations

import json
import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from client._fake import FakeTaap, Scripted
from client.conftest import CLIENT_ID
from kit.processes import TAAP, clean_env
from kit.terminal import run_on_terminal, terminal_env
from taap.cli.main import cli

RATE_LIMITED = {"error": "rate_limited", "error_code": "rate_limited"}
UNAVAILABLE = {"error": "temporarily_unavailable", "error_code": "unavailable"}


pytestmark = pytest.mark.usefixtures("no_taap_settings")


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def creds(key_file: str) -> list[str]:
    return ["--client-id", CLIENT_ID, "--client-secret-env", "MY_SECRET", "--key", key_file]


# -- retries announced ------------------------------------------------------------------------


def test_a_rate_limited_token_request_is_announced(
    fake: FakeTaap, fake_url: str, key_file: str
) -> None:
    fake.token_script.append(Scripted(429, RATE_LIMITED, {"Retry-After": "1"}))
    result = run("token", "--url", f"{fake_url}/oauth2/v2/tokens", *creds(key_file))
    assert result.exit_code == 0, result.output
    assert result.stderr == "taap: rate limited, retrying in 1 s\n"
    assert result.stdout.strip().count(".") == 2  # stdout: the token alone
    assert fake.token_requests == 2


def test_an_unavailable_api_is_announced_and_quiet_silences_it(
    fake: FakeTaap, fake_url: str, key_file: str
) -> None:
    args = ["call", "GET", f"{fake_url}/api/x", "--token-url", f"{fake_url}/oauth2/v2/tokens"]
    fake.api_script.append(Scripted(503, UNAVAILABLE, {"Retry-After": "1"}))
    result = run(*args, *creds(key_file), "--no-cache")
    assert result.exit_code == 0, result.output
    assert result.stderr == "taap: server unavailable, retrying in 1 s\n"
    fake.api_script.append(Scripted(503, UNAVAILABLE, {"Retry-After": "1"}))
    quiet = run(*args, *creds(key_file), "--no-cache", "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert fake.api_requests == 4


def test_piped_json_is_compact_and_ends_with_a_newline(
    fake: FakeTaap, fake_url: str, key_file: str
) -> None:
    token = run("token", "--url", f"{fake_url}/oauth2/v2/tokens", *creds(key_file), "--json")
    assert token.stdout.endswith("}\n")
    assert token.stdout.count("\n") == 1
    assert "\x1b[" not in token.stdout
    url = f"{fake_url}/api/x"
    answer = run(
        "call", "GET", url, "--token-url", f"{fake_url}/oauth2/v2/tokens", *creds(key_file)
    )
    assert answer.stdout_bytes.endswith(b"\n")
    assert not answer.stdout_bytes.endswith(b"\n\n")
    json.loads(answer.stdout)
    assert fake.token_requests == 1  # the call took the token kept by taap token


# -- configure ------------------------------------------------------------------------------


def _configure(*args: str, input: str | None = None) -> Result:
    return run("configure", *args, input=input)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--token-url", "auth.example/oauth2/v2/tokens"], "is not an absolute http(s) URL"),
        (["--token-url", "ftp://auth.example/x"], "is not an absolute http(s) URL"),
        (["--client-id", "a:b"], "a client id is non-empty and has no ':'"),
        (["--client-secret-env", "$MY_SECRET"], "is not an environment variable name"),
        (["--password-env", "my-password"], "is not an environment variable name"),
        (["--key", "/nonexistent/client.pem"], "No such file or directory"),
    ],
)
def test_configure_refuses_a_bad_value_and_writes_nothing(
    tmp_path: Path, key_file: str, flags: list[str], message: str
) -> None:
    given = {
        "--token-url": "https://auth.example/oauth2/v2/tokens",
        "--client-id": "my-app",
        "--client-secret-env": "MY_SECRET",
        "--key": key_file,
    }
    given.update(dict(zip(flags[::2], flags[1::2], strict=True)))
    result = _configure(*[part for pair in given.items() for part in pair])
    assert result.exit_code == 1
    assert result.stderr.startswith("configuration_error: ")
    assert message in result.stderr
    assert not (tmp_path / "xdg" / "taap" / "config.toml").exists()


def test_configure_refuses_a_file_that_is_not_a_key(tmp_path: Path) -> None:
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    result = _configure(
        "--token-url",
        "https://auth.example/oauth2/v2/tokens",
        "--client-id",
        "my-app",
        "--client-secret-env",
        "MY_SECRET",
        "--key",
        str(not_a_key),
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(f"configuration_error: key file {not_a_key}: ")


def test_configure_with_no_flags_asks_for_everything(tmp_path: Path, key_file: str) -> None:
    answers = f"https://auth.example/oauth2/v2/tokens\nmy-app\n{key_file}\nMY_SECRET\n\n"
    result = _configure(input=answers)
    assert result.exit_code == 0, result.output
    for label in (
        "Token endpoint URL",
        "Client id",
        "PoP private key file",
        "Environment variable holding the client secret",
        "Environment variable holding the key's password",
    ):
        assert label in result.stdout
    text = (tmp_path / "xdg" / "taap" / "config.toml").read_text()
    assert 'client_secret_env = "MY_SECRET"' in text
    assert f'key = "{Path(key_file).resolve()}"' in text
    assert "password_env" not in text


def test_configure_refuses_a_bad_piped_answer(tmp_path: Path, key_file: str) -> None:
    result = _configure(input="not a url\n")
    assert result.exit_code == 1
    assert "configuration_error: token URL 'not a url' is not an absolute http(s) URL" in (
        result.stderr
    )
    assert not (tmp_path / "xdg" / "taap" / "config.toml").exists()


# -- completion and version -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o nosort -F"), ("zsh", "#compdef taap"), ("fish", "complete ")],
)
def test_completion_prints_the_script(shell: str, marker: str) -> None:
    result = run("completion", shell)
    assert result.exit_code == 0
    assert marker in result.stdout
    assert "_TAAP_COMPLETE" in result.stdout


def test_completion_refuses_another_shell() -> None:
    result = run("completion", "powershell")
    assert result.exit_code == 2


def test_completion_completes_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the bash script asks taap when the user types ``taap to<TAB>``."""
    monkeypatch.setenv("_TAAP_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "taap to")
    monkeypatch.setenv("COMP_CWORD", "1")
    result = CliRunner().invoke(cli, [], prog_name="taap")
    assert result.exit_code == 0
    assert "plain,token" in result.stdout.splitlines()


def test_version_is_the_package_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"taap, version {version('taap')}\n"


def test_configure_on_a_terminal_asks_again_for_a_refused_answer(
    tmp_path: Path, key_file: str
) -> None:
    env = terminal_env(clean_env(XDG_CONFIG_HOME=str(tmp_path / "xdg")))
    run = run_on_terminal(
        [TAAP, "configure"],
        env=env,
        replies=[
            (b"Token endpoint URL: ", "auth.example/tokens\r"),  # refused: not absolute
            (b"Token endpoint URL: ", "https://auth.example/oauth2/v2/tokens\r"),
            (b"Client id: ", "my-app\r"),
            (b"PoP private key file: ", f"{tmp_path}/nothing.pem\r"),  # refused: no file
            (b"PoP private key file: ", f"{key_file}\r"),
            (b"client secret [TAAP_CLIENT_SECRET]: ", "$MY_SECRET\r"),  # refused: not a name
            (b"client secret [TAAP_CLIENT_SECRET]: ", "MY_SECRET\r"),
            (b"(empty: none) []: ", "\r"),
        ],
        timeout=60,
    )
    assert run.returncode == 0, run.text
    assert "Error: token URL 'auth.example/tokens' is not an absolute http(s) URL" in run.text
    assert f"Error: {tmp_path}/nothing.pem is not a file" in run.text
    assert "Error: '$MY_SECRET' is not an environment variable name" in run.text
    text = (tmp_path / "xdg" / "taap" / "config.toml").read_text()
    assert 'token_url = "https://auth.example/oauth2/v2/tokens"' in text
    assert 'client_secret_env = "MY_SECRET"' in text


def test_the_bash_script_completes_in_bash() -> None:
    """The printed script, sourced by a real bash, completes a command and an option."""
    script = """
        eval "$(taap completion bash)"
        COMP_WORDS=(taap to); COMP_CWORD=1; COMPREPLY=(); _taap_completion taap
        echo "command: ${COMPREPLY[*]}"
        COMP_WORDS=(taap token --no-c); COMP_CWORD=2; COMPREPLY=(); _taap_completion taap
        echo "option: ${COMPREPLY[*]}"
    """
    env = clean_env(PATH=f"{Path(TAAP).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["command: token", "option: --no-cache"]
