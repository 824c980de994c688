"""A load never stays "loading" forever: a real worker process is killed (kill -9) in the middle of a load,
or the whole app (web server and worker) stops and starts again, and the emulated LM Studio either finishes
the load or never does. The outcome is ✓ as soon as a status refresh sees the server's list, or ❌ with the
reason once the claim's lease runs out or a worker starts again, and Load works again."""

import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.services import api_token_create
from models_mgmt.models import AIModel, LoadState
from models_mgmt.services import LOAD_INTERRUPTED
from orchestrator.celery import app as celery_app
from tests.conftest import point_provider_at
from tests.fakes.lmstudio import FakeLMStudio
from tests.processes import ManagedProcess, app_env, asgi_server, celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

GEMMA = "google/gemma-3-4b"
LEASE = 5  # seconds: long enough for a worker to take the task, short enough to wait for


@pytest.fixture
def empty_queue() -> None:
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        # Messages a killed earlier run left behind must not be taken for this run's.
        conn.default_channel.queue_purge("celery")


@pytest.fixture
def gemma(lmstudio: FakeLMStudio, alice_api: Client) -> Iterator[AIModel]:
    point_provider_at(lmstudio)
    alice_api.get("/api/models")
    lmstudio.hold_loads()  # every load waits until the test lets it finish (or drops it)
    yield AIModel.objects.get(model_id=GEMMA)


def start_load_and_kill_the_worker(api: Client, model: AIModel, lmstudio: FakeLMStudio, **env: str) -> None:
    with celery_worker(**env) as worker:
        assert api.post(f"/api/models/{model.pk}/load").status_code == 202
        assert lmstudio.wait_for_load_started(1, timeout=30), worker.output()
        worker.kill()
    model.refresh_from_db()
    assert model.load_state == LoadState.LOADING and model.load_worker.startswith("celery@"), worker.output()


def test_killed_mid_load_the_server_finishes_it_and_the_next_refresh_shows_loaded(
    empty_queue: None, gemma: AIModel, alice_api: Client, lmstudio: FakeLMStudio
) -> None:
    start_load_and_kill_the_worker(alice_api, gemma, lmstudio)
    assert alice_api.get(f"/api/models/{gemma.pk}/status?refresh=1").json()["status"] == "loading"

    lmstudio.release_loads()  # LM Studio finishes the load; nobody is left to record it
    assert lmstudio.wait_for_loaded(GEMMA, timeout=30)
    status = alice_api.get(f"/api/models/{gemma.pk}/status?refresh=1").json()
    assert (status["status"], status["icon"]) == ("loaded", "✓")
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.IDLE  # the claim is released, not just outshone
    assert alice_api.post(f"/api/models/{gemma.pk}/wait?timeout=1").status_code == 200
    assert alice_api.post(f"/api/models/{gemma.pk}/load").status_code == 200
    assert lmstudio.loads_started == 1


def test_killed_mid_load_the_server_never_finishes_it_the_lease_fails_it_and_load_works_again(
    empty_queue: None,
    gemma: AIModel,
    alice_api: Client,
    lmstudio: FakeLMStudio,
    settings,  # noqa: ANN001
) -> None:
    settings.MODEL_LOAD_STALE_SECONDS = LEASE  # this process reads the status; the workers get it below
    start_load_and_kill_the_worker(alice_api, gemma, lmstudio, MODEL_LOAD_STALE_SECONDS=str(LEASE))

    response = alice_api.post(f"/api/models/{gemma.pk}/wait?timeout=60")  # returns when the lease runs out
    assert response.status_code == 409
    assert (response.json()["status"], response.json()["reason"]) == ("failed", LOAD_INTERRUPTED)
    assert response.json()["icon"] == "❌"
    gemma.refresh_from_db()
    assert (gemma.load_state, gemma.load_error) == (LoadState.FAILED, LOAD_INTERRUPTED)

    lmstudio.abandon_held_loads()  # the server drops the first load: it never completes
    settings.MODEL_LOAD_STALE_SECONDS = 600  # the next load must not race the short lease on a busy machine
    with celery_worker(MODEL_LOAD_STALE_SECONDS=str(LEASE)) as worker:
        assert alice_api.post(f"/api/models/{gemma.pk}/load").status_code == 202
        assert lmstudio.wait_for_load_started(2, timeout=30), worker.output()  # a new upstream load at once
        lmstudio.release_loads()
        response = alice_api.post(f"/api/models/{gemma.pk}/wait?timeout=60")
        assert response.status_code == 200, worker.output()
    assert lmstudio.models[GEMMA].instances == [GEMMA]  # one copy: the dropped load added none


@pytest.mark.parametrize("server_finishes", [True, False], ids=["server-finishes", "server-never-finishes"])
def test_the_whole_app_stopped_and_started_again_mid_load(
    empty_queue: None, gemma: AIModel, alice: User, lmstudio: FakeLMStudio, server_finishes: bool
) -> None:
    """Web server and worker both go; the default lease (600 s) is far away, so only the starting worker
    can end the claim: loaded if LM Studio has the model, failed with the reason otherwise."""
    _, token = api_token_create(user=alice, name="crash test")
    headers = {"Authorization": f"Bearer {token}"}
    with asgi_server() as url, celery_worker() as worker:
        assert httpx.post(f"{url}/api/models/{gemma.pk}/load", headers=headers).status_code == 202
        assert lmstudio.wait_for_load_started(1, timeout=30), worker.output()
        worker.kill()
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.LOADING

    if server_finishes:
        lmstudio.release_loads()
        assert lmstudio.wait_for_loaded(GEMMA, timeout=30)
    else:
        lmstudio.abandon_held_loads()

    with celery_worker() as worker, asgi_server() as url:
        gemma.refresh_from_db()  # ended by the worker's start, before anyone asked for a status
        expected = (LoadState.IDLE, "") if server_finishes else (LoadState.FAILED, LOAD_INTERRUPTED)
        assert (gemma.load_state, gemma.load_error) == expected, worker.output()
        status = httpx.get(f"{url}/api/models/{gemma.pk}/status", headers=headers).json()
        if server_finishes:
            assert status["status"] == "loaded"
            assert httpx.post(f"{url}/api/models/{gemma.pk}/load", headers=headers).status_code == 200
            assert lmstudio.loads_started == 1
        else:
            assert (status["status"], status["reason"]) == ("failed", LOAD_INTERRUPTED)
            assert httpx.post(f"{url}/api/models/{gemma.pk}/load", headers=headers).status_code == 202
            assert lmstudio.wait_for_load_started(2, timeout=30), worker.output()
            lmstudio.release_loads()
            wait = httpx.post(f"{url}/api/models/{gemma.pk}/wait?timeout=60", headers=headers, timeout=70)
            assert wait.status_code == 200, worker.output()
            assert lmstudio.models[GEMMA].instances == [GEMMA]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # the OS chooses; serve binds it again a moment later
        return sock.getsockname()[1]


@contextmanager
def make_run(var_dir: Path) -> Iterator[tuple[ManagedProcess, str]]:
    """What `make run` starts: the serve command (web server and worker), until its worker is ready and
    the web server answers. Its own var/ keeps its metrics folder away from the worktree's."""
    port = free_port()
    serve = ManagedProcess(
        "serve",
        [sys.executable, "manage.py", "serve", "--port", str(port), "--worker-concurrency", "2"],
        app_env(VAR_DIR=str(var_dir)),
        ready=r"worker1@\S+ ready",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        serve.wait_ready()
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not answer:\n" + serve.output())
            time.sleep(0.1)  # polling a server that has no ready signal, with a deadline
        yield serve, url
    finally:
        serve.stop()


def test_ctrl_c_on_make_run_mid_load_then_make_run_again(
    empty_queue: None, gemma: AIModel, alice: User, lmstudio: FakeLMStudio, tmp_path: Path
) -> None:
    """The report's own steps: Ctrl-C while a load runs (serve gives the worker 15 s, then kills it) and
    start again; LM Studio never finishes the first load. Costs those 15 s."""
    _, token = api_token_create(user=alice, name="ctrl-c test")
    headers = {"Authorization": f"Bearer {token}"}
    with make_run(tmp_path) as (serve, url):
        assert httpx.post(f"{url}/api/models/{gemma.pk}/load", headers=headers).status_code == 202
        assert lmstudio.wait_for_load_started(1, timeout=30), serve.output()
        serve.process.send_signal(signal.SIGINT)
        assert serve.process.wait(timeout=60) == 0, serve.output()
    gemma.refresh_from_db()
    assert gemma.load_state == LoadState.LOADING  # nobody recorded an end: the claim outlived the app
    lmstudio.abandon_held_loads()

    with make_run(tmp_path) as (serve, url):
        status = httpx.get(f"{url}/api/models/{gemma.pk}/status", headers=headers).json()
        assert (status["status"], status["reason"]) == ("failed", LOAD_INTERRUPTED), serve.output()
        assert httpx.post(f"{url}/api/models/{gemma.pk}/load", headers=headers).status_code == 202
        assert lmstudio.wait_for_load_started(2, timeout=30), serve.output()
        lmstudio.release_loads()
        wait = httpx.post(f"{url}/api/models/{gemma.pk}/wait?timeout=60", headers=headers, timeout=70)
        assert wait.status_code == 200, serve.output()
