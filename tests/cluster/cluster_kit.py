"""Helpers for the cluster test: ``taap serve`` nodes, a private nginx in front of them, the
``taap`` CLI against the shared database, clients that record every answer, and the audit
lines the nodes wrote.

Everything runs as real processes on loopback ports: nodes with PostgreSQL + Redis, nginx
built from ``deploy/nginx.conf`` (its upstream options and ``location /`` block verbatim, only
the addresses and the TLS lines replaced).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kit.nginx import run_nginx
from kit.processes import TAAP, stop_process, wait_until

# Re-exported: test_serve_workers takes them from here.
from kit.wire import jwt_part
from logkit import audit_records
from taap.client import NO_RETRY, ClientCredentials, PopAuth, Secret, TokenClient
from taap.core import PrivateKey

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_NGINX = ROOT / "deploy" / "nginx.conf"
DEVICE_PATH = "/iot-connectivity/v1/devices/8901260000000000001"


# -- nodes -------------------------------------------------------------------------------------


@dataclass
class Node:
    """One ``taap serve`` process (restartable on the same port); one log file per start."""

    name: str
    port: int
    args: list[str]
    env: dict[str, str]
    folder: Path
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.folder / f"{self.name}-{len(self.logs) + 1}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [TAAP, "serve", "--port", str(self.port), *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.folder,
            )

    def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.logs[-1].read_text()[-3000:]}")
        try:
            return httpx.get(self.base + "/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 40.0) -> None:
        wait_until(self.ready, timeout, f"{self.name} /readyz", step=0.1)

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def audit(self) -> list[dict[str, Any]]:
        """Every audit line this node wrote, over all its starts."""
        return [record for log in self.logs for record in audit_records(log)]


# -- nginx -------------------------------------------------------------------------------------


def _block(text: str, opener: str) -> str:
    """The body of the first top-level ``opener { ... }`` block (nested blocks included)."""
    match = re.search(r"^" + re.escape(opener) + r"\s*\{", text, re.M)
    if match is None:
        raise AssertionError(f"deploy/nginx.conf has no {opener!r} block")
    depth, start = 1, match.end()
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start:index]
    raise AssertionError(f"deploy/nginx.conf: {opener!r} block is not closed")


# Lines of the example's server block that belong to its public listener (TLS on :443).
_PUBLIC_ONLY = re.compile(r"^\s*(listen|http2|server_name|ssl_\w+)\b")


def nginx_conf(deploy_text: str, nodes: Sequence[Node], port: int, folder: Path) -> str:
    """A runnable nginx.conf from the deployment example: its upstream options and its server
    block verbatim; loopback addresses instead of the example's, a loopback listener, no TLS."""
    upstream = _block(deploy_text, "upstream taap_nodes")
    server_options, other = "", []
    for line in upstream.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if stripped.startswith("server "):
            server_options = " ".join(stripped.rstrip(";").split()[2:])
        elif stripped:
            other.append(stripped)
    servers = "\n".join(f"        server {n.base[7:]} {server_options};" for n in nodes)
    options = "\n".join(f"        {o}" for o in other)
    server = "\n".join(
        line for line in _block(deploy_text, "server").splitlines() if not _PUBLIC_ONLY.match(line)
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = folder / "nginx-tmp"
    temp.mkdir(exist_ok=True)
    return f"""{user}worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format upstreams '$status $request_method $uri rid=$request_id '
                         'up=$upstream_addr st=$upstream_status';
    access_log {folder}/nginx-access.log upstreams;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    upstream taap_nodes {{
{servers}
{options}
    }}
    server {{
        listen 127.0.0.1:{port};
{server}
    }}
}}
"""


@dataclass
class Nginx:
    url: str
    proc: subprocess.Popen[bytes]
    folder: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def access(self) -> list[str]:
        path = self.folder / "nginx-access.log"
        return path.read_text().splitlines() if path.exists() else []


def upstreams(line: str) -> list[str]:
    """The nodes nginx tried for one access-log line, in order."""
    return line.split(" up=", 1)[1].split(" st=", 1)[0].split(", ")


def start_nginx(nginx_bin: str, nodes: Sequence[Node], folder: Path, *, port: int) -> Nginx:
    conf_text = nginx_conf(DEPLOY_NGINX.read_text(), nodes, port, folder)
    proc = run_nginx(nginx_bin, conf_text, folder, port)
    return Nginx(f"http://127.0.0.1:{port}", proc, folder)


# -- clients that record every answer -----------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer (or failure to get one) seen by a test client."""

    at: float
    phase: str
    kind: str  # "token" or "api"
    client: str
    status: int | None  # None: no answer (connection failure, timeout)
    error_code: str | None
    token_jti: str | None = None
    kid: str | None = None


class Recorder:
    """Collects the answers of every client; ``phase`` is set by the test as it goes."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.phase = "start"
        self._lock = threading.Lock()

    def add(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def hook(self, client: str) -> Any:
        def on_response(response: httpx.Response) -> None:
            response.read()
            kind = "token" if response.request.url.path.startswith("/oauth2/") else "api"
            error_code = token_jti = kid = None
            if response.status_code == 200 and kind == "token":
                access = response.json()["access_token"]
                token_jti, kid = jwt_part(access, 1)["jti"], jwt_part(access, 0)["kid"]
            elif response.status_code >= 300:
                try:
                    error_code = response.json().get("error_code")
                except ValueError:
                    error_code = f"non-JSON {response.status_code}"
            self.add(
                Answer(
                    time.monotonic(),
                    self.phase,
                    kind,
                    client,
                    response.status_code,
                    error_code,
                    token_jti,
                    kid,
                )
            )

        return on_response

    def failure(self, client: str, kind: str, exc: BaseException) -> None:
        self.add(Answer(time.monotonic(), self.phase, kind, client, None, type(exc).__name__))

    def select(self, **match: Any) -> list[Answer]:
        with self._lock:
            answers = list(self.answers)
        return [a for a in answers if all(getattr(a, k) == v for k, v in match.items())]


@dataclass
class LoadClient:
    """A registered client using the SDK (no retries: every refusal stays visible)."""

    name: str
    client_id: str
    secret: str
    key: PrivateKey
    token_url: str
    recorder: Recorder
    http: httpx.Client = field(init=False)
    tokens: TokenClient = field(init=False)
    auth: PopAuth = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            timeout=15.0, event_hooks={"response": [self.recorder.hook(self.name)]}
        )
        credentials = ClientCredentials(
            client_id=self.client_id, client_secret=Secret(self.secret), key=self.key
        )
        self.tokens = TokenClient(
            self.token_url, credentials, retry=NO_RETRY, http=self.http, margin=0
        )
        self.auth = PopAuth(self.tokens, retry=NO_RETRY)

    def get_token(self, url: str | None = None) -> httpx.Response | None:
        """One token request (fresh PoP) to ``url`` (default: through nginx)."""
        request, sent_at = self.tokens.token_request()
        if url is not None:  # straight to one node: same path, so the same signed request
            headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
            target = url + request.url.raw_path.decode()
            request = httpx.Request(
                request.method, target, headers=headers, content=request.content
            )
        try:
            response = self.http.send(request)
        except httpx.HTTPError as exc:
            self.recorder.failure(self.name, "token", exc)
            return None
        if response.status_code == 200:
            self.tokens.accept(response, sent_at)
        return response

    def call(self, base: str) -> httpx.Response | None:
        """GET the sample device with the cached token and a fresh step-3 PoP."""
        try:
            return self.http.get(base + DEVICE_PATH, auth=self.auth)
        except httpx.HTTPError as exc:
            self.recorder.failure(self.name, "api", exc)
            return None

    def close(self) -> None:
        self.http.close()


class Load:
    """Threads that each loop: token request through nginx, then a guarded call through it."""

    def __init__(self, clients: Sequence[LoadClient], api_base: str) -> None:
        self.clients = clients
        self.api_base = api_base
        self.stop_event = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(c,)) for c in clients]

    def _run(self, client: LoadClient) -> None:
        try:
            while not self.stop_event.is_set():
                response = client.get_token()
                if response is not None and response.status_code == 200:
                    client.call(self.api_base)
        except BaseException as exc:  # surfaced by stop(): a crash must fail the test
            self.errors.append(exc)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self.threads), "a load thread hangs"


def counts(answers: Iterator[Answer] | Sequence[Answer]) -> Counter[str]:
    return Counter(
        "ok" if a.status is not None and a.status < 300 else f"{a.status} {a.error_code}"
        for a in answers
    )
