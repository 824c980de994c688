"""max_tokens beyond the model's context (or MAX_COMPLETION_TOKENS) is a 400 on the REST API and the
gateway; the budget check costs no query for a user without limits, and one UPDATE for a user with some."""

import json

import pytest
from django.test import Client

from accounts.services import api_token_create
from completions.services import _Accounting, _admit_and_plan, _Ready
from models_mgmt.models import AIModel
from providers.adapters import ChatParams
from tests.completions.conftest import Cloud
from tests.usage.conftest import body, post
from usage.services import budget_set


@pytest.mark.parametrize("max_tokens", [10**12, 40_000, 9000])
def test_max_tokens_beyond_what_fits_is_400(
    alice: object, alice_api: Client, openai: Cloud, max_tokens: int, settings
) -> None:  # noqa: ANN001
    AIModel.objects.filter(pk=openai.model.pk).update(context_length=8192)
    settings.MAX_COMPLETION_TOKENS = 32_768
    response = alice_api.post("/api/completions", body(max_tokens=max_tokens), content_type="application/json")
    assert response.status_code in (400, 422), response.content
    assert "max_tokens" in str(response.json()["detail"])
    _, raw = api_token_create(user=alice, name="gw")
    status, _, text = post("/v1/chat/completions", body(max_tokens=max_tokens), raw)
    error = json.loads(text)["error"]
    assert status == 400 and error["param"] == "max_tokens" and "max_tokens" in error["message"]
    assert openai.fake.chat_count == 0


def test_max_tokens_that_fits_goes_through(alice_api: Client, openai: Cloud) -> None:
    AIModel.objects.filter(pk=openai.model.pk).update(context_length=8192)
    response = alice_api.post("/api/completions", body(max_tokens=8000), content_type="application/json")
    assert response.status_code == 200 and openai.fake.last_chat_body()["max_tokens"] == 8000


def test_no_query_for_the_budget_of_a_user_without_limits(
    openai: Cloud, alice: object, django_assert_num_queries
) -> None:  # noqa: ANN001
    accounting = _Accounting(user=alice, prompt_tokens=5)
    _admit_and_plan(openai.model, alice, None, ChatParams(), accounting)  # fills the cache
    with django_assert_num_queries(0):  # the key comes from the in-process cache now
        plan = _admit_and_plan(openai.model, alice, None, ChatParams(), accounting)
    assert isinstance(plan, _Ready) and not accounting.admission.counted


def test_one_update_for_a_user_with_limits(
    openai: Cloud, alice: object, bob: object, django_assert_num_queries
) -> None:  # noqa: ANN001
    budget_set(actor=bob, username="alice", requests_per_minute=100, tokens_per_day=None, cost_per_month_usd=None)
    accounting = _Accounting(user=alice, prompt_tokens=5)
    _admit_and_plan(openai.model, alice, None, ChatParams(), accounting)  # creates the counter row
    with django_assert_num_queries(1):  # the admitting UPDATE (the key is in the in-process cache)
        _admit_and_plan(openai.model, alice, None, ChatParams(), accounting)
    assert accounting.admission.counted
