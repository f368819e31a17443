"""Reading a ``/metrics`` scrape: the guard's verdict counter and duration histogram."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["guard_durations", "guard_verdicts", "increase"]

Key = tuple[str, ...]


def _samples(text: str, name: str, labels: tuple[str, ...]) -> dict[Key, float]:
    found: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sample.labels[label] for label in labels)] = sample.value
    return found


def guard_verdicts(text: str) -> dict[Key, float]:
    """``taap_guard_requests_total`` by ``(outcome, error_code)``."""
    return _samples(text, "taap_guard_requests_total", ("outcome", "error_code"))


def guard_durations(text: str) -> dict[Key, float]:
    """``taap_guard_request_duration_seconds_count`` (observations) by ``(outcome,)``."""
    return _samples(text, "taap_guard_request_duration_seconds_count", ("outcome",))


def increase(before: Mapping[Key, float], after: Mapping[Key, float]) -> dict[Key, float]:
    """What grew between two readings (the registry is shared by everything in a process)."""
    grown = {key: value - before.get(key, 0.0) for key, value in after.items()}
    return {key: value for key, value in grown.items() if value}
