"""The shipped price table (dated, with sources), staff edits, and local models at 0 unless priced."""

from datetime import date
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from completions.services import completion_collect
from models_mgmt.models import AIModel
from usage.default_prices import AS_OF, DEFAULT_PRICES
from usage.models import Price, UsageRecord
from usage.services import cost_usd, price_table

pytestmark = pytest.mark.django_db
QWEN = "qwen/qwen2.5-7b-instruct"


def test_defaults_ship_with_their_source_and_date() -> None:
    assert Price.objects.count() >= len(DEFAULT_PRICES) >= 15
    for price in Price.objects.all():
        assert price.source.startswith("https://") and price.as_of == date.fromisoformat(AS_OF)
        assert price.input_per_million_usd > 0 and price.output_per_million_usd >= price.input_per_million_usd
    mini = Price.objects.get(provider_kind="openai", model_id="gpt-4o-mini")
    assert (mini.input_per_million_usd, mini.output_per_million_usd) == (Decimal("0.15"), Decimal("0.60"))


def test_cost_from_the_table() -> None:
    table = price_table()
    cost = cost_usd(table=table, kind="openai", model_id="gpt-4o", prompt=1_000_000, completion=500_000)
    assert cost == Decimal("7.50")  # 2.50 + 0.5 x 10.00
    assert cost_usd(table=table, kind="openai", model_id="unknown", prompt=10**6, completion=10**6) == 0


def test_a_staff_edit_applies_at_once() -> None:
    assert price_table()[("openai", "gpt-4o")][0] == Decimal("2.50")
    price = Price.objects.get(provider_kind="openai", model_id="gpt-4o")
    price.input_per_million_usd = Decimal("1.25")
    price.save()
    assert price_table()[("openai", "gpt-4o")][0] == Decimal("1.25")


def test_local_models_cost_nothing_unless_priced(alice: object, discovered: dict[str, AIModel]) -> None:
    hello = [{"role": "user", "content": "hello there"}]
    model = discovered[QWEN]
    assert async_to_sync(completion_collect)(user=alice, model=model, messages=hello).ok
    assert UsageRecord.objects.get().cost_usd == 0
    Price.objects.create(provider_kind="lmstudio", model_id=QWEN, input_per_million_usd=100, output_per_million_usd=200)
    assert async_to_sync(completion_collect)(user=alice, model=model, messages=hello).ok
    priced = UsageRecord.objects.order_by("-id").first()
    expected = (Decimal(priced.prompt_tokens) * 100 + Decimal(priced.completion_tokens) * 200) / 10**6
    assert priced.cost_usd == expected and priced.cost_usd > 0
