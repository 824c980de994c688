"""The Usage and Budgets pages without a browser: who may see and do what, and bad input answered
plainly (the page, never a 500)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from usage.models import Budget, UsageRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_used(alice: User) -> None:
    UsageRecord.objects.create(
        user=alice,
        created_at=datetime.now(tz=UTC),
        kind="chat",
        model="openai/gpt-4o-mini",
        provider="openai",
        prompt_tokens=11,
        completion_tokens=22,
        outcome="ok",
        cost_usd=Decimal("0.5"),
    )


def test_a_user_sees_their_own_page(alice_used: None, alice_web: Client, charlie: User) -> None:
    page = alice_web.get("/usage/").content.decode()
    assert "Usage of alice" in page and 'data-total="tokens">33<' in page and "openai/gpt-4o-mini" in page
    charlie_web = Client()
    charlie_web.force_login(charlie)
    other = charlie_web.get("/usage/").content.decode()
    assert "Usage of charlie" in other and "gpt-4o-mini" not in other and 'data-total="requests">0<' in other
    assert "Content-Security-Policy" in alice_web.get("/usage/").headers


def test_naming_another_user_is_staffs(alice_used: None, alice_web: Client, bob_web: Client) -> None:
    refused = alice_web.get("/usage/?user=bob")
    assert refused.status_code == 403 and "Only staff" in refused.content.decode()
    shown = bob_web.get("/usage/?user=alice").content.decode()
    assert "Usage of alice" in shown and 'data-total="tokens">33<' in shown
    assert bob_web.get("/usage/?user=nobody").status_code == 404


@pytest.mark.parametrize("query", ["since=someday", "since=2026-05-02&until=2026-05-01"])
def test_bad_dates_are_400_pages(alice_web: Client, query: str) -> None:
    response = alice_web.get(f"/usage/?{query}")
    assert response.status_code == 400 and 'role="alert"' in response.content.decode()


def test_budgets_page_is_staffs(alice_web: Client, bob_web: Client) -> None:
    assert alice_web.get("/usage/budgets/").status_code == 403
    refused = alice_web.post("/usage/budgets/save/", {"username": "alice", "requests_per_minute": "1"})
    assert refused.status_code == 403 and not Budget.objects.exists()
    assert bob_web.get("/usage/budgets/").status_code == 200
    saved = bob_web.post("/usage/budgets/save/", {"username": "", "tokens_per_day": "5000"})
    assert saved.status_code == 302
    assert Budget.objects.get(is_default=True).tokens_per_day == 5000


def test_the_page_needs_a_login(db: None) -> None:
    response = Client().get("/usage/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
