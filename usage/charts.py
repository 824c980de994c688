"""Server-rendered charts: the geometry of simple bar charts, computed here and drawn by the template as
inline SVG (no script, nothing fetched, fine under the page's Content-Security-Policy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from usage.services import UsageRow

WIDTH, HEIGHT, BAR_GAP = 600, 120, 2
TOP_MODELS = 8


@dataclass(frozen=True)
class Bar:
    label: str
    value: str  # as shown in the tooltip
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    title: str
    peak: str
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def span(self) -> str:
        """The first and last label, for the axis under an over-time chart."""
        return f"{self.bars[0].label} … {self.bars[-1].label}" if self.bars else ""


def _fmt(metric: str, value: float | int | Decimal) -> str:
    if metric == "cost_usd":
        return f"${value:.4f}"
    return f"{int(value):,}"


def _metric(row: UsageRow | None, metric: str) -> float:
    if row is None:
        return 0.0
    return float(row.total_tokens if metric == "tokens" else getattr(row, metric))


def chart_over_time(*, rows: list[UsageRow], since: date, until: date, metric: str, title: str) -> Chart:
    """One bar a day from `since` to `until`, days without usage as empty slots."""
    by_day = {row.key: row for row in rows}
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    values = [_metric(by_day.get(d.isoformat()), metric) for d in days]
    peak = max(values, default=0) or 1
    slot = WIDTH / max(1, len(days))
    bars = [
        Bar(
            d.isoformat(),
            _fmt(metric, v),
            round(i * slot, 2),
            round(HEIGHT - v / peak * HEIGHT, 2),
            round(max(1.0, slot - BAR_GAP), 2),
            round(v / peak * HEIGHT, 2),
        )
        for i, (d, v) in enumerate(zip(days, values, strict=True))
    ]
    return Chart(title, _fmt(metric, max(values, default=0)), bars)


def chart_top(*, rows: list[UsageRow], metric: str, title: str) -> Chart:
    """Horizontal bars for the largest rows (the report is already sorted by cost, then tokens)."""
    top = sorted(rows, key=lambda r: -_metric(r, metric))[:TOP_MODELS]
    peak = max((_metric(r, metric) for r in top), default=0) or 1
    row_height = 22
    bars = [
        Bar(r.key, _fmt(metric, _metric(r, metric)), 0, i * row_height, round(_metric(r, metric) / peak * 360, 2), 16)
        for i, r in enumerate(top)
    ]
    return Chart(title, _fmt(metric, peak if top else 0), bars, height=max(1, len(top)) * row_height)
