"""GET /api/models keeps each user's body between requests (models_mgmt/listing.py). A kept body answers only
the user it was made for, and only while its rows, its snapshots and the clock say what they said: switching a
model off, changing a key, another process's write, a refreshed snapshot and a cooldown running out are all
seen by the next listing."""

import gzip
import json
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apikeys.services import apikey_create, apikey_delete
from models_mgmt import listing
from models_mgmt.models import AIModel, LoadState
from models_mgmt.services import Status, model_list_with_status, runtime_snapshot, runtime_snapshot_forget
from orchestrator import hotcache
from providers.models import Provider
from providers.services import apikey_mark_failing
from tests.conftest import cloud_provider, token_client
from tests.fakes.lmstudio import FakeLMStudio
from tests.models_mgmt.test_listing import schema_body

pytestmark = pytest.mark.django_db
QWEN, GEMMA = "qwen/qwen2.5-7b-instruct", "google/gemma-3-4b"


def listed(client: Client) -> dict[str, dict]:
    response = client.get("/api/models")
    assert response.status_code == 200
    return {m["model_id"]: m for m in response.json()}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], datetime]:
    """Stops the clock; calling the fixture moves it on (no sleeping)."""
    now = [timezone.now()]
    monkeypatch.setattr(timezone, "now", lambda: now[0])

    def advance(by: timedelta) -> datetime:
        now[0] += by
        return now[0]

    return advance


def test_a_kept_body_is_the_body_made_afresh(
    discovered: dict[str, AIModel], alice: User, django_assert_num_queries
) -> None:  # noqa: ANN001
    client = token_client(alice)
    first = client.get("/api/models").json()
    with django_assert_num_queries(0):
        kept = client.get("/api/models").json()
    assert kept == first == schema_body(model_list_with_status(user=alice))


def test_switching_a_model_off_is_seen_at_once(discovered: dict[str, AIModel], alice: User) -> None:
    client = token_client(alice)
    assert listed(client)[QWEN]["status"] == Status.LOADED
    AIModel.objects.filter(pk=discovered[QWEN].pk).update(active=False)
    assert listed(client)[QWEN]["status"] == Status.INACTIVE
    Provider.objects.filter(pk=discovered[QWEN].provider_id).update(enabled=False)
    assert listed(client)[GEMMA]["reason"] == "Provider lmstudio is disabled"


def test_a_key_added_refused_or_deleted_is_seen_at_once(alice: User) -> None:
    AIModel.objects.create(provider=cloud_provider("openai"), model_id="gpt-4o-mini")
    client = token_client(alice)
    assert listed(client)["gpt-4o-mini"]["status"] == Status.NO_KEY
    key = apikey_create(user=alice, provider="openai", key="sk-alice-key-1234")
    assert listed(client)["gpt-4o-mini"]["status"] == Status.AVAILABLE
    apikey_mark_failing(key_id=key.pk, reason="401 invalid key")
    refused = listed(client)["gpt-4o-mini"]
    assert refused["status"] == Status.NO_KEY and "401 invalid key" in refused["reason"]
    apikey_delete(user=alice, key_id=key.pk)
    assert listed(client)["gpt-4o-mini"]["reason"].startswith("No API key")


def test_another_processs_write_is_seen_through_the_shared_generation(
    discovered: dict[str, AIModel], alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = token_client(alice)
    assert listed(client)[QWEN]["status"] == Status.LOADED
    # A write this process does not notice, as if another process made it...
    with monkeypatch.context() as unwatched:
        unwatched.setattr(hotcache, "_WATCHED", frozenset())
        AIModel.objects.filter(pk=discovered[QWEN].pk).update(active=False)
    assert listed(client)[QWEN]["status"] == Status.LOADED  # (the body is kept: the test can tell)
    # ...and what that process's write did to the generation they share.
    hotcache._backend().bump()
    assert listed(client)[QWEN]["status"] == Status.INACTIVE


def test_a_cooldown_ending_with_the_clock_is_seen_with_no_write(alice: User, clock: Callable) -> None:
    apikey_create(user=alice, provider="openai", key="sk-alice-key-1234")
    ends = timezone.now() + timedelta(seconds=30)
    AIModel.objects.create(
        provider=cloud_provider("openai"), model_id="gpt-4o", failure_count=3, cooldown_until=ends,
        last_error_public="The provider is overloaded",
    )  # fmt: skip
    client = token_client(alice)
    assert listed(client)["gpt-4o"]["status"] == Status.FAILED
    generation = hotcache.generation()
    clock(timedelta(seconds=29.999))
    assert listed(client)["gpt-4o"]["status"] == Status.FAILED
    clock(timedelta(seconds=0.001))
    assert listed(client)["gpt-4o"]["status"] == Status.AVAILABLE
    assert hotcache.generation() == generation  # nothing was written: the clock alone changed the status


def test_a_held_load_counts_its_seconds_and_its_lease_runs_out(
    discovered: dict[str, AIModel],
    alice: User,
    clock: Callable,
    settings,  # noqa: ANN001
) -> None:
    settings.MODEL_LOAD_STALE_SECONDS = 5
    started = timezone.now() - timedelta(seconds=0.5)
    AIModel.objects.filter(pk=discovered[GEMMA].pk).update(
        load_state=LoadState.LOADING, load_started_at=started, load_task_id="task-1"
    )
    client = token_client(alice)
    assert listed(client)[GEMMA]["reason"] == "Load started 0 s ago"
    generation = hotcache.generation()
    clock(timedelta(seconds=0.4))
    assert listed(client)[GEMMA]["reason"] == "Load started 0 s ago"
    clock(timedelta(seconds=0.1))
    assert listed(client)[GEMMA]["reason"] == "Load started 1 s ago"
    assert hotcache.generation() == generation
    clock(timedelta(seconds=4))
    assert listed(client)[GEMMA]["status"] == Status.FAILED  # the lease ran out: the claim is ended


def test_a_snapshot_refreshed_elsewhere_or_gone_is_seen(
    discovered: dict[str, AIModel], provider: Provider, alice: User, lmstudio: FakeLMStudio
) -> None:
    client = token_client(alice)
    assert listed(client)[GEMMA]["status"] == Status.NOT_LOADED
    lmstudio.models[GEMMA].instances.append(GEMMA)
    runtime_snapshot(provider=provider, refresh=True)  # another request's refresh: no row changes
    assert listed(client)[GEMMA]["status"] == Status.LOADED
    lmstudio.models[GEMMA].instances.clear()
    lmstudio.reset_log()
    listed(client)
    assert lmstudio.count() == 0  # kept
    runtime_snapshot_forget(provider=provider)  # as the TTL running out drops it
    assert listed(client)[GEMMA]["status"] == Status.NOT_LOADED
    assert lmstudio.count() == 1


def test_refresh_still_asks_the_server_every_time(
    discovered: dict[str, AIModel], alice: User, lmstudio: FakeLMStudio
) -> None:
    client = token_client(alice)
    client.get("/api/models")
    lmstudio.reset_log()
    client.get("/api/models?refresh=1")
    client.get("/api/models?refresh=1")
    assert lmstudio.count() == 2
    client.get("/api/models")
    assert lmstudio.count() == 2


def test_each_user_gets_only_their_own_kept_body(alice: User, bob: User, charlie: User) -> None:
    openai = cloud_provider("openai")
    apikey_create(user=alice, provider="openai", key="sk-alice-key-1234")
    apikey_mark_failing(key_id=apikey_create(user=alice, provider="mistral", key="mistral-key-9876").pk, reason="401")
    AIModel.objects.create(provider=cloud_provider("mistral"), model_id="mistral-large")
    AIModel.objects.create(provider=openai, model_id="ft:alice-tuned", owner=alice)
    AIModel.objects.create(
        provider=openai, model_id="gpt-4o", cooldown_until=timezone.now() + timedelta(minutes=5),
        last_error="upstream said: overloaded (request id r-1)", last_error_public="The provider is overloaded",
    )  # fmt: skip
    clients = {user.username: token_client(user) for user in (alice, bob, charlie)}
    for _ in range(2):  # made, then kept: each time each user's own
        mine = listed(clients["alice"])
        assert mine["ft:alice-tuned"]["status"] == Status.AVAILABLE
        assert "9876" in mine["mistral-large"]["reason"]
        assert mine["gpt-4o"]["reason"] == "The provider is overloaded"
        staff = listed(clients["bob"])
        assert staff["gpt-4o"]["reason"] == "upstream said: overloaded (request id r-1)"
        raw = clients["charlie"].get("/api/models").content
        assert b"alice" not in raw and b"9876" not in raw and b"1234" not in raw and b"request id" not in raw
        theirs = listed(clients["charlie"])
        assert set(theirs) == {"mistral-large", "gpt-4o"}
        assert theirs["mistral-large"]["status"] == Status.NO_KEY
        assert theirs["mistral-large"]["reason"].startswith("No API key")


def test_only_the_last_few_users_bodies_are_kept(
    discovered: dict[str, AIModel], alice: User, charlie: User, monkeypatch: pytest.MonkeyPatch,
    django_assert_num_queries,  # noqa: ANN001
) -> None:  # fmt: skip
    monkeypatch.setattr(listing, "MAX_KEPT", 1)
    alices, charlies = token_client(alice), token_client(charlie)
    alices.get("/api/models")
    charlies.get("/api/models")
    charlies.get("/api/models")  # the tokens are in the in-process cache now
    with django_assert_num_queries(0):
        charlies.get("/api/models")
    with CaptureQueriesContext(connection) as made:  # alice's body made way for charlie's: made again
        alices.get("/api/models")
    assert any("models_mgmt_aimodel" in q["sql"] for q in made.captured_queries)


def test_a_kept_body_is_gzipped_once_for_every_request_that_accepts_it(
    discovered: dict[str, AIModel], alice: User
) -> None:
    client = token_client(alice)
    plain = client.get("/api/models")
    assert "Content-Encoding" not in plain and "Accept-Encoding" in plain["Vary"]
    first = client.get("/api/models", headers={"Accept-Encoding": "gzip"})
    again = client.get("/api/models", headers={"Accept-Encoding": "gzip"})
    for response in (first, again):
        assert response["Content-Encoding"] == "gzip" and "Accept-Encoding" in response["Vary"]
        assert response["Content-Length"] == str(len(response.content))
        assert gzip.decompress(response.content) == plain.content
    # The same bytes: compressed once (Django's own compression draws new random bytes each time).
    assert again.content == first.content
    AIModel.objects.filter(pk=discovered[QWEN].pk).update(active=False)
    changed = client.get("/api/models", headers={"Accept-Encoding": "gzip"})
    assert json.loads(gzip.decompress(changed.content)) == client.get("/api/models").json()
    assert changed.content != first.content
