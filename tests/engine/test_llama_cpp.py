"""The OpenAI-compatible path against a real engine: llama.cpp (llama-cpp-python's server) serving a tiny
random-weight model. First our adapter alone, then the unified completion service with a provider of kind
`openai_compatible`, then the gateway in front of it, driven by OpenAI's own SDK.

The model writes gibberish, so the tests check shapes and counts, never words. Temperature 0 makes it
choose greedily: the same tokens on every run, so a cut at max_tokens is a cut, not an early end of text.

What llama-cpp-python's server does differently from OpenAI, and these tests pin down:
- it ignores `stream_options.include_usage`: a stream carries no usage at all (whole answers do);
- so a streamed answer has no token counts, and the service says so (`usage` None; the gateway's rule: null,
  not made-up numbers, when the provider did not count); a caller who does not stream is asked for the whole
  answer upstream too, and gets the engine's counts;
- max_tokens is not a hard cap: when the cut falls inside a multi-byte UTF-8 character it generates up to
  three more tokens to finish it (the random model writes byte tokens, so this happens), and still says
  finish_reason "length" with completion_tokens above max_tokens."""

from collections.abc import Iterator

import openai
import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from accounts.services import api_token_create
from apikeys.services import apikey_create
from completions.services import completion_collect, completion_stream
from models_mgmt.models import AIModel
from providers.adapters import ChatParams, Completion, Delta, Finish, OpenAIAdapter
from providers.kinds import ProviderKind
from tests.conftest import cloud_provider
from tests.engine.conftest import Engine
from tests.processes import asgi_server

pytestmark = pytest.mark.engine

PROVIDER = "llama-cpp-python"  # not "llamacpp": that name is the instance-wide llama-server's
HELLO = [{"role": "user", "content": "hello"}]
GREEDY = 0.0
UTF8_OVERRUN = 3  # the most tokens llama-cpp-python adds past max_tokens to complete a UTF-8 character
SERVER_ENV = {
    # Port 9 refuses at once: the default LM Studio provider must not find a real one.
    "LMSTUDIO_BASE_URL": "http://127.0.0.1:9",
    "COMPLETION_TIMEOUT": "30",
    "COMPLETION_IDLE_TIMEOUT": "10",
}


def ref(engine: Engine) -> str:
    return f"{PROVIDER}/{engine.model}"


# --- the adapter alone --------------------------------------------------------------------------------


@pytest.fixture
def adapter(engine: Engine) -> OpenAIAdapter:
    return OpenAIAdapter(base_url=f"{engine.url}/v1", api_key=None)


def complete(adapter: OpenAIAdapter, engine: Engine, params: ChatParams, messages: list | None = None) -> Completion:
    return async_to_sync(adapter.complete)(engine.model, messages or HELLO, params)


def stream(adapter: OpenAIAdapter, engine: Engine, params: ChatParams) -> list[Delta | Finish]:
    async def run() -> list[Delta | Finish]:
        return [item async for item in adapter.stream(engine.model, HELLO, params)]

    return async_to_sync(run)()


def test_adapter_lists_the_served_model(adapter: OpenAIAdapter, engine: Engine) -> None:
    assert [m.id for m in async_to_sync(adapter.list_models)()] == [engine.model]


def test_adapter_completion_has_text_and_real_token_counts(adapter: OpenAIAdapter, engine: Engine) -> None:
    result = complete(adapter, engine, ChatParams(max_tokens=8, temperature=GREEDY))
    assert isinstance(result.text, str) and result.text
    assert result.usage is not None
    assert result.usage.prompt_tokens > 0 and 0 < result.usage.completion_tokens <= 8 + UTF8_OVERRUN
    assert result.finish_reason in ("length", "stop")
    # Counted by the real tokenizer: a longer prompt costs more prompt tokens.
    longer = complete(adapter, engine, ChatParams(max_tokens=1), [{"role": "user", "content": "hello " * 20}])
    assert longer.usage is not None and longer.usage.prompt_tokens > result.usage.prompt_tokens


def test_adapter_max_tokens_cuts_with_finish_reason_length(adapter: OpenAIAdapter, engine: Engine) -> None:
    result = complete(adapter, engine, ChatParams(max_tokens=3, temperature=GREEDY))
    assert result.finish_reason == "length"
    assert result.usage is not None and 3 <= result.usage.completion_tokens <= 3 + UTF8_OVERRUN


def test_adapter_stream_yields_deltas_then_one_finish(adapter: OpenAIAdapter, engine: Engine) -> None:
    params = ChatParams(max_tokens=16, temperature=GREEDY)
    items = stream(adapter, engine, params)
    deltas = [item for item in items if isinstance(item, Delta)]
    finishes = [item for item in items if isinstance(item, Finish)]
    assert len(deltas) >= 2 and all(d.text for d in deltas)
    assert len(finishes) == 1 and items[-1] is finishes[0]
    assert finishes[0].finish_reason == "length"
    # The adapter asked for a usage chunk (stream_options.include_usage); llama-cpp-python sends none.
    assert finishes[0].usage is None
    # Greedy, so the stream is the same answer as the whole one, piece by piece.
    assert "".join(d.text for d in deltas) == complete(adapter, engine, params).text


# --- the unified completion service -------------------------------------------------------------------


def llama_model(engine: Engine, owner: User) -> AIModel:
    """The engine as a user's own OpenAI-compatible server, with a key (llama.cpp ignores it) and its model."""
    provider = cloud_provider(PROVIDER, ProviderKind.OPENAI_COMPATIBLE, base_url=f"{engine.url}/v1")
    apikey_create(user=owner, provider=PROVIDER, key="unused-key-123")
    return AIModel.objects.create(provider=provider, model_id=engine.model)


@pytest.mark.django_db
def test_service_answers_from_llama_cpp(engine: Engine, alice: User) -> None:
    model = llama_model(engine, alice)
    params = ChatParams(max_tokens=8, temperature=GREEDY)
    result = async_to_sync(completion_collect)(user=alice, model=model, messages=HELLO, params=params)
    assert result.ok, result.error
    assert result.model == ref(engine) and result.fallbacks == []
    assert result.text and result.finish_reason == "length"
    assert result.usage is None  # the service streams from the provider, and llama.cpp's streams carry no usage

    async def events() -> list[str]:
        return [e.name async for e in completion_stream(user=alice, model=model, messages=HELLO, params=params)]

    kinds = async_to_sync(events)()
    assert kinds[0] == "start" and kinds[-1] == "done" and set(kinds[1:-1]) == {"delta"} and len(kinds) >= 4


# --- the gateway in front of it -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(django_db_setup: None) -> Iterator[str]:
    # django_db_setup: the child process must be given the test database's name, known once it exists.
    with asgi_server(**SERVER_ENV) as url:
        yield url


@pytest.fixture
def client(gateway: str, engine: Engine, alice: User) -> Iterator[openai.OpenAI]:
    llama_model(engine, alice)
    _, token = api_token_create(user=alice, name="engine")
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=token, max_retries=0, timeout=30) as client:
        yield client


@pytest.mark.django_db(transaction=True)
def test_gateway_answers_with_llama_cpp(client: openai.OpenAI, engine: Engine) -> None:
    assert ref(engine) in {m.id for m in client.models.list()}
    completion = client.chat.completions.create(model=ref(engine), messages=HELLO, max_tokens=5, temperature=GREEDY)
    assert completion.model == ref(engine) and completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "length"
    # Asked for whole upstream as well, so the engine's own counts come back (see the module's docstring; a
    # cut inside a UTF-8 character may take up to three tokens more than max_tokens).
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert 5 <= completion.usage.completion_tokens <= 8


@pytest.mark.django_db(transaction=True)
def test_gateway_streams_llama_cpp(client: openai.OpenAI, engine: Engine) -> None:
    chunks = list(
        client.chat.completions.create(
            model=ref(engine),
            messages=HELLO,
            max_tokens=8,
            temperature=GREEDY,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.model == ref(engine) and c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 2
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    # The usage chunk comes last, as OpenAI sends it; its counts are null because llama.cpp sent none.
    *answer, usage_chunk = chunks
    assert usage_chunk.choices == [] and usage_chunk.usage is None
    assert all(c.choices for c in answer)
