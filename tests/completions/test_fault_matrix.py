"""Every fault shape × every adapter: a fallback answer or a clear error event, the partial text of a
broken stream kept, and no wait beyond the configured timeouts."""

import time

import pytest
from asgiref.sync import async_to_sync

from completions.services import completion_collect
from models_mgmt.models import AIModel
from orchestrator.failures import FailureCode
from providers.adapters import ChatParams, ProviderError
from providers.registry import adapter_for
from tests.completions.conftest import KEY, Cloud

# Faults that strike before any text: the service falls back to another model.
BEFORE_TEXT = ["refuse", "timeout", "401", "404", "429", "quota", "500", "503", "529", "context"]
# Faults that strike after some text: the text stays, the stream ends with an error.
AFTER_TEXT = ["cut", "stall", "error_event", "malformed"]

# What the non-streaming call reports for each fault (some providers name the same thing differently).
EXPECTED_CODES = {
    "refuse": {FailureCode.CONNECT},
    "timeout": {FailureCode.TIMEOUT},
    "401": {FailureCode.AUTH},
    "404": {FailureCode.NOT_FOUND},
    "429": {FailureCode.RATE_LIMITED},
    "quota": {FailureCode.QUOTA},
    "500": {FailureCode.SERVER},
    "503": {FailureCode.SERVER, FailureCode.OVERLOADED},
    "529": {FailureCode.SERVER, FailureCode.OVERLOADED},
    "context": {FailureCode.CONTEXT},
    "malformed": {FailureCode.BAD_RESPONSE},
    "cut": {FailureCode.STREAM_CUT, FailureCode.CONNECT},
    "stall": {FailureCode.STALLED, FailureCode.TIMEOUT},
    "error_event": {FailureCode.SERVER, FailureCode.OVERLOADED},
}
RETRYABLE = {"refuse", "timeout", "429", "500", "503", "529", "malformed", "cut", "stall", "error_event"}
# The slowest honest case: a timeout, its retry, the backoff and a fallback call, at 1 s / 0.5 s settings.
TIME_BOUND = 6.0

pytestmark = pytest.mark.usefixtures("fast_timeouts")


@pytest.fixture
def backup(discovered: dict[str, AIModel]) -> AIModel:
    """A loaded LM Studio model: the alternative the service should fall back to."""
    return discovered["qwen/qwen2.5-7b-instruct"]


def ask(cloud: Cloud, alice: object, **kwargs: object):  # noqa: ANN201
    messages = [{"role": "user", "content": "hello there"}]
    return async_to_sync(completion_collect)(user=alice, model=cloud.model, messages=messages, **kwargs)


@pytest.mark.parametrize("fault", BEFORE_TEXT)
def test_fault_before_text_falls_back(cloud: Cloud, backup: AIModel, alice: object, fault: str) -> None:
    cloud.fake.fail(fault, retry_after="0")
    started = time.monotonic()
    result = ask(cloud, alice)
    elapsed = time.monotonic() - started
    assert result.ok, result.error
    assert result.model == backup.ref and result.text.startswith("Echo")
    [fallback] = result.fallbacks
    assert fallback["from"] == cloud.model.ref and fallback["to"] == backup.ref and fallback["reason"]
    assert elapsed < TIME_BOUND
    # Retrying only where it can help: a bad key or unknown model is asked once.
    assert cloud.fake.chat_count == (2 if fault in RETRYABLE else 1)


@pytest.mark.parametrize("fault", AFTER_TEXT)
def test_fault_after_text_keeps_the_partial_answer(cloud: Cloud, backup: AIModel, alice: object, fault: str) -> None:
    cloud.fake.fail(fault)
    started = time.monotonic()
    result = ask(cloud, alice)
    assert time.monotonic() - started < TIME_BOUND
    assert not result.ok and result.error["partial"] is True
    assert result.text.startswith("Echo from")  # the primary's words, as far as they came
    assert result.fallbacks == [] and cloud.fake.chat_count == 1
    assert result.error["code"] in EXPECTED_CODES[fault] and result.error["message"]


@pytest.mark.parametrize("fault", BEFORE_TEXT)
def test_fault_without_fallback_is_a_clear_error(cloud: Cloud, alice: object, fault: str) -> None:
    cloud.fake.fail(fault, retry_after="0")
    result = ask(cloud, alice, fallback=False)
    assert not result.ok and result.text == ""
    assert result.error["code"] in EXPECTED_CODES[fault], result.error
    assert cloud.name.lower() in result.error["message"].lower() or result.error["message"]
    assert KEY not in result.error["message"]


@pytest.mark.parametrize("fault", BEFORE_TEXT + AFTER_TEXT)
def test_non_streaming_adapter_call(cloud: Cloud, fault: str) -> None:
    cloud.fake.fail(fault, retry_after="0")
    adapter = adapter_for(cloud.model.provider, KEY)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        async_to_sync(adapter.complete)(cloud.model.model_id, [{"role": "user", "content": "hi"}], ChatParams())
    assert time.monotonic() - started < 3.0
    assert caught.value.code in EXPECTED_CODES[fault], caught.value.message
    assert caught.value.retryable == (fault in RETRYABLE)
