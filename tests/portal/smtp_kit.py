"""A real SMTP server (aiosmtpd) on a free loopback port that keeps every message it receives,
so a test reads the portal's sign-in code the way a developer would: from the mail."""

from __future__ import annotations

import email
import email.policy
import re
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from kit.processes import free_port

__all__ = ["Mail", "SmtpServer", "extract_code", "run_smtp_server"]

_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


@dataclass(frozen=True)
class Mail:
    """One received message: the envelope (what the server was told) and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes

    @property
    def text(self) -> str:
        """The plain-text body (or the whole body when there is no text/plain part)."""
        part = self.message.get_body(preferencelist=("plain",))
        if part is None:
            return str(self.message.get_content())
        return str(part.get_content())


@dataclass
class SmtpServer:
    """Collected mail of a running :func:`run_smtp_server`; ``url`` is what TAAP_SMTP_URL takes."""

    host: str
    port: int
    url: str
    mails: list[Mail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def add(self, mail: Mail) -> None:
        with self._cond:
            self.mails.append(mail)
            self._cond.notify_all()

    def mails_to(self, address: str) -> list[Mail]:
        wanted = address.lower()
        return [m for m in self.mails if wanted in (r.lower() for r in m.rcpt_tos)]

    def wait_for_mail(self, address: str, *, count: int = 1, timeout: float = 30.0) -> Mail:
        """The ``count``-th mail to ``address`` (1 = the first), waiting up to ``timeout`` s.

        Raises:
            AssertionError: fewer mails arrived in time.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.mails_to(address)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [list(m.rcpt_tos) for m in self.mails]
                    raise AssertionError(
                        f"no mail #{count} to {address} within {timeout:.0f} s (got: {seen})"
                    )
                self._cond.wait(left)
            return self.mails_to(address)[count - 1]

    def wait_for_code(self, address: str, *, count: int = 1, timeout: float = 30.0) -> str:
        """The 6-digit code in the ``count``-th mail to ``address``."""
        return extract_code(self.wait_for_mail(address, count=count, timeout=timeout))


def extract_code(mail: Mail) -> str:
    """The one 6-digit code in the mail's subject or text.

    Raises:
        AssertionError: no code, or several different ones.
    """
    found = set(_CODE.findall(mail.text)) | set(_CODE.findall(str(mail.message["Subject"] or "")))
    assert len(found) == 1, f"expected one 6-digit code, found {sorted(found)} in {mail.text!r}"
    return found.pop()


class _Collector:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.server.add(Mail(envelope.mail_from, tuple(envelope.rcpt_tos), message, raw))
        return "250 Message accepted for delivery"


@contextmanager
def run_smtp_server(
    *,
    tls_context: ssl.SSLContext | None = None,
    credentials: tuple[str, str] | None = None,
) -> Iterator[SmtpServer]:
    """Run the server on 127.0.0.1 until the block ends.

    ``tls_context`` offers STARTTLS (and requires it before AUTH); ``credentials`` requires
    AUTH PLAIN/LOGIN with that user and password. The yielded ``url`` carries both.
    """
    port = free_port()
    if credentials:
        user, password = credentials
        scheme = "smtp+starttls" if tls_context else "smtp"
        url = f"{scheme}://{user}:{password}@127.0.0.1:{port}"
    else:
        url = f"{'smtp+starttls' if tls_context else 'smtp'}://127.0.0.1:{port}"
    collected = SmtpServer("127.0.0.1", port, url)
    options: dict[str, Any] = {}
    if tls_context is not None:
        options.update(tls_context=tls_context, require_starttls=True)
    if credentials is not None:

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> Any:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == credentials
            )
            if ok:
                collected.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False)

        options.update(
            authenticator=authenticate, auth_required=True, auth_require_tls=bool(tls_context)
        )
    controller = Controller(_Collector(collected), hostname="127.0.0.1", port=port, **options)
    with warnings.catch_warnings():
        # aiosmtpd warns (per connection, in its own thread) about AUTH without TLS: on
        # loopback, in a test of the plain smtp:// URL, that is the point.
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
        controller.start()
        try:
            yield collected
        finally:
            controller.stop()
