"""Self-check of the cloud LLM emulators (OpenAI, Mistral, Anthropic, Gemini) with plain httpx."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.cloud import CloudFake, Fault
from tests.fakes.gemini import FakeGemini
from tests.fakes.long_answer import PARAGRAPH, long_answer
from tests.fakes.mistral import FakeMistral
from tests.fakes.openai import FakeOpenAI

FAKES = [FakeOpenAI, FakeMistral, FakeAnthropic, FakeGemini]
http = httpx.Client(timeout=5)  # one pool for the module: a new client per call costs an SSL context


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    http.close()


@pytest.fixture(params=FAKES, ids=lambda cls: cls.__name__)
def fake(request: pytest.FixtureRequest) -> Iterator[CloudFake]:
    with request.param() as server:
        yield server


# -- a minimal client for each wire format ------------------------------------
def chat_args(
    fake: CloudFake,
    model: str | None = None,
    text: str = "hello there",
    *,
    stream: bool = False,
    key: str = "test-key",
    max_tokens: int | None = None,
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(url, headers, json) of a chat request as each provider's SDK would send it."""
    model = model or fake.models[0]
    if isinstance(fake, FakeAnthropic):
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens or 100,
            "messages": [{"role": "user", "content": text}],
            "stream": stream,
        }
        return f"{fake.url}/v1/messages", {"x-api-key": key, "anthropic-version": "2023-06-01"}, body
    if isinstance(fake, FakeGemini):
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        if max_tokens:
            body["generationConfig"] = {"maxOutputTokens": max_tokens}
        return f"{fake.url}/v1beta/models/{model}:{action}", {"x-goog-api-key": key}, body
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    if max_tokens:
        body["max_tokens"] = max_tokens
    return f"{fake.url}/v1/chat/completions", {"Authorization": f"Bearer {key}"}, body


def post_chat(fake: CloudFake, timeout: float = 5, **kwargs: Any) -> httpx.Response:
    url, headers, body = chat_args(fake, **kwargs)
    return http.post(url, headers=headers, json=body, timeout=timeout)


def parse_reply(fake: CloudFake, data: dict[str, Any]) -> tuple[str, str, int, int]:
    """(text, finish reason, input tokens, output tokens) of a non-streamed reply."""
    if isinstance(fake, FakeAnthropic):
        return (
            data["content"][0]["text"],
            data["stop_reason"],
            data["usage"]["input_tokens"],
            data["usage"]["output_tokens"],
        )
    if isinstance(fake, FakeGemini):
        candidate, usage = data["candidates"][0], data["usageMetadata"]
        return (
            candidate["content"]["parts"][0]["text"],
            candidate["finishReason"],
            usage["promptTokenCount"],
            usage["candidatesTokenCount"],
        )
    usage = data["usage"]
    return (
        data["choices"][0]["message"]["content"],
        data["choices"][0]["finish_reason"],
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )


def sse_data(raw: str) -> list[Any]:
    return [
        line[6:] if line[6:] == "[DONE]" else json.loads(line[6:])
        for line in raw.splitlines()
        if line.startswith("data: ")
    ]


def stream_text(fake: CloudFake, events: list[Any]) -> str:
    if isinstance(fake, FakeAnthropic):
        return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    if isinstance(fake, FakeGemini):
        return "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events)
    return "".join(e["choices"][0]["delta"].get("content", "") for e in events if e != "[DONE]" and e["choices"])


def read_stream(fake: CloudFake, timeout: float = 5) -> tuple[list[str], Exception | None]:
    """Lines of a streamed chat until it ends or fails, and the failure."""
    url, headers, body = chat_args(fake, stream=True)
    lines: list[str] = []
    try:
        with http.stream("POST", url, headers=headers, json=body, timeout=timeout) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                lines.append(line)
    except httpx.HTTPError as exc:
        return lines, exc
    return lines, None


# -- normal replies -----------------------------------------------------------
def test_reply_echoes_model_and_prompt(fake: CloudFake) -> None:
    model = fake.models[1]
    resp = post_chat(fake, model=model)
    assert resp.status_code == 200
    finish_ok = {"stop", "end_turn", "STOP"}
    text, finish, prompt, output = parse_reply(fake, resp.json())
    assert text == f"Echo from {model}: hello there" and finish in finish_ok and (prompt, output) == (2, 5)
    text, finish, _, output = parse_reply(fake, post_chat(fake, max_tokens=2).json())
    assert text == "Echo from" and finish in {"length", "max_tokens", "MAX_TOKENS"} and output == 2
    assert fake.chat_count == 2 and fake.last_chat_body() == chat_args(fake, max_tokens=2)[2]


def test_stream_delivers_the_same_text_word_by_word(fake: CloudFake) -> None:
    url, headers, body = chat_args(fake, stream=True)
    resp = http.post(url, headers=headers, json=body)
    assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
    events = sse_data(resp.text)
    assert stream_text(fake, events) == f"Echo from {fake.models[0]}: hello there"
    if isinstance(fake, FakeGemini):  # no [DONE]; the last event carries finish and usage
        assert "[DONE]" not in resp.text and events[-1]["usageMetadata"]["candidatesTokenCount"] == 5
        assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    elif isinstance(fake, FakeAnthropic):
        kinds = [line[7:] for line in resp.text.splitlines() if line.startswith("event: ")]
        assert kinds == [
            "message_start",
            "content_block_start",
            "ping",
            *["content_block_delta"] * 5,
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert events[-2]["usage"] == {"output_tokens": 5} and events[0]["message"]["usage"]["input_tokens"] == 2
    else:
        assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""} | (
            {} if isinstance(fake, FakeMistral) else {"refusal": None}
        )
        assert events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "stop"


def test_a_long_answer_on_request_streams_that_many_words(fake: CloudFake) -> None:
    url, headers, body = chat_args(fake, text="Answer with 1000 words", stream=True, max_tokens=2000)
    text = stream_text(fake, sse_data(http.post(url, headers=headers, json=body).text))
    assert text == long_answer("answer with 1000 words") and len(text.split()) == 1000
    assert [len(p.split()) for p in text.split("\n\n")] == [PARAGRAPH] * 12 + [40]  # Markdown blocks
    # Only the exact request: a prompt that merely mentions it is echoed.
    assert long_answer("please answer with 5 words") is None and long_answer("answer with 0 words") is None


# -- provider specifics ---------------------------------------------------------
def test_openai_wire() -> None:
    with FakeOpenAI(keys={"sk-good-0000"}) as fake:
        ok = {"Authorization": "Bearer sk-good-0000"}
        models = http.get(f"{fake.url}/v1/models", headers=ok).json()
        assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["gpt-4o-mini", "gpt-4o"]
        assert set(models["data"][0]) == {"id", "object", "created", "owned_by"}
        bad = http.get(f"{fake.url}/v1/models", headers={"Authorization": "Bearer sk-wrong-key-9876"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
        assert "sk-**********9876" in bad.json()["error"]["message"] and "wrong" not in bad.text
        assert http.get(f"{fake.url}/v1/models").status_code == 401
        url, _, body = chat_args(fake)
        usage_stream = http.post(
            url, headers=ok, json={**body, "model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}}
        )
        events = sse_data(usage_stream.text)
        assert events[-2] == {
            **events[-2],
            "choices": [],
            "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7},
        }
        assert all(e["usage"] is None for e in events[:-2])
        missing = http.post(url, headers=ok, json={**body, "model": "gpt-9"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
        assert http.post(url, headers=ok, content=b"{not json").status_code == 400
        fake.context_limit = 1
        too_long = http.post(url, headers=ok, json=body).json()["error"]
        assert too_long["code"] == "context_length_exceeded" and "resulted in 2 tokens" in too_long["message"]


def test_mistral_wire() -> None:
    with FakeMistral() as fake:
        url, headers, body = chat_args(fake)
        assert http.post(url, headers={"Authorization": "Bearer nope"}, json=body).json() == {"detail": "Unauthorized"}
        unknown = http.post(url, headers=headers, json={**body, "model": "x"})
        assert unknown.status_code == 400 and unknown.json() == {
            "object": "error",
            "message": "Invalid model: x",
            "type": "invalid_model",
            "param": None,
            "code": "1500",
        }
        extra = http.post(url, headers=headers, json={**body, "max_completion_tokens": 5})
        assert extra.status_code == 422 and extra.json()["message"]["detail"][0]["type"] == "extra_forbidden"
        events = sse_data(http.post(url, headers=headers, json={**body, "stream": True}).text)
        assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-2]["usage"]["total_tokens"] == 7
        models = http.get(f"{fake.url}/v1/models", headers=headers).json()["data"]
        assert [m["id"] for m in models] == ["mistral-small-latest", "mistral-large-latest"]


def test_anthropic_wire() -> None:
    with FakeAnthropic() as fake:
        url, headers, body = chat_args(fake)

        def error_of(resp: httpx.Response) -> tuple[int, str, str]:
            assert resp.json()["request_id"].startswith("req_")
            return resp.status_code, resp.json()["error"]["type"], resp.json()["error"]["message"]

        no_version = {"x-api-key": "test-key"}
        assert error_of(http.post(url, headers=no_version, json=body))[:2] == (400, "invalid_request_error")
        assert error_of(http.post(url, headers={**headers, "x-api-key": "bad"}, json=body)) == (
            401,
            "authentication_error",
            "invalid x-api-key",
        )
        no_max = {k: v for k, v in body.items() if k != "max_tokens"}
        assert error_of(http.post(url, headers=headers, json=no_max)) == (
            400,
            "invalid_request_error",
            "max_tokens: Field required",
        )
        system_role = {**body, "messages": [{"role": "system", "content": "x"}, *body["messages"]]}
        assert error_of(http.post(url, headers=headers, json=system_role))[0] == 400
        assert error_of(http.post(url, headers=headers, json={**body, "model": "claude-9"})) == (
            404,
            "not_found_error",
            "model: claude-9",
        )
        reply = http.post(url, headers=headers, json={**body, "system": [{"type": "text", "text": "be brief"}]})
        assert reply.json()["usage"]["input_tokens"] == 4 and reply.json()["stop_sequence"] is None
        page = http.get(f"{fake.url}/v1/models", params={"limit": 1}, headers=headers).json()
        assert page["has_more"] and page["first_id"] == page["last_id"] == "claude-3-5-haiku-latest"
        assert page["data"][0] == {
            "type": "model",
            "id": "claude-3-5-haiku-latest",
            "display_name": "Claude Haiku 3.5",
            "created_at": "2024-10-22T00:00:00Z",
        }
        rest = http.get(f"{fake.url}/v1/models", params={"after_id": page["last_id"]}, headers=headers).json()
        assert [m["id"] for m in rest["data"]] == ["claude-sonnet-4-5"] and not rest["has_more"]


def test_gemini_wire() -> None:
    with FakeGemini() as fake:
        url, headers, body = chat_args(fake)
        bad = http.post(url, headers={"x-goog-api-key": "nope"}, json=body)
        assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert bad.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        assert http.post(url, json=body).json()["error"]["status"] == "PERMISSION_DENIED"
        assert http.post(url, params={"key": "test-key"}, json=body).status_code == 200
        unknown = http.post(url.replace("gemini-2.0-flash", "gemini-9"), headers=headers, json=body)
        assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
        wrong_role = {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}
        assert http.post(url, headers=headers, json=wrong_role).status_code == 400
        system = {**body, "systemInstruction": {"parts": [{"text": "be brief"}]}}
        assert http.post(url, headers=headers, json=system).json()["usageMetadata"]["promptTokenCount"] == 4
        page = http.get(f"{fake.url}/v1beta/models", params={"pageSize": 1}, headers=headers).json()
        assert [m["name"] for m in page["models"]] == ["models/gemini-2.0-flash"]
        assert "generateContent" in page["models"][0]["supportedGenerationMethods"]
        rest = http.get(
            f"{fake.url}/v1beta/models", params={"pageToken": page["nextPageToken"]}, headers=headers
        ).json()
        assert [m["name"] for m in rest["models"]] == ["models/gemini-2.5-pro"] and "nextPageToken" not in rest
        array = http.post(url.replace(":generateContent", ":streamGenerateContent"), headers=headers, json=body)
        assert array.headers["content-type"] == "application/json" and len(array.json()) == 5


# -- faults -----------------------------------------------------------------------
# (status, a marker of the provider's body) per fault; retry hints are checked separately.
HTTP_FAULTS: dict[type[CloudFake], dict[str, tuple[int, str]]] = {
    FakeOpenAI: {
        "401": (401, "invalid_api_key"),
        "404": (404, "model_not_found"),
        "429": (429, "rate_limit_exceeded"),
        "quota": (429, "insufficient_quota"),
        "500": (500, "server_error"),
        "503": (503, "server_error"),
        "529": (503, "server_error"),
        "context": (400, "context_length_exceeded"),
    },
    FakeMistral: {
        "401": (401, "Unauthorized"),
        "404": (400, "invalid_model"),
        "429": (429, "rate_limited"),
        "quota": (429, "rate_limited"),
        "500": (500, "internal_server_error"),
        "503": (503, "service_unavailable"),
        "529": (503, "service_unavailable"),
        "context": (400, "too large for model"),
    },
    FakeAnthropic: {
        "401": (401, "authentication_error"),
        "404": (404, "not_found_error"),
        "429": (429, "rate_limit_error"),
        "quota": (429, "usage limits"),
        "500": (500, "api_error"),
        "503": (503, "api_error"),
        "529": (529, "overloaded_error"),
        "context": (400, "prompt is too long"),
    },
    FakeGemini: {
        "401": (400, "API_KEY_INVALID"),
        "404": (404, "NOT_FOUND"),
        "429": (429, "RetryInfo"),
        "quota": (429, "RESOURCE_EXHAUSTED"),
        "500": (500, "INTERNAL"),
        "503": (503, "UNAVAILABLE"),
        "529": (503, "UNAVAILABLE"),
        "context": (400, "input token count"),
    },
}


def test_http_faults_use_the_provider_errors(fake: CloudFake) -> None:
    for fault, (status, marker) in HTTP_FAULTS[type(fake)].items():
        fake.fail(fault, times=1)
        resp = post_chat(fake)
        assert (resp.status_code, marker in resp.text) == (status, True), fault
        if fault == "429" and not isinstance(fake, FakeGemini):
            assert resp.headers["retry-after"] == "1"
        if fault == "quota":
            assert "retry-after" not in resp.headers and "RetryInfo" not in resp.text
    assert post_chat(fake).status_code == 200  # every fault was used up
    fake.fail("429", times=1, retry_after="7", retry_after_ms="7000")
    resp = post_chat(fake, stream=True)
    if isinstance(fake, FakeGemini):
        assert resp.json()["error"]["details"][-1]["retryDelay"] == "7s"
    else:
        assert resp.status_code == 429 and resp.headers["retry-after"] == "7"


def test_fault_queue_order_scope_and_counters() -> None:
    with FakeOpenAI() as fake:
        fake.fail(Fault.RATE_LIMIT, times=2)
        fake.fail("500", times=1)
        fake.fail("503", model="gpt-4o")  # until cleared, and only for gpt-4o
        statuses = [post_chat(fake).status_code for _ in range(4)]
        assert statuses == [429, 429, 500, 200]
        assert [post_chat(fake, model="gpt-4o").status_code for _ in range(2)] == [503, 503]
        fake.clear_faults()
        assert post_chat(fake, model="gpt-4o").status_code == 200
        assert fake.chat_count == 7 and fake.wait_for_chat(7, timeout=0) and not fake.wait_for_chat(8, timeout=0.01)
        assert fake.last_chat_body()["model"] == "gpt-4o"
        fake.reset_log()
        assert fake.chat_count == 0 and fake.last_chat_body() is None
        with pytest.raises(ValueError):
            fake.fail("teapot")


def test_refuse_cut_malformed_and_error_event(fake: CloudFake) -> None:
    fake.fail("refuse", times=1)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        post_chat(fake)

    fake.fail("cut", times=2)
    with pytest.raises(httpx.RemoteProtocolError):
        post_chat(fake)
    lines, exc = read_stream(fake)
    assert isinstance(exc, httpx.RemoteProtocolError)
    assert stream_text(fake, sse_data("\n".join(lines))) == "Echo from"  # two words, then the cut

    fake.fail("malformed", times=2)
    resp = post_chat(fake)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()
    lines, exc = read_stream(fake)
    assert exc is None
    with pytest.raises(ValueError):
        sse_data("\n".join(lines))

    fake.fail("error_event", times=2)
    lines, exc = read_stream(fake)
    assert exc is None and lines
    last = json.loads([line for line in lines if line.startswith("data: ")][-1][6:])
    expected_type = "overloaded_error" if isinstance(fake, FakeAnthropic) else None
    assert "error" in last and (expected_type is None or last["error"]["type"] == expected_type)
    if isinstance(fake, FakeAnthropic):
        assert "event: error" in lines
    assert post_chat(fake).status_code == (529 if isinstance(fake, FakeAnthropic) else 503)
    assert fake.chat_count == 7


def test_timeout_and_stall_hold_until_the_client_gives_up(fake: CloudFake) -> None:
    fake.fail("timeout", times=1)
    with pytest.raises(httpx.ReadTimeout):
        post_chat(fake, timeout=0.15)
    fake.fail("stall")
    lines, exc = read_stream(fake, timeout=0.15)
    assert isinstance(exc, httpx.ReadTimeout) and stream_text(fake, sse_data("\n".join(lines))) == "Echo from"

    # clear_faults() lets a held request go: the client sees the connection drop at once.
    fake.fail("timeout")
    failures: list[Exception] = []

    def call() -> None:
        try:
            post_chat(fake, timeout=10)
        except httpx.HTTPError as exc:
            failures.append(exc)

    caller = threading.Thread(target=call)
    seen = fake.chat_count
    caller.start()
    assert fake.wait_for_chat(seen + 1, timeout=2)
    fake.clear_faults()
    caller.join(timeout=2)
    assert not caller.is_alive() and isinstance(failures[0], httpx.RemoteProtocolError)


def test_stop_is_fast_with_held_connections() -> None:
    fake = FakeAnthropic().start()
    fake.fail("stall", times=1)
    fake.fail("timeout")
    errors: list[BaseException] = []

    def call(stream: bool) -> None:
        try:
            post_chat(fake, timeout=10, stream=stream)
        except httpx.HTTPError as exc:
            errors.append(exc)

    callers = [threading.Thread(target=call, args=(s,)) for s in (True, False)]
    for c in callers:
        c.start()
    assert fake.wait_for_chat(2, timeout=2)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1
    for c in callers:
        c.join(timeout=2)
    assert len(errors) == 2
