"""The **Usage** page: an app's token issuances, API calls and refusals by ``error_code``
over the last hour, day and week, as a table and a server-rendered SVG chart.

The numbers come from the usage counters every token server and guard of the installation
add to (:mod:`taap.server.usage`); they lag by the recorders' flush interval (a second or
two). The chart is plain SVG markup styled by ``console.css``: no script draws it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.responses import Response

from taap.portal.console.access import visible_app
from taap.portal.web import Ctx
from taap.server.usage.store import Count

__all__ = ["PERIODS", "Period", "UsageRow", "chart", "summarise", "usage_page"]


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    label: str
    minutes: int
    bucket: int  # minutes per bar of the chart


PERIODS = (
    Period("hour", "Last hour", 60, 5),
    Period("day", "Last day", 1440, 60),
    Period("week", "Last week", 10080, 1440),
)
_SERIES = (("issued", "Token issued"), ("calls", "API call"), ("refused", "Refused"))
_WHERE = {"token_refused": "token request", "call_refused": "API call"}


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One line of the table: an event and its count in each period (``PERIODS`` order)."""

    label: str
    error_code: str | None
    where: str | None
    counts: tuple[int, ...]


def _series(kind: str) -> str:
    return {"token": "issued", "call": "calls"}.get(kind, "refused")


def summarise(rows: Sequence[Count], now_minute: int) -> list[UsageRow]:
    """The table: issuances, calls, then each (where, error_code) refused, most first."""
    totals: dict[tuple[str, str], list[int]] = {
        ("token", ""): [0] * len(PERIODS),
        ("call", ""): [0] * len(PERIODS),
    }
    for row in rows:
        age = now_minute - row.minute
        if age < 0:
            continue
        counts = totals.setdefault((row.kind, row.error_code), [0] * len(PERIODS))
        for i, period in enumerate(PERIODS):
            if age < period.minutes:
                counts[i] += row.count
    table = [
        UsageRow("Token issued", None, None, tuple(totals.pop(("token", "")))),
        UsageRow("API call", None, None, tuple(totals.pop(("call", "")))),
    ]
    refused = sorted(totals.items(), key=lambda item: (-item[1][-1], item[0]))
    for (kind, code), counts in refused:
        where = _WHERE.get(kind, kind)
        table.append(UsageRow(f"Refused: {code or 'unknown'}", code, where, tuple(counts)))
    return table


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # x, label under the axis
    top: int  # the largest bucket total
    base: float  # y of the axis


def chart(rows: Sequence[Count], now_minute: int, period: Period) -> Chart:
    """Grouped bars (issued, calls, refused) per bucket of ``period``, oldest first."""
    buckets = period.minutes // period.bucket
    values = {name: [0] * buckets for name, _ in _SERIES}
    for row in rows:
        age = now_minute - row.minute
        if 0 <= age < period.minutes:
            values[_series(row.kind)][buckets - 1 - age // period.bucket] += row.count
    width, height, left, bottom, top_pad = 720, 240, 40, 28, 12
    base = height - bottom
    top = max((max(v) for v in values.values()), default=0)
    scale = (base - top_pad) / top if top else 0.0
    slot = (width - left) / buckets
    bar_w = slot * 0.8 / len(_SERIES)
    bars: list[Bar] = []
    ticks: list[tuple[float, str]] = []
    first = now_minute - (buckets - 1) * period.bucket
    every = max(1, buckets // 6)
    for b in range(buckets):
        start = (first + b * period.bucket) // period.bucket * period.bucket
        x0 = left + b * slot + slot * 0.1
        label = _when(start, period)
        if b % every == 0:
            ticks.append((left + b * slot + slot / 2, label))
        for s, (name, text) in enumerate(_SERIES):
            value = values[name][b]
            h = value * scale
            bars.append(Bar(x0 + s * bar_w, base - h, bar_w, h, name, f"{label}: {value} × {text}"))
    return Chart(width, height, bars, ticks, top, base)


def _when(minute: int, period: Period) -> str:
    moment = datetime.fromtimestamp(minute * 60, UTC)
    return moment.strftime("%a %d") if period.key == "week" else moment.strftime("%H:%M")


async def usage_page(ctx: Ctx, *, clock: Callable[[], float] = time.time) -> Response:
    """``GET /portal/apps/{app_id}/usage?period=hour|day|week``."""
    app, record = await visible_app(ctx)
    chosen = ctx.request.query_params.get("period", "day")
    period = next((p for p in PERIODS if p.key == chosen), PERIODS[1])
    reader = ctx.portal.usage
    now_minute = int(clock() // 60)
    rows: list[Count] = []
    if reader is not None:
        rows = await reader.counts(record.client_id, now_minute - PERIODS[-1].minutes + 1)
    return ctx.render(
        "console/usage.html",
        nav="apps",
        app=app,
        client=record,
        available=reader is not None,
        periods=PERIODS,
        period=period,
        table=summarise(rows, now_minute),
        chart=chart(rows, now_minute, period),
        series=_SERIES,
        updated=datetime.fromtimestamp(now_minute * 60, UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
