"""Prometheus metrics of the token server, served at ``GET /metrics``.

- ``taap_token_requests_total{endpoint,outcome,error_code}`` (counter): ``endpoint`` v2/v6,
  ``outcome`` issued/rejected, ``error_code`` the error code (empty when issued).
- ``taap_pop_verifications_total{outcome,error_code}`` (counter): valid/invalid.
- ``taap_request_duration_seconds{endpoint}`` (histogram): v2, v6, jwks, discovery, health,
  ready, openapi, metrics, other.
- ``taap_replay_store_errors_total``, ``taap_database_errors_total``,
  ``taap_audit_errors_total``, ``taap_usage_lost_total`` (counters).

Label children are bound once and kept (a dict lookup per request, no label parsing), so the
hot path pays one counter increment and one histogram observation (~2 µs together).

Several worker processes (``taap serve --workers N``) write to prometheus-client's
multi-process directory (``PROMETHEUS_MULTIPROC_DIR``, set up by ``taap serve``); ``/metrics``
then aggregates every worker's files, so any worker answers for the whole server.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Token requests take ~1 ms at best; the tail that matters is 5-250 ms.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServerMetrics:
    """The token server's counters and histogram, on a registry of their own."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        """``multiprocess_dir``: prometheus-client's multi-process directory, when the process
        was started with ``PROMETHEUS_MULTIPROC_DIR`` set (values then live in its files)."""
        self.multiprocess_dir = multiprocess_dir
        # Multi-process values go to files whatever the registry; the per-app registry keeps
        # several apps in one process (tests) from clashing on metric names.
        self.registry: CollectorRegistry | None = (
            None if multiprocess_dir else CollectorRegistry(auto_describe=True)
        )
        reg = self.registry
        self.token_requests = Counter(
            "taap_token_requests",
            "Token requests by endpoint, outcome and error code.",
            ["endpoint", "outcome", "error_code"],
            registry=reg,
        )
        self.pop_verifications = Counter(
            "taap_pop_verifications",
            "Step-1 PoP verifications (docs/pop.md) by outcome and error code.",
            ["outcome", "error_code"],
            registry=reg,
        )
        self.duration = Histogram(
            "taap_request_duration_seconds",
            "Time from the request's arrival at the app to its response, by endpoint.",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=reg,
        )
        self.replay_store_errors = Counter(
            "taap_replay_store_errors", "Replay-store failures (answered 503).", registry=reg
        )
        self.database_errors = Counter(
            "taap_database_errors", "Registry database failures (answered 503).", registry=reg
        )
        self.audit_errors = Counter(
            "taap_audit_errors", "Audit lines that could not be written.", registry=reg
        )
        self.usage_lost = Counter(
            "taap_usage_lost",
            "Usage counts lost (docs/portal.md, Usage): write_failed, over_cap.",
            ["reason"],
            registry=reg,
        )
        self._requests: dict[tuple[str, str], Any] = {}
        self._pops: dict[str, Any] = {}
        self._durations: dict[str, Any] = {}

    def token_request(self, endpoint: str, error_code: str | None, seconds: float) -> None:
        """Count one token request (``error_code`` None: issued) and observe its duration."""
        key = (endpoint, error_code or "")
        child = self._requests.get(key)
        if child is None:
            outcome = "rejected" if error_code else "issued"
            child = self._requests[key] = self.token_requests.labels(endpoint, outcome, key[1])
        child.inc()
        self.observe(endpoint, seconds)

    def pop_verification(self, error_code: str | None) -> None:
        """Count one PoP verification (``error_code`` None: valid)."""
        key = error_code or ""
        child = self._pops.get(key)
        if child is None:
            outcome = "invalid" if error_code else "valid"
            child = self._pops[key] = self.pop_verifications.labels(outcome, key)
        child.inc()

    def observe(self, endpoint: str, seconds: float) -> None:
        """Observe one request's duration under ``endpoint``."""
        child = self._durations.get(endpoint)
        if child is None:
            child = self._durations[endpoint] = self.duration.labels(endpoint)
        child.observe(seconds)

    def render(self) -> bytes:
        """The exposition text (every worker's values in multi-process mode)."""
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                registry, path=self.multiprocess_dir
            )
            return generate_latest(registry)
        assert self.registry is not None
        # prometheus-client's default registry holds process-wide metrics: the guard's
        # taap_jwks_refreshes_total when the sample APIs are mounted, and process_* gauges.
        return generate_latest(self.registry) + generate_latest(REGISTRY)
