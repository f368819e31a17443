"""One JSON line per guarded request, accepted or refused (SECURITY.md E4), on ``taap.audit``.

Fields: ``ts`` (UTC), ``event`` (``api_call_accepted`` / ``api_call_refused``), ``method``,
``path``, ``status`` (of an accepted request: what the application answered), ``error_code``,
``detail`` (the operator-only reason), ``client_id``, ``product``, ``jti`` (the PoP's),
``token_jti``, ``kid``, ``source``. An accepted request's line is written when the application
starts its response. Never tokens, PoPs or keys; strings are JSON-encoded (injection-safe) and
cut to 200 characters. The same logger and line shape as the token server's audit, so one
pipeline reads both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from taap.errors import TaapError
from taap.resource.principal import Principal

__all__ = ["AUDIT_LOGGER", "GuardAudit", "UsageHook"]

#: ``(kind, client_id, error_code, now)``: told of each decision (kind ``call`` or
#: ``call_refused``; a refusal before the token verified has no client). ``taap serve
#: --with-sample-apis`` passes the token server's usage recorder. It runs on the request
#: path, so it must neither block nor raise.
UsageHook = Callable[[str, str | None, str | None, float], None]

AUDIT_LOGGER = "taap.audit"
_MAX = 200


def _cut(value: object) -> object:
    if isinstance(value, str) and len(value) > _MAX:
        return value[:_MAX] + "…"
    return value


class GuardAudit:
    """Writes the guard's audit lines; skipped cheaply when INFO is disabled. ``usage`` is
    told of every decision, whatever the log level."""

    def __init__(
        self, logger: logging.Logger | None = None, usage: UsageHook | None = None
    ) -> None:
        self.logger = logger or logging.getLogger(AUDIT_LOGGER)
        self.usage = usage

    def _write(self, now: float, fields: dict[str, Any]) -> None:
        stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        line = {"ts": stamp.replace("+00:00", "Z"), **{k: _cut(v) for k, v in fields.items()}}
        self.logger.info(json.dumps(line, ensure_ascii=True, separators=(",", ":")))

    def accepted(
        self,
        *,
        now: float,
        method: str,
        path: str,
        principal: Principal,
        source: str,
        status: int | None = None,
    ) -> None:
        """Record a request the guard let through; ``status`` is the one the application
        answered (None: it sent no response, the caller having gone)."""
        if self.usage is not None:
            self.usage("call", principal.client_id, None, now)
        if self.logger.isEnabledFor(logging.INFO):
            self._write(
                now,
                {
                    "event": "api_call_accepted",
                    "method": method,
                    "path": path,
                    "status": status,
                    "client_id": principal.client_id,
                    "product": principal.product,
                    "jti": principal.pop_jti,
                    "token_jti": principal.token_jti,
                    "kid": principal.kid,
                    "source": source,
                },
            )

    def refused(self, *, now: float, method: str, path: str, error: TaapError, source: str) -> None:
        """Record a request the guard answered with an error."""
        if self.usage is not None:
            self.usage("call_refused", error.client_id, error.error_code, now)
        if self.logger.isEnabledFor(logging.INFO):
            self._write(
                now,
                {
                    "event": "api_call_refused",
                    "method": method,
                    "path": path,
                    "status": error.status_code,
                    "error_code": error.error_code,
                    "detail": error.log_detail,
                    # Known once the access token verified (a replayed or mismatched PoP).
                    "client_id": error.client_id,
                    "source": source,
                },
            )
