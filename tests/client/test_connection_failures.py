"""A request that never got through says why: connection refused, DNS name not found, TLS
failure (plain HTTP, an unknown certificate), connect or read timeout. Each cause is made for
real on loopback (a DNS name under ``.invalid``, which never resolves), through the SDK (sync
and async) and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kit.processes import TAAP, clean_env
from taap.cli.main import cli
from taap.client import ClientCredentials, TokenClient
from taap.client.retry import NO_RETRY
from taap.core import PrivateKey
from taap.errors import TransportError

from .conftest import CLIENT_ID, SECRET

TOKENS = "/oauth2/v2/tokens"
TIMEOUT = 0.3
DNS_URL = f"http://taap-test.invalid{TOKENS}"


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A port bound but not listening: the kernel answers a connect with a reset (refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}{TOKENS}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port whose listener takes connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}{TOKENS}"


@pytest.fixture
def full_url() -> Iterator[str]:
    """A listener with a backlog of one, already taken: Linux drops further SYNs, so a connect
    gets no answer at all (a connect timeout)."""
    with socket.socket() as sock, socket.socket() as filler:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        filler.connect(sock.getsockname())
        yield f"http://127.0.0.1:{sock.getsockname()[1]}{TOKENS}"


@pytest.fixture
def plain_http_url() -> Iterator[str]:
    """``https://`` to a plain-HTTP server: it answers the TLS hello with an HTTP 400."""

    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}{TOKENS}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def self_signed_url(tmp_path: Path) -> Iterator[str]:
    """A TLS server whose certificate nobody vouches for (made here, signed by itself)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(loopback, critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def handshakes() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            with conn, contextlib.suppress(OSError):
                context.wrap_socket(conn, server_side=True).close()

    thread = threading.Thread(target=handshakes, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}{TOKENS}"
    finally:
        listener.close()
        thread.join(timeout=5)


def _expected(kind: str, url: str) -> Callable[[str], bool]:
    server = f"the token server {url}"
    exact = {
        "refused": f"cannot connect to {server}: connection refused",
        "read": f"no answer from {server}: read timeout (no answer within {TIMEOUT:g} s)",
        "connect": f"cannot connect to {server}: connect timeout "
        f"(no connection within {TIMEOUT:g} s)",
        "tls": f"cannot connect to {server}: TLS failure: wrong version number "
        "(is it a plain-HTTP server?)",
    }
    if kind == "certificate":
        # OpenSSL 3 spells it with a hyphen, 1.1 without.
        return lambda text: (
            text
            in (
                f"cannot connect to {server}: TLS failure: certificate verify failed: "
                f"self{dash}signed certificate"
                for dash in ("-", " ")
            )
        )
    if kind == "dns":
        # Not found (NXDOMAIN), or a machine without any resolver: both name DNS.
        return lambda text: (
            text
            in (
                f"cannot connect to {server}: DNS name not found",
                f"cannot connect to {server}: DNS lookup failed "
                "(Temporary failure in name resolution)",
            )
        )
    return lambda text: text == exact[kind]


_FIXTURES = {
    "refused": "refused_url",
    "read": "silent_url",
    "connect": "full_url",
    "tls": "plain_http_url",
    "certificate": "self_signed_url",
}


def _url(kind: str, request: pytest.FixtureRequest) -> str:
    return DNS_URL if kind == "dns" else str(request.getfixturevalue(_FIXTURES[kind]))


@pytest.fixture(params=["refused", "dns", "read", "connect", "tls", "certificate"])
def failing(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(kind, url) of a token endpoint that fails in that way."""
    return request.param, _url(request.param, request)


@pytest.fixture
def key_file(tmp_path: Path, rsa_key: PrivateKey) -> str:
    path = tmp_path / "client.pem"
    path.write_bytes(rsa_key.to_pem())
    return str(path)


def test_sync_sdk_names_the_cause(failing: tuple[str, str], credentials: ClientCredentials) -> None:
    kind, url = failing
    with (
        TokenClient(url, credentials, retry=NO_RETRY, timeout=TIMEOUT) as client,
        pytest.raises(TransportError) as caught,
    ):
        client.fetch()
    assert caught.value.error_code == "transport_error"
    assert _expected(kind, url)(caught.value.description), caught.value.description


def test_async_sdk_names_the_cause(
    failing: tuple[str, str], credentials: ClientCredentials
) -> None:
    kind, url = failing

    async def fetch() -> None:
        async with TokenClient(url, credentials, retry=NO_RETRY, timeout=TIMEOUT) as client:
            await client.afetch()

    with pytest.raises(TransportError) as caught:
        asyncio.run(fetch())
    assert _expected(kind, url)(caught.value.description), caught.value.description


def test_retries_are_counted_in_the_message(
    refused_url: str, credentials: ClientCredentials
) -> None:
    client = TokenClient(refused_url, credentials, sleep=lambda seconds: None)
    with client, pytest.raises(TransportError) as caught:
        client.fetch()
    assert caught.value.description == (
        f"cannot connect to the token server {refused_url}: connection refused (4 attempts)"
    )


@pytest.mark.parametrize("kind", ["refused", "dns", "tls"])
def test_cli_prints_the_cause_in_one_line(
    kind: str, request: pytest.FixtureRequest, key_file: str
) -> None:
    """Each retry is announced with its cause and wait; the error is one line, last."""
    url = _url(kind, request)
    args = ["token", "--url", url, "--client-id", "c", "--client-secret", "s", "--key", key_file]
    result = subprocess.run(
        [TAAP, *args], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert result.returncode == 1
    *retries, last = result.stderr.strip().splitlines()
    cause = _expected(kind, url)
    waits = [line.removeprefix("taap: ").rpartition(", retrying in ") for line in retries]
    assert [wait for _, _, wait in waits] == ["0.5 s", "1 s", "2 s"], result.stderr
    assert all(cause(f"cannot connect to the token server {url}: {why}") for why, _, _ in waits)
    prefix = "transport_error: "
    assert last.startswith(prefix)
    attempts = " (4 attempts)"  # the CLI retries refused, DNS and TLS failures alike
    assert last.endswith(attempts), last
    assert cause(last.removeprefix(prefix).removesuffix(attempts)), last


def test_cli_quiet_prints_only_the_error(refused_url: str, key_file: str) -> None:
    args = ["token", "--url", refused_url, "--client-id", "c", "--client-secret", "s"]
    result = subprocess.run(
        [TAAP, *args, "--key", key_file, "--quiet"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"transport_error: cannot connect to the token server {refused_url}: "
        "connection refused (4 attempts)"
    )


def test_cli_call_names_the_cause_for_the_api(
    fake_url: str, refused_url: str, key_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token comes from a live token server; the API itself refuses the connection."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(Path(key_file).parent))
    api = refused_url.replace(TOKENS, "/api/x")
    args = ["call", "GET", api, "--token-url", f"{fake_url}{TOKENS}", "--client-id", CLIENT_ID]
    result = CliRunner().invoke(
        cli, [*args, "--client-secret", SECRET, "--key", key_file], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert result.stderr == f"transport_error: cannot connect to {api}: connection refused\n"
