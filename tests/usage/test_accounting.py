"""A usage record for every upstream call, on every path: tokens from the provider (estimated and marked
so when it gives none), the model that answered, outcome, latency, cost."""

from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from accounts.services import api_token_create
from codegen import services as codegen
from completions.events import Delta
from completions.services import completion_collect, completion_stream
from models_mgmt.models import AIModel
from tests.completions.conftest import Cloud
from tests.usage.conftest import body, post
from usage.models import UsageRecord

HELLO = [{"role": "user", "content": "hello there"}]
QWEN = "qwen/qwen2.5-7b-instruct"


def only_record() -> UsageRecord:
    records = list(UsageRecord.objects.all())
    assert len(records) == 1, records
    return records[0]


def test_rest_call_is_recorded_with_the_providers_tokens_and_cost(alice_api: Client, openai: Cloud, alice) -> None:  # noqa: ANN001
    response = alice_api.post("/api/completions", body(), content_type="application/json")
    assert response.status_code == 200
    usage = response.json()["usage"]
    record = only_record()
    assert (record.user, record.kind, record.model, record.provider) == (alice, "api", "openai/gpt-4o-mini", "openai")
    assert record.prompt_tokens == usage["prompt_tokens"] and record.completion_tokens == usage["completion_tokens"]
    assert not record.estimated and record.outcome == "ok" and record.key is not None
    assert record.latency_ms >= 0 and record.first_token_ms is not None
    # gpt-4o-mini's shipped price: 0.15 in, 0.60 out per million tokens.
    expected = (
        Decimal(usage["prompt_tokens"]) * Decimal("0.15") + Decimal(usage["completion_tokens"]) * Decimal("0.60")
    ) / 1_000_000
    assert record.cost_usd == expected.quantize(Decimal("0.00000001")) and record.cost_usd > 0


def test_gateway_stream_and_json_are_recorded(alice: object, openai: Cloud) -> None:
    _, raw = api_token_create(user=alice, name="gw")
    for stream in (False, True):
        status, _, text = post("/v1/chat/completions", body(stream=stream), raw)
        assert status == 200 and ("[DONE]" in text if stream else "Echo from" in text)
    records = list(UsageRecord.objects.order_by("created_at"))
    assert [r.kind for r in records] == ["gateway", "gateway"]
    assert all(r.outcome == "ok" and r.prompt_tokens > 0 and r.completion_tokens > 0 for r in records)


def test_a_provider_without_usage_is_estimated_and_marked(alice: object, discovered: dict[str, AIModel]) -> None:
    # The LM Studio emulator sends usage only when asked in a stream; the service asks, so strip it here.
    model = discovered[QWEN]
    result = async_to_sync(completion_collect)(user=alice, model=model, messages=HELLO)
    assert result.ok
    record = only_record()
    assert record.kind == "chat" and record.model == f"lmstudio/{QWEN}" and record.cost_usd == 0
    if result.usage is None:
        assert record.estimated and record.prompt_tokens > 0
    else:
        assert not record.estimated and record.prompt_tokens == result.usage["prompt_tokens"]


def test_a_stopped_stream_is_still_recorded(alice: object, openai: Cloud) -> None:
    openai.fake.chunk_delay = 0.05

    async def stop_after_first_text() -> str:
        events = completion_stream(
            user=alice, model=openai.model, messages=[{"role": "user", "content": "one two three four five six"}]
        )
        async for event in events:
            if isinstance(event, Delta):
                await events.aclose()  # as the chat's Stop button, or a client that goes away
                return event.text
        raise AssertionError("no text came")

    text = async_to_sync(stop_after_first_text)()
    record = only_record()
    assert record.outcome == "cancelled" and record.estimated
    assert record.completion_tokens == -(-len(text) // 4) and record.prompt_tokens > 0 and record.cost_usd > 0


def test_a_fallback_charges_the_model_that_answered(
    alice: object, openai: Cloud, discovered: dict[str, AIModel]
) -> None:
    openai.fake.fail("500", times=2)
    result = async_to_sync(completion_collect)(user=alice, model=openai.model, messages=HELLO)
    assert result.ok and result.model == f"lmstudio/{QWEN}"
    records = list(UsageRecord.objects.order_by("created_at", "id"))
    failed, answered = (
        [r for r in records if r.model == "openai/gpt-4o-mini"],
        [r for r in records if r.outcome == "ok"],
    )
    assert len(failed) == 2 and all(r.outcome == "server_error" for r in failed)  # the try and its retry
    assert all(r.prompt_tokens == 0 and r.completion_tokens == 0 and r.cost_usd == 0 for r in failed)
    assert len(answered) == 1 and answered[0].model == f"lmstudio/{QWEN}" and answered[0].completion_tokens > 0


def test_a_failed_call_is_recorded(alice_api: Client, openai: Cloud) -> None:
    openai.fake.fail("401")
    response = alice_api.post("/api/completions", body(fallback=False), content_type="application/json")
    assert response.status_code == 502
    record = only_record()
    assert record.outcome == "auth" and record.total_tokens == 0 and record.cost_usd == 0


def test_a_call_that_fails_after_text_keeps_its_tokens(alice: object, openai: Cloud) -> None:
    openai.fake.fail("cut")

    async def cut_stream() -> list[object]:
        # Streamed (a whole answer cut off has no text to keep), and without fallback: one model, one call.
        events = completion_stream(user=alice, model=openai.model, messages=HELLO, fallback=False)
        return [event async for event in events]

    events = async_to_sync(cut_stream)()
    assert any(isinstance(event, Delta) for event in events)
    record = only_record()
    assert record.outcome != "ok" and record.estimated and record.completion_tokens > 0


def test_codegen_and_test_generation_runs_are_recorded(alice: object, openai: Cloud, settings) -> None:  # noqa: ANN001
    settings.CODEGEN_DEFAULT_MODEL = "openai/gpt-4o-mini"
    openai.fake.code_mode = True
    async_to_sync(codegen.codegen_generate)(user=alice, prompt="A function that adds two numbers", model_ref=None)
    spec = {
        "openapi": "3.0.0",
        "info": {"title": "T", "version": "1"},
        "paths": {"/items": {"get": {"summary": "List"}}},
    }
    run = codegen.codegen_run_create(owner=alice, spec=spec, model_ref="openai/gpt-4o-mini")
    run.refresh_from_db()
    kinds = sorted(UsageRecord.objects.values_list("kind", flat=True))
    assert kinds == ["codegen", "testgen"], (kinds, run.status, run.error)


def test_prometheus_counts_tokens_and_cost_without_users(alice_api: Client, openai: Cloud, bob_api: Client) -> None:
    from orchestrator.observability import COST, TOKENS

    before = TOKENS.labels("openai", "gpt-4o-mini", "ok", "completion")._value.get()
    cost_before = COST.labels("openai", "gpt-4o-mini", "ok")._value.get()
    alice_api.post("/api/completions", body(), content_type="application/json")
    record = only_record()
    assert TOKENS.labels("openai", "gpt-4o-mini", "ok", "completion")._value.get() - before == record.completion_tokens
    assert COST.labels("openai", "gpt-4o-mini", "ok")._value.get() - cost_before == pytest.approx(
        float(record.cost_usd)
    )
    metrics = Client().get("/metrics").content.decode()
    lines = [line for line in metrics.splitlines() if line.startswith(("llm_tokens_total", "llm_cost_usd_total"))]
    assert lines and not any("alice" in line or "user" in line for line in lines)
