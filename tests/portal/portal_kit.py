"""Fixtures for the portal's HTTP tests: a real SMTP server (aiosmtpd) on loopback, the portal
on a SQLite registry in-process (httpx ASGI transport) with the package's own templates, and a
signed-in developer.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from taap.portal.mail import SmtpMailer
from taap.portal.site import create_portal
from taap.portal.store_apps import PortalStore
from taap.server.registry.sql import SqlRegistry, open_registry, open_runner
from taap.stores.ratelimit import MemoryRateLimiter

PEPPER = b"portal-test-pepper-0123456789abcdef"
BASE = "http://portal.test"


@dataclass
class Inbox:
    messages: list[tuple[str, str, str]] = field(default_factory=list)  # (to, subject, body)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        msg = message_from_bytes(envelope.content)  # type: ignore[attr-defined]
        body = msg.get_payload(decode=True).decode()
        self.messages.append((msg["To"], msg["Subject"], body))
        return "250 OK"

    def code_for(self, email: str) -> str:
        for to, _, body in reversed(self.messages):
            if to == email.lower():
                found = re.search(r"code is (\d{6})", body)
                assert found
                return found.group(1)
        raise AssertionError(f"no mail to {email}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def portal_smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class PortalWorld:
    registry: SqlRegistry
    store: PortalStore
    inbox: Inbox
    clock: Clock
    app: object

    def client(self, ip: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 1234))  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=transport, base_url=BASE)

    async def sign_in(self, http: httpx.AsyncClient, email: str, kind: str = "individual") -> None:
        page = await http.get("/portal/sign-in")
        sent = await http.post(
            "/portal/sign-in", data={"email": email, "csrf_token": csrf(page.text)}
        )
        assert sent.status_code == 303, sent.text
        await asyncio.sleep(0.05)
        code_page = await http.get("/portal/sign-in/code")
        done = await http.post(
            "/portal/sign-in/code",
            data={"code": self.inbox.code_for(email), "csrf_token": csrf(code_page.text)},
        )
        assert done.status_code == 303, done.text
        if done.headers["location"] == "/portal/welcome":
            welcome = await http.get("/portal/welcome")
            data = {"kind": kind, "company_name": "Acme", "csrf_token": csrf(welcome.text)}
            assert (await http.post("/portal/welcome", data=data)).status_code == 303

    async def create_app(
        self, http: httpx.AsyncClient, name: str, products: tuple[str, ...] = ("location",)
    ) -> str:
        """Create an app as the signed-in developer; its page's path."""
        form = await http.get("/portal/apps/new")
        data = {"name": name, "products": list(products), "csrf_token": csrf(form.text)}
        made = await http.post("/portal/apps/new", data=data)
        assert made.status_code == 303, made.text
        return str(made.headers["location"])


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def build_portal(
    store: PortalStore,
    registry: SqlRegistry,
    smtp_port: int,
    *,
    clock: Clock,
    base_url: str = BASE,
) -> object:
    """The portal as the tests run it: mail to the SMTP server on ``smtp_port``, limits in
    memory, ``ops@example.com`` an operator."""
    return create_portal(
        store,
        registry,
        mailer=SmtpMailer("127.0.0.1", smtp_port, "taap@localhost"),
        limiter=MemoryRateLimiter(),
        pepper=PEPPER,
        base_url=base_url,
        admin_emails=("ops@example.com",),
        clock=clock,
    )


@pytest.fixture
async def world(tmp_path: Path, portal_smtp: tuple[Inbox, int]) -> AsyncIterator[PortalWorld]:
    inbox, port = portal_smtp
    clock = Clock()
    url = f"sqlite:///{tmp_path}/portal.db"
    registry = await open_registry(url, pepper=PEPPER)
    store = PortalStore(open_runner(url), clock=clock)
    app = build_portal(store, registry, port, clock=clock)
    try:
        yield PortalWorld(registry, store, inbox, clock, app)
    finally:
        await store.close()
        await registry.close()
