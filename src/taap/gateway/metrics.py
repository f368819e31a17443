"""The gateway's own Prometheus metrics, beside the guard's (docs/gateway.md, "Metrics").

- ``taap_gateway_upstream_requests_total{product,outcome}`` (counter): forwarded calls;
  ``outcome`` is the upstream's status class (``2xx`` … ``5xx``), or ``unavailable`` /
  ``timeout`` when the gateway answered 502 / 504 itself.
- ``taap_gateway_upstream_seconds{product}`` (histogram): from sending the call to the
  upstream's response head.
- ``taap_gateway_in_flight`` (gauge): calls being forwarded now.

Labels are bounded: products come from the configuration, outcomes are seven.
"""

from __future__ import annotations

from typing import Any

__all__ = ["forwarded", "in_flight"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

try:
    from prometheus_client import Counter, Gauge, Histogram
except ImportError:  # pragma: no cover - exercised only without the server extra
    _CALLS: Any = None
    _SECONDS: Any = None
    _IN_FLIGHT: Any = None
else:
    _CALLS = Counter(
        "taap_gateway_upstream_requests",
        "Calls forwarded to an upstream, by product and outcome (status class, or "
        "unavailable/timeout when the gateway answered 502/504).",
        ["product", "outcome"],
    )
    _SECONDS = Histogram(
        "taap_gateway_upstream_seconds",
        "Time from forwarding a call to the upstream's response head, by product.",
        ["product"],
        buckets=_BUCKETS,
    )
    _IN_FLIGHT = Gauge(
        "taap_gateway_in_flight", "Calls being forwarded now.", multiprocess_mode="livesum"
    )


_calls: dict[tuple[str, str], Any] = {}
_seconds: dict[str, Any] = {}


def forwarded(product: str, outcome: str, seconds: float | None) -> None:
    """Count one forwarded call; ``seconds`` to its response head (None: no head came)."""
    if _CALLS is None:  # pragma: no cover
        return
    # Label children bound once per (product, outcome): a dict lookup per call after that.
    counter = _calls.get((product, outcome))
    if counter is None:
        counter = _calls[product, outcome] = _CALLS.labels(product, outcome)
    counter.inc()
    if seconds is not None:
        histogram = _seconds.get(product)
        if histogram is None:
            histogram = _seconds[product] = _SECONDS.labels(product)
        histogram.observe(seconds)


def in_flight(delta: int) -> None:
    """One more (1) or one fewer (-1) call being forwarded."""
    if _IN_FLIGHT is not None:
        _IN_FLIGHT.inc(delta)
