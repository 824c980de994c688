"""Every budget kind is enforced on every path: over budget is a 429 with Retry-After and a `detail`
naming the limit and its reset (OpenAI's shape on the gateway; in place of the answer in the chat; a
failed run naming the limit), and what the user typed is kept."""

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from accounts.services import api_token_create
from apikeys.services import apikey_create
from chat import services as chat
from chat.models import Message, MessageStatus
from codegen import services as codegen
from codegen.models import RunStatus
from models_mgmt.models import AIModel
from tests.completions.conftest import KEY, Cloud
from tests.usage.conftest import post
from usage import services as usage_services
from usage.models import Budget, Price, UsageRecord
from usage.services import budget_set

PROMPT = "Please write a function that adds two numbers together"
SPEC = {"openapi": "3.0.0", "info": {"title": "T", "version": "1"}, "paths": {"/items": {"get": {"summary": "List"}}}}


class Outcome:
    def __init__(self, status: int, headers: dict[str, str], detail: str) -> None:
        self.status, self.headers, self.detail = status, headers, detail


def rest(user: User, stream: bool) -> Outcome:
    _, raw = api_token_create(user=user, name="t")
    payload = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    status, headers, text = post("/api/completions", payload, raw)
    return Outcome(status, headers, json.loads(text)["detail"] if status == 429 else text)


def gateway(user: User, stream: bool) -> Outcome:
    _, raw = api_token_create(user=user, name="t")
    payload = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    status, headers, text = post("/v1/chat/completions", payload, raw)
    if status == 429:
        error = json.loads(text)["error"]
        assert error["type"] == "requests" and error["code"] == "budget_exceeded"
        return Outcome(status, headers, error["message"])
    return Outcome(status, headers, text)


def chat_path(user: User, stream: bool) -> Outcome:
    conversation = chat.conversation_create(owner=user)
    model = AIModel.objects.get(model_id="gpt-4o-mini")
    question, answer = chat.chat_send(conversation=conversation, content=PROMPT, model_id=model.pk)

    async def go() -> None:
        async for _ in chat.chat_stream(message_id=answer.pk, user=user):
            pass

    async_to_sync(go)()
    answer.refresh_from_db()
    assert Message.objects.get(pk=question.pk).content == PROMPT  # what the user typed is kept
    if answer.status == MessageStatus.ERROR and answer.error.startswith("Over budget"):
        return Outcome(429, {"retry-after": "shown in the chat"}, answer.error)
    assert answer.status == MessageStatus.COMPLETE, answer.error
    return Outcome(200, {}, answer.content)


def codegen_path(user: User, stream: bool) -> Outcome:
    _, raw = api_token_create(user=user, name="t")
    response = Client(headers={"Authorization": f"Bearer {raw}"}).post(
        "/llm-codegen/generate", {"prompt": PROMPT, "model": "openai/gpt-4o-mini"}, content_type="application/json"
    )
    return Outcome(response.status_code, dict(response.headers), response.json().get("detail", ""))


def run_path(user: User, stream: bool) -> Outcome:
    run = codegen.codegen_run_create(owner=user, spec=SPEC, model_ref="openai/gpt-4o-mini")
    run.refresh_from_db()
    if run.status == RunStatus.FAILED and "Over budget" in run.error:
        return Outcome(429, {"retry-after": "in the run's reason"}, run.error)
    assert run.status == RunStatus.FINISHED, run.error
    return Outcome(200, {}, run.artifact)


PATHS: dict[str, tuple[Callable[[User, bool], Outcome], bool]] = {
    "rest": (rest, False),
    "rest-stream": (rest, True),
    "gateway": (gateway, False),
    "gateway-stream": (gateway, True),
    "chat": (chat_path, False),
    "codegen": (codegen_path, False),
    "testgen-run": (run_path, False),
}
UNLIMITED = {"requests_per_minute": None, "tokens_per_day": None, "cost_per_month_usd": None}


def limit_after_first_call(limit: str, user: User) -> dict:
    """The limit set to what the first call spent: a second call cannot fit. (Requests per minute is set to
    1 before the first call instead.)"""
    spent = UsageRecord.objects.filter(user=user)
    if limit == "tokens_per_day":
        return {**UNLIMITED, limit: sum(r.total_tokens for r in spent)}
    return {**UNLIMITED, limit: sum(r.cost_usd for r in spent)}


@pytest.fixture
def priced(openai: Cloud, settings, bob: User) -> Cloud:  # noqa: ANN001
    apikey_create(user=bob, provider="openai", key=KEY)
    Price.objects.filter(provider_kind="openai", model_id="gpt-4o-mini").update(
        input_per_million_usd=1000, output_per_million_usd=1000
    )
    openai.fake.code_mode = True
    settings.CODEGEN_RATE_LIMIT = 100  # the codegen limit is tested on its own below
    return openai


@pytest.mark.parametrize("limit", ["cost_per_month_usd", "requests_per_minute", "tokens_per_day"])
@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_limit_on_every_path(
    path: str, limit: str, priced: Cloud, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    call, stream = PATHS[path]
    if limit == "requests_per_minute":
        # Both calls in one calendar minute, the unit this limit counts in: the budget's clock stops half-way
        # through the current minute (with the real clock, a pair straddling a minute boundary was admitted).
        frozen = datetime.now(tz=UTC).replace(second=30, microsecond=0)
        monkeypatch.setattr(usage_services, "_now", lambda: frozen)
        budget_set(actor=bob, username="alice", **{**UNLIMITED, limit: 1})
    first = call(alice, stream)
    assert first.status == 200, first.detail
    if limit != "requests_per_minute":
        budget_set(actor=bob, username="alice", **limit_after_first_call(limit, alice))
    calls_before = priced.fake.chat_count
    second = call(alice, stream)
    assert second.status == 429, second.detail
    assert priced.fake.chat_count == calls_before  # refused before any model was asked
    assert f"your {limit} limit" in second.detail, second.detail
    assert "resets at" in second.detail
    assert "Over budget" in second.detail
    if path not in ("chat", "testgen-run"):
        assert 1 <= int(second.headers["Retry-After"]) <= 31 * 24 * 3600
    # Another user is not affected by alice's budget.
    assert call(bob, stream).status == 200


def test_the_instance_default_applies_to_users_without_their_own(priced: Cloud, alice: User, bob: User) -> None:
    budget_set(actor=bob, username=None, requests_per_minute=1, tokens_per_day=None, cost_per_month_usd=None)
    assert rest(alice, False).status == 200
    refused = rest(alice, False)
    assert refused.status == 429 and "requests per minute" in refused.detail
    budget_set(actor=bob, username="alice", requests_per_minute=None, tokens_per_day=None, cost_per_month_usd=None)
    assert rest(alice, False).status == 200  # her own (unlimited) budget overrides the default


def test_a_refused_request_is_not_recorded_and_uses_no_budget(priced: Cloud, alice: User, bob: User) -> None:
    budget_set(actor=bob, username="alice", requests_per_minute=1, tokens_per_day=None, cost_per_month_usd=None)
    rest(alice, False)
    for _ in range(3):
        assert rest(alice, False).status == 429
    assert UsageRecord.objects.count() == 1


def test_chunked_prompts_and_runs_count_against_the_codegen_limit(openai: Cloud, alice: User, settings) -> None:  # noqa: ANN001
    openai.fake.code_mode = True
    settings.CODEGEN_RATE_LIMIT = 3
    # A prompt in two parts (the model's context is small) takes two of the three.
    AIModel.objects.filter(pk=openai.model.pk).update(context_length=500)
    long_prompt = ("Write a function that adds numbers. " * 15 + "\n\n") * 2
    generated = async_to_sync(codegen.codegen_generate)(user=alice, prompt=long_prompt, model_ref="openai/gpt-4o-mini")
    assert generated.parts == 2 and generated.quota_remaining == 1
    # A test-generation run takes the third; the next run is refused with 429 and Retry-After.
    codegen.codegen_run_create(owner=alice, spec=SPEC, model_ref="openai/gpt-4o-mini")
    _, raw = api_token_create(user=alice, name="t")
    response = Client(headers={"Authorization": f"Bearer {raw}"}).post(
        "/api/codegen/runs", {"spec": SPEC}, content_type="application/json"
    )
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert "code generations" in response.json()["detail"]


def test_a_chunked_prompt_that_does_not_fit_what_is_left_is_refused_whole(
    openai: Cloud,
    alice: User,
    settings,  # noqa: ANN001
) -> None:
    openai.fake.code_mode = True
    settings.CODEGEN_RATE_LIMIT = 2
    AIModel.objects.filter(pk=openai.model.pk).update(context_length=500)
    long_prompt = ("Write a function that adds numbers. " * 15 + "\n\n") * 3
    with pytest.raises(codegen.RateLimited):
        async_to_sync(codegen.codegen_generate)(user=alice, prompt=long_prompt, model_ref="openai/gpt-4o-mini")
    assert openai.fake.chat_count == 0


def test_limits_are_kept_in_process_and_forgotten_when_a_budget_row_is_written(
    alice: User, bob: User, django_assert_num_queries: Callable
) -> None:
    budget_set(actor=bob, username="alice", requests_per_minute=5, tokens_per_day=None, cost_per_month_usd=None)
    assert usage_services.limits_for(user_id=alice.pk)[0].requests_per_minute == 5
    # The limits gone from the shared cache (as on another machine's): only this process still knows them.
    cache.delete_many([usage_services._user_key(alice.pk), usage_services.DEFAULT_KEY])
    with django_assert_num_queries(0):
        assert usage_services.limits_for(user_id=alice.pk)[0].requests_per_minute == 5
    # A write no signal announces (a queryset update, as from another process or a migration), with the
    # shared cache empty: this process must not answer from what it kept.
    Budget.objects.filter(user=alice).update(requests_per_minute=7)
    assert usage_services.limits_for(user_id=alice.pk)[0].requests_per_minute == 7
