"""The portal on ``taap serve --with-portal --with-sample-apis --workers 2`` over PostgreSQL and
Redis, as production runs it: ``taap db upgrade`` makes the portal's tables, and whichever
worker answers, a developer stays signed in, a CSRF token from one worker's page is good on the
other, sign-in codes are limited for the whole server, and an operator's change on one worker
reaches the sample API on the other.

Every request here opens a new connection (``Connection: close``), so the kernel hands
requests to both workers; workers are told apart by the prefix of ``X-Request-Id``."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from portal_kit import csrf
from smtp_kit import SmtpServer, run_smtp_server

from kit.postgres import temporary_database
from kit.processes import TAAP, Service, clean_env, run_taap, start_serve
from taap.core import generate_private_key

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

OPERATOR = "ops@example.com"
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


def worker(response: httpx.Response) -> str:
    return response.headers["x-request-id"].split("-")[0]


def until_both(attempt: Callable[[], httpx.Response], what: str, tries: int = 60) -> list[str]:
    """Run ``attempt`` (each a new connection) until both workers have answered it."""
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while len(set(seen)) < 2 and len(seen) < tries and time.monotonic() < deadline:
        if len(seen) >= 10:  # a worker that is busy or still starting gets a moment
            time.sleep(0.1)
        seen.append(worker(attempt()))
    assert len(set(seen)) == 2, f"one worker answered every {what}: {seen}"
    return seen


@pytest.fixture
def node(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> Iterator[tuple[Service, SmtpServer, dict[str, str]]]:
    # The portal's rate limits live in the shared Redis; a run a moment ago must not count.
    limits = redis.Redis.from_url(redis_url)
    try:
        stale = list(limits.scan_iter(match="taap:rl:portal-*"))
        if stale:
            limits.delete(*stale)
    finally:
        limits.close()
    with temporary_database(postgres_url, "taap_portal") as database, run_smtp_server() as smtp:
        env = clean_env(
            TAAP_PEPPER=f"portal-workers-{uuid.uuid4().hex}",
            TAAP_SMTP_URL=smtp.url,
            TAAP_MAIL_FROM="portal@example.com",
            TAAP_PORTAL_ADMINS=OPERATOR,
            TAAP_REVOCATION_MAX_AGE="1",
            TAAP_SHUTDOWN_DRAIN="0",
        )
        upgraded = run_taap("db", "upgrade", "--database-url", database, env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://"))
        try:
            tables = set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert {"portal_accounts", "portal_sessions", "portal_apps"} <= tables, tables
        server = start_serve(
            tmp_path,
            database,
            "--with-portal",
            "--with-sample-apis",
            "--workers",
            "2",
            "--redis-url",
            redis_url,
            env=env,
        )
        try:
            yield server, smtp, env
        finally:
            server.stop()


def sign_in(http: httpx.Client, smtp: SmtpServer, email: str) -> None:
    sent = len(smtp.mails_to(email))
    page = http.get("/portal/sign-in")
    answer = http.post("/portal/sign-in", data={"email": email, "csrf_token": csrf(page.text)})
    assert answer.status_code == 303, answer.text
    code = smtp.wait_for_code(email, count=sent + 1)
    page = http.get("/portal/sign-in/code")
    answer = http.post("/portal/sign-in/code", data={"code": code, "csrf_token": csrf(page.text)})
    assert answer.status_code == 303, answer.text
    if answer.headers["location"] == "/portal/welcome":
        page = http.get("/portal/welcome")
        data = {"kind": "individual", "csrf_token": csrf(page.text)}
        assert http.post("/portal/welcome", data=data).status_code == 303


def test_a_developer_journey_across_two_workers_on_postgresql(
    tmp_path: Path, node: tuple[Service, SmtpServer, dict[str, str]]
) -> None:
    server, smtp, server_env = node
    headers = {"Connection": "close"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=20) as http:
        sign_in(http, smtp, "dev@example.com")

        def dashboard() -> httpx.Response:
            page = http.get("/portal/")
            assert page.status_code == 200, page.url
            assert "dev@example.com" in page.text
            return page

        until_both(dashboard, "signed-in page")

        # A form from one worker posted to the other: the session and its CSRF token are shared.
        crossed: list[str] = []
        made: list[str] = []
        for n in range(30):
            form = http.get("/portal/apps/new")
            data = {"name": f"App {n}", "products": ["connectivity"], "csrf_token": csrf(form.text)}
            answer = http.post("/portal/apps/new", data=data)
            assert answer.status_code == 303, answer.text
            made.append(answer.headers["location"])
            if worker(form) != worker(answer):
                crossed.append(answer.headers["location"])
                break
        assert crossed, "every form was posted back to the worker that served it"
        app_page = http.get(crossed[0])
        client_id = re.search(r'id="client-id"[^>]*value="([^"]+)"', app_page.text)
        secret = re.search(r'id="client-secret"[^>]*value="([^"]+)"', app_page.text)
        assert client_id, app_page.text[:2000]
        assert secret, app_page.text[:2000]

        key = generate_private_key(2048)
        upload = http.post(
            crossed[0] + "/keys",
            data={"csrf_token": csrf(app_page.text)},
            files={"public_key": ("key.pem", key.public.to_pem(), "application/x-pem-file")},
        )
        assert upload.status_code == 303
        assert f"Key added ({key.thumbprint})." in http.get(crossed[0]).text
        listing = http.get("/portal/").text
        assert all(f"App {n}</a>" in listing for n in range(len(made)))

    key_file = tmp_path / "client.pem"
    key_file.write_bytes(key.to_pem())
    env = dict(server_env, WORKERS_SECRET=secret.group(1))

    def call() -> subprocess.CompletedProcess[str]:
        command = [TAAP, "call", "GET", server.url + DEVICE, "-i", "--key", str(key_file)]
        command += ["--token-url", f"{server.url}/oauth2/v2/tokens", "--client-id"]
        command += [client_id.group(1), "--client-secret-env", "WORKERS_SECRET"]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    done = call()
    assert done.stdout.startswith("HTTP/1.1 200"), done.stdout + done.stderr

    # The operator disables the app on whichever worker; the API, on either, refuses it.
    with httpx.Client(base_url=server.url, headers=headers, timeout=20) as ops:
        sign_in(ops, smtp, OPERATOR)
        console = ops.get("/portal/admin")
        app_id = crossed[0].rsplit("/", 1)[1]
        data = {"app_id": app_id, "csrf_token": csrf(console.text)}
        assert ops.post("/portal/admin/disable-app", data=data).status_code == 303
    deadline = time.monotonic() + 30
    while (done := call()).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert done.returncode != 0, done.stdout
    shown = done.stdout + done.stderr
    assert re.search(r"client_auth_failed|token_revoked", shown), shown


def test_sign_in_codes_are_limited_for_the_whole_server(
    node: tuple[Service, SmtpServer, dict[str, str]],
) -> None:
    # Three codes a minute per address: once the server has sent three, both workers refuse
    # the fourth. A limiter in each worker's memory would let the other worker send more.
    server, smtp, _ = node
    email = "limited@example.com"
    with httpx.Client(base_url=server.url, headers={"Connection": "close"}, timeout=20) as http:
        token = csrf(http.get("/portal/sign-in").text)
        until_both(lambda: http.get("/portal/sign-in"), "sign-in page")
        answers: list[httpx.Response] = []
        while len([a for a in answers if a.status_code == 303]) < 3:
            answers.append(http.post("/portal/sign-in", data={"email": email, "csrf_token": token}))
            assert answers[-1].status_code == 303, answers[-1].text
        smtp.wait_for_mail(email, count=3)

        def refused() -> httpx.Response:
            answer = http.post("/portal/sign-in", data={"email": email, "csrf_token": token})
            assert answer.status_code == 429, (worker(answer), answer.status_code)
            assert "Too many codes asked for" in answer.text
            return answer

        until_both(refused, "fourth code", tries=40)
    assert len(smtp.mails_to(email)) == 3
