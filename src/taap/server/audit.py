"""One structured JSON line per issuance and per rejection (SECURITY.md E4).

Fields: ``ts`` (UTC, ISO 8601), ``event`` (``token_issued`` / ``token_rejected``),
``request_id``, ``endpoint``, ``status``, ``error_code``, ``client_id`` (as claimed when
authentication failed), ``jti`` (the PoP's), ``kid`` (signing key of the issued tokens),
``token_jti`` (the access token's), ``exp`` (its expiry) and ``apis`` (its products, the
"scope" of SECURITY.md E4) on issuance, ``source`` (client address). Never secrets, PoPs or
whole tokens; strings are JSON-encoded (injection-safe) and cut to 200 characters.

A line is *written and flushed* before the response leaves (SECURITY.md §4, no fsync). When
``taap serve`` owns the ``taap.audit`` logger (:class:`AuditHandler`, installed by
:func:`taap.server.runtime.configure_logging`) the line goes straight to the handler's stream
and a failing stream raises, so the token endpoint answers 503 and issues nothing. Through any
other handler the line is an ordinary log record; :mod:`logging` then reports a failing
handler on stderr itself and the failure cannot be seen here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Final

__all__ = ["AUDIT_LOGGER", "PLAIN_FORMAT", "AuditHandler", "AuditLog", "UsageHook"]

#: ``(kind, client_id, error_code, now)``: told of each token request's outcome (kind
#: ``token`` or ``token_refused``), e.g. :meth:`taap.server.usage.recorder.UsageRecorder.count`.
#: It runs on the request path, so it must neither block nor raise.
UsageHook = Callable[[str, str | None, str | None, float], None]
_TOKEN_ENDPOINTS = frozenset({"v2", "v6"})

AUDIT_LOGGER = "taap.audit"
_MAX = 200
_INFO: Final = logging.INFO
PLAIN_FORMAT = logging.Formatter("%(message)s")
# The C encoder json.dumps uses for one string (ASCII-only output, same escapes).
_quote = encode_basestring_ascii


def _text(value: str | None) -> str:
    if value is None:
        return "null"
    return _quote(value if len(value) <= _MAX else value[:_MAX] + "…")


class AuditHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The audit stream of ``taap serve``: each line written and flushed at once."""

    def __init__(self, stream: object = None) -> None:
        super().__init__(stream)
        self.setFormatter(PLAIN_FORMAT)

    def write_line(self, text: str) -> None:
        """Write and flush one line.

        Raises:
            OSError, ValueError: the stream failed (closed, disk full, broken pipe).
        """
        with self.lock:  # type: ignore[union-attr]
            stream = self.stream
            stream.write(text + self.terminator)
            stream.flush()


class AuditLog:
    """Writes audit lines on a :mod:`logging` logger (``taap.audit`` by default)."""

    def __init__(
        self, logger: logging.Logger | None = None, usage: UsageHook | None = None
    ) -> None:
        self.logger = logger or logging.getLogger(AUDIT_LOGGER)
        self.usage = usage
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
        request_id: str | None = None,
        registered: bool = True,
    ) -> None:
        """Write one line (skipped cheaply when the logger is disabled for INFO); then tell
        the usage hook, if any, of a token endpoint's outcome. ``registered`` False: the
        claimed ``client_id`` is unknown to the registry, and the hook hears of no client (a
        flood of made-up ids must not grow the usage table).

        Raises:
            OSError, ValueError: the :class:`AuditHandler` stream failed to take the line.
        """
        logger = self.logger
        if not logger.isEnabledFor(_INFO):
            if self.usage is not None:
                self._count(event, endpoint, client_id if registered else None, error_code, now)
            return
        # Built by hand (the same bytes json.dumps would give with these separators): this
        # runs once per token request.
        text = (
            f'{{"ts":"{self._timestamp(now)}","event":{_quote(event)},'
            f'"request_id":{_text(request_id)},"endpoint":{_quote(endpoint)},'
            f'"status":{int(status)},"error_code":{_text(error_code)},'
            f'"client_id":{_text(client_id)},"jti":{_text(jti)},"kid":{_text(kid)},'
            f'"token_jti":{_text(token_jti)},"exp":{"null" if exp is None else int(exp)},'
            f'"apis":{"null" if apis is None else "[" + ",".join(map(_quote, apis)) + "]"},'
            f'"source":{_text(source)}}}'
        )
        handlers = logger.handlers
        if (
            len(handlers) == 1
            and type(handler := handlers[0]) is AuditHandler
            and handler.formatter is PLAIN_FORMAT
            and handler.level <= _INFO
            and not handler.filters
            and not logger.filters
            and not logger.propagate
        ):
            handler.write_line(text)
            if self.usage is not None:
                self._count(event, endpoint, client_id if registered else None, error_code, now)
            return
        # makeRecord + handle: the same record logger.info would build, without the stack walk
        # for the caller's file and line, which an audit line never shows (hot path).
        record = logger.makeRecord(logger.name, _INFO, __file__, 0, text, (), None, "record")
        logger.handle(record)
        if self.usage is not None:
            self._count(event, endpoint, client_id if registered else None, error_code, now)

    def _count(
        self, event: str, endpoint: str, client_id: str | None, error_code: str | None, now: float
    ) -> None:
        # Only once the line is written: an issuance whose line failed is answered 503 and
        # comes back here as a refusal.
        if self.usage is not None and endpoint in _TOKEN_ENDPOINTS:
            kind = "token" if event == "token_issued" else "token_refused"
            self.usage(kind, client_id, error_code, now)
