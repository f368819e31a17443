"""Signing in by e-mailed code, and the sessions that follow (sans-HTTP).

A code is six random digits (``secrets``), stored as HMAC-SHA-256 with the pepper, valid ten
minutes and five attempts. Asking for a code does the same work for every address — generate,
store, mail — whether or not it has an account (accounts are created when a code is first
used), so the answer cannot tell them apart. Requests are rate-limited per address and per
client IP, attempts per IP, through the token server's limiter (Redis with several workers).

A session id is 256 random bits that only the cookie holds; the database keeps its SHA-256.
Its CSRF token is derived from the id with the pepper, so it needs no storage and dies with
the session. A one-time secret (a new client secret) is sealed with a key derived from the id
before it is stored in the session, so the database never holds it readable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from taap.portal.mail import Mailer, check_address
from taap.portal.store import Account, CodeCheck, SessionRow
from taap.portal.store_apps import PortalStore
from taap.stores.ratelimit import Bucket, Rate, RateLimiter

__all__ = ["CODE_ATTEMPTS", "CODE_SECONDS", "Session", "SignIn", "Throttled"]

CODE_SECONDS = 600
CODE_ATTEMPTS = 5
SESSION_SECONDS = 12 * 3600
_SEND_PER_ADDRESS = Rate(3, 60.0)
_SEND_PER_IP = Rate(10, 30.0)
_VERIFY_PER_IP = Rate(20, 30.0)


class Throttled(Exception):
    """Too many requests; ``retry_after`` seconds until the next is allowed."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many requests")
        self.retry_after = retry_after


@dataclass(slots=True, repr=False)
class Session:
    """A live session: the raw id (only ever in the cookie), its row, its account."""

    raw_id: str
    account: Account | None
    data: dict[str, Any] = field(default_factory=dict)
    csrf_token: str = ""
    new: bool = False
    dirty: bool = False

    def __repr__(self) -> str:
        return f"Session(account={self.account.email if self.account else None!r})"

    def flash(self, level: str, text: str) -> None:
        self.data.setdefault("flashes", []).append([level, text])
        self.dirty = True

    def take_flashes(self) -> list[tuple[str, str]]:
        found = self.data.pop("flashes", [])
        if found:
            self.dirty = True
        return [(str(level), str(text)) for level, text in found]

    def seal(self, name: str, value: str) -> None:
        """Keep ``value`` for the next page only, readable only with this session's id."""
        nonce = os.urandom(12)
        sealed = AESGCM(self._key()).encrypt(nonce, value.encode(), name.encode())
        self.data.setdefault("sealed", {})[name] = base64.b64encode(nonce + sealed).decode()
        self.dirty = True

    def unseal(self, name: str) -> str | None:
        """The value sealed under ``name`` (then forgotten), or None."""
        blob = self.data.get("sealed", {}).pop(name, None)
        if blob is None:
            return None
        self.dirty = True
        raw = base64.b64decode(blob)
        return AESGCM(self._key()).decrypt(raw[:12], raw[12:], name.encode()).decode()

    def _key(self) -> bytes:
        return hashlib.sha256(b"taap.portal.seal:" + self.raw_id.encode()).digest()


def digest_id(raw_id: str) -> str:
    return hashlib.sha256(raw_id.encode()).hexdigest()


class SignIn:
    """Codes, sessions and the account a first sign-in creates."""

    def __init__(
        self,
        store: PortalStore,
        mailer: Mailer,
        limiter: RateLimiter,
        *,
        pepper: bytes,
        clock: Callable[[], float],
        portal_url: str,
    ) -> None:
        self._store = store
        self.mailer = mailer
        self._limiter = limiter
        self._pepper = pepper
        self._clock = clock
        self._portal_url = portal_url

    def _code_digest(self, email: str, code: str) -> str:
        message = f"taap.portal.code:{email}:{code}".encode()
        return hmac.new(self._pepper, message, hashlib.sha256).hexdigest()

    async def send_code(self, email_text: str, ip: str) -> str:
        """Mail a new code to the address; returns it normalised.

        Raises:
            ValueError: not an e-mail address.
            Throttled: too many codes for this address or from this IP.
            OSError: the mail could not be sent.
        """
        email = check_address(email_text)
        wait = await self._limiter.take(
            [
                Bucket(f"portal-send:{email}", _SEND_PER_ADDRESS),
                Bucket(f"portal-ip:{ip}", _SEND_PER_IP),
            ],
            now=self._clock(),
        )
        if wait:
            raise Throttled(wait)
        code = f"{secrets.randbelow(1_000_000):06d}"
        expires = self._store.now() + timedelta(seconds=CODE_SECONDS)
        await self._store.put_code(email, self._code_digest(email, code), expires)
        body = (
            f"Your TAAP developer portal sign-in code is {code}\n\n"
            f"It works for 10 minutes at {self._portal_url}/sign-in.\n"
            "If you did not ask for it, ignore this mail."
        )
        await self.mailer.send(email, "Your TAAP sign-in code", body)
        return email

    async def check_code(self, email: str, code_text: str, ip: str) -> CodeCheck:
        """One attempt at the code of ``email``.

        Raises:
            Throttled: too many attempts from this IP.
        """
        wait = await self._limiter.take(
            [Bucket(f"portal-verify:{ip}", _VERIFY_PER_IP)], now=self._clock()
        )
        if wait:
            raise Throttled(wait)
        code = code_text.strip().replace(" ", "")
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            code = "-"  # still counts as an attempt, never matches
        return await self._store.check_code(
            email, self._code_digest(email, code), max_attempts=CODE_ATTEMPTS
        )

    # -- sessions -------------------------------------------------------------------------
    def csrf_token(self, raw_id: str) -> str:
        return hmac.new(
            self._pepper, b"taap.portal.csrf:" + raw_id.encode(), hashlib.sha256
        ).hexdigest()

    async def load(self, raw_id: str | None) -> Session | None:
        if not raw_id or len(raw_id) > 100:
            return None
        row: SessionRow | None = await self._store.session(digest_id(raw_id))
        if row is None:
            return None
        account = None
        if row.account_id is not None:
            account = await self._store.account(row.account_id)
            if account is None or account.status != "active":
                return None
        return Session(raw_id, account, dict(row.data), self.csrf_token(raw_id))

    async def start(self, account: Account | None, data: dict[str, Any] | None = None) -> Session:
        """A new session (a new id: signing in never keeps the visitor's id)."""
        raw_id = secrets.token_urlsafe(32)
        expires = self._store.now() + timedelta(seconds=SESSION_SECONDS)
        await self._store.create_session(
            digest_id(raw_id), None if account is None else account.id, data or {}, expires
        )
        return Session(raw_id, account, dict(data or {}), self.csrf_token(raw_id), new=True)

    async def save(self, session: Session) -> None:
        if session.dirty:
            await self._store.save_session(digest_id(session.raw_id), session.data)
            session.dirty = False

    async def end(self, session: Session, *, everywhere: bool = False) -> None:
        await self._store.revoke_session(digest_id(session.raw_id))
        if everywhere and session.account is not None:
            await self._store.revoke_sessions(session.account.id)
