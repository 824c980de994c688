"""The Usage page in a real browser: alice reads her usage, charts and remaining budget and downloads the
CSV; a chat over budget shows why in place of the answer, her question kept; bob (staff) looks at
anyone's usage and sets a budget on the Budgets page."""

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from apikeys.services import apikey_create
from models_mgmt.models import AIModel
from tests.browser.conftest import screenshot
from tests.browser.test_models_page import log_in
from tests.conftest import cloud_provider
from tests.fakes.openai import FakeOpenAI
from tests.processes import asgi_server
from usage.models import Budget, UsageRecord
from usage.services import budget_set

pytestmark = pytest.mark.browser


@pytest.fixture
def world(transactional_db: None, django_user_model: type) -> Iterator[dict]:
    with ExitStack() as stack:
        openai = stack.enter_context(FakeOpenAI(keys={"test-key-1234"}))
        alice = django_user_model.objects.create_user("alice", password="alice-password-1")
        bob = django_user_model.objects.create_user("bob", password="bob-password-1", is_staff=True)
        provider = cloud_provider("openai", "openai", base_url=f"{openai.url}/v1")
        apikey_create(user=alice, provider="openai", key="test-key-1234")
        AIModel.objects.create(provider=provider, model_id="gpt-4o-mini", display_name="GPT-4o mini")
        now = datetime.now(tz=UTC)
        for days_ago, model, tokens in ((0, "openai/gpt-4o-mini", 300), (2, "anthropic/claude-3-5-haiku-latest", 900)):
            UsageRecord.objects.create(
                user=alice,
                created_at=now - timedelta(days=days_ago),
                kind="chat",
                model=model,
                provider=model.split("/")[0],
                prompt_tokens=tokens,
                completion_tokens=tokens,
                outcome="ok",
                cost_usd=Decimal("0.0125"),
            )
        budget_set(actor=bob, username="alice", requests_per_minute=None, tokens_per_day=1000, cost_per_month_usd=None)
        url = stack.enter_context(asgi_server(LMSTUDIO_BASE_URL="http://127.0.0.1:9"))
        yield {"url": url, "openai": openai}


def test_alice_reads_her_usage_and_downloads_it(page: Page, world: dict) -> None:
    log_in(page, world["url"], "alice", "alice-password-1", landing="/usage/")
    expect(page.get_by_role("heading", name="Usage of alice")).to_be_visible()
    expect(page.locator('[data-total="requests"]')).to_have_text("2")
    expect(page.locator('[data-total="tokens"]')).to_have_text("2400")
    expect(page.locator('[data-total="cost"]')).to_have_text("$0.0250")
    # 1000 tokens a day, 600 used today.
    expect(page.locator('[data-left="tokens_per_day"]')).to_have_text("400")
    expect(page.locator('figure svg[aria-label="Tokens a day"] rect')).to_have_count(30)
    expect(page.locator("#top-models rect")).to_have_count(2)
    expect(page.locator("#by-model")).to_contain_text("anthropic/claude-3-5-haiku-latest")
    screenshot(page, "usage-alice")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV by model").click()
    csv = download.value.path().read_text()
    assert csv.splitlines()[0] == "model,requests,prompt_tokens,completion_tokens,cost_usd"
    assert "openai/gpt-4o-mini,1,300,300,0.012500" in csv

    # A narrower range: only today.
    today = datetime.now(tz=UTC).date().isoformat()
    page.fill('input[name="since"]', today)
    page.get_by_role("button", name="Show").click()
    expect(page.locator('[data-total="requests"]')).to_have_text("1")
    expect(page.locator('figure svg[aria-label="Tokens a day"] rect')).to_have_count(1)


def test_a_chat_over_budget_says_so_in_place_of_the_answer(page: Page, world: dict) -> None:
    log_in(page, world["url"], "alice", "alice-password-1", landing="/")
    page.select_option("#model-select", str(AIModel.objects.get(model_id="gpt-4o-mini").pk))
    question = "A question that does not fit the 400 tokens left today. " * 30
    page.fill("#prompt", question)
    page.keyboard.press("Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer).to_contain_text("Over budget")
    expect(answer).to_contain_text("tokens_per_day")
    expect(page.locator(".msg.user").last).to_contain_text("A question that does not fit")
    assert world["openai"].chat_count == 0
    screenshot(page, "usage-chat-over-budget")


def test_bob_sees_alice_and_sets_her_budget(page: Page, world: dict) -> None:
    log_in(page, world["url"], "bob", "bob-password-1", landing="/usage/")
    expect(page.get_by_role("heading", name="Usage of everyone")).to_be_visible()
    expect(page.locator('[data-total="requests"]')).to_have_text("2")
    page.select_option('select[name="user"]', "alice")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Usage of alice")).to_be_visible()

    page.get_by_role("link", name="Budgets").click()
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Requests per minute").fill("30")
    page.get_by_label("Cost per month (USD)").fill("5")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#messages")).to_contain_text("Budget saved for alice")
    budget = Budget.objects.get(user__username="alice")
    assert (budget.requests_per_minute, budget.tokens_per_day, budget.cost_per_month_usd) == (30, None, Decimal("5"))

    page.get_by_label("Requests per minute").fill("lots")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#messages")).to_contain_text("not a number")
    expect(page.get_by_label("Requests per minute")).to_have_value("lots")  # what was typed stays
