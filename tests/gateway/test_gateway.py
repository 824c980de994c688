"""The OpenAI-compatible gateway end to end: OpenAI's own Python SDK talks to the app served by a real
uvicorn, which talks to our emulators. One server for the module (starting one costs about a second);
each test brings its own users, providers and emulators, and the transactional test database is
emptied after each, so no test sees another's rows."""

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import openai
import pytest
from django.contrib.auth.models import User

from accounts.services import api_token_create
from models_mgmt.models import AIModel
from models_mgmt.services import model_list_with_status
from orchestrator.celery import app as celery_app
from tests.completions.conftest import Cloud, start_cloud
from tests.conftest import point_provider_at
from tests.fakes.lmstudio import FakeLMStudio
from tests.processes import asgi_server, celery_worker

pytestmark = pytest.mark.django_db(transaction=True)

GPT = "openai/gpt-4o-mini"
QWEN = "lmstudio/qwen/qwen2.5-7b-instruct"
GEMMA = "lmstudio/google/gemma-3-4b"
HELLO = [{"role": "user", "content": "hello there"}]
SERVER_ENV = {
    # Port 9 refuses at once: a provider row left without a base URL must not find a real LM Studio.
    "LMSTUDIO_BASE_URL": "http://127.0.0.1:9",
    "COMPLETION_TIMEOUT": "5",
    "COMPLETION_WHOLE_TIMEOUT": "5",
    "COMPLETION_IDLE_TIMEOUT": "2",
}


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[str]:
    # django_db_setup: the child process must be given the test database's name, known once it exists.
    with asgi_server(**SERVER_ENV) as url:
        yield url


def sdk(server: str, user: User | None = None, api_key: str | None = None) -> openai.OpenAI:
    if api_key is None:
        _, api_key = api_token_create(user=user, name="gateway")
    return openai.OpenAI(base_url=f"{server}/v1", api_key=api_key, max_retries=0, timeout=30)


@pytest.fixture
def client(server: str, alice: User) -> Iterator[openai.OpenAI]:
    with sdk(server, alice) as client:
        yield client


@pytest.fixture
def cloud(alice: User) -> Iterator[Cloud]:
    with ExitStack() as stack:
        yield start_cloud(stack, "openai", alice)


@pytest.fixture
def local(lmstudio: FakeLMStudio) -> FakeLMStudio:
    point_provider_at(lmstudio)
    model_list_with_status()  # stores the emulator's models, as a first listing does
    return lmstudio


# --- models ---------------------------------------------------------------------------------------------


def test_models_lists_what_the_caller_can_use(
    server: str, client: openai.OpenAI, cloud: Cloud, local: FakeLMStudio, charlie: User
) -> None:
    models = {m.id: m for m in client.models.list()}
    # Not-loaded local models are listed (the gateway loads them); the embedder is not (it cannot chat).
    assert set(models) == {GPT, QWEN, GEMMA, "lmstudio/meta-llama-3.1-8b-instruct"}
    assert models[GPT].owned_by == "openai" and models[QWEN].owned_by == "lmstudio"
    assert models[GPT].created == int(cloud.model.created_at.timestamp()) and models[GPT].object == "model"
    assert client.models.retrieve(QWEN).id == QWEN

    AIModel.objects.filter(model_id="meta-llama-3.1-8b-instruct").update(active=False)
    with sdk(server, charlie) as theirs:  # charlie has no OpenAI key
        assert {m.id for m in theirs.models.list()} == {QWEN, GEMMA}
        with pytest.raises(openai.NotFoundError):
            theirs.models.retrieve(GPT)


# --- answers --------------------------------------------------------------------------------------------


def test_a_completion_is_openais_chat_completion(client: openai.OpenAI, cloud: Cloud) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=GPT,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]},
        ],
        temperature=0.5,
        stop=["zzz"],
    )
    assert raw.headers["X-Orchestrator-Model"] == GPT
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == GPT and completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Echo from gpt-4o-mini: hello\nthere"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 5 and completion.usage.total_tokens == 5 + 4
    assert completion.model_extra["orchestrator"] == {"model": GPT, "requested_model": GPT, "fallbacks": []}
    sent = cloud.fake.last_chat_body()
    assert sent["messages"][1] == {"role": "user", "content": "hello\nthere"}
    assert sent["temperature"] == 0.5 and sent["stop"] == ["zzz"]


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client: openai.OpenAI, cloud: Cloud) -> None:
    for limit in ({"max_tokens": 3}, {"max_completion_tokens": 3}):
        completion = client.chat.completions.create(model=GPT, messages=HELLO, **limit)
        assert completion.choices[0].message.content == "Echo from gpt-4o-mini:"
        assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 3
        assert cloud.fake.last_chat_body()["max_tokens"] == 3


def test_a_stream_with_usage(server: str, client: openai.OpenAI, cloud: Cloud) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=GPT, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers["Content-Type"].startswith("text/event-stream")
    assert raw.headers["Cache-Control"] == "no-cache" and raw.headers["X-Accel-Buffering"] == "no"
    assert raw.headers["X-Orchestrator-Model"] == GPT
    chunks = list(raw.parse())
    assert chunks[0].choices[0].delta.role == "assistant" and {c.model for c in chunks} == {GPT}
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo from gpt-4o-mini: hello there"
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5

    # Without include_usage there is no usage chunk; on the wire the stream ends with [DONE].
    headers = {"Authorization": f"Bearer {client.api_key}"}
    payload = {"model": GPT, "messages": HELLO, "stream": True}
    text = httpx.post(f"{server}/v1/chat/completions", json=payload, headers=headers, timeout=30).text
    assert text.endswith("data: [DONE]\n\n") and '"usage"' not in text


def test_the_async_client(server: str, alice: User, cloud: Cloud) -> None:
    _, token = api_token_create(user=alice, name="async")

    async def talk() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=token, max_retries=0, timeout=30) as client:
            stream = await client.chat.completions.create(model=GPT, messages=HELLO, stream=True)
            streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            whole = await client.chat.completions.create(model=GPT, messages=HELLO)
            return streamed, whole.choices[0].message.content

    assert asyncio.run(talk()) == ("Echo from gpt-4o-mini: hello there",) * 2


def test_fallback_answers_and_says_who_answered(client: openai.OpenAI, cloud: Cloud, local: FakeLMStudio) -> None:
    cloud.fake.fail("503")
    raw = client.chat.completions.with_raw_response.create(model=GPT, messages=HELLO)
    completion = raw.parse()
    assert raw.headers["X-Orchestrator-Model"] == QWEN and completion.model == QWEN
    assert completion.choices[0].message.content == "Echo: hello there"
    fallback = completion.model_extra["orchestrator"]["fallbacks"][0]
    assert (fallback["from"], fallback["to"]) == (GPT, QWEN) and "503" in fallback["reason"]

    # A stream can name the answering model in its header too: it starts only once the answer does.
    raw = client.chat.completions.with_raw_response.create(model=GPT, messages=HELLO, stream=True)
    chunks = list(raw.parse())
    assert raw.headers["X-Orchestrator-Model"] == QWEN and {c.model for c in chunks} == {QWEN}
    assert chunks[0].model_extra["orchestrator"]["fallbacks"][0]["to"] == QWEN
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: hello there"


def test_a_failure_after_text_ends_the_stream_with_an_error(client: openai.OpenAI, cloud: Cloud) -> None:
    cloud.fake.fail("cut", times=1)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model=GPT, messages=HELLO, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Echo from"  # what came before the cut stays
    assert caught.value.body["code"] == "stream_cut" and caught.value.body["type"] == "server_error"

    # Not streamed: asked upstream for the whole answer, so a cut-off one is no answer yet and is asked again.
    cloud.fake.fail("cut", times=1)
    answer = client.chat.completions.create(model=GPT, messages=HELLO)
    assert answer.choices[0].message.content == "Echo from gpt-4o-mini: hello there"
    assert cloud.fake.last_chat_body()["stream"] is False


@pytest.mark.worker
def test_a_not_loaded_local_model_is_loaded_then_answers(server: str, alice: User, lmstudio: FakeLMStudio) -> None:
    # Loads run in a Celery worker; the uvicorn process has none of its own.
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")  # what a killed earlier run left must not be taken for ours
    point_provider_at(lmstudio)
    with celery_worker() as worker, sdk(server, alice) as client:
        assert GEMMA in {m.id for m in client.models.list()}
        raw = client.chat.completions.with_raw_response.create(model=GEMMA, messages=HELLO, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        assert text == "Echo: hello there", worker.output()
        assert raw.headers["X-Orchestrator-Model"] == GEMMA
        assert "models_mgmt.load_model" in worker.output()
    assert lmstudio.loads_started == 1 and lmstudio.models["google/gemma-3-4b"].instances


# --- errors ---------------------------------------------------------------------------------------------


def test_a_bad_or_missing_token_is_401(server: str, cloud: Cloud, alice: User) -> None:
    with sdk(server, api_key="orch_not-a-real-token") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model=GPT, messages=HELLO)
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    assert caught.value.code == "invalid_api_key" and caught.value.type == "invalid_request_error"
    assert "orch_not-a-real-token" not in str(caught.value.body)

    response = httpx.get(f"{server}/v1/models", timeout=30)
    assert response.status_code == 401 and set(response.json()["error"]) == {"message", "type", "param", "code"}
    # A browser session is no way in: only tokens are.
    assert httpx.get(f"{server}/v1/models", cookies={"sessionid": "x"}, timeout=30).status_code == 401


def test_an_unknown_model_is_404(client: openai.OpenAI, cloud: Cloud, local: FakeLMStudio) -> None:
    # A model named on first use is passed through: the provider's own 404 is the answer, with no fallback,
    # and the name does not join the registry.
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="openai/nope", messages=HELLO)
    assert caught.value.code == "model_not_found" and cloud.fake.chat_count == 1
    assert not AIModel.objects.filter(model_id="nope").exists()
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nobody/nope", messages=HELLO)
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError, match="not a chat model"):
        client.chat.completions.create(model="lmstudio/text-embedding-nomic-embed-text-v1.5", messages=HELLO)
    assert cloud.fake.chat_count == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"n": 2},
        {"temperature": 5},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
        {"messages": []},
    ],
)
def test_a_bad_request_is_400(client: openai.OpenAI, cloud: Cloud, extra: dict) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**{"model": GPT, "messages": HELLO, **extra})
    assert caught.value.type == "invalid_request_error" and caught.value.param
    assert cloud.fake.chat_count == 0


@pytest.mark.parametrize("stream", [False, True])
def test_rate_limited_everywhere_is_429(client: openai.OpenAI, cloud: Cloud, stream: bool) -> None:
    cloud.fake.fail("429", retry_after="0")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=GPT, messages=HELLO, stream=stream)
    assert caught.value.code == "rate_limit_exceeded" and cloud.fake.chat_count == 2  # asked, retried once


def test_a_spent_quota_is_429_insufficient_quota(client: openai.OpenAI, cloud: Cloud) -> None:
    cloud.fake.fail("quota")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=GPT, messages=HELLO)
    assert caught.value.code == "insufficient_quota"


def test_no_usable_model_is_503(server: str, cloud: Cloud, charlie: User) -> None:
    with sdk(server, charlie) as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=GPT, messages=HELLO, stream=True)
    assert caught.value.status_code == 503 and caught.value.code == "no_key"
    assert caught.value.type == "server_error" and cloud.fake.chat_count == 0


def test_a_failing_upstream_is_502_and_its_key_does_not_leak(client: openai.OpenAI, cloud: Cloud) -> None:
    cloud.fake.fail("500")
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=GPT, messages=HELLO)
    assert caught.value.status_code == 502 and caught.value.code == "server_error"
    cloud.fake.clear_faults()
    cloud.fake.keys = {"another-key"}  # the upstream now refuses ours, and echoes it back (masked) as OpenAI does
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=GPT, messages=HELLO)
    assert caught.value.code == "auth" and "test-key" not in str(caught.value.body)


def test_wrong_method_and_unknown_url_answer_in_openais_shape(server: str, alice: User) -> None:
    response = httpx.get(f"{server}/v1/chat/completions", timeout=30)
    assert response.status_code == 405 and response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.post(f"{server}/v1/embeddings", json={}, timeout=30)
    assert response.status_code == 404 and "Invalid URL" in response.json()["error"]["message"]
