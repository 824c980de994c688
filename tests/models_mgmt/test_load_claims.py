"""Load claims end: what the server reports wins over a claim, a claim has a lease, a task runs only for
its own claim and loads nothing twice, a starting worker ends what its earlier life left, staff cancel.
Tasks run in-line here; test_worker_crash.py kills real worker processes."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from models_mgmt import services
from models_mgmt.models import AIModel, LoadState
from models_mgmt.services import (
    LOAD_INTERRUPTED,
    Status,
    model_list_with_status,
    model_load_claims_recover,
    model_load_run,
    model_load_start,
    model_status,
)
from providers.kinds import ProviderKind
from providers.models import Provider
from providers.runtimes import RuntimeModel, Snapshot
from tests.conftest import cloud_provider
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db

QWEN, GEMMA = "qwen/qwen2.5-7b-instruct", "google/gemma-3-4b"
NODE = "celery@box"


def claim(model: AIModel, *, age: float = 0, task_id: str = "task-1", worker: str = "") -> AIModel:
    AIModel.objects.filter(pk=model.pk).update(
        load_state=LoadState.LOADING,
        load_started_at=timezone.now() - timedelta(seconds=age),
        load_task_id=task_id,
        load_worker=worker,
        load_error="",
    )
    model.refresh_from_db()
    return model


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]


def test_the_server_listing_a_model_loaded_wins_over_a_claim_and_releases_it(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    gemma = claim(discovered[GEMMA])
    lmstudio.models[GEMMA].instances.append(GEMMA)  # the load finished, the worker that ran it did not say so
    with CaptureQueriesContext(connection) as first:
        assert model_status(model=gemma, refresh=True).status == Status.LOADED
    assert len(writes(first)) == 1
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.IDLE and gemma.state_changed_at is not None
    # Released once: the next reads write nothing, and a Load answers "loaded" without loading.
    with CaptureQueriesContext(connection) as second:
        assert model_status(model=gemma).status == Status.LOADED
    assert writes(second) == []
    assert model_load_start(model=gemma) == Status.LOADED and lmstudio.loads_started == 0


def test_a_cached_answer_from_before_the_claim_does_not_release_it(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    """The cached list (taken before the claim) shows Qwen loaded; it was unloaded in LM Studio since and a
    Load claimed it: that old answer must not end the new load."""
    qwen = claim(discovered[QWEN])
    lmstudio.models[QWEN].instances.clear()
    assert model_status(model=qwen).status == Status.LOADING
    assert AIModel.objects.get(pk=qwen.pk).load_state == LoadState.LOADING
    lmstudio.models[QWEN].instances.append(QWEN)  # the load finished: a fresh answer releases the claim
    assert model_status(model=qwen, refresh=True).status == Status.LOADED
    assert AIModel.objects.get(pk=qwen.pk).load_state == LoadState.IDLE


def test_a_live_claim_reads_as_loading_without_writing(discovered: dict[str, AIModel], settings) -> None:  # noqa: ANN001
    gemma = claim(discovered[GEMMA], age=settings.MODEL_LOAD_STALE_SECONDS - 30)
    with CaptureQueriesContext(connection) as queries:
        status = model_status(model=gemma)
    assert status.status == Status.LOADING and status.reason.startswith("Load started")
    assert writes(queries) == []


def test_a_claim_past_its_lease_fails_with_the_reason_and_load_works_again(
    discovered: dict[str, AIModel],
    lmstudio: FakeLMStudio,
    settings,  # noqa: ANN001
) -> None:
    settings.MODEL_LOAD_STALE_SECONDS = 5
    gemma = claim(discovered[GEMMA], age=6)
    status = model_status(model=gemma)
    assert (status.status, status.reason) == (Status.FAILED, LOAD_INTERRUPTED)
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.FAILED and gemma.load_error == LOAD_INTERRUPTED
    assert gemma.cooldown_until is None  # a worker that stopped is not the model's failure

    assert model_load_start(model=gemma) == Status.LOADING  # a new claim, a new upstream load at once
    assert lmstudio.loads_started == 1
    assert model_status(model=gemma).status == Status.LOADED


def test_an_ended_claim_is_not_ended_again_by_a_late_reader(discovered: dict[str, AIModel], settings) -> None:  # noqa: ANN001
    """A reader holding an old copy of the row must not end the claim a new Load made meanwhile."""
    settings.MODEL_LOAD_STALE_SECONDS = 5
    old_copy = claim(discovered[GEMMA], age=6, task_id="old")
    AIModel.objects.filter(pk=old_copy.pk).update(load_started_at=timezone.now(), load_task_id="new")
    model_list_with_status(models=[old_copy])
    assert AIModel.objects.get(pk=old_copy.pk).load_state == LoadState.LOADING


def test_a_task_runs_only_for_its_own_claim(discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    gemma = claim(discovered[GEMMA], task_id="current")
    model_load_run(model_id=gemma.pk, task_id="a-message-delivered-again", worker=f"{NODE}#1")
    assert lmstudio.loads_started == 0
    assert AIModel.objects.get(pk=gemma.pk).load_worker == ""

    AIModel.objects.filter(pk=gemma.pk).update(load_state=LoadState.IDLE)  # cancelled while queued
    model_load_run(model_id=gemma.pk, task_id="current", worker=f"{NODE}#1")
    assert lmstudio.loads_started == 0


def test_a_task_run_again_on_a_model_already_loaded_does_not_load_twice(
    discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    gemma = claim(discovered[GEMMA], task_id="t")
    lmstudio.models[GEMMA].instances.append(GEMMA)
    model_load_run(model_id=gemma.pk, task_id="t", worker=f"{NODE}#2")
    assert lmstudio.loads_started == 0 and lmstudio.models[GEMMA].instances == [GEMMA]
    assert AIModel.objects.get(pk=gemma.pk).load_state == LoadState.IDLE


class LoadingUpstream:
    """A runtime (llama.cpp's router reports this) whose server is loading the model already."""

    def __init__(self, key: str, polls_until_loaded: int) -> None:
        self.key, self.left, self.loads = key, polls_until_loaded, 0

    def snapshot(self) -> Snapshot:
        done = self.left <= 0
        self.left -= 1
        model = RuntimeModel(self.key, self.key, "llm", (self.key,) if done else (), None, None, loading=not done)
        return Snapshot(ok=True, fetched_at=timezone.now().timestamp(), models={self.key: model})

    def load(self, key: str, *, timeout: float) -> None:
        self.loads += 1


def test_a_load_under_way_upstream_is_waited_for_not_started_again(
    discovered: dict[str, AIModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = LoadingUpstream(GEMMA, polls_until_loaded=2)
    monkeypatch.setattr(services, "runtime_for", lambda provider: runtime)
    monkeypatch.setattr(services, "UPSTREAM_LOAD_POLL_SECONDS", 0.01)
    gemma = claim(discovered[GEMMA], task_id="t")
    model_load_run(model_id=gemma.pk, task_id="t", worker=f"{NODE}#1")
    assert runtime.loads == 0 and runtime.left < 0
    assert AIModel.objects.get(pk=gemma.pk).load_state == LoadState.IDLE


def test_a_starting_worker_ends_the_claims_of_its_earlier_life_only(
    discovered: dict[str, AIModel],
    lmstudio: FakeLMStudio,
    settings,  # noqa: ANN001
) -> None:
    lmstudio.add_model("other/finished")
    lmstudio.add_model("other/lost")
    lmstudio.add_model("other/queued")
    lmstudio.add_model("other/elsewhere")
    model_list_with_status(refresh=True)
    rows = {m.model_id: m for m in AIModel.objects.filter(model_id__startswith="other/")}
    rows["other/stale-elsewhere"] = discovered[GEMMA]
    claim(rows["other/finished"], worker=f"{NODE}#old-life")
    claim(rows["other/lost"], worker=f"{NODE}#old-life")
    claim(rows["other/queued"])  # no worker took it yet: its message may still be in the queue
    claim(rows["other/elsewhere"], worker="celery@other-box#1")  # another live worker's load
    claim(discovered[GEMMA], worker="celery@other-box#1", age=settings.MODEL_LOAD_STALE_SECONDS + 1)
    lmstudio.models["other/finished"].instances.append("other/finished")

    assert model_load_claims_recover(worker=f"{NODE}#new-life") == 3
    states = {
        m.model_id: (m.load_state, m.load_error) for m in AIModel.objects.filter(pk__in=[r.pk for r in rows.values()])
    }
    assert states == {
        "other/finished": (LoadState.IDLE, ""),
        "other/lost": (LoadState.FAILED, LOAD_INTERRUPTED),
        "other/queued": (LoadState.LOADING, ""),
        "other/elsewhere": (LoadState.LOADING, ""),
        GEMMA: (LoadState.FAILED, LOAD_INTERRUPTED),
    }
    statuses = {s.model.model_id: s for s in model_list_with_status(refresh=True)}
    assert statuses["other/finished"].status == Status.LOADED
    assert (statuses["other/lost"].status, statuses["other/lost"].reason) == (Status.FAILED, LOAD_INTERRUPTED)
    # Its own life's claims are running in it: a second call ends nothing.
    claim(rows["other/queued"], worker=f"{NODE}#new-life")
    assert model_load_claims_recover(worker=f"{NODE}#new-life") == 0


# --- cancel -------------------------------------------------------------------------------------------


def test_staff_cancel_a_load_and_the_model_shows_its_live_state(
    bob_api: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    gemma = claim(discovered[GEMMA], task_id="running")
    response = bob_api.post(f"/api/models/lmstudio/{GEMMA}/load/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "not_loaded"
    assert AIModel.objects.get(pk=gemma.pk).load_state == LoadState.IDLE
    # The cancelled task, if it ever runs or fails, changes nothing; a new Load starts a new load.
    model_load_run(model_id=gemma.pk, task_id="running", worker=f"{NODE}#1")
    assert lmstudio.loads_started == 0
    assert bob_api.post(f"/api/models/{gemma.pk}/load").status_code == 202
    assert lmstudio.loads_started == 1
    # Cancelling when nothing loads is harmless and says how the model is.
    assert bob_api.post(f"/api/models/{gemma.pk}/load/cancel").json()["status"] == "loaded"


def test_cancel_is_staff_only_for_models_they_see_and_local_models_only(
    alice_api: Client, bob_api: Client, alice: User, discovered: dict[str, AIModel]
) -> None:
    gemma = claim(discovered[GEMMA])
    response = alice_api.post(f"/api/models/{gemma.pk}/load/cancel")
    assert response.status_code == 403 and "detail" in response.json()
    assert AIModel.objects.get(pk=gemma.pk).load_state == LoadState.LOADING

    private = Provider.objects.create(
        name="alice-box", kind=ProviderKind.LMSTUDIO, base_url="http://127.0.0.1:9", owner=alice
    )
    hers = claim(AIModel.objects.create(provider=private, model_id="her-model", owner=alice))
    assert bob_api.post(f"/api/models/{hers.pk}/load/cancel").status_code == 404
    assert AIModel.objects.get(pk=hers.pk).load_state == LoadState.LOADING

    gpt = AIModel.objects.create(provider=cloud_provider("openai"), model_id="gpt-4o-mini")
    assert bob_api.post(f"/api/models/{gpt.pk}/load/cancel").status_code == 400
    assert bob_api.post("/api/models/lmstudio/nope/load/cancel").status_code == 404


def test_the_models_page_offers_cancel_to_staff_on_a_loading_row(
    alice_web: Client, bob_web: Client, discovered: dict[str, AIModel]
) -> None:
    gemma = claim(discovered[GEMMA])
    htmx = {"HX-Request": "true"}
    cancel_url = f"/models/{gemma.pk}/load/cancel/"
    assert cancel_url in bob_web.get(f"/models/{gemma.pk}/row/", headers=htmx).content.decode()
    assert cancel_url not in alice_web.get(f"/models/{gemma.pk}/row/", headers=htmx).content.decode()
    assert alice_web.post(cancel_url, headers=htmx).status_code == 302  # to the login page: staff only
    assert AIModel.objects.get(pk=gemma.pk).load_state == LoadState.LOADING

    html = bob_web.post(cancel_url, headers=htmx).content.decode()
    assert 'data-status="not_loaded"' in html and cancel_url not in html
    assert AIModel.objects.get(pk=gemma.pk).load_state == LoadState.IDLE
