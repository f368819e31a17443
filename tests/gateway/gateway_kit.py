"""Real processes for the gateway tests: the node upstream (tests/gateway/upstream.js), ``taap
gateway``, the process's resident memory, and PoPs from T-Mobile's npm builder."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kit.nginx import run_nginx
from kit.processes import TAAP, Service, clean_env, free_port, start_service, wait_until

__all__ = [
    "DEPLOY_CONF",
    "UPSTREAM_JS",
    "nginx_gateway_conf",
    "npm_pops",
    "rss_kib",
    "start_gateway",
    "start_nginx",
    "start_upstream",
]

HERE = Path(__file__).resolve().parent
UPSTREAM_JS = HERE / "upstream.js"
TMO_BUILD_JS = HERE.parent / "interop" / "tmo_build.js"


def start_upstream(folder: Path, port: int | None = None, name: str = "upstream") -> Service:
    """The node echo server on ``port`` (default a free one), once it listens."""
    port = port or free_port()
    log = folder / f"{name}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["node", str(UPSTREAM_JS), str(port)], stdout=out, stderr=subprocess.STDOUT
        )

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"upstream exited: {log.read_text()}")
        return "listening" in log.read_text()

    wait_until(listening, 20, "the node upstream")
    return Service(name, f"http://127.0.0.1:{port}", proc, log)


def start_gateway(
    folder: Path,
    token_url: str,
    upstreams: Mapping[str, str],
    *args: str,
    name: str = "gateway",
    redis_url: str | None = None,
    **settings: str,
) -> Service:
    """``taap gateway`` on a free port (``settings``: ``TAAP_*`` variables), once it answers."""
    port = free_port()
    cmd = [TAAP, "gateway", "--token-server", token_url, "--port", str(port), *args]
    for product, url in upstreams.items():
        cmd += ["--upstream", f"{product}={url}"]
    if redis_url:
        cmd += ["--redis-url", redis_url]
    env = clean_env(TAAP_JWKS_MIN_REFRESH="1", **settings)
    return start_service(name, cmd, url=f"http://127.0.0.1:{port}", env=env, folder=folder)


def rss_kib(pid: int) -> int:
    """The resident set of process ``pid``, in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def npm_pops(builder_dir: Path, pem: str, jobs: Sequence[Sequence[tuple[str, Any]]]) -> list[str]:
    """PoPs built by ``tmo-poptoken-builder`` under node, one per list of (name, value) pairs."""
    module = builder_dir / "node_modules" / "tmo-poptoken-builder" / "poptoken-builder-node.js"
    payload = {
        "module": str(module),
        "pem": pem,
        "jobs": [{"pairs": [[n, v] for n, v in pairs], "now": None, "jti": None} for pairs in jobs],
    }
    done = subprocess.run(
        ["node", str(TMO_BUILD_JS)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tokens: list[str] = json.loads(done.stdout)
    return tokens


# -- nginx in front, from deploy/nginx-gateway.conf ---------------------------------------------

DEPLOY_CONF = HERE.parents[1] / "deploy" / "nginx-gateway.conf"
_PUBLIC_ONLY = re.compile(r"^\s*(listen|http2|server_name|ssl_\w+)\b.*$", re.M)


def nginx_gateway_conf(text: str, *, gateway: str, api: str, port: int, folder: Path) -> str:
    """A runnable nginx.conf from the example: every line verbatim but the addresses (the
    gateway's and the API's replaced by loopback ones) and the public TLS listener."""
    text = text.replace("10.0.0.30:8080", gateway).replace("10.0.0.40:9000", api)
    body = _PUBLIC_ONLY.sub("", text).replace(
        "server {\n", f"server {{\n    listen 127.0.0.1:{port};\n", 1
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = folder / "nginx-tmp"
    temp.mkdir(exist_ok=True)
    return f"""{user}worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/nginx-access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{body}
}}
"""


def start_nginx(nginx_bin: str, conf_text: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    """nginx on ``conf_text`` (checked with ``nginx -t`` first), once it listens on ``port``."""
    return run_nginx(nginx_bin, conf_text, folder, port)
