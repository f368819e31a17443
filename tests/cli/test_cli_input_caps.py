"""Every file or stream the CLI reads is capped: an endless input is refused in one line, fast,
without reading it (``/dev/zero`` never ends)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from kit.processes import TAAP, clean_env
from taap.core import build_pop_token, decode_pop_token, load_private_key, request_pairs

ZERO = "/dev/zero"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["pop", "build", "--key", ZERO, "--method", "GET", "--uri", "/x"], "key_invalid: file"),
        (["pop", "decode", "-"], "pop_malformed: standard input"),
        (
            ["pop", "verify", "--public-key", ZERO, "--token", "x", "--ehts-json", ZERO],
            "key_invalid: file",
        ),
        (["clients", "create", "--name", "n", "--public-key", ZERO], "key_invalid: file"),
        (["clients", "add-key", "taap-x", ZERO], "key_invalid: file"),
    ],
)
def test_an_endless_input_is_refused_in_one_line(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path}/taap.db"
    if args[0] == "clients":
        args = [*args, "--database-url", database]
    started = time.monotonic()
    with open(ZERO, "rb") as endless:
        result = subprocess.run(
            [TAAP, *args],
            stdin=endless,
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [f"{expected} too large (> 1 MiB)"], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert elapsed < 30  # seconds even on a busy machine; unbounded reading never ends


# -- bodies: the server's cap unless --max-body says more --------------------------------------
BODY_CAP = 1024 * 1024
TOO_LARGE = (
    "is larger than {cap} bytes (the cap is TAAP_MAX_BODY, the server's; "
    "--max-body BYTES allows more)"
)


def _taap(
    args: list[str], *, stdin: str = "/dev/null", env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``taap args`` with ``stdin`` as standard input; the result and the seconds it took."""
    started = time.monotonic()
    with open(stdin, "rb") as source:
        result = subprocess.run(
            [TAAP, *args],
            stdin=source,
            capture_output=True,
            text=True,
            env=env or clean_env(),
            timeout=60,
        )
    return result, time.monotonic() - started


def _refused(result: subprocess.CompletedProcess[str], seconds: float, line: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [line], result.stderr
    assert result.stdout == ""
    assert seconds < 5  # generous: an unbounded read of /dev/zero never ends


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "client.pem"
    subprocess.run(
        [TAAP, "keygen", "--private-out", str(path), "--public-out", str(tmp_path / "c.pub")],
        check=True,
        capture_output=True,
        env=clean_env(),
    )
    return str(path)


def _build(key_file: str, *extra: str) -> list[str]:
    return ["pop", "build", "--key", key_file, "--method", "POST", "--uri", "/x", *extra]


def _call(*extra: str) -> list[str]:
    # The body is read before anything else: no token server is needed to see it refused.
    return ["call", "POST", "http://127.0.0.1:9/x", *extra]


@pytest.mark.parametrize(
    ("args", "stdin", "source"),
    [
        (["--body-file", ZERO], "/dev/null", "--body-file"),
        (["--body-file", "-"], ZERO, "--body-file - (standard input)"),
    ],
)
def test_pop_build_refuses_an_endless_body(
    key_file: str, args: list[str], stdin: str, source: str
) -> None:
    result, seconds = _taap(_build(key_file, *args), stdin=stdin)
    _refused(result, seconds, f"body_too_large: {source} {TOO_LARGE.format(cap=BODY_CAP)}")


@pytest.mark.parametrize(
    ("args", "stdin", "source"),
    [
        (["--data-file", ZERO], "/dev/null", "--data-file"),
        (["--data-file", "-"], ZERO, "--data-file - (standard input)"),
    ],
)
def test_call_refuses_an_endless_body(args: list[str], stdin: str, source: str) -> None:
    result, seconds = _taap(_call(*args), stdin=stdin)
    _refused(result, seconds, f"body_too_large: {source} {TOO_LARGE.format(cap=BODY_CAP)}")


def test_a_large_body_file_is_refused_unless_max_body_allows_it(
    key_file: str, tmp_path: Path
) -> None:
    large = tmp_path / "large.bin"
    with large.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # 64 MiB, sparse: cheap to make, slow to slurp
    result, seconds = _taap(_build(key_file, "--body-file", str(large)))
    _refused(result, seconds, f"body_too_large: --body-file {TOO_LARGE.format(cap=BODY_CAP)}")
    result, seconds = _taap(_call("--data-file", str(large)))
    _refused(result, seconds, f"body_too_large: --data-file {TOO_LARGE.format(cap=BODY_CAP)}")

    # Exactly at the cap is allowed; an explicit --max-body allows more, signed in full.
    at_cap = tmp_path / "at-cap.bin"
    at_cap.write_bytes(b"a" * BODY_CAP)
    result, _ = _taap(_build(key_file, "--body-file", str(at_cap)))
    assert result.returncode == 0, result.stderr
    bigger = tmp_path / "bigger.bin"
    bigger.write_bytes(b"b" * (BODY_CAP + 10))
    result, _ = _taap(_build(key_file, "--body-file", str(bigger), "--max-body", "2000000"))
    assert result.returncode == 0, result.stderr
    claims = decode_pop_token(result.stdout.strip())[1]
    body = ("b" * (BODY_CAP + 10)).encode()
    expected = build_pop_token(
        request_pairs("POST", "/x", [], body), load_private_key(Path(key_file).read_bytes())
    )
    assert claims["edts"] == decode_pop_token(expected)[1]["edts"]


def test_the_body_cap_follows_taap_max_body(key_file: str, tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(b"x" * 4096)
    env = clean_env(TAAP_MAX_BODY="2048")
    result, seconds = _taap(_build(key_file, "--body-file", str(body)), env=env)
    _refused(result, seconds, f"body_too_large: --body-file {TOO_LARGE.format(cap=2048)}")
    result, _ = _taap(_build(key_file, "--body-file", str(body), "--max-body", "4096"), env=env)
    assert result.returncode == 0, result.stderr
    result, _ = _taap(_build(key_file, "--body-file", str(body)), env=clean_env(TAAP_MAX_BODY="x"))
    assert result.returncode == 1
    assert result.stderr.startswith("configuration_error: invalid settings: max_body"), (
        result.stderr
    )


# -- the other files the CLI reads ---------------------------------------------------------
def test_token_refuses_an_endless_key_file() -> None:
    args = ["token", "--url", "http://127.0.0.1:9/oauth2/v2/tokens", "--client-id", "c"]
    result, seconds = _taap([*args, "--client-secret", "s", "--key", ZERO])
    _refused(result, seconds, "key_invalid: key file too large (> 1 MiB)")


def test_an_endless_config_file_is_refused() -> None:
    result, seconds = _taap(["token"], env=clean_env(TAAP_CONFIG=ZERO))
    _refused(
        result, seconds, f"configuration_error: {ZERO} is too large for a config file (> 1 MiB)"
    )


def test_an_endless_pepper_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pepper").symlink_to(ZERO)
    database = f"sqlite:///{tmp_path}/taap.db"
    result, seconds = _taap(["clients", "list", "--database-url", database])
    line = f"configuration_error: pepper file {tmp_path}/pepper is larger than 65536 bytes"
    _refused(result, seconds, line)


def test_configure_reads_one_bounded_answer_from_a_pipe(tmp_path: Path, key_file: str) -> None:
    env = clean_env(XDG_CONFIG_HOME=str(tmp_path))
    result, seconds = _taap(["configure"], stdin=ZERO, env=env)
    line = "configuration_error: Token endpoint URL: answer longer than 4096 bytes"
    assert result.stderr.strip().splitlines() == [line], result.stderr
    assert result.returncode == 1
    assert seconds < 5
    assert not (tmp_path / "taap" / "config.toml").exists()

    # Answers that end, piped in: asked in order, the default taken for an empty line.
    answers = tmp_path / "answers.txt"
    answers.write_text(f"http://127.0.0.1:9/oauth2/v2/tokens\nmy-client\n{key_file}\n\n")
    result, _ = _taap(["configure"], stdin=str(answers), env=env)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "taap" / "config.toml").read_text()
    assert 'client_id = "my-client"' in text
    assert 'client_secret_env = "TAAP_CLIENT_SECRET"' in text
    result, _ = _taap(["configure", "--profile", "p2"], stdin="/dev/null", env=env)
    assert result.stderr.strip() == "configuration_error: Token endpoint URL: no answer given"
