"""``taap keygen`` and ``taap pop build|verify|decode`` exactly as issue 2 specifies."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization

from taap.cli.main import cli
from taap.core import (
    PrivateKey,
    SignedValues,
    decode_pop_token,
    load_private_key,
    load_public_key,
    verify_pop_token,
)

ROOT = Path(__file__).resolve().parents[2]
TAAP = ROOT / ".venv" / "bin" / "taap"
PAIRS = [
    ["Content-Type", "application/json"],
    ["Authorization", "Bearer abc"],
    ["uri", "/commerce/v1/orders?x=é"],
    ["http-method", "POST"],
    ["body", '{"name": "José ✓"}'],
]


def run(args: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, args, input=stdin, env=env, catch_exceptions=False)


def one_error_line(result: Result, prefix: str) -> str:
    """The failure is exactly one line on stderr starting with ``prefix``; nothing on stdout."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return lines[0]


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "client.pem", tmp_path / "client.pub.pem"
    result = run(["keygen", "--private-out", str(private), "--public-out", str(public)])
    assert result.exit_code == 0, result.output
    return private, public


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(PAIRS, ensure_ascii=False), encoding="utf-8")
    return path


# --- keygen ---------------------------------------------------------------------------------


def test_keygen_writes_a_matching_pkcs8_and_spki_pair(keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_private_key(private.read_bytes())
    assert key.bits == 2048
    assert load_public_key(public.read_bytes()) == key.public


def test_keygen_bits_and_thumbprint(tmp_path: Path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    result = run(
        ["keygen", "--private-out", str(private), "--public-out", str(public), "--bits", "3072"]
    )
    assert result.exit_code == 0
    key = load_private_key(private.read_bytes())
    assert key.bits == 3072
    assert key.thumbprint in result.stderr


def test_keygen_encrypts_only_with_password_env(tmp_path: Path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    result = run(
        [
            "keygen",
            "--private-out",
            str(private),
            "--public-out",
            str(public),
            "--password-env",
            "TAAP_TEST_PW",
        ],
        env={"TAAP_TEST_PW": "correct horse"},
    )
    assert result.exit_code == 0, result.output
    pem = private.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert b"correct horse" not in pem
    assert load_private_key(pem, "correct horse").public == load_public_key(public.read_bytes())
    # PKCS#8 underneath: cryptography reads it as such with the password
    serialization.load_pem_private_key(pem, b"correct horse")


def test_keygen_errors_are_one_line(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    before = private.read_bytes()
    result = run(["keygen", "--private-out", str(private), "--public-out", str(public)])
    one_error_line(result, "usage_error:")
    assert private.read_bytes() == before  # nothing overwritten without --force
    result = run(["keygen", "--private-out", str(private), "--public-out", str(public), "--force"])
    assert result.exit_code == 0
    assert private.read_bytes() != before
    new = [str(tmp_path / "a"), str(tmp_path / "b")]
    one_error_line(
        run(["keygen", "--private-out", new[0], "--public-out", new[1], "--bits", "1024"]),
        "usage_error:",
    )
    line = one_error_line(
        run(
            [
                "keygen",
                "--private-out",
                new[0],
                "--public-out",
                new[1],
                "--password-env",
                "TAAP_TEST_UNSET_VAR",
            ],
            env={"TAAP_TEST_UNSET_VAR": ""},
        ),
        "configuration_error:",
    )
    assert "TAAP_TEST_UNSET_VAR" in line
    assert not Path(new[0]).exists()
    one_error_line(run(["keygen", "--public-out", new[1]]), "usage_error:")


# --- pop build ------------------------------------------------------------------------------


def _verify(
    token: str,
    public: Path,
    pairs: list[list[str]] | list[tuple[str, str]],
    now: float | None = None,
) -> dict[str, Any]:
    claims = decode_pop_token(token)[1]
    verified = verify_pop_token(
        token,
        keys=[load_public_key(public.read_bytes())],
        request=SignedValues([(n, v) for n, v in pairs]),
        now=claims["iat"] + 1 if now is None else now,
    )
    return dict(verified.claims)


def test_build_from_ehts_json(keypair: tuple[Path, Path], pairs_file: Path) -> None:
    private, public = keypair
    result = run(["pop", "build", "--key", str(private), "--ehts-json", str(pairs_file)])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    claims = _verify(token, public, PAIRS)
    assert claims["ehts"] == "Content-Type;Authorization;uri;http-method;body"
    assert claims["exp"] - claims["iat"] == 60  # default ttl


def test_build_from_stdin_with_ttl(keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    result = run(
        ["pop", "build", "--key", str(private), "--ehts-json", "-", "--ttl", "120"],
        stdin=json.dumps(PAIRS),
    )
    assert result.exit_code == 0, result.output
    claims = _verify(result.stdout.strip(), public, PAIRS)
    assert claims["exp"] - claims["iat"] == 120


def test_build_from_request_flags(keypair: tuple[Path, Path], tmp_path: Path) -> None:
    private, public = keypair
    args = [
        "pop",
        "build",
        "--key",
        str(private),
        "--method",
        "POST",
        "--uri",
        "/commerce/v1/orders?name=Jos%C3%A9+Doe&n=1",
        "--header",
        "Content-Type: application/json",
        "--header",
        "Authorization:   Bearer abc  ",
        "--header",
        "X-Request-Id: 7",
    ]
    result = run([*args, "--body", '{"a": "é"}'])
    assert result.exit_code == 0, result.output
    expected = [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer abc"),
        ("X-Request-Id", "7"),
        ("uri", "/commerce/v1/orders?name=José+Doe&n=1"),
        ("http-method", "POST"),
        ("body", '{"a": "é"}'),
    ]
    claims = _verify(result.stdout.strip(), public, expected)
    assert claims["ehts"] == "Content-Type;Authorization;X-Request-Id;uri;http-method;body"
    body_file = tmp_path / "body.json"
    body_file.write_bytes('{"a": "é"}'.encode())
    result = run([*args, "--body-file", str(body_file)])
    assert result.exit_code == 0, result.output
    _verify(result.stdout.strip(), public, expected)
    # no body: body is not signed
    result = run(args)
    claims = _verify(result.stdout.strip(), public, expected[:-1])
    assert claims["ehts"].endswith(";uri;http-method")


def test_build_signs_an_escaped_cursor_decoded(keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    uri = "/items?cursor=abc%3D%3D&page=%25"
    args = ["pop", "build", "--key", str(private), "--method", "GET", "--uri", uri]
    result = run([*args, "--header", "Authorization: Bearer abc"])
    assert result.exit_code == 0, result.output
    signed = [
        ("Authorization", "Bearer abc"),
        ("uri", "/items?cursor=abc==&page=%"),
        ("http-method", "GET"),
    ]
    _verify(result.stdout.strip(), public, signed)


def test_build_with_an_encrypted_key(tmp_path: Path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    env = {"TAAP_TEST_PW": "pw-123"}
    run(
        [
            "keygen",
            "--private-out",
            str(private),
            "--public-out",
            str(public),
            "--password-env",
            "TAAP_TEST_PW",
        ],
        env=env,
    )
    args = ["pop", "build", "--key", str(private), "--ehts-json", "-"]
    result = run([*args, "--password-env", "TAAP_TEST_PW"], stdin=json.dumps(PAIRS), env=env)
    assert result.exit_code == 0, result.output
    _verify(result.stdout.strip(), public, PAIRS)
    line = one_error_line(run(args, stdin=json.dumps(PAIRS)), "key_invalid:")
    assert "password" in line


@pytest.mark.parametrize(
    ("extra", "stdin", "prefix"),
    [
        (["--ehts-json", "-", "--method", "GET"], "[]", "usage_error:"),
        (["--method", "GET"], None, "usage_error:"),
        (["--uri", "/a"], None, "usage_error:"),
        (
            ["--method", "GET", "--uri", "/a", "--body", "x", "--body-file", "/etc/hostname"],
            None,
            "usage_error:",
        ),
        (["--method", "GET", "--uri", "/a", "--header", "NoColon"], None, "usage_error:"),
        (["--method", "GET", "--uri", "/a?x=%26"], None, "request_malformed:"),
        (["--method", "GET", "--uri", "/a?q=a%2Bb"], None, "request_malformed:"),
        (["--method", "GET", "--uri", "/a?a%3Db=c"], None, "request_malformed:"),
        (["--method", "GET", "--uri", "/a?a=%2541"], None, "request_malformed:"),
        (["--method", "GET", "--uri", "/a%23b"], None, "request_malformed:"),
        (["--method", "GET", "--uri", "/a/../b"], None, "request_malformed:"),
        (["--method", "GET", "--uri", "/a", "--header", "X-Empty:  "], None, "pop_build_refused:"),
        (["--ehts-json", "-"], "[]", "pop_build_refused:"),
        (["--ehts-json", "-"], '[["uri", "/a"], ["URI", "/b"]]', "pop_build_refused:"),
        (["--ehts-json", "-"], '{"uri": "/a"}', "usage_error:"),
        (["--ehts-json", "-"], "not json", "usage_error:"),
        (["--ehts-json", "/nonexistent/pairs.json"], None, "error:"),
        (["--ehts-json", "-", "--ttl", "121"], json.dumps(PAIRS), "usage_error:"),
        (["--ehts-json", "-", "--ttl", "0"], json.dumps(PAIRS), "usage_error:"),
    ],
)
def test_build_errors_are_one_line(
    keypair: tuple[Path, Path], extra: list[str], stdin: str | None, prefix: str
) -> None:
    private, _ = keypair
    one_error_line(run(["pop", "build", "--key", str(private), *extra], stdin=stdin), prefix)


def test_build_with_a_public_key_or_missing_key(keypair: tuple[Path, Path]) -> None:
    _, public = keypair
    args = ["pop", "build", "--ehts-json", "-"]
    one_error_line(run([*args, "--key", str(public)], stdin=json.dumps(PAIRS)), "key_invalid:")
    one_error_line(
        run([*args, "--key", "/nonexistent.pem"], stdin=json.dumps(PAIRS)), "usage_error:"
    )


# --- pop verify -----------------------------------------------------------------------------


@pytest.fixture
def token(keypair: tuple[Path, Path], pairs_file: Path) -> str:
    result = run(
        ["pop", "build", "--key", str(keypair[0]), "--ehts-json", str(pairs_file), "--ttl", "120"]
    )
    return result.stdout.strip()


def _iat(token: str) -> int:
    return int(decode_pop_token(token)[1]["iat"])


def test_verify_accepts_and_prints_the_claims(
    keypair: tuple[Path, Path], pairs_file: Path, token: str
) -> None:
    _, public = keypair
    args = [
        "pop",
        "verify",
        "--public-key",
        str(public),
        "--token",
        token,
        "--ehts-json",
        str(pairs_file),
        "--now",
        str(_iat(token) + 1),
    ]
    result = run(args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == decode_pop_token(token)[1]
    # token from stdin
    args[args.index("--token") + 1] = "-"
    result = run(args, stdin=token + "\n")
    assert result.exit_code == 0, result.output


def test_verify_public_key_formats(
    keypair: tuple[Path, Path], pairs_file: Path, token: str, tmp_path: Path
) -> None:
    key = load_public_key(keypair[1].read_bytes())
    pkcs1 = tmp_path / "pkcs1.pem"
    pkcs1.write_bytes(
        key.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    )
    jwk = tmp_path / "key.jwk"
    jwk.write_text(json.dumps(dict(key.jwk)))
    for path in (keypair[1], pkcs1, jwk):
        result = run(
            [
                "pop",
                "verify",
                "--public-key",
                str(path),
                "--token",
                token,
                "--ehts-json",
                str(pairs_file),
                "--now",
                str(_iat(token)),
            ]
        )
        assert result.exit_code == 0, (path, result.output)


def test_verify_failures_give_the_error_code(
    keypair: tuple[Path, Path], pairs_file: Path, token: str, tmp_path: Path, other_key: PrivateKey
) -> None:
    _, public = keypair
    iat = _iat(token)
    base = ["pop", "verify", "--public-key", str(public), "--ehts-json", str(pairs_file)]
    line = one_error_line(run([*base, "--token", token, "--now", str(iat + 71)]), "pop_expired:")
    assert line == (
        f"pop_expired: PoP token too old: issued 71 s ago (iat {iat}), over the maximum age of "
        "60 s + leeway 10 s"
    )
    assert run([*base, "--token", token, "--now", str(iat + 71), "--leeway", "20"]).exit_code == 0
    assert run([*base, "--token", token, "--now", str(iat + 75), "--max-age", "70"]).exit_code == 0
    one_error_line(run([*base, "--token", "a.b.c", "--now", str(iat)]), "pop_malformed:")
    one_error_line(run([*base, "--token", token + "x", "--now", str(iat)]), "pop_malformed:")
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps([*PAIRS[:-1], ["body", "{}"]]))
    one_error_line(
        run(
            [
                "pop",
                "verify",
                "--public-key",
                str(public),
                "--ehts-json",
                str(changed),
                "--token",
                token,
                "--now",
                str(iat),
            ]
        ),
        "pop_edts_mismatch:",
    )
    wrong = tmp_path / "other.pub"
    wrong.write_bytes(other_key.public.to_pem())
    one_error_line(
        run(
            [
                "pop",
                "verify",
                "--public-key",
                str(wrong),
                "--ehts-json",
                str(pairs_file),
                "--token",
                token,
                "--now",
                str(iat),
            ]
        ),
        "pop_signature_invalid:",
    )
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps([p for p in PAIRS if p[0] != "Content-Type"]))
    one_error_line(
        run(
            [
                "pop",
                "verify",
                "--public-key",
                str(public),
                "--ehts-json",
                str(missing),
                "--token",
                token,
                "--now",
                str(iat),
            ]
        ),
        "pop_ehts_insufficient:",
    )
    one_error_line(run([*base, "--token", token, "--policy", "loose"]), "usage_error:")
    one_error_line(run([*base, "--token", "-"], stdin=""), "pop_malformed:")
    one_error_line(
        run(["pop", "verify", "--public-key", str(public), "--ehts-json", "-", "--token", "-"]),
        "usage_error:",
    )
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("nope")
    one_error_line(
        run(
            [
                "pop",
                "verify",
                "--public-key",
                str(bad_key),
                "--ehts-json",
                str(pairs_file),
                "--token",
                token,
            ]
        ),
        "key_invalid:",
    )


def test_verify_policies_on_a_vector(vectors: dict[str, Any], tmp_path: Path) -> None:
    vector = next(v for v in vectors["vectors"] if v["id"] == "edge-edts-case-changed")
    key, values = tmp_path / "k.pem", tmp_path / "v.json"
    key.write_text(vector["public_key"])
    values.write_text(json.dumps(vector["ehts_values"]))
    args = [
        "pop",
        "verify",
        "--public-key",
        str(key),
        "--ehts-json",
        str(values),
        "--token",
        vector["token"],
        "--now",
        str(vector["frozen_now"]),
    ]
    one_error_line(run(args), "pop_edts_mismatch:")
    one_error_line(run([*args, "--policy", "strict"]), "pop_edts_mismatch:")
    result = run([*args, "--policy", "java-compat"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == vector["decoded_payload"]


def test_verify_lenient_accepts_a_partial_ehts(keypair: tuple[Path, Path], tmp_path: Path) -> None:
    private, public = keypair
    pairs = tmp_path / "p.json"
    pairs.write_text(json.dumps([["uri", "/a"], ["http-method", "GET"]]))
    token = run(["pop", "build", "--key", str(private), "--ehts-json", str(pairs)]).stdout.strip()
    args = [
        "pop",
        "verify",
        "--public-key",
        str(public),
        "--ehts-json",
        str(pairs),
        "--token",
        token,
        "--now",
        str(_iat(token)),
    ]
    one_error_line(run(args), "pop_ehts_insufficient:")
    assert run([*args, "--policy", "lenient"]).exit_code == 0


# --- pop decode -----------------------------------------------------------------------------


def test_decode(token: str) -> None:
    result = run(["pop", "decode", token])
    assert result.exit_code == 0, result.output
    header, claims = decode_pop_token(token)
    assert json.loads(result.stdout) == {"header": header, "claims": claims}
    assert header == {"alg": "RS256", "typ": "JWT"}
    assert "NOT verified" in result.stderr
    assert json.loads(run(["pop", "decode", "-"], stdin=token).stdout)["claims"] == claims


@pytest.mark.parametrize("bad", ["x", "a.b", "eyJhbGciOiJub25lIn0.e30.", "a" * 9000])
def test_decode_refuses_what_verification_refuses_at_step_1(bad: str) -> None:
    one_error_line(run(["pop", "decode", bad]), "pop_malformed:")


# --- a real process: exit codes and stderr as a script sees them ------------------------------


def _proc(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAAP_")}
    return subprocess.run(
        [str(TAAP), *args], input=stdin, capture_output=True, text=True, timeout=60, env=env
    )


def test_real_process_round_trip(tmp_path: Path) -> None:
    assert TAAP.exists(), "install the project: .venv/bin/pip install -e ."
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    done = _proc(["keygen", "--private-out", str(private), "--public-out", str(public)])
    assert done.returncode == 0, done.stderr
    built = _proc(["pop", "build", "--key", str(private), "--ehts-json", "-"], json.dumps(PAIRS))
    assert built.returncode == 0, built.stderr
    token = built.stdout.strip()
    pairs = tmp_path / "p.json"
    pairs.write_text(json.dumps(PAIRS))
    ok = _proc(
        ["pop", "verify", "--public-key", str(public), "--token", token, "--ehts-json", str(pairs)]
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ehts"] == "Content-Type;Authorization;uri;http-method;body"
    late = _proc(
        [
            "pop",
            "verify",
            "--public-key",
            str(public),
            "--token",
            token,
            "--ehts-json",
            str(pairs),
            "--now",
            str(_iat(token) + 3600),
        ]
    )
    assert late.returncode == 1
    assert late.stdout == ""
    assert late.stderr.count("\n") == 1
    assert late.stderr.startswith("pop_expired: ")
    usage = _proc(["pop", "verify", "--token", token])
    assert usage.returncode == 2
    assert usage.stderr.count("\n") == 1
    assert usage.stderr.startswith("usage_error: ")
    assert "Traceback" not in late.stderr + usage.stderr
