from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from ninja import Schema
from pydantic import Field

from usage.services import BudgetView, UsageReport, UsageRow


class UsageQueryIn(Schema):
    group_by: Literal["day", "model", "provider", "user"] = "day"
    since: date | None = Field(None, description="First day (UTC), YYYY-MM-DD; default 29 days before `until`")
    until: date | None = Field(None, description="Last day (UTC), YYYY-MM-DD, included; default today")
    user: str | None = Field(None, max_length=150, description="Staff only: one user's usage")


class UsageRowOut(Schema):
    key: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    @staticmethod
    def of(row: UsageRow) -> "UsageRowOut":
        return UsageRowOut(
            key=row.key,
            requests=row.requests,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost_usd=float(round(row.cost_usd, 6)),
        )


class UsageOut(Schema):
    group_by: str
    since: date
    until: date
    user: str | None
    rows: list[UsageRowOut]
    totals: UsageRowOut

    @staticmethod
    def of(report: UsageReport) -> "UsageOut":
        return UsageOut(
            group_by=report.group_by,
            since=report.since,
            until=report.until,
            user=report.username,
            rows=[UsageRowOut.of(r) for r in report.rows],
            totals=UsageRowOut.of(report.totals),
        )


class BudgetIn(Schema):
    requests_per_minute: int | None = Field(..., ge=0, le=1_000_000, description="null: unlimited")
    tokens_per_day: int | None = Field(..., ge=0, le=10**15, description="null: unlimited")
    cost_per_month_usd: Decimal | None = Field(..., ge=0, le=10**7, decimal_places=4, description="null: unlimited")


class BudgetOut(Schema):
    user: str | None = Field(description="null: the instance default")
    source: Literal["user", "default"]
    requests_per_minute: int | None
    tokens_per_day: int | None
    cost_per_month_usd: float | None
    remaining: dict[str, float | int | None]
    resets_at: dict[str, datetime]

    @staticmethod
    def of(view: BudgetView) -> "BudgetOut":
        limits = view.limits
        return BudgetOut(
            user=view.username,
            source="user" if view.own else "default",
            requests_per_minute=limits.requests_per_minute,
            tokens_per_day=limits.tokens_per_day,
            cost_per_month_usd=None if limits.cost_per_month_usd is None else float(limits.cost_per_month_usd),
            remaining={k: float(v) if isinstance(v, Decimal) else v for k, v in view.remaining().items()},
            resets_at=view.resets,
        )
