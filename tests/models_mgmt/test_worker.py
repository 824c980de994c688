"""A load through a real Celery worker process (not eager mode), on the same database and broker the
app uses: the API answers at once, the worker does the slow part, every process sees the outcome."""

from collections.abc import Iterator

import pytest
from django.test import Client

from models_mgmt.models import AIModel, LoadState
from orchestrator.celery import app as celery_app
from tests.conftest import point_provider_at, token_client
from tests.fakes.lmstudio import FakeLMStudio
from tests.processes import ManagedProcess, celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

GEMMA = "google/gemma-3-4b"


@pytest.fixture
def worker() -> Iterator[ManagedProcess]:
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        # Messages a killed earlier run left behind must not be taken for this run's.
        conn.default_channel.queue_purge("celery")
    with celery_worker() as process:
        yield process


@pytest.fixture
def api(django_user_model: type) -> Client:
    return token_client(django_user_model.objects.create_user("alice", password="alice-password-1"))


def test_load_runs_in_the_worker_and_one_load_for_two_requests(
    worker: ManagedProcess, api: Client, lmstudio: FakeLMStudio
) -> None:
    point_provider_at(lmstudio)
    api.get("/api/models")
    gemma = AIModel.objects.get(model_id=GEMMA)
    lmstudio.hold_loads()

    first = api.post(f"/api/models/{gemma.pk}/load")
    second = api.post(f"/api/models/{gemma.pk}/load")
    assert (first.status_code, second.status_code) == (202, 202)
    assert lmstudio.wait_for_load_started(1, timeout=30), worker.output()
    assert api.get(f"/api/models/{gemma.pk}/status").json()["status"] == "loading"
    assert api.post(f"/api/models/{gemma.pk}/wait?timeout=1").status_code == 504

    lmstudio.release_loads()
    response = api.post(f"/api/models/{gemma.pk}/wait?timeout=60")
    assert response.status_code == 200, worker.output()
    assert response.json()["status"] == "loaded"
    assert lmstudio.loads_started == 1 and lmstudio.models[GEMMA].instances == [GEMMA]
    assert "models_mgmt.load_model" in worker.output()


def test_failed_load_in_the_worker_is_recorded(worker: ManagedProcess, api: Client, lmstudio: FakeLMStudio) -> None:
    point_provider_at(lmstudio)
    api.get("/api/models")
    gemma = AIModel.objects.get(model_id=GEMMA)
    lmstudio.fail_load(GEMMA, message="Failed to load model: insufficient memory")
    assert api.post(f"/api/models/{gemma.pk}/load").status_code == 202
    response = api.post(f"/api/models/{gemma.pk}/wait?timeout=60")
    assert response.status_code == 409, worker.output()
    assert "insufficient memory" in response.json()["reason"]
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.FAILED


def test_completion_on_a_not_loaded_model_waits_for_the_worker_then_answers(
    worker: ManagedProcess, api: Client, lmstudio: FakeLMStudio
) -> None:
    point_provider_at(lmstudio)
    api.get("/api/models")
    payload = {"model": f"lmstudio/{GEMMA}", "messages": [{"role": "user", "content": "hello there"}]}
    response = api.post("/api/completions", payload, content_type="application/json")
    assert response.status_code == 200, worker.output()
    result = response.json()
    assert result["model"] == f"lmstudio/{GEMMA}" and result["fallbacks"] == []
    assert result["text"] == "Echo: hello there" and lmstudio.loads_started == 1
