"""Live status: discovery, one request per refresh, the cache and every state a model can be in."""

from datetime import timedelta

import pytest
from django.utils import timezone

from models_mgmt.models import AIModel, LoadState, ModelSource
from models_mgmt.services import Status, model_list_with_status, model_set_active, model_status, models_sync
from providers.models import Provider
from tests.conftest import cloud_provider
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db

QWEN, LLAMA, GEMMA = "qwen/qwen2.5-7b-instruct", "meta-llama-3.1-8b-instruct", "google/gemma-3-4b"


def by_key(statuses: list) -> dict:
    return {s.model.model_id: s for s in statuses}


def test_first_listing_discovers_every_downloaded_model(provider: Provider, lmstudio: FakeLMStudio) -> None:
    statuses = by_key(model_list_with_status())
    assert set(statuses) == set(lmstudio.models)
    assert statuses[QWEN].status == Status.LOADED and statuses[QWEN].icon == "✓"
    assert statuses[LLAMA].status == Status.NOT_LOADED and statuses[LLAMA].icon == "○"
    stored = AIModel.objects.get(model_id=LLAMA)
    assert stored.source == ModelSource.DISCOVERED
    assert stored.context_length == 131072 and stored.display_name == "Meta Llama 3.1 8B Instruct"
    assert stored.ref == f"lmstudio/{LLAMA}"


def test_one_request_per_refresh_whatever_the_number_of_models(provider: Provider, lmstudio: FakeLMStudio) -> None:
    lmstudio.make_models(200)
    lmstudio.reset_log()
    assert len(model_list_with_status(refresh=True)) == 204
    assert lmstudio.count() == 1
    assert len(model_list_with_status(refresh=True)) == 204
    assert lmstudio.count() == 2


def test_listing_is_cached_until_refresh(provider: Provider, lmstudio: FakeLMStudio) -> None:
    model_list_with_status()
    lmstudio.reset_log()
    model_list_with_status()
    model_list_with_status()
    assert lmstudio.count() == 0
    model_list_with_status(refresh=True)
    assert lmstudio.count() == 1


def test_cache_expires_after_the_ttl(provider: Provider, lmstudio: FakeLMStudio, settings, monkeypatch) -> None:
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if not isinstance(caches["default"], LocMemCache):
        pytest.skip("the clock is moved for the local-memory cache only")
    settings.MODEL_STATUS_TTL = 10
    model_list_with_status()
    lmstudio.reset_log()
    import django.core.cache.backends.locmem as locmem

    real_time = locmem.time.time
    monkeypatch.setattr(locmem.time, "time", lambda: real_time() + 9)
    model_list_with_status()
    assert lmstudio.count() == 0
    monkeypatch.setattr(locmem.time, "time", lambda: real_time() + 11)
    model_list_with_status()
    assert lmstudio.count() == 1


def test_a_change_made_by_another_process_makes_the_cached_snapshot_stale(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    # A worker loaded gemma and stamped the row; this process's cached snapshot predates that.
    lmstudio.models[GEMMA].instances.append(GEMMA)
    AIModel.objects.filter(model_id=GEMMA).update(state_changed_at=timezone.now())
    lmstudio.reset_log()
    assert by_key(model_list_with_status())[GEMMA].status == Status.LOADED
    assert lmstudio.count() == 1


def test_unreachable_server_marks_its_models_and_the_page_still_works(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    lmstudio.set_down(True)
    statuses = model_list_with_status(refresh=True)
    assert {s.status for s in statuses} == {Status.UNREACHABLE}
    assert all("unreachable" in s.reason for s in statuses)
    assert statuses[0].icon == "❌"


def test_server_coming_back_is_seen_on_refresh(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.set_down(True)
    model_list_with_status(refresh=True)
    lmstudio.set_down(False)
    assert by_key(model_list_with_status(refresh=True))[QWEN].status == Status.LOADED


def test_inactive_and_disabled_provider(discovered: dict[str, AIModel], provider: Provider) -> None:
    model_set_active(model=discovered[LLAMA], active=False)
    assert by_key(model_list_with_status())[LLAMA].status == Status.INACTIVE
    Provider.objects.filter(pk=provider.pk).update(enabled=False)
    statuses = by_key(model_list_with_status())
    assert statuses[QWEN].status == Status.INACTIVE and "disabled" in statuses[QWEN].reason


def test_loading_state_and_a_lost_load(discovered: dict[str, AIModel], settings) -> None:
    now = timezone.now()
    AIModel.objects.filter(model_id=GEMMA).update(load_state=LoadState.LOADING, load_started_at=now)
    assert by_key(model_list_with_status())[GEMMA].status == Status.LOADING
    long_ago = now - timedelta(seconds=settings.MODEL_LOAD_STALE_SECONDS + 1)
    AIModel.objects.filter(model_id=GEMMA).update(load_started_at=long_ago)
    lost = by_key(model_list_with_status())[GEMMA]
    assert lost.status == Status.FAILED and lost.reason == "the load was interrupted (the worker stopped)"


def test_failed_load_shows_the_reason_until_loaded_elsewhere(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    AIModel.objects.filter(model_id=GEMMA).update(load_state=LoadState.FAILED, load_error="insufficient memory")
    failed = by_key(model_list_with_status())[GEMMA]
    assert failed.status == Status.FAILED and failed.reason == "insufficient memory"
    lmstudio.models[GEMMA].instances.append(GEMMA)  # someone loaded it in LM Studio itself
    assert by_key(model_list_with_status(refresh=True))[GEMMA].status == Status.LOADED


def test_model_gone_from_the_server(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.remove_model(LLAMA)
    gone = by_key(model_list_with_status(refresh=True))[LLAMA]
    assert gone.status == Status.FAILED and "no longer lists" in gone.reason


def test_cloud_model_without_a_key(db: None) -> None:
    openai = cloud_provider("openai")
    model = AIModel.objects.create(provider=openai, model_id="gpt-4o-mini")
    status = model_status(model=model)
    assert status.status == Status.NO_KEY and "API key" in status.reason


def test_sync_reports_new_updated_and_missing(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.add_model("mistral-7b-instruct-v0.3", max_context_length=32768)
    lmstudio.remove_model(GEMMA)
    lmstudio.models[LLAMA].max_context_length = 65536
    [result] = [r for r in models_sync() if r.provider == "lmstudio"]
    assert result.ok and result.added == 1 and result.updated == 1 and result.missing == [GEMMA]
    assert AIModel.objects.get(model_id=LLAMA).context_length == 65536


def test_sync_of_an_unreachable_server(provider: Provider, lmstudio: FakeLMStudio) -> None:
    lmstudio.set_down(True)
    [result] = [r for r in models_sync() if r.provider == "lmstudio"]
    assert not result.ok and "unreachable" in result.error


def test_manual_display_name_is_kept(discovered: dict[str, AIModel]) -> None:
    AIModel.objects.filter(model_id=LLAMA).update(source=ModelSource.MANUAL, display_name="My Llama")
    models_sync()
    assert AIModel.objects.get(model_id=LLAMA).display_name == "My Llama"
