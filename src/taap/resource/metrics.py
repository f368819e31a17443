"""The guard's Prometheus metrics.

- ``taap_guard_requests_total{outcome,error_code}`` (counter): one per request the guard
  judged; ``outcome`` ``accepted`` (``error_code`` empty, as in the token server's
  ``taap_token_requests_total``) or ``refused`` (``error_code`` the error code it answered).
- ``taap_guard_request_duration_seconds{outcome}`` (histogram): from the request reaching the
  guard to the verdict (body read included, the application's own time not).
- ``taap_jwks_refreshes_total{outcome}`` (counter): JWKS fetches, ``ok`` or ``failed``.
- ``taap_guard_revocation_refreshes_total{outcome}`` (counter): fetches of the revocation log
  (token server feed or registry), ``ok`` or ``failed``.
- ``taap_guard_revocation_entries`` (gauge): revocations the guard holds after its last good
  fetch (revoked tokens, client cutoffs, product cutoffs).

They live on prometheus-client's default registry, so one process has one set whatever the
number of guards in it, the token server's ``/metrics`` includes them when the sample APIs are
mounted in it, and in multi-process mode (``PROMETHEUS_MULTIPROC_DIR``) they go to the shared
files like the server's. prometheus-client is optional for the guard: without it the metrics
are simply off. Label children are bound once and kept, so a request costs one dict lookup, one
increment and one observation.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONTENT_TYPE", "guard_request", "jwks_refreshed", "render", "revocations_refreshed"]

# The guard decides in ~0.1 ms; a JWKS fetch or a slow body stretches the tail.
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )
except ImportError:  # pragma: no cover - exercised only without the server extra
    CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
    _REFRESHES: Any = None
    _REQUESTS: Any = None
    _DURATION: Any = None
    _REVOCATION_FETCHES: Any = None
    _REVOCATION_ENTRIES: Any = None
else:
    CONTENT_TYPE = CONTENT_TYPE_LATEST
    _REFRESHES = Counter(
        "taap_jwks_refreshes",
        "JWKS fetches by the guard (TTL expiry, unknown kid, first use), by outcome.",
        ["outcome"],
    )
    _REQUESTS = Counter(
        "taap_guard_requests",
        "Requests judged by the guard, by outcome (accepted/refused) and error code.",
        ["outcome", "error_code"],
    )
    _DURATION = Histogram(
        "taap_guard_request_duration_seconds",
        "Time from a request reaching the guard to its verdict, by outcome.",
        ["outcome"],
        buckets=_BUCKETS,
    )
    _REVOCATION_FETCHES = Counter(
        "taap_guard_revocation_refreshes",
        "Fetches of the revocation log by the guard, by outcome.",
        ["outcome"],
    )
    _REVOCATION_ENTRIES = Gauge(
        "taap_guard_revocation_entries",
        "Revocations held by the guard after its last good fetch.",
        multiprocess_mode="max",
    )

_children: dict[str, tuple[Any, Any]] = {}


def guard_request(error_code: str | None, seconds: float) -> None:
    """Count one verdict (``error_code`` None: accepted) that took ``seconds``."""
    if _REQUESTS is None:  # pragma: no cover
        return
    key = error_code or ""
    bound = _children.get(key)
    if bound is None:
        outcome = "refused" if error_code else "accepted"
        bound = _children[key] = (_REQUESTS.labels(outcome, key), _DURATION.labels(outcome))
    bound[0].inc()
    bound[1].observe(seconds)


def jwks_refreshed(ok: bool) -> None:
    """Count one JWKS fetch attempt (``ok`` False: the token server could not be read)."""
    if _REFRESHES is not None:
        _REFRESHES.labels("ok" if ok else "failed").inc()


def revocations_refreshed(ok: bool, entries: int) -> None:
    """Count one fetch of the revocation log; after a good one, ``entries`` is what is held."""
    if _REVOCATION_FETCHES is None:  # pragma: no cover
        return
    _REVOCATION_FETCHES.labels("ok" if ok else "failed").inc()
    if ok:
        _REVOCATION_ENTRIES.set(entries)


def render() -> bytes:
    """The exposition text of the default registry (empty without prometheus-client)."""
    if _REFRESHES is None:  # pragma: no cover
        return b""
    result: bytes = generate_latest(REGISTRY)
    return result
