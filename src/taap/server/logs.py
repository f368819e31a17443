"""Structured JSON logs of the token server, each line tagged with the request id.

The request id of the request being served lives in a context variable (one per asyncio task,
so one per request under uvicorn); :class:`JsonFormatter` adds it to every line logged while
that request runs. Audit lines (``taap.audit``) carry it as a field of their own.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import os
import re
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from taap.settings import Networks

__all__ = ["REQUEST_ID", "JsonFormatter", "RequestIds", "uvicorn_log_config"]

REQUEST_ID: ContextVar[str | None] = ContextVar("taap_request_id", default=None)
# What a proxy may hand us: short, printable, no separators a log or header parser could trip on.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


class RequestIds:
    """Request ids: a trusted proxy's ``X-Request-Id`` when it is sane, else a new one.

    A new id is ``<12 random hex digits of this process>-<counter in hex>``: unique across
    processes and nodes (48 random bits per process), and cheaper than a UUID per request.
    """

    def __init__(self, networks: Networks) -> None:
        self._networks = networks
        self._prefix = os.urandom(6).hex() + "-"
        self._counter = itertools.count(1)

    def new(self) -> str:
        """A fresh id."""
        return f"{self._prefix}{next(self._counter):x}"

    def _trusted(self, peer: str) -> bool:
        if self._networks == "*":
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self._networks)

    def pick(self, peer: str, given: Sequence[bytes]) -> str:
        """The proxy's id when ``peer`` is a trusted proxy and sent exactly one sane id."""
        if (
            len(given) == 1
            and self._networks
            and _SANE_ID.fullmatch(given[0])
            and self._trusted(peer)
        ):
            return given[0].decode("ascii")
        return self.new()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, ``request_id``,
    and ``exc_type``/``exc`` (the traceback, for operators only) when an exception is logged."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line: dict[str, Any] = {
            "ts": stamp.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"))


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn's ``log_config`` for ``TAAP_LOG_FORMAT`` (``None``: uvicorn's own text logs)."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "taap.server.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "taap": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
