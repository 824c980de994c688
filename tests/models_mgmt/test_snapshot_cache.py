"""A process keeps its copy of a server's snapshot only while the shared cache holds that very snapshot: a
refresh or a forget in any other process is seen at the next read. Another process is played by putting
back, after the shared cache changed, the copy this process held before."""

import pytest
from django.core.cache import cache

from models_mgmt import services
from models_mgmt.models import AIModel
from models_mgmt.services import Status, model_list_with_status, runtime_snapshot, runtime_snapshot_forget
from providers.models import Provider
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db
GEMMA = "google/gemma-3-4b"


def test_a_cached_read_hands_out_the_copy_at_hand(provider: Provider, lmstudio: FakeLMStudio) -> None:
    first = runtime_snapshot(provider=provider)
    lmstudio.reset_log()
    assert runtime_snapshot(provider=provider) is first
    services._SNAPSHOT_COPIES.clear()  # a process that has none yet reads the shared cache
    again = runtime_snapshot(provider=provider)
    assert again is not first and again == first
    assert lmstudio.count() == 0


def test_a_refresh_elsewhere_replaces_the_copy(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    provider = discovered[GEMMA].provider
    held = runtime_snapshot(provider=provider)
    lmstudio.models[GEMMA].instances.append(GEMMA)
    fresh = runtime_snapshot(provider=provider, refresh=True)  # the other process's refresh
    services._SNAPSHOT_COPIES[services._snapshot_cache_key(provider)] = held  # this process's old copy
    lmstudio.reset_log()
    seen = runtime_snapshot(provider=provider)
    assert seen.fetched_at == fresh.fetched_at and seen.models[GEMMA].loaded
    assert {s.model.model_id: s.status for s in model_list_with_status()}[GEMMA] == Status.LOADED
    assert lmstudio.count() == 0


def test_a_forget_elsewhere_drops_the_copy(provider: Provider, lmstudio: FakeLMStudio) -> None:
    held = runtime_snapshot(provider=provider)
    runtime_snapshot_forget(provider=provider)  # e.g. an unload in a worker
    services._SNAPSHOT_COPIES[services._snapshot_cache_key(provider)] = held
    lmstudio.reset_log()
    assert runtime_snapshot(provider=provider) is not held
    assert lmstudio.count() == 1


def test_an_expired_or_cleared_cache_asks_the_server(provider: Provider, lmstudio: FakeLMStudio) -> None:
    held = runtime_snapshot(provider=provider)
    cache.clear()
    lmstudio.reset_log()
    assert runtime_snapshot(provider=provider) is not held
    assert lmstudio.count() == 1
