"""Two ``taap serve`` nodes behind nginx, sharing one PostgreSQL database and one Redis (issue 7,
"Prove it on this machine").

Clients stream token requests and guarded calls through nginx (built from
``deploy/nginx.conf``) while the test rotates the signing key, stops and restarts a node, sends
one PoP to both nodes, and registers, disables and re-keys a client with the CLI. Every answer
any client got is recorded; at the end the nodes' audit lines are reconciled with them.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from cluster_kit import (
    DEVICE_PATH,
    Answer,
    Load,
    LoadClient,
    Node,
    Recorder,
    counts,
    start_nginx,
    upstreams,
)

from kit.clients import create_client_with_cli, register_clients
from kit.postgres import temporary_database
from kit.processes import clean_env, free_port, taap_ok, wait_until
from kit.stores import adopt_redis
from kit.wire import basic, jwt_part
from logkit import audit_records
from taap.core import build_pop_token, generate_private_key, request_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.nginx]

#: The node's signing-key refresh under test (TAAP_KEY_REFRESH; 30 s in production).
KEY_REFRESH = 2
LOAD_CLIENTS = 4
TOKEN_PATH = "/oauth2/v2/tokens"


@pytest.fixture
def cluster_db(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "taap_cluster") as url:
        yield url


@pytest.fixture
def cluster_redis(redis_url: str) -> str:
    """The CI Redis, on a database number of its own (other tests use 0)."""
    parts = urlsplit(redis_url)
    url = urlunsplit(parts._replace(path=f"/{9 + uuid.uuid4().int % 6}"))
    adopt_redis(url)
    return url


class SlowRequest:
    """A token request sent to one node in two halves: in flight while the node shuts down."""

    def __init__(self, node: Node, client: LoadClient) -> None:
        self.body = json.dumps({"purpose": "in flight across SIGTERM"}).encode()
        base = [
            ("Content-Type", "application/json"),
            ("Authorization", basic(client.client_id, client.secret)),
        ]
        pop = build_pop_token(request_pairs("POST", TOKEN_PATH, base, self.body), client.key)
        head = f"POST {TOKEN_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{node.port}\r\n"
        for name, value in [*base, ("X-Authorization", pop)]:
            head += f"{name}: {value}\r\n"
        head += f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        self.sock = socket.create_connection(("127.0.0.1", node.port), timeout=30)
        self.sock.sendall(head.encode() + self.body[:10])

    def finish(self) -> tuple[int, dict[str, Any]]:
        self.sock.sendall(self.body[10:])
        data = b""
        while chunk := self.sock.recv(65536):
            data += chunk
        self.sock.close()
        head, _, payload = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, json.loads(payload[payload.index(b"{") : payload.rindex(b"}") + 1])


def _same_request_to_both(
    client: LoadClient, request: httpx.Request, nodes: list[Node]
) -> list[httpx.Response]:
    """Send one signed request to every node at the same moment; their answers."""
    headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
    target = request.url.raw_path.decode()
    barrier = threading.Barrier(len(nodes))
    answers: dict[int, httpx.Response] = {}

    def send(i: int, node: Node) -> None:
        copy = httpx.Request(request.method, node.base + target, headers=headers)
        barrier.wait()
        answers[i] = client.http.send(copy)

    threads = [threading.Thread(target=send, args=(i, n)) for i, n in enumerate(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return [answers[i] for i in range(len(nodes))]


def _report(title: str, rows: list[tuple[str, object]]) -> None:
    print(f"\n{title}")
    for name, value in rows:
        print(f"  {name:<58} {value}")


def test_two_nodes_behind_nginx(
    tmp_path: Path, nginx_bin: str, cluster_db: str, cluster_redis: str
) -> None:
    started = time.monotonic()
    pepper = secrets.token_urlsafe(32)
    nginx_port = free_port()
    nginx_url = f"http://127.0.0.1:{nginx_port}"
    env = clean_env(
        TAAP_DATABASE_URL=cluster_db,
        TAAP_REDIS_URL=cluster_redis,
        TAAP_PEPPER=pepper,
        TAAP_PUBLIC_URL=nginx_url,  # one issuer for the cluster: the address clients use
        TAAP_WITH_SAMPLE_APIS="true",
        TAAP_KEY_REFRESH=str(KEY_REFRESH),
        TAAP_FORWARDED_ALLOW_IPS="127.0.0.1",
        TAAP_JWKS_MIN_REFRESH="3",
        # Signing keys encrypted at rest; the CLI (keys rotate) gets the same key.
        TAAP_KEY_ENCRYPTION_KEY=secrets.token_urlsafe(24),
        TAAP_SHUTDOWN_DRAIN="2",  # the default: nginx sees node-a unready before it goes
    )
    nodes = [Node(name, free_port(), [], env, tmp_path) for name in ("node-a", "node-b")]
    node_a, node_b = nodes
    nginx = start_nginx(nginx_bin, nodes, tmp_path, port=nginx_port)
    recorder = Recorder()
    clients: list[LoadClient] = []
    try:
        for node in nodes:  # both on a new database at once: the migration lock decides
            node.start()
        for node in nodes:
            node.wait_ready()
        wanted = {
            f"load-{i}": (generate_private_key(2048), ["connectivity"]) for i in range(LOAD_CLIENTS)
        }
        registered = register_clients(cluster_db, wanted, environ={"TAAP_PEPPER": pepper})
        clients = [
            LoadClient(name, c.client_id, c.secret, c.key, nginx_url + TOKEN_PATH, recorder)
            for name, c in registered.items()
        ]
        setup_s = time.monotonic() - started

        with Load(clients, nginx_url) as load:
            # -- steady state: nginx spreads the stream over both nodes ------------------------
            recorder.phase = "steady"
            wait_until(
                lambda: all(any(a["event"] == "token_issued" for a in n.audit()) for n in nodes),
                15,
                "both nodes to issue",
            )
            time.sleep(1.0)

            # -- key rotation under load -----------------------------------------------------
            recorder.phase = "rotation"
            old_kid = httpx.get(nginx_url + "/oauth2/v1/jwks").json()["keys"][0]["kid"]
            rotated_at = time.monotonic()
            taap_ok("keys", "rotate", env=env)
            jwks = [k["kid"] for k in httpx.get(nginx_url + "/oauth2/v1/jwks").json()["keys"]]
            new_kid = jwks[0]
            assert new_kid != old_kid
            assert old_kid in jwks

            def signs_with_new_key(node: Node) -> bool:
                return any(
                    a["event"] == "token_issued" and a["kid"] == new_kid for a in node.audit()
                )

            wait_until(
                lambda: all(signs_with_new_key(n) for n in nodes),
                KEY_REFRESH + 15,
                "every node to sign with the new key",
            )
            switch_s = time.monotonic() - rotated_at
            time.sleep(1.0)

            # -- stop one node (SIGTERM) with a request in flight, restart it ---------------------
            recorder.phase = "node-a stopping"
            slow = SlowRequest(node_a, clients[0])
            time.sleep(0.2)  # the node has read the head: the request is in flight
            stop_at = time.monotonic()
            node_a.terminate()

            readyz: list[int | None] = []

            def a_unready() -> bool:
                try:
                    readyz.append(httpx.get(node_a.base + "/readyz", timeout=1.0).status_code)
                except httpx.HTTPError:
                    readyz.append(None)
                return readyz[-1] != 200

            wait_until(a_unready, 10, "node-a to report unready")
            # /readyz turns unready first (503) while the node still answers (TAAP_SHUTDOWN_DRAIN)
            assert readyz[-1] == 503, readyz
            slow_status, slow_body = slow.finish()
            assert slow_status == 200, slow_body
            access = slow_body["access_token"]
            recorder.add(
                Answer(
                    time.monotonic(),
                    recorder.phase,
                    "token",
                    "slow",
                    200,
                    None,
                    jwt_part(access, 1)["jti"],
                )
            )
            # uvicorn ends by re-raising SIGTERM once drained (systemd counts that as clean)
            assert node_a.wait_exit(30) in (0, -signal.SIGTERM), node_a.logs[-1].read_text()[-2000:]
            drain_s = time.monotonic() - stop_at
            recorder.phase = "node-a down"
            down_from = len(nginx.access())
            time.sleep(2.0)
            node_a.start()
            node_a.wait_ready()
            down_lines = nginx.access()[down_from:]
            recorder.phase = "node-a back"
            wait_until(
                lambda: any(a["event"] == "token_issued" for a in _audit(node_a.logs[-1])),
                15,
                "nginx to send traffic to the restarted node",
            )

            # -- one PoP, both nodes: exactly one success -----------------------------------------
            recorder.phase = "cross-node replay"
            probe = clients[1]
            request, _ = probe.tokens.token_request()
            token_answers = _same_request_to_both(probe, request, nodes)
            assert sorted(r.status_code for r in token_answers) == [200, 401]
            assert [r.json()["error_code"] for r in token_answers if r.status_code == 401] == [
                "pop_replayed"
            ]
            token = probe.tokens.accept(
                next(r for r in token_answers if r.status_code == 200), time.time()
            )
            api_request = probe.auth.sign(httpx.Request("GET", nginx_url + DEVICE_PATH), token)
            api_answers = _same_request_to_both(probe, api_request, nodes)
            assert sorted(r.status_code for r in api_answers) == [200, 401]
            assert [r.json()["error_code"] for r in api_answers if r.status_code == 401] == [
                "pop_replayed"
            ]

            # -- registry changes with the CLI, honoured by both nodes on the next request ------
            recorder.phase = "registry"
            x_key, x_next = generate_private_key(2048), generate_private_key(2048)
            (tmp_path / "x-next.pub").write_bytes(x_next.public.to_pem())
            x_id, x_secret = create_client_with_cli(
                cluster_db, x_key, ["connectivity"], folder=tmp_path, env=env, name="cluster-x"
            )
            x_old = LoadClient("x", x_id, x_secret, x_key, nginx_url + TOKEN_PATH, recorder)
            x_new = LoadClient("x", x_id, x_secret, x_next, nginx_url + TOKEN_PATH, recorder)
            clients += [x_old, x_new]
            changes: list[tuple[str, str, int, str | None]] = []

            def expect(step: str, client: LoadClient, node: Node, status: int, code: str | None):
                response = client.get_token(node.base)
                assert response is not None
                got = response.json().get("error_code") if response.status_code != 200 else None
                changes.append((step, node.name, response.status_code, got))
                assert (response.status_code, got) == (status, code), (step, node.name)

            expect("created", x_old, node_b, 200, None)
            expect("created", x_old, node_a, 200, None)
            taap_ok("clients", "disable", x_id, env=env)
            expect("disabled", x_old, node_b, 401, "client_auth_failed")
            expect("disabled", x_old, node_a, 401, "client_auth_failed")
            taap_ok("clients", "enable", x_id, env=env)
            expect("enabled", x_old, node_a, 200, None)
            taap_ok("clients", "add-key", x_id, str(tmp_path / "x-next.pub"), env=env)
            taap_ok("clients", "remove-key", x_id, x_key.public.thumbprint, env=env)
            expect("re-keyed, old key", x_old, node_b, 401, "pop_signature_invalid")
            expect("re-keyed, new key", x_new, node_a, 200, None)
            expect("re-keyed, new key", x_new, node_b, 200, None)
            recorder.phase = "steady (end)"
            time.sleep(1.0)
            load.stop()
            assert not load.errors, load.errors
            metrics = {node.name: _issued_metric(node) for node in nodes}
            stored = _stored_signing_keys(cluster_db)
            assert httpx.get(nginx_url + "/metrics").status_code == 404  # not for the public
        load_s = time.monotonic() - started - setup_s
    finally:
        for client in clients:
            client.close()
        for node in nodes:
            node.kill()  # SIGTERM, so every audit line is written before the logs are read
        nginx.stop()

    # -- reconcile ------------------------------------------------------------------------------
    answers = recorder.select()
    token_answers_all = [a for a in answers if a.kind == "token"]
    api_answers_all = [a for a in answers if a.kind == "api"]
    issued_200 = [a for a in token_answers_all if a.status == 200]
    audit = [line for node in nodes for line in node.audit()]
    issued = [a for a in audit if a["event"] == "token_issued"]
    accepted = [a for a in audit if a["event"] == "api_call_accepted"]
    per_node = {
        n.name: Counter(a["event"] for a in n.audit() if a["event"] != "token_rejected")
        for n in nodes
    }
    access = nginx.access()
    retried = [line for line in access if len(upstreams(line)) > 1]
    statuses = Counter(line.split(" ", 1)[0] for line in access)

    refused = counts(a for a in answers if a.status != 200)
    _report(
        "cluster test: two nodes behind nginx, PostgreSQL + Redis",
        [
            (
                "setup / load phase / total (s)",
                f"{setup_s:.1f} / {load_s:.1f} / {time.monotonic() - started:.1f}",
            ),
            ("token requests sent", len(token_answers_all)),
            ("  200 (counted by the clients)", len(issued_200)),
            ("  token_issued audit lines (both nodes)", len(issued)),
            ("guarded calls sent", len(api_answers_all)),
            ("  200 (counted by the clients)", sum(a.status == 200 for a in api_answers_all)),
            ("  api_call_accepted audit lines", len(accepted)),
            ("refused, with reasons", dict(refused) or "none"),
            ("per node (all starts)", {k: dict(v) for k, v in per_node.items()}),
            ("answers per phase", dict(Counter(a.phase for a in answers))),
            ("nginx: requests / statuses", f"{len(access)} / {dict(statuses)}"),
            ("nginx: passed to the next node", len(retried)),
            ("taap_token_requests_total{outcome=issued} at the end", metrics),
            (
                "nginx: requests while node-a was down, by upstream",
                dict(Counter(upstreams(line)[-1] for line in down_lines)),
            ),
            ("every node signs with the new key after (s)", f"{switch_s:.1f}"),
            ("SIGTERM to exit, in-flight request answered 200 (s)", f"{drain_s:.1f}"),
            ("registry changes (step, node, status, error_code)", changes),
        ],
    )

    # invariants
    failed = [a for a in answers if a.status is None or a.status >= 500]
    nginx_errors = [
        line
        for line in (tmp_path / "nginx-error.log").read_text().splitlines()
        if "(111: Connection refused)" not in line and "temporarily disabled" not in line
    ]
    assert not failed, (failed, nginx_errors, [x for x in access if x.startswith("5")])
    assert not [line for line in access if line.startswith("5")], nginx_errors
    expected_refusals = Counter(
        {
            "401 pop_replayed": 2,  # the cross-node probes: one token request, one API call
            "401 client_auth_failed": 2,  # disabled client, on each node
            "401 pop_signature_invalid": 1,  # the removed key
        }
    )
    assert refused == expected_refusals, refused
    client_jtis = [a.token_jti for a in issued_200]
    audit_jtis = [a["token_jti"] for a in issued]
    assert len(set(client_jtis)) == len(client_jtis), "a token jti was issued twice"
    assert sorted(audit_jtis) == sorted(client_jtis), "audit log and clients disagree"
    pop_jtis = [a["jti"] for a in issued]
    assert len(set(pop_jtis)) == len(pop_jtis), "one PoP got two tokens"
    assert len(accepted) == sum(a.status == 200 for a in api_answers_all)
    # Prometheus agrees with the audit log (node-a's counters restarted with it)
    assert metrics["node-b"] == sum(a["event"] == "token_issued" for a in node_b.audit())
    assert metrics["node-a"] == sum(a["event"] == "token_issued" for a in _audit(node_a.logs[1]))
    # nginx's $request_id reached the node: every issuance through nginx has nginx's id
    nginx_ids = {line.split(" rid=", 1)[1].split(" ", 1)[0] for line in access}
    via_nginx = [a for a in issued if a.get("request_id") in nginx_ids]
    posts_200 = [x for x in access if x.startswith("200 POST /oauth2/")]
    assert len(via_nginx) == len(posts_200), (len(via_nginx), len(posts_200))
    assert {a["kid"] for a in issued} == {old_kid, new_kid}
    assert set(stored) == {old_kid, new_kid}
    assert all(pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----") for pem in stored.values())
    assert all(count["token_issued"] > 0 for count in per_node.values())
    assert len(node_a.logs) == 2
    assert any(a["event"] == "token_issued" for a in _audit(node_a.logs[1]))
    # while node-a was down nginx sent everything to node-b (after at most one refused connect)
    assert down_lines
    assert all(upstreams(line)[-1] == node_b.base[7:] for line in down_lines)


def _stored_signing_keys(database_url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return {kid: pem for kid, pem in conn.execute("SELECT kid, pem FROM signing_keys")}


def _issued_metric(node: Node) -> float:
    """``taap_token_requests_total{outcome="issued"}`` summed over endpoints, from /metrics."""
    text = httpx.get(node.base + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("taap_token_requests_total{") and 'outcome="issued"' in line
    )


def _audit(log: Path) -> list[dict[str, Any]]:
    return audit_records(log)
