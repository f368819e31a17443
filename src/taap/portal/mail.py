"""Sending the portal's mail: sign-in codes and invitations.

``console`` (the default) writes each mail to the server log with a warning: on a laptop that
is how the developer reads the code, so the code IS in that log by design — never use it where
others read the logs. ``smtp://host:port`` and ``smtp+starttls://user:password@host:port``
send through an SMTP server with the standard library, in a worker thread with timeouts.
Messages are built with :class:`email.message.EmailMessage`, and every recipient is checked by
:func:`check_address` first, so no header can be injected through an address.
"""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

from taap.errors import ConfigurationError

__all__ = ["ConsoleMailer", "Mailer", "SmtpMailer", "check_address", "open_mailer"]

log = logging.getLogger("taap.portal.mail")

# Deliberately narrower than RFC 5321: printable ASCII without quotes, spaces or controls,
# one @, a dotted domain. What a sign-in form needs, and nothing a header could be built from.
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_TIMEOUT = 10.0


def check_address(text: str) -> str:
    """The address lower-cased, or ``ValueError`` for anything that is not a plain address."""
    value = text.strip()
    if len(value) > 254 or not _ADDRESS.fullmatch(value):
        raise ValueError("enter an e-mail address such as name@example.com")
    return value.lower()


class Mailer(Protocol):
    """Sends one plain-text mail; raises ``OSError`` when it cannot."""

    async def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ConsoleMailer:
    """Writes each mail to the server log (a warning): for a laptop, never production."""

    sender: str = "taap@localhost"

    async def send(self, to: str, subject: str, body: str) -> None:
        log.warning(
            "console mail (TAAP_SMTP_URL is not set; codes are visible in this log): "
            "to=%s subject=%s\n%s",
            check_address(to),
            subject,
            body,
        )


@dataclass(frozen=True, slots=True, repr=False)
class SmtpMailer:
    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"SmtpMailer({self.host!r}, {self.port}, starttls={self.starttls})"

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = check_address(to)
        message["Subject"] = subject
        message.set_content(body)
        await asyncio.to_thread(self._deliver, message)

    def _deliver(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=_TIMEOUT) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


def open_mailer(url: str, sender: str) -> Mailer:
    """The mailer named by ``TAAP_SMTP_URL`` (``console``, ``smtp://``, ``smtp+starttls://``).

    Raises:
        ConfigurationError: an unknown scheme, no host, or a bad port or sender.
    """
    # The operator's own sender may be a local one (taap@localhost); it must still be one line.
    if "@" not in sender or not sender.isprintable() or len(sender) > 254:
        raise ConfigurationError(f"TAAP_MAIL_FROM {sender!r} is not an e-mail address")
    if url in ("", "console"):
        return ConsoleMailer(sender)
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtp+starttls") or not parts.hostname:
        raise ConfigurationError(
            "TAAP_SMTP_URL must be console, smtp://host:port or smtp+starttls://user:pass@host:port"
        )
    try:
        port = parts.port or 25
    except ValueError:
        raise ConfigurationError("TAAP_SMTP_URL has a bad port") from None
    return SmtpMailer(
        host=parts.hostname,
        port=port,
        sender=sender,
        starttls=parts.scheme == "smtp+starttls",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
