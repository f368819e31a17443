"""The usage hooks of the token server's and the guard's audit: what each counts, and that
an issuance whose audit line could not be written is not counted as issued."""

from __future__ import annotations

import io
import json
import logging

import pytest

from taap.errors import ClientAuthError, PopReplayedError, TokenInvalidError
from taap.resource.audit import GuardAudit
from taap.server.audit import AuditHandler, AuditLog, UsageHook

Seen = list[tuple[str, str | None, str | None, float]]


def hook(seen: Seen) -> UsageHook:
    return lambda kind, client_id, code, now: seen.append((kind, client_id, code, now))


def audit_logger(stream: io.StringIO, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [AuditHandler(stream)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def test_the_token_audit_counts_issuances_and_refusals_of_the_token_endpoints() -> None:
    seen: Seen = []
    audit = AuditLog(audit_logger(io.StringIO(), "test.usage.tokens"), usage=hook(seen))
    audit.record(
        now=60.0, event="token_issued", endpoint="v2", status=200, source="s", client_id="c"
    )
    audit.record(
        now=61.0, event="token_rejected", endpoint="v6", status=401, source="s",
        error_code="client_auth_failed", client_id="c",
    )  # fmt: skip
    # Revocation and introspection write audit lines too: they are not token requests.
    audit.record(
        now=62.0, event="token_rejected", endpoint="revoke", status=401, source="s",
        error_code="client_auth_failed", client_id="c",
    )  # fmt: skip
    # A client id the registry does not know names no app: counted under none.
    audit.record(
        now=63.0, event="token_rejected", endpoint="v2", status=401, source="s",
        error_code="client_auth_failed", client_id="made-up", registered=False,
    )  # fmt: skip
    assert seen == [
        ("token", "c", None, 60.0),
        ("token_refused", "c", "client_auth_failed", 61.0),
        ("token_refused", None, "client_auth_failed", 63.0),
    ]


def test_an_issuance_whose_line_failed_is_not_counted() -> None:
    stream = io.StringIO()
    seen: Seen = []
    audit = AuditLog(audit_logger(stream, "test.usage.closed"), usage=hook(seen))
    stream.close()
    with pytest.raises(ValueError, match="closed"):
        audit.record(now=1.0, event="token_issued", endpoint="v2", status=200, source="s")
    assert seen == []


def test_the_token_audit_counts_with_its_logger_disabled() -> None:
    seen: Seen = []
    logger = logging.getLogger("test.usage.quiet")
    logger.setLevel(logging.WARNING)
    AuditLog(logger, usage=hook(seen)).record(
        now=1.0, event="token_issued", endpoint="v2", status=200, source="s", client_id="c"
    )
    assert seen == [("token", "c", None, 1.0)]


def test_the_guard_audit_counts_refusals_under_the_client_the_error_names() -> None:
    seen: Seen = []
    stream = io.StringIO()
    audit = GuardAudit(audit_logger(stream, "test.usage.guard"), usage=hook(seen))
    replayed = PopReplayedError()
    replayed.client_id = "c"
    audit.refused(now=5.0, method="GET", path="/x", error=replayed, source="s")
    audit.refused(now=6.0, method="GET", path="/x", error=TokenInvalidError(), source="s")
    assert seen == [
        ("call_refused", "c", "pop_replayed", 5.0),
        ("call_refused", None, "token_invalid", 6.0),
    ]
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["client_id"], second["client_id"]) == ("c", None)
    # The client id is for the audit only: the caller's body never carries it.
    assert "c" not in ClientAuthError().to_dict().values()
    assert "client_id" not in replayed.to_dict()
