"""``taap pop explain``: the report, exit 0/1/2, curl, HAR and manual requests, hostile input."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from taap.cli.main import cli
from taap.core import PrivateKey, build_pop_token, request_pairs

ROOT = Path(__file__).resolve().parents[2]
TAAP = ROOT / ".venv" / "bin" / "taap"
NOW = 1_760_000_000
AUTH = "Bearer abc"
BODY = '{"orderId": 100, "product": "Mobile Phone"}'


def run(args: list[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["pop", "explain", *args], input=stdin, catch_exceptions=False)


def pop(key: PrivateKey, uri: str = "/v1/orders?a=1", body: str = BODY) -> str:
    headers = [("Content-Type", "application/json"), ("Authorization", AUTH)]
    return build_pop_token(request_pairs("POST", uri, headers, body), key, now=NOW, jti="j")


def curl(body: str = BODY, url: str = "https://api.example/v1/orders?a=1") -> str:
    return (
        f"curl -X POST '{url}' -H 'Content-Type: application/json' "
        f"-H 'Authorization: {AUTH}' --data-raw '{body}'"
    )


@pytest.fixture
def public_pem(tmp_path: Path, rsa_key: PrivateKey) -> str:
    path = tmp_path / "client.pub.pem"
    path.write_bytes(rsa_key.public.to_pem())
    return str(path)


def test_match_exit_0(rsa_key: PrivateKey, public_pem: str) -> None:
    result = run(
        [pop(rsa_key), "--curl", curl(), "--now", str(NOW + 3), "--public-key", public_pem]
    )
    assert result.exit_code == 0, result.output
    assert "MATCH: the request matches its PoP" in result.output
    assert "signature valid" in result.output
    assert "3 s ago" in result.output
    assert "   3. uri            '/v1/orders?a=1'" in result.output
    assert "(same)" in result.output


def test_query_dropped_exit_1(rsa_key: PrivateKey) -> None:
    result = run([pop(rsa_key, uri="/v1/orders"), "--curl", curl(), "--now", str(NOW)])
    assert result.exit_code == 1
    assert "[query] the PoP was signed over the uri without its query" in result.output
    assert "(DIFFERENT)" in result.output
    assert "NO MATCH" in result.output


def test_json_re_serialised_and_wrong_key(
    rsa_key: PrivateKey, other_key: PrivateKey, tmp_path: Path
) -> None:
    wrong = tmp_path / "other.pub.pem"
    wrong.write_bytes(other_key.public.to_pem())
    compact = json.dumps(json.loads(BODY), separators=(",", ":"))
    args = [pop(rsa_key), "--curl", curl(body=compact), "--now", str(NOW)]
    result = run([*args, "--public-key", str(wrong)])
    assert result.exit_code == 1
    assert "signature INVALID" in result.output
    assert "[signature]" in result.output
    assert "[json] the PoP was signed over the JSON body re-serialised" in result.output


def test_manual_request_expired(rsa_key: PrivateKey) -> None:
    args = ["--method", "POST", "--uri", "https://api.example/v1/orders?a=1"]
    args += ["--header", "Content-Type: application/json", "--header", f"Authorization: {AUTH}"]
    result = run([pop(rsa_key), *args, "--body", BODY, "--now", str(NOW + 200)])
    assert result.exit_code == 1
    assert "[expired] PoP token expired 140 s ago (exp 1760000060, leeway 10 s)" in result.output
    assert "[too_old] PoP token too old: issued 200 s ago" in result.output
    assert "FAILS" in result.output


def test_body_file_trailing_newline_and_token_on_stdin(rsa_key: PrivateKey, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text(BODY + "\n")
    args = ["-", "--method", "POST", "--uri", "/v1/orders?a=1", "--body-file", str(body)]
    args += ["--header", "Content-Type: application/json", "--header", f"Authorization: {AUTH}"]
    result = run([*args, "--now", str(NOW)], stdin=pop(rsa_key))
    assert result.exit_code == 1
    assert "[body_newline] the PoP was signed over the body without its trailing newline" in (
        result.output
    )


def har_file(tmp_path: Path, *requests: dict[str, object]) -> str:
    path = tmp_path / "session.har"
    entries = [{"request": r} for r in requests]
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    return str(path)


def test_har_entry(rsa_key: PrivateKey, tmp_path: Path) -> None:
    request = {
        "method": "post",
        "url": "https://api.example/v1/orders?a=1",
        "headers": [
            {"name": "content-type", "value": "application/json"},
            {"name": "authorization", "value": AUTH},
        ],
        "postData": {"mimeType": "application/json", "text": BODY},
    }
    path = har_file(tmp_path, {"method": "GET", "url": "https://x/", "headers": []}, request)
    result = run([pop(rsa_key), "--har", path, "--entry", "1", "--now", str(NOW)])
    assert result.exit_code == 1
    assert "[method_case] the PoP was signed over the method as 'POST', not 'post'" in (
        result.output
    )
    missing = run([pop(rsa_key), "--har", path, "--now", str(NOW)])
    assert missing.exit_code == 1
    assert "MISSING from the request" in missing.output
    assert "[absent]" in missing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--har", "/dev/zero"], "request_malformed: file too large (> 16 MiB)"),
        (["--har", "HAR"], "usage_error: the HAR file is not valid JSON (invalid JSON)"),
        (["--har", "EMPTY", "--entry", "5"], "usage_error: the HAR file has 0 entries; entry 5"),
        (["--curl", "curl -T f https://h/"], "usage_error: unsupported curl option '-T'"),
        (["--curl", "curl 'unterminated"], "usage_error: the curl command does not parse"),
        (["--method", "GET"], "usage_error: --method and --uri go together"),
        (
            ["--method", "PUT", "--uri", "/x", "--body-file", "/dev/zero"],
            "body_too_large: --body-file is larger than",
        ),
        (["--method", "PUT", "--uri", "/x", "--body", "a", "--body-file", "-"], "exclude each"),
        (["--method", "GET", "--uri", "/a%2Fb"], "request_malformed: "),
        (["--curl", "curl https://h/", "--uri", "/x"], "usage_error: give exactly one of"),
        ([], "usage_error: give exactly one of"),
        (["--curl", "curl https://h/", "--public-key", "/dev/null"], "key_invalid: "),
    ],
)
def test_bad_input_exit_2_one_line(
    rsa_key: PrivateKey, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "HAR").write_text('{"log": {"entries": [')
    (tmp_path / "EMPTY").write_text('{"log": {"entries": []}}')
    args = [str(tmp_path / a) if a in ("HAR", "EMPTY") else a for a in args]
    result = run([pop(rsa_key), *args, "--now", str(NOW)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_malformed_token_exit_2() -> None:
    result = run(["not.a.pop", "--curl", "curl https://h/"])
    assert result.exit_code == 2
    assert result.output.startswith("pop_malformed: ")


def test_token_beginning_with_dash_is_literal_real_process(rsa_key: PrivateKey) -> None:
    # A real process: stdout is a pipe, so no colour codes reach it.
    done = subprocess.run(
        [str(TAAP), "pop", "explain", "-x.y.z", "--curl", "curl https://h/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("pop_malformed: ")
    token = pop(rsa_key)
    done = subprocess.run(
        [str(TAAP), "pop", "explain", token, "--curl", curl(), "--now", str(NOW)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout
    assert done.stdout.rstrip().endswith("MATCH: the request matches its PoP")


def test_help_has_examples() -> None:
    result = CliRunner().invoke(cli, ["pop", "explain", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "--curl" in result.output
    assert "--har" in result.output


def test_doc_example_runs_as_written(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "pop.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- example: explain -->\n```sh\n(.*?)```", text, re.S)
    assert match, "no explain example in docs/pop.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAAP_")}
    env["PATH"] = f"{TAAP.parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", match.group(1)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signature valid" in (tmp_path / "report.txt").read_text()


def test_curl_from_stdin_and_one_stdin_only(rsa_key: PrivateKey) -> None:
    result = run([pop(rsa_key), "--curl", "-", "--now", str(NOW)], stdin=curl())
    assert result.exit_code == 0, result.output
    both = run(["-", "--curl", "-"], stdin="x")
    assert both.exit_code == 2
    assert both.output.startswith("usage_error: TOKEN and the request cannot both read")


def test_terminal_controls_from_the_token_are_escaped(rsa_key: PrivateKey) -> None:
    # A PoP pasted from a log may carry escape sequences (here: clear the screen, ring).
    evil = "X-\x1b[2J\x07"
    pairs = request_pairs("GET", "/x", [(evil, "v"), ("Authorization", AUTH)])
    token = build_pop_token(pairs, rsa_key, now=NOW, jti="\x1b[2Jjti")
    args = ["pop", "explain", token, "--method", "GET", "--uri", "/x", "--now", str(NOW)]
    result = CliRunner().invoke(cli, [*args, "--header", f"{evil}: v"], color=True)
    assert "\x1b[2J" not in result.output
    assert "\x07" not in result.output
    assert "X-\\u001b[2J\\u0007" in result.output
    assert '"jti": "\\u001b[2Jjti"' in result.output
