"""GET /api/usage and /api/budgets: who sees what (alice her own, bob the staff member anyone's, charlie
nothing of alice's), grouping, dates, CSV, and bad input answered with a 4xx `detail`."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from usage.models import UsageRecord

pytestmark = pytest.mark.django_db
NOW = datetime.now(tz=UTC)


def record(user: User | None, model: str = "openai/gpt-4o-mini", days_ago: int = 0, **extra: object) -> UsageRecord:
    fields = {
        "user": user,
        "created_at": NOW - timedelta(days=days_ago),
        "kind": "api",
        "model": model,
        "provider": model.split("/")[0],
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "outcome": "ok",
        "cost_usd": Decimal("0.001"),
        **extra,
    }
    return UsageRecord.objects.create(**fields)


@pytest.fixture
def records(alice: User, bob: User, charlie: User) -> None:
    record(alice)
    record(alice, "anthropic/claude-3-5-haiku-latest", days_ago=1)
    record(alice, "myserver/secret-model", provider_private=True)
    record(bob)
    record(charlie, days_ago=40)  # outside the default range


def test_a_user_sees_only_their_own(records: None, alice_api: Client) -> None:
    body = alice_api.get("/api/usage?group_by=model").json()
    assert {r["key"] for r in body["rows"]} == {
        "openai/gpt-4o-mini",
        "anthropic/claude-3-5-haiku-latest",
        "myserver/secret-model",  # her own private server's name is hers to see
    }
    assert body["totals"]["requests"] == 3 and body["totals"]["prompt_tokens"] == 30
    assert body["totals"]["completion_tokens"] == 60 and body["totals"]["cost_usd"] == pytest.approx(0.003)
    assert body["user"] == "alice"


def test_naming_a_user_is_staffs(records: None, alice_api: Client) -> None:
    for name in ("bob", "alice"):
        response = alice_api.get(f"/api/usage?user={name}")
        assert response.status_code == 403 and "staff" in response.json()["detail"]


def test_staff_see_anyone_or_everyone_without_private_names(records: None, bob_api: Client) -> None:
    everyone = bob_api.get("/api/usage?group_by=user").json()
    assert {r["key"]: r["requests"] for r in everyone["rows"]} == {"alice": 3, "bob": 1}
    models = {r["key"] for r in bob_api.get("/api/usage?group_by=model").json()["rows"]}
    assert "private" in models and not any("secret" in m or "myserver" in m for m in models)
    providers = {r["key"] for r in bob_api.get("/api/usage?group_by=provider&user=alice").json()["rows"]}
    assert providers == {"openai", "anthropic", "private"}
    assert bob_api.get("/api/usage?user=nobody").status_code == 404


def test_by_day_and_the_date_range(records: None, alice_api: Client, charlie: User) -> None:
    today, yesterday = NOW.date(), (NOW - timedelta(days=1)).date()
    rows = alice_api.get("/api/usage?group_by=day").json()["rows"]
    assert [(r["key"], r["requests"]) for r in rows] == [(yesterday.isoformat(), 1), (today.isoformat(), 2)]
    only_today = alice_api.get(f"/api/usage?since={today}&until={today}").json()
    assert only_today["totals"]["requests"] == 2
    from tests.conftest import token_client

    old = (NOW - timedelta(days=40)).date()
    charlie_api = token_client(charlie)
    assert charlie_api.get("/api/usage").json()["totals"]["requests"] == 0
    assert charlie_api.get(f"/api/usage?since={old}&until={old}").json()["totals"]["requests"] == 1


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("since=2026-02-30", 422),
        ("since=yesterday", 422),
        ("group_by=week", 422),
        ("since=2026-05-02&until=2026-05-01", 400),
        ("since=2020-01-01&until=2026-01-01", 400),
        ("since=9999-12-31&until=9999-12-31", 400),
        ("since=0001-01-01&until=0001-01-02", 400),
    ],
)
def test_bad_queries_are_4xx_with_detail(alice_api: Client, query: str, status: int) -> None:
    response = alice_api.get(f"/api/usage?{query}")
    assert response.status_code == status and response.json()["detail"]


def test_usage_needs_a_login(db: None) -> None:
    assert Client().get("/api/usage").status_code == 401


def test_budgets_read_and_set(alice_api: Client, bob_api: Client, charlie: User) -> None:
    mine = alice_api.get("/api/budgets/alice").json()
    assert mine["source"] == "default" and mine["requests_per_minute"] is None
    assert alice_api.get("/api/budgets/charlie").status_code == 404  # another user's: not even confirmed
    limits = {"requests_per_minute": 10, "tokens_per_day": 5000, "cost_per_month_usd": 2.5}
    refused = alice_api.put("/api/budgets/alice", limits, content_type="application/json")
    assert refused.status_code == 403 and "staff" in refused.json()["detail"]
    saved = bob_api.put("/api/budgets/alice", limits, content_type="application/json")
    assert saved.status_code == 200
    mine = alice_api.get("/api/budgets/alice").json()
    assert mine["source"] == "user" and mine["requests_per_minute"] == 10 and mine["cost_per_month_usd"] == 2.5
    assert mine["remaining"] == {"requests_per_minute": 10, "tokens_per_day": 5000, "cost_per_month_usd": 2.5}
    assert set(mine["resets_at"]) == {"requests_per_minute", "tokens_per_day", "cost_per_month_usd"}
    assert bob_api.get("/api/budgets/charlie").json()["source"] == "default"
    assert bob_api.put("/api/budgets/nobody", limits, content_type="application/json").status_code == 404
    unlimited = {"requests_per_minute": None, "tokens_per_day": None, "cost_per_month_usd": None}
    assert (
        bob_api.put("/api/budgets/alice", unlimited, content_type="application/json").json()["tokens_per_day"] is None
    )
    assert bob_api.delete("/api/budgets/alice").json()["source"] == "default"


def test_the_instance_default(alice_api: Client, bob_api: Client) -> None:
    limits = {"requests_per_minute": 60, "tokens_per_day": None, "cost_per_month_usd": None}
    assert alice_api.put("/api/budgets", limits, content_type="application/json").status_code == 403
    assert bob_api.put("/api/budgets", limits, content_type="application/json").status_code == 200
    assert alice_api.get("/api/budgets").json()["requests_per_minute"] == 60
    assert alice_api.get("/api/budgets/alice").json()["requests_per_minute"] == 60


@pytest.mark.parametrize(
    "payload",
    [
        {"requests_per_minute": -1, "tokens_per_day": None, "cost_per_month_usd": None},
        {"requests_per_minute": "many", "tokens_per_day": None, "cost_per_month_usd": None},
        {"requests_per_minute": None},
        {"requests_per_minute": None, "tokens_per_day": None, "cost_per_month_usd": "1.23456"},
    ],
)
def test_bad_budgets_are_422_with_detail(bob_api: Client, alice: User, payload: dict) -> None:
    response = bob_api.put("/api/budgets/alice", payload, content_type="application/json")
    assert response.status_code == 422 and response.json()["detail"]


def test_csv_download(records: None, alice_web: Client, bob_web: Client) -> None:
    response = alice_web.get("/usage/export.csv?group_by=model")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines[0] == "model,requests,prompt_tokens,completion_tokens,cost_usd"
    assert lines[-1] == "total,3,30,60,0.003000" and len(lines) == 5
    assert alice_web.get("/usage/export.csv?user=bob").status_code == 403
    staff = bob_web.get("/usage/export.csv?group_by=user").content.decode().splitlines()
    assert "alice,3,30,60,0.003000" in staff and not any("secret" in line for line in staff)
