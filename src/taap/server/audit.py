"""One structured JSON line per issuance and per rejection (SECURITY.md E4).

Fields: ``ts`` (UTC, ISO 8601), ``event`` (``token_issued`` / ``token_rejected``),
``endpoint``, ``status``, ``error_code``, ``client_id`` (as claimed when authentication
failed), ``jti`` (the PoP's), ``kid`` (signing key of the issued tokens), ``token_jti`` (the
access token's), ``exp`` (its expiry) and ``apis`` (its products, the "scope" of SECURITY.md
E4) on issuance, ``source`` (client address). Never secrets, PoPs or whole tokens; strings
are JSON-encoded (injection-safe) and cut to 200 characters.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

__all__ = ["AUDIT_LOGGER", "AuditLog"]

AUDIT_LOGGER = "taap.audit"
_MAX = 200


def _cut(value: str | None) -> str | None:
    return value if value is None or len(value) <= _MAX else value[:_MAX] + "…"


class AuditLog:
    """Writes audit lines on a :mod:`logging` logger (``taap.audit`` by default)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(AUDIT_LOGGER)
        self._second = -1
        self._stamp = ""

    def _timestamp(self, now: float) -> str:
        # One line per request: format the date part once per second, not per line.
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def record(
        self,
        *,
        now: float,
        event: str,
        endpoint: str,
        status: int,
        source: str,
        error_code: str | None = None,
        client_id: str | None = None,
        jti: str | None = None,
        kid: str | None = None,
        token_jti: str | None = None,
        exp: int | None = None,
        apis: list[str] | None = None,
    ) -> None:
        """Write one line (skipped cheaply when the logger is disabled for INFO)."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        line = {
            "ts": self._timestamp(now),
            "event": event,
            "endpoint": endpoint,
            "status": status,
            "error_code": error_code,
            "client_id": _cut(client_id),
            "jti": _cut(jti),
            "kid": kid,
            "token_jti": token_jti,
            "exp": exp,
            "apis": apis,
            "source": _cut(source),
        }
        text = json.dumps(line, ensure_ascii=True, separators=(",", ":"))
        # makeRecord + handle: the same record logger.info would build, without the stack walk
        # for the caller's file and line, which an audit line never shows (hot path).
        record = self.logger.makeRecord(
            self.logger.name, logging.INFO, __file__, 0, text, (), None, "record"
        )
        self.logger.handle(record)
