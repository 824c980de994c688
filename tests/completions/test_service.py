"""The unified completion service: retries, cooldowns, keys, local loads, and the event stream."""

from contextlib import ExitStack

import pytest
from asgiref.sync import async_to_sync

from completions.events import Delta, Done, Loading, Start
from completions.services import completion_collect, completion_stream
from models_mgmt.models import AIModel
from models_mgmt.services import Status, model_status
from providers.models import ApiKey
from tests.completions.conftest import Cloud, start_cloud
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.usefixtures("fast_timeouts")
HELLO = [{"role": "user", "content": "hello there"}]
QWEN, GEMMA = "qwen/qwen2.5-7b-instruct", "google/gemma-3-4b"


def collect(user: object, model: AIModel, **kwargs: object):  # noqa: ANN201
    return async_to_sync(completion_collect)(user=user, model=model, messages=HELLO, **kwargs)


def events(user: object, model: AIModel, **kwargs: object) -> list:
    async def run() -> list:
        return [e async for e in completion_stream(user=user, model=model, messages=HELLO, **kwargs)]

    return async_to_sync(run)()


@pytest.fixture
def openai(db: None, alice: object) -> Cloud:
    with ExitStack() as stack:
        yield start_cloud(stack, "openai", alice)


def test_answer_events_in_order(openai: Cloud, alice: object) -> None:
    stream = events(alice, openai.model)
    kinds = [type(e) for e in stream]
    assert kinds[0] is Start and kinds[-1] is Done and set(kinds[1:-1]) == {Delta}
    text = "".join(e.text for e in stream if isinstance(e, Delta))
    assert text == "Echo from gpt-4o-mini: hello there"
    done = stream[-1]
    assert done.model == openai.model.ref and done.finish_reason == "stop"
    assert done.usage["completion_tokens"] == 5 and done.latency_ms >= 0


def test_a_retryable_failure_is_retried_on_the_same_model(openai: Cloud, alice: object) -> None:
    openai.fake.fail("500", times=1)
    result = collect(alice, openai.model)
    assert result.ok and result.model == openai.model.ref and result.fallbacks == []
    assert openai.fake.chat_count == 2
    openai.model.refresh_from_db()
    assert openai.model.failure_count == 0  # the success wiped the count


def test_retry_honours_retry_after_but_not_a_long_one(openai: Cloud, alice: object, settings) -> None:
    settings.COMPLETION_MAX_RETRY_WAIT = 5
    openai.fake.fail("429", times=1, retry_after="60")
    result = collect(alice, openai.model, fallback=False)
    assert not result.ok and result.error["code"] == "rate_limited" and openai.fake.chat_count == 1


def test_no_retries_when_configured_so(openai: Cloud, alice: object, settings) -> None:
    settings.COMPLETION_RETRIES = 0
    openai.fake.fail("503", times=1)
    assert not collect(alice, openai.model, fallback=False).ok and openai.fake.chat_count == 1


def test_a_model_in_cooldown_is_skipped_without_a_call(
    openai: Cloud, alice: object, discovered: dict[str, AIModel]
) -> None:
    openai.fake.fail("404", times=1)
    first = collect(alice, openai.model)
    assert first.ok and first.model == discovered[QWEN].ref
    openai.fake.reset_log()
    second = collect(alice, openai.model)
    assert second.ok and second.model == discovered[QWEN].ref
    assert openai.fake.chat_count == 0
    assert "cooling" in second.fallbacks[0]["reason"] or second.fallbacks[0]["reason"]


def test_a_refused_key_is_marked_and_reported(openai: Cloud, alice: object) -> None:
    openai.fake.keys.clear()
    result = collect(alice, openai.model, fallback=False)
    assert result.error["code"] == "auth"
    key = ApiKey.objects.get(owner=alice)
    assert key.failing_reason and "test-key" not in key.failing_reason
    openai.model.refresh_from_db()
    status = model_status(model=openai.model, user=alice)
    assert status.status in (Status.FAILED, Status.NO_KEY)


def test_cloud_model_status_follows_the_users_keys(openai: Cloud, alice: object, charlie: object) -> None:
    assert model_status(model=openai.model, user=alice).status == Status.AVAILABLE
    assert model_status(model=openai.model, user=alice).icon == "🌐"
    charlies = model_status(model=openai.model, user=charlie)
    assert charlies.status == Status.NO_KEY and "No API key" in charlies.reason
    result = collect(charlie, openai.model, fallback=False)
    assert result.error["code"] == "no_key" and openai.fake.chat_count == 0


def test_shared_key_serves_users_without_their_own(openai: Cloud, charlie: object, bob: object) -> None:
    from apikeys.services import apikey_create

    apikey_create(user=bob, provider="openai", key="test-key", shared=True)
    assert collect(charlie, openai.model).ok


def test_a_not_loaded_local_model_is_loaded_first(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio, alice: object
) -> None:
    stream = events(alice, discovered[GEMMA])
    kinds = [type(e) for e in stream]
    assert kinds[:2] == [Loading, Start] and kinds[-1] is Done
    assert lmstudio.models[GEMMA].instances == [GEMMA]
    assert "".join(e.text for e in stream if isinstance(e, Delta)) == "Echo: hello there"


def test_a_failed_load_falls_back(discovered: dict[str, AIModel], lmstudio: FakeLMStudio, alice: object) -> None:
    lmstudio.fail_load(GEMMA, message="Failed to load model: insufficient memory")
    result = collect(alice, discovered[GEMMA])
    assert result.ok and result.model == discovered[QWEN].ref
    assert "insufficient memory" in result.fallbacks[0]["reason"]


def test_local_prompt_stays_local_when_cloud_fallback_is_forbidden(
    openai: Cloud, discovered: dict[str, AIModel], lmstudio: FakeLMStudio, alice: object, settings
) -> None:
    lmstudio.fail_load(GEMMA)
    AIModel.objects.filter(model_id=QWEN).update(active=False)
    AIModel.objects.filter(model_id="meta-llama-3.1-8b-instruct").update(active=False)
    assert collect(alice, discovered[GEMMA]).model == openai.model.ref  # allowed by default
    AIModel.objects.filter(model_id=GEMMA).update(cooldown_until=None, load_state="idle")
    settings.ALLOW_LOCAL_TO_CLOUD_FALLBACK = False
    result = collect(alice, AIModel.objects.select_related("provider").get(model_id=GEMMA))
    assert not result.ok and "no other model" in result.error["message"] and openai.fake.chat_count == 1


def test_fallback_chain_never_repeats_a_model(openai: Cloud, alice: object) -> None:
    with ExitStack() as stack:
        anthropic = start_cloud(stack, "anthropic", alice)
        openai.fake.fail("503")
        anthropic.fake.fail("503")
        result = collect(alice, openai.model)
    assert not result.ok and [f["to"] for f in result.fallbacks] == [anthropic.model.ref]
    assert "no other model" in result.error["message"]


def test_caller_stopping_closes_the_upstream_request(openai: Cloud, alice: object) -> None:
    openai.fake.chunk_delay = 0.05

    async def first_delta_then_stop() -> str:
        stream = completion_stream(user=alice, model=openai.model, messages=HELLO)
        async for event in stream:
            if isinstance(event, Delta):
                await stream.aclose()
                return event.text
        return ""

    assert async_to_sync(first_delta_then_stop)() == "Echo"


def test_loading_is_announced_before_the_load_finishes(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio, alice: object
) -> None:
    import asyncio

    lmstudio.hold_loads()

    async def run() -> list:
        stream = completion_stream(user=alice, model=discovered[GEMMA], messages=HELLO)
        first = await asyncio.wait_for(anext(stream), timeout=5)  # must not wait for the held load
        assert isinstance(first, Loading) and not lmstudio.models[GEMMA].instances
        lmstudio.release_loads()
        return [first] + [event async for event in stream]

    kinds = [type(e) for e in async_to_sync(run)()]
    assert kinds[0] is Loading and kinds[-1] is Done
