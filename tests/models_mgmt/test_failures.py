"""Failure bookkeeping, cooldowns, reset, and the suggested alternative."""

from datetime import timedelta

import pytest
from django.utils import timezone

from models_mgmt.models import AIModel, LoadState
from models_mgmt.services import (
    Status,
    model_failures_reset,
    model_list_with_status,
    model_record_failure,
    model_record_success,
    model_status,
    model_suggest_alternative,
)
from tests.conftest import cloud_provider
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db

QWEN, LLAMA, GEMMA = "qwen/qwen2.5-7b-instruct", "meta-llama-3.1-8b-instruct", "google/gemma-3-4b"
EMBED = "text-embedding-nomic-embed-text-v1.5"


def test_retryable_failures_cool_down_after_the_allowed_number(discovered: dict[str, AIModel], settings) -> None:
    settings.MODEL_ALLOWED_FAILS = 3
    qwen = discovered[QWEN]
    for _ in range(2):
        model_record_failure(model=qwen, reason="HTTP 503", retryable=True)
    assert qwen.cooldown_until is None and model_status(model=qwen).status == Status.LOADED
    model_record_failure(model=qwen, reason="HTTP 503", retryable=True)
    assert qwen.failure_count == 3 and qwen.cooldown_until is not None
    status = model_status(model=qwen)
    assert status.status == Status.FAILED and status.reason == "HTTP 503"


def test_a_non_retryable_failure_cools_down_at_once(discovered: dict[str, AIModel]) -> None:
    qwen = discovered[QWEN]
    model_record_failure(model=qwen, reason="model not found", retryable=False)
    assert model_status(model=qwen).status == Status.FAILED


def test_cooldown_ends(discovered: dict[str, AIModel]) -> None:
    qwen = discovered[QWEN]
    model_record_failure(model=qwen, reason="x", retryable=False)
    AIModel.objects.filter(pk=qwen.pk).update(cooldown_until=timezone.now() - timedelta(seconds=1))
    qwen.refresh_from_db()
    assert model_status(model=qwen).status == Status.LOADED


def test_success_clears_the_count(discovered: dict[str, AIModel]) -> None:
    qwen = discovered[QWEN]
    model_record_failure(model=qwen, reason="x", retryable=True)
    model_record_success(model=qwen)
    qwen.refresh_from_db()
    assert qwen.failure_count == 0 and qwen.last_error == ""


def test_reset_forgets_failures_cooldowns_and_failed_loads(discovered: dict[str, AIModel]) -> None:
    model_record_failure(model=discovered[QWEN], reason="x", retryable=False)
    AIModel.objects.filter(model_id=GEMMA).update(load_state=LoadState.FAILED, load_error="oom")
    assert model_failures_reset() == 2
    statuses = {s.model.model_id: s.status for s in model_list_with_status()}
    assert statuses[QWEN] == Status.LOADED and statuses[GEMMA] == Status.NOT_LOADED


def test_alternative_prefers_a_loaded_local_model(discovered: dict[str, AIModel]) -> None:
    suggestion = model_suggest_alternative(model=discovered[LLAMA])
    assert suggestion is not None and suggestion.model.model_id == QWEN
    assert suggestion.tier == "loaded" and "in memory" in suggestion.reason


def test_alternative_never_suggests_itself_an_embedder_or_a_failing_model(
    discovered: dict[str, AIModel],
) -> None:
    model_record_failure(model=discovered[GEMMA], reason="x", retryable=False)
    suggestion = model_suggest_alternative(model=discovered[QWEN])
    assert suggestion is not None and suggestion.model.model_id == LLAMA and suggestion.tier == "local"
    model_record_failure(model=discovered[LLAMA], reason="x", retryable=False)
    assert model_suggest_alternative(model=discovered[QWEN]) is None  # only the embedder is left


def test_within_a_tier_priority_then_name(discovered: dict[str, AIModel]) -> None:
    suggestion = model_suggest_alternative(model=discovered[QWEN])
    assert suggestion is not None and suggestion.model.model_id == GEMMA  # "Gemma" < "Meta Llama"
    AIModel.objects.filter(model_id=LLAMA).update(priority=5)
    suggestion = model_suggest_alternative(model=discovered[QWEN])
    assert suggestion is not None and suggestion.model.model_id == LLAMA


def _cloud_available(model: AIModel) -> object:
    from models_mgmt.services import ModelStatus

    return ModelStatus(model=model, status=Status.AVAILABLE)


def test_cloud_tier_comes_first_by_default_and_can_be_forbidden(discovered: dict[str, AIModel], settings) -> None:
    openai = cloud_provider("openai")
    gpt = AIModel.objects.create(provider=openai, model_id="gpt-4o-mini")
    statuses = [s for s in model_list_with_status() if s.model.pk != gpt.pk] + [_cloud_available(gpt)]
    suggestion = model_suggest_alternative(model=discovered[LLAMA], statuses=statuses)
    assert suggestion is not None and suggestion.model == gpt and suggestion.tier == "external"
    settings.ALLOW_LOCAL_TO_CLOUD_FALLBACK = False
    suggestion = model_suggest_alternative(model=discovered[LLAMA], statuses=statuses)
    assert suggestion is not None and suggestion.model.model_id == QWEN


def test_fallback_order_is_configurable(discovered: dict[str, AIModel], settings) -> None:
    settings.FALLBACK_ORDER = ["local", "loaded"]
    suggestion = model_suggest_alternative(model=discovered[QWEN])
    assert suggestion is not None and suggestion.tier == "local"


def test_no_alternative_when_the_server_is_down(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.set_down(True)
    model_list_with_status(refresh=True)
    assert model_suggest_alternative(model=discovered[QWEN]) is None
