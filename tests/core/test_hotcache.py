"""The in-process caches (orchestrator/hotcache.py): every write to a table they read from empties them, in
this process and (through the generation) in every other; bookkeeping writes do not; each entry is the
caller's own. A table watched for its rows only (budget counters) empties them on insert and delete."""

import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import api_token_authenticate, api_token_create, api_token_revoke
from apikeys.services import apikey_create, apikey_update
from models_mgmt.models import AIModel
from models_mgmt.services import ModelNotFound, model_get, model_set_active
from orchestrator import hotcache
from providers.models import ApiKey
from providers.services import apikey_for_call, apikey_plaintext
from tests.conftest import cloud_provider
from usage.models import BudgetCounter

pytestmark = pytest.mark.django_db


def test_a_generation_file_tells_one_process_of_another_s_bump(tmp_path: Path) -> None:
    # Two objects on one file stand for two processes: each sees the other's bumps, and every bump differs.
    mine, theirs = hotcache._FileGeneration(tmp_path / "g"), hotcache._FileGeneration(tmp_path / "g")
    seen = {mine.marker()}
    for _ in range(5):
        theirs.bump()
        assert mine.marker() not in seen
        seen.add(mine.marker())


def test_no_bump_is_lost_when_processes_bump_at_once(tmp_path: Path) -> None:
    def bumps() -> None:
        generation = hotcache._FileGeneration(tmp_path / "g")
        for _ in range(200):
            generation.bump()

    threads = [threading.Thread(target=bumps) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (tmp_path / "g").stat().st_size == 800
    assert (tmp_path / "g").stat().st_blocks == 0  # sparse: nothing written


@pytest.mark.skipif(not settings.REDIS_URL, reason="REDIS_URL is not set (the services lane sets it)")
def test_the_generation_is_kept_in_redis_when_it_is_configured() -> None:
    hotcache.reset_for_tests()
    backend = hotcache._backend()
    assert isinstance(backend, hotcache._RedisGeneration)
    before = backend.marker()
    hotcache._RedisGeneration(settings.REDIS_URL).bump()  # another process's bump
    assert backend.marker() != before


def test_a_load_is_cached_until_a_watched_table_is_written(alice: User) -> None:
    loads = []
    hotcache.get("t", 1, lambda: loads.append(1) or "x")
    assert hotcache.get("t", 1, lambda: loads.append(1) or "y") == "x" and len(loads) == 1
    AIModel.objects.filter(pk=-1).update(active=False)  # a write, even one that changes no row
    assert hotcache.get("t", 1, lambda: "z") == "z"


def test_bookkeeping_writes_do_not_empty_the_caches(alice: User) -> None:
    token, _ = api_token_create(user=alice, name="t")
    hotcache.get("t", 1, lambda: "x")
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    User.objects.filter(pk=alice.pk).update(last_login=timezone.now())
    assert hotcache.get("t", 1, lambda: "y") == "x"
    User.objects.filter(pk=alice.pk).update(last_login=timezone.now(), is_active=True)
    assert hotcache.get("t", 1, lambda: "y") == "y"


def test_a_table_watched_for_its_rows_empties_the_caches_on_insert_and_delete_only(alice: User) -> None:
    # usage.apps registers the budget counters so: an UPDATE of one (every limited request) keeps the caches.
    hotcache.get("t", 1, lambda: "x")
    BudgetCounter.objects.filter(user=alice).update(day_tokens=1)
    assert hotcache.get("t", 1, lambda: "y") == "x"
    counter = BudgetCounter.objects.create(user=alice)
    assert hotcache.get("t", 1, lambda: "y") == "y"
    counter.delete()
    assert hotcache.get("t", 1, lambda: "z") == "z"


def test_writes_are_told_from_reads_by_their_first_word() -> None:
    watched = AIModel._meta.db_table
    assert hotcache._touches_watched(f'  \n  UPDATE "{watched}" SET "active" = %s WHERE "id" = %s')
    assert hotcache._touches_watched(f'DELETE FROM "{watched}" WHERE "id" = %s')
    assert not hotcache._touches_watched(f'SELECT "{watched}"."id" FROM "{watched}"')
    assert not hotcache._touches_watched('SAVEPOINT "s1"')
    assert not hotcache._touches_watched("")


def test_cached_only_refuses_to_load() -> None:
    with hotcache.cached_only(), pytest.raises(hotcache.Miss):
        hotcache.get("t", 2, lambda: "x")


def test_a_revoked_token_is_refused_at_once(alice: User) -> None:
    token, raw = api_token_create(user=alice, name="t")
    assert api_token_authenticate(raw=raw) == alice
    assert api_token_authenticate(raw=raw) == alice  # from the cache now
    api_token_revoke(user=alice, token_id=token.pk)
    assert api_token_authenticate(raw=raw) is None


def test_a_switched_off_user_s_token_is_refused_at_once(alice: User) -> None:
    _, raw = api_token_create(user=alice, name="t")
    assert api_token_authenticate(raw=raw) == alice
    alice.is_active = False
    alice.save()
    assert api_token_authenticate(raw=raw) is None


def test_a_changed_key_is_used_at_once(alice: User) -> None:
    provider = cloud_provider("openai")
    key = apikey_create(user=alice, provider="openai", key="sk-old-key-1234")
    assert apikey_plaintext(apikey_for_call(user=alice, provider=provider)) == "sk-old-key-1234"
    apikey_update(user=alice, key_id=key.pk, key="sk-new-key-5678")
    assert apikey_plaintext(apikey_for_call(user=alice, provider=provider)) == "sk-new-key-5678"
    ApiKey.objects.filter(pk=key.pk).delete()
    assert apikey_for_call(user=alice, provider=provider) is None


def test_alice_s_key_never_serves_bob_nor_charlie(alice: User, bob: User, charlie: User) -> None:
    provider = cloud_provider("openai")
    apikey_create(user=alice, provider="openai", key="sk-alice-only-1234")
    assert apikey_for_call(user=alice, provider=provider) is not None
    assert apikey_for_call(user=bob, provider=provider) is None
    assert apikey_for_call(user=charlie, provider=provider) is None
    assert apikey_for_call(user=None, provider=provider) is None


def test_a_model_is_cached_per_viewer_and_switched_off_at_once(alice: User, charlie: User) -> None:
    provider = cloud_provider("openai")
    private = AIModel.objects.create(provider=provider, model_id="alice-tuned", owner=alice)
    assert model_get(ref="openai/alice-tuned", user=alice).pk == private.pk
    with pytest.raises(ModelNotFound):
        model_get(ref="openai/alice-tuned", user=charlie)
    model_set_active(model=private, active=False)
    assert model_get(ref="openai/alice-tuned", user=alice).active is False


def test_callers_get_copies_of_a_cached_model(alice: User) -> None:
    provider = cloud_provider("openai")
    AIModel.objects.create(provider=provider, model_id="m")
    first = model_get(ref="openai/m", user=alice)
    first.active = False  # changed, not saved
    assert model_get(ref="openai/m", user=alice).active is True
