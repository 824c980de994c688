"""Load, unload and wait-for-load (tasks run in-line here; test_worker.py uses a real worker)."""

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from models_mgmt.models import AIModel, LoadState
from models_mgmt.services import (
    ModelConflict,
    ModelNotLocal,
    RuntimeUnavailable,
    Status,
    model_list_with_status,
    model_load_start,
    model_status,
    model_unload,
    model_wait_for_load,
)
from tests.conftest import cloud_provider, point_provider_at
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db

QWEN, GEMMA = "qwen/qwen2.5-7b-instruct", "google/gemma-3-4b"


def test_load_records_loaded(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    gemma = discovered[GEMMA]
    assert model_load_start(model=gemma) == Status.LOADING
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.IDLE and gemma.state_changed_at is not None
    assert lmstudio.models[GEMMA].instances == [GEMMA]
    assert model_status(model=gemma).status == Status.LOADED


def test_load_of_a_loaded_model_does_nothing(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.reset_log()
    assert model_load_start(model=discovered[QWEN]) == Status.LOADED
    assert lmstudio.count("POST", "/api/v1/models/load") == 0


def test_second_request_while_a_load_runs_starts_no_second_load(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    gemma = discovered[GEMMA]
    AIModel.objects.filter(pk=gemma.pk).update(load_state=LoadState.LOADING, load_started_at=timezone.now())
    assert model_load_start(model=gemma) == Status.LOADING
    assert lmstudio.loads_started == 0


def test_failed_load_marks_the_model_failed_with_the_reason(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    lmstudio.fail_load(GEMMA, message="Failed to load model: insufficient memory", status=500)
    gemma = discovered[GEMMA]
    model_load_start(model=gemma)
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.FAILED
    assert "insufficient memory" in gemma.load_error
    assert gemma.cooldown_until is not None  # a failed load is not retried by the fallback either
    status = model_status(model=gemma)
    assert status.status == Status.FAILED and "insufficient memory" in status.reason


def test_load_again_after_a_failure(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.fail_load(GEMMA, times=1)
    gemma = discovered[GEMMA]
    model_load_start(model=gemma)
    gemma.refresh_from_db()
    assert model_status(model=gemma).status == Status.FAILED
    model_load_start(model=gemma)
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.IDLE and gemma.cooldown_until is None
    assert model_status(model=gemma).status == Status.LOADED


def test_cloud_model_cannot_be_loaded(db: None) -> None:
    openai = cloud_provider("openai")
    with pytest.raises(ModelNotLocal):
        model_load_start(model=AIModel.objects.create(provider=openai, model_id="gpt-4o-mini"))


def test_inactive_model_cannot_be_loaded(discovered: dict[str, AIModel]) -> None:
    gemma = discovered[GEMMA]
    gemma.active = False
    with pytest.raises(ModelConflict):
        model_load_start(model=gemma)


def test_load_when_lm_studio_is_known_to_be_down(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.set_down(True)
    model_list_with_status(refresh=True)
    with pytest.raises(RuntimeUnavailable) as caught:
        model_load_start(model=discovered[GEMMA])
    assert "unreachable" in caught.value.message


def test_lm_studio_going_down_during_a_load(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.set_down(True)  # the cached listing still says it is up
    gemma = discovered[GEMMA]
    model_load_start(model=gemma)
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.FAILED and "unreachable" in gemma.load_error
    # Not the model's fault: no cooldown, so it is tried again when the server is back.
    assert gemma.cooldown_until is None and gemma.failure_count == 1


def test_load_through_v0_by_a_chat_request(db: None, lmstudio_v0: FakeLMStudio) -> None:
    point_provider_at(lmstudio_v0)
    model_list_with_status()
    gemma = AIModel.objects.select_related("provider").get(model_id=GEMMA)
    model_load_start(model=gemma)
    assert model_status(model=gemma).status == Status.LOADED


def test_unload_removes_every_instance(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.models[QWEN].instances.append(f"{QWEN}:2")
    model_unload(model=discovered[QWEN])
    assert lmstudio.models[QWEN].instances == []
    assert lmstudio.count("POST", "/api/v1/models/unload") == 2
    assert model_status(model=discovered[QWEN]).status == Status.NOT_LOADED


def test_unload_of_a_model_that_is_not_loaded_is_a_no_op(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    model_unload(model=discovered[GEMMA])
    assert lmstudio.count("POST", "/api/v1/models/unload") == 0


def test_unload_on_v0_says_it_cannot(db: None, lmstudio_v0: FakeLMStudio) -> None:
    point_provider_at(lmstudio_v0)
    model_list_with_status()
    qwen = AIModel.objects.select_related("provider").get(model_id=QWEN)
    with pytest.raises(ModelConflict) as caught:
        model_unload(model=qwen)
    assert "v0" in caught.value.message


def test_unload_when_down(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.set_down(True)
    with pytest.raises(RuntimeUnavailable):
        model_unload(model=discovered[QWEN])


def test_wait_returns_at_once_when_loaded(discovered: dict[str, AIModel]) -> None:
    status = async_to_sync(model_wait_for_load)(model_id=discovered[QWEN].pk, timeout=5)
    assert status.status == Status.LOADED


def test_wait_gives_up_after_the_timeout(discovered: dict[str, AIModel]) -> None:
    gemma = discovered[GEMMA]
    AIModel.objects.filter(pk=gemma.pk).update(load_state=LoadState.LOADING, load_started_at=timezone.now())
    status = async_to_sync(model_wait_for_load)(model_id=gemma.pk, timeout=0.3, poll_interval=0.05)
    assert status.status == Status.LOADING
