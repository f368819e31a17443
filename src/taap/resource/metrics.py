"""The guard's Prometheus metrics (issue 7): ``taap_jwks_refreshes_total{outcome}``.

They live on prometheus-client's default registry, so one process has one set whatever the
number of guards in it, the token server's ``/metrics`` includes them when the sample APIs are
mounted in it, and in multi-process mode (``PROMETHEUS_MULTIPROC_DIR``) they go to the shared
files like the server's. prometheus-client is optional for the guard: without it the counters
are simply off.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONTENT_TYPE", "jwks_refreshed", "render"]

try:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest
except ImportError:  # pragma: no cover - exercised only without the server extra
    CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
    _REFRESHES: Any = None
else:
    CONTENT_TYPE = CONTENT_TYPE_LATEST
    _REFRESHES = Counter(
        "taap_jwks_refreshes",
        "JWKS fetches by the guard (TTL expiry, unknown kid, first use), by outcome.",
        ["outcome"],
    )


def jwks_refreshed(ok: bool) -> None:
    """Count one JWKS fetch attempt (``ok`` False: the token server could not be read)."""
    if _REFRESHES is not None:
        _REFRESHES.labels("ok" if ok else "failed").inc()


def render() -> bytes:
    """The exposition text of the default registry (empty without prometheus-client)."""
    if _REFRESHES is None:  # pragma: no cover
        return b""
    result: bytes = generate_latest(REGISTRY)
    return result
