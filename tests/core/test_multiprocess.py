"""Several processes agree: two web processes (A and B, each its own uvicorn) and two Celery worker
processes on PostgreSQL and Redis, driven only through the public HTTP surface of A and B, with the
loopback emulators upstream. What one process changes, the very next request on the other one sees:
loads, cooldowns, budgets and rate limits, Stop, revoked tokens, changed keys, switched-off models; and a
worker killed in the middle of a load leaves the model failed with the reason, never loading for ever.

The services lane (`.ci/run`) runs it; on the embedded defaults (SQLite, no Redis) it is skipped, since
there the processes of one machine share a file, not a server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from accounts.models import ApiToken
from accounts.services import api_token_create
from chat.models import Conversation, Message, MessageStatus
from models_mgmt.models import AIModel, LoadState
from models_mgmt.services import LOAD_INTERRUPTED
from orchestrator.celery import app as celery_app
from tests.conftest import cloud_provider, point_provider_at
from tests.fakes.lmstudio import FakeLMStudio
from tests.fakes.openai import FakeOpenAI
from tests.processes import ManagedProcess, start_celery_worker, start_web_server

SERVICES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and bool(settings.REDIS_URL)
pytestmark = [
    pytest.mark.services,
    pytest.mark.worker,
    pytest.mark.skipif(
        not SERVICES,
        reason="needs the services lane: DATABASE_URL on PostgreSQL and REDIS_URL (as .ci/run sets them)",
    ),
    pytest.mark.django_db(transaction=True),
]

GEMMA = "google/gemma-3-4b"
QWEN = "qwen/qwen2.5-7b-instruct"
GPT = "gpt-4o-mini"
LEASE = 10  # seconds: a load claim this old has lost its worker (the default is 600)
ENV = {"MODEL_LOAD_STALE_SECONDS": str(LEASE), "COMPLETION_TIMEOUT": "10", "COMPLETION_RETRIES": "0"}
KEY_ONE, KEY_TWO = "sk-multiprocess-key-one", "sk-multiprocess-key-two"
CSRF = "c" * 32
T = TypeVar("T")  # Django takes a well-formed token the client chose, as long as cookie and header agree


@dataclass
class Cluster:
    a: str
    b: str
    web: list[ManagedProcess]
    workers: dict[str, ManagedProcess] = field(default_factory=dict)

    def output(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()[-3000:]}" for p in [*self.web, *self.workers.values()])


@pytest.fixture(scope="module")
def cluster(django_db_setup: None) -> Iterator[Cluster]:
    """A, B, w1 and w2 for the whole module (each test brings its own data and emulators): starting them
    is most of this module's time."""
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")  # nothing an earlier run left behind
    # All four start at once and load the app side by side; each is ready when it says so.
    (server_a, a), (server_b, b) = start_web_server(**ENV), start_web_server(**ENV)
    workers = {name: start_celery_worker(name, **ENV) for name in ("w1", "w2")}
    processes = [server_a, server_b, *workers.values()]
    try:
        for process in processes:
            process.wait_ready()
        yield Cluster(a, b, [server_a, server_b], workers)
    finally:
        for process in processes:
            process.stop()


@pytest.fixture(autouse=True)
def _tasks_go_to_the_workers() -> None:
    celery_app.conf.task_always_eager = False


def bearer(user: User) -> dict[str, str]:
    _, raw = api_token_create(user=user, name="multiprocess")
    return {"Authorization": f"Bearer {raw}"}


def browser(user: User) -> httpx.Client:
    """A logged-in browser: the session lives in the database, so both web processes know it."""
    client = Client()
    client.force_login(user)
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": CSRF}
    return httpx.Client(cookies=cookies, headers={"X-CSRFToken": CSRF}, timeout=30)


def ask(base: str, headers: dict[str, str], model: str, text: str = "hello there") -> httpx.Response:
    payload = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{base}/api/completions", json=payload, headers=headers, timeout=30)


def gateway(base: str, headers: dict[str, str], model: str, text: str = "hello there") -> httpx.Response:
    """The OpenAI-compatible endpoint: its own hot path, so its caches are proven as well."""
    payload = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{base}/v1/chat/completions", json=payload, headers=headers, timeout=30)


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(keys={KEY_ONE, KEY_TWO}) as fake:
        cloud_provider("openai", base_url=f"{fake.url}/v1")
        yield fake


def discover(cluster: Cluster, headers: dict[str, str]) -> dict[str, int]:
    models = httpx.get(f"{cluster.a}/api/models?refresh=1", headers=headers, timeout=30).json()
    return {m["model_id"]: m["id"] for m in models}


def test_a_load_started_on_a_is_awaited_on_b_with_one_upstream_load(
    cluster: Cluster, lmstudio: FakeLMStudio, alice: User
) -> None:
    point_provider_at(lmstudio)
    auth = bearer(alice)
    gemma = discover(cluster, auth)[GEMMA]
    lmstudio.hold_loads()

    assert httpx.post(f"{cluster.a}/api/models/{gemma}/load", headers=auth).status_code == 202
    assert httpx.post(f"{cluster.b}/api/models/{gemma}/load", headers=auth).status_code == 202  # the same load
    assert lmstudio.wait_for_load_started(1, timeout=30), cluster.output()
    assert httpx.get(f"{cluster.b}/api/models/{gemma}/status", headers=auth).json()["status"] == "loading"
    assert httpx.post(f"{cluster.b}/api/models/{gemma}/wait?timeout=1", headers=auth, timeout=10).status_code == 504

    lmstudio.release_loads()
    waited = httpx.post(f"{cluster.b}/api/models/{gemma}/wait?timeout=30", headers=auth, timeout=40)
    assert (waited.status_code, waited.json()["status"]) == (200, "loaded"), cluster.output()
    assert httpx.get(f"{cluster.a}/api/models/{gemma}/status", headers=auth).json()["status"] == "loaded"
    assert httpx.post(f"{cluster.a}/api/models/{gemma}/load", headers=auth).status_code == 200
    assert lmstudio.loads_started == 1 and lmstudio.models[GEMMA].instances == [GEMMA]


def test_a_cooldown_caused_through_a_is_seen_on_b_and_b_skips_the_model(
    cluster: Cluster, openai: FakeOpenAI, alice: User
) -> None:
    auth = bearer(alice)
    assert httpx.post(f"{cluster.a}/api/keys", json={"provider": "openai", "key": KEY_ONE}, headers=auth).is_success
    assert ask(cluster.b, auth, f"openai/{GPT}").status_code == 200
    ref = f"openai/{GPT}"
    openai.fail("500")  # the upstream is down, for everyone who reaches it
    for _ in range(settings.MODEL_ALLOWED_FAILS):
        assert ask(cluster.a, auth, ref).status_code in (502, 503)
        if httpx.get(f"{cluster.a}/api/models/{ref}/status", headers=auth).json()["status"] == "failed":
            break
    else:
        pytest.fail("A never cooled the model down:\n" + cluster.output())

    status = httpx.get(f"{cluster.b}/api/models/{ref}/status", headers=auth).json()
    assert status["status"] == "failed" and status["cooldown_until"], status
    calls = openai.chat_count
    skipped = ask(cluster.b, auth, ref)
    assert skipped.status_code == 503, skipped.text
    assert openai.chat_count == calls  # B did not ask the cooling-down model


def in_one_window(seconds: int, attempt: Callable[[User], T]) -> T:
    """Run `attempt` for a new user (a fresh budget) until one run stays inside one fixed window of the
    limit (a calendar minute): a run that straddles the turn of a window meets two windows' worth of limit.
    One run takes a few seconds, so two in a row cannot both straddle one."""
    for n in range(2):
        user = User.objects.create_user(f"racer{n}", password="racer-password-1")
        window = int(time.time() // seconds)
        result = attempt(user)
        if int(time.time() // seconds) == window:
            return result
    pytest.fail("two runs in a row straddled the turn of a window")


def test_a_budget_cannot_be_exceeded_by_alternating_or_racing_a_and_b(
    cluster: Cluster, openai: FakeOpenAI, bob: User
) -> None:
    staff = bearer(bob)
    budget = {"requests_per_minute": 3, "tokens_per_day": None, "cost_per_month_usd": None}

    def attempt(user: User) -> tuple[list[int], httpx.Response, int]:
        auth, calls = bearer(user), openai.chat_count
        assert httpx.post(f"{cluster.b}/api/keys", json={"provider": "openai", "key": KEY_ONE}, headers=auth).is_success
        assert httpx.put(f"{cluster.a}/api/budgets/{user.username}", json=budget, headers=staff).status_code == 200
        codes = [ask(cluster.b, auth, f"openai/{GPT}").status_code]  # B applies A's change at once
        with ThreadPoolExecutor(6) as pool:
            bases = [cluster.a, cluster.b] * 3
            codes += sorted(r.status_code for r in pool.map(lambda base: ask(base, auth, f"openai/{GPT}"), bases))
        return codes, ask(cluster.a, auth, f"openai/{GPT}"), openai.chat_count - calls

    codes, refused, calls = in_one_window(60, attempt)
    assert codes == [200, 200, 200, 429, 429, 429, 429], codes
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert calls == 3  # the refused ones never reached the provider


def test_the_code_generation_rate_limit_cannot_be_exceeded_by_alternating_a_and_b(
    cluster: Cluster, openai: FakeOpenAI
) -> None:
    openai.code_mode = True
    body = {"prompt": "A function that returns the n-th Fibonacci number, with type hints", "model": f"openai/{GPT}"}

    def attempt(user: User) -> tuple[list[int], int]:
        auth, calls = bearer(user), openai.chat_count
        assert httpx.post(f"{cluster.a}/api/keys", json={"provider": "openai", "key": KEY_ONE}, headers=auth).is_success
        codes = []
        for base in [cluster.a, cluster.b] * 2:
            codes.append(httpx.post(f"{base}/llm-codegen/generate", json=body, headers=auth, timeout=60).status_code)
        return codes, openai.chat_count - calls

    codes, calls = in_one_window(settings.CODEGEN_RATE_WINDOW_SECONDS, attempt)
    limit = settings.CODEGEN_RATE_LIMIT
    assert codes == [200] * limit + [429] * (4 - limit), codes
    assert calls == limit


def test_stop_sent_to_b_stops_the_stream_served_by_a_and_keeps_the_partial_text(
    cluster: Cluster, lmstudio: FakeLMStudio, alice: User
) -> None:
    point_provider_at(lmstudio)
    qwen = discover(cluster, bearer(alice))[QWEN]
    lmstudio.stream_chunk_delay = 0.1  # 200 words: 20 s if nobody stops it
    question = " ".join(f"word{i}" for i in range(200))
    conversation = Conversation.objects.create(owner=alice)
    with browser(alice) as web:
        sent = web.post(f"{cluster.a}/chat/{conversation.pk}/send/", data={"content": question, "model": qwen})
        assert sent.status_code == 302, sent.text
        answer = Message.objects.get(conversation=conversation, role="assistant")
        received: list[str] = []
        with web.stream("GET", f"{cluster.a}/chat/messages/{answer.pk}/stream/") as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "text":  # the chat page's plain-text pieces
                    received.append(line.removeprefix("data: "))
                    if len(received) == 3:
                        assert web.post(f"{cluster.b}/chat/messages/{answer.pk}/stop/").status_code == 204
                elif event == "final":
                    break
    answer.refresh_from_db()
    assert answer.status == MessageStatus.STOPPED, (answer.status, answer.error)
    assert answer.content.startswith("Echo: word0")
    assert 3 <= len(answer.content.split()) < 100  # the partial text is kept, the rest never came
    assert answer.content.startswith("".join(received).strip())  # everything the page was sent is kept


def test_a_revoked_token_is_refused_by_both_at_once(cluster: Cluster, alice: User) -> None:
    auth = bearer(alice)
    token = ApiToken.objects.get(user=alice)
    for base in (cluster.a, cluster.b):  # both have used it (and may keep what they learnt)
        assert httpx.get(f"{base}/api/keys", headers=auth).status_code == 200
        assert httpx.get(f"{base}/v1/models", headers=auth).status_code == 200
    with browser(alice) as web:
        assert web.post(f"{cluster.a}/settings/tokens/{token.pk}/revoke/").status_code == 302
    assert httpx.get(f"{cluster.b}/v1/models", headers=auth).status_code == 401
    assert httpx.get(f"{cluster.b}/api/keys", headers=auth).status_code == 401
    assert httpx.get(f"{cluster.a}/v1/models", headers=auth).status_code == 401
    assert httpx.get(f"{cluster.a}/api/keys", headers=auth).status_code == 401


def test_a_key_changed_on_a_is_used_by_b_at_once(cluster: Cluster, openai: FakeOpenAI, alice: User) -> None:
    auth = bearer(alice)
    key = httpx.post(f"{cluster.a}/api/keys", json={"provider": "openai", "key": KEY_ONE}, headers=auth).json()
    assert gateway(cluster.b, auth, f"openai/{GPT}").status_code == 200
    assert openai.requests[-1].headers["authorization"] == f"Bearer {KEY_ONE}"
    assert ask(cluster.b, auth, f"openai/{GPT}").status_code == 200
    assert openai.requests[-1].headers["authorization"] == f"Bearer {KEY_ONE}"

    changed = httpx.patch(f"{cluster.a}/api/keys/{key['id']}", json={"key": KEY_TWO}, headers=auth)
    assert changed.status_code == 200, changed.text
    openai.keys.discard(KEY_ONE)  # the old key is revoked upstream too
    assert gateway(cluster.b, auth, f"openai/{GPT}").status_code == 200
    assert openai.requests[-1].headers["authorization"] == f"Bearer {KEY_TWO}"
    assert ask(cluster.b, auth, f"openai/{GPT}").status_code == 200
    assert openai.requests[-1].headers["authorization"] == f"Bearer {KEY_TWO}"


def test_a_model_switched_off_on_a_is_off_on_b_at_once(
    cluster: Cluster, lmstudio: FakeLMStudio, alice: User, bob: User
) -> None:
    point_provider_at(lmstudio)
    auth = bearer(alice)
    qwen = discover(cluster, auth)[QWEN]
    assert ask(cluster.b, auth, f"lmstudio/{QWEN}").status_code == 200
    assert gateway(cluster.b, auth, f"lmstudio/{QWEN}").status_code == 200
    assert httpx.get(f"{cluster.b}/api/models/{qwen}/status", headers=auth).json()["status"] == "loaded"
    seen = len(lmstudio.requests)

    with browser(bob) as staff:
        switched = staff.post(f"{cluster.a}/models/{qwen}/active/", data={"active": "0"})
        assert (switched.status_code, switched.headers["location"]) == (302, "/models/")
    assert httpx.get(f"{cluster.b}/api/models/{qwen}/status", headers=auth).json()["status"] == "inactive"
    answer = ask(cluster.b, auth, f"lmstudio/{QWEN}").json()
    assert answer["model"] != f"lmstudio/{QWEN}"
    assert [(f["from"], f["code"]) for f in answer["fallbacks"]] == [(f"lmstudio/{QWEN}", "inactive")]
    through_gateway = gateway(cluster.b, auth, f"lmstudio/{QWEN}")
    assert through_gateway.headers.get("x-orchestrator-model") != f"lmstudio/{QWEN}", through_gateway.text
    asked = [r.json().get("model") for r in lmstudio.requests[seen:] if r.path.endswith("/chat/completions")]
    assert QWEN not in asked, asked


def test_a_worker_killed_mid_load_leaves_the_model_failed_with_the_reason_never_loading(
    cluster: Cluster, lmstudio: FakeLMStudio, alice: User
) -> None:
    """Last in this module: it kills a worker. The other worker then does the next load."""
    point_provider_at(lmstudio)
    auth = bearer(alice)
    gemma = discover(cluster, auth)[GEMMA]
    lmstudio.hold_loads()
    assert httpx.post(f"{cluster.a}/api/models/{gemma}/load", headers=auth).status_code == 202
    assert lmstudio.wait_for_load_started(1, timeout=30), cluster.output()
    model = AIModel.objects.get(pk=gemma)
    holder = model.load_worker.partition("@")[0]
    assert model.load_state == LoadState.LOADING and holder in cluster.workers, model.load_worker
    cluster.workers[holder].kill()

    waited = httpx.post(f"{cluster.b}/api/models/{gemma}/wait?timeout=60", headers=auth, timeout=70)
    assert waited.status_code == 409, waited.text  # within the lease, not never
    assert (waited.json()["status"], waited.json()["reason"]) == ("failed", LOAD_INTERRUPTED)
    assert httpx.get(f"{cluster.a}/api/models/{gemma}/status", headers=auth).json()["status"] == "failed"

    lmstudio.abandon_held_loads()
    lmstudio.release_loads()
    assert httpx.post(f"{cluster.a}/api/models/{gemma}/load", headers=auth).status_code == 202
    waited = httpx.post(f"{cluster.b}/api/models/{gemma}/wait?timeout=30", headers=auth, timeout=40)
    assert waited.status_code == 200, cluster.output()
    assert lmstudio.models[GEMMA].instances == [GEMMA]
