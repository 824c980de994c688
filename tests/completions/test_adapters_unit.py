"""Small unit checks of the adapters' reading of the wire, with respx standing in for the network."""

import httpx
import pytest
import respx
from asgiref.sync import async_to_sync

from orchestrator.failures import FailureCode
from providers.adapters import (
    AnthropicAdapter,
    ChatParams,
    GeminiAdapter,
    OpenAIAdapter,
    ProviderError,
    _sse,
)

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def run(coro_fn, *args):  # noqa: ANN001, ANN201 - a test helper
    return async_to_sync(coro_fn)(*args)


def error_from(adapter, status: int, payload: object, headers: dict | None = None) -> ProviderError:  # noqa: ANN001
    return adapter.error_of(status, payload, httpx.Headers(headers or {}))


def test_openai_error_classes() -> None:
    a = OpenAIAdapter(base_url="http://x/v1", api_key="sk-secret-value-123")
    assert error_from(a, 401, {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}).code == "auth"
    quota = error_from(a, 429, {"error": {"message": "quota", "type": "insufficient_quota"}})
    assert quota.code == FailureCode.QUOTA and not quota.retryable
    limited = error_from(a, 429, {"error": {"message": "slow down"}}, {"retry-after-ms": "1500", "retry-after": "9"})
    assert limited.code == FailureCode.RATE_LIMITED and limited.retryable and limited.retry_after == 1.5
    ctx = error_from(a, 400, {"error": {"message": "too long", "code": "context_length_exceeded"}})
    assert ctx.code == FailureCode.CONTEXT and not ctx.retryable
    assert error_from(a, 400, {"object": "error", "message": "Invalid model: x", "type": "invalid_model"}).code == (
        FailureCode.NOT_FOUND
    )
    assert error_from(a, 401, {"detail": "Unauthorized"}).code == FailureCode.AUTH
    assert error_from(a, 503, None).retryable and error_from(a, 409, None).retryable
    echoed = error_from(a, 400, {"error": {"message": "bad key sk-secret-value-123 given"}})
    assert "sk-secret-value-123" not in echoed.message


def test_anthropic_error_classes() -> None:
    a = AnthropicAdapter(base_url="http://x", api_key="k" * 10)
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "limit"}}
    assert error_from(a, 429, body, {"retry-after": "2"}).code == FailureCode.RATE_LIMITED
    assert error_from(a, 429, body).code == FailureCode.QUOTA  # spend cap: no retry-after
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert error_from(a, 529, overloaded).code == FailureCode.OVERLOADED
    too_long = {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}
    assert error_from(a, 400, too_long).code == FailureCode.CONTEXT


def test_gemini_error_classes() -> None:
    a = GeminiAdapter(base_url="http://x", api_key="k" * 10)
    bad_key = {
        "error": {
            "code": 400,
            "message": "API key not valid.",
            "status": "INVALID_ARGUMENT",
            "details": [{"reason": "API_KEY_INVALID"}],
        }
    }
    assert error_from(a, 400, bad_key).code == FailureCode.AUTH
    limited = {"error": {"code": 429, "message": "Resource exhausted", "details": [{"retryDelay": "27s"}]}}
    err = error_from(a, 429, limited)
    assert err.code == FailureCode.RATE_LIMITED and err.retry_after == 27
    quota = {"error": {"code": 429, "message": "You exceeded your current quota"}}
    assert error_from(a, 429, quota).code == FailureCode.QUOTA
    assert error_from(a, 503, {"error": {"code": 503, "message": "overloaded"}}).code == FailureCode.OVERLOADED


def test_request_shapes() -> None:
    params = ChatParams(max_tokens=5, temperature=0.2, stop=["\n"])
    path, body, query = AnthropicAdapter(base_url="http://x", api_key="k").chat_request(
        "claude", MESSAGES, params, True
    )
    assert path == "/v1/messages" and body["system"] == "Be brief." and body["messages"] == MESSAGES[1:]
    assert body["max_tokens"] == 5 and body["stop_sequences"] == ["\n"] and body["stream"] is True
    _, no_max, _ = AnthropicAdapter(base_url="http://x", api_key="k").chat_request("c", MESSAGES, ChatParams(), False)
    assert no_max["max_tokens"] == 1024  # required by Anthropic, so a default is always sent
    path, body, query = GeminiAdapter(base_url="http://x", api_key="k").chat_request("gemini-x", MESSAGES, params, True)
    assert path == "/v1beta/models/gemini-x:streamGenerateContent" and query == {"alt": "sse"}
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    assert body["generationConfig"] == {"maxOutputTokens": 5, "temperature": 0.2, "stopSequences": ["\n"]}
    _, body, _ = OpenAIAdapter(base_url="http://x/v1", api_key=None).chat_request("m", MESSAGES, params, True)
    assert body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 5


def _events(*chunks: bytes) -> list[tuple[str | None, str]]:
    async def body():  # noqa: ANN202
        for chunk in chunks:
            yield chunk

    async def collect() -> list:
        return [item async for item in _sse(body())]

    return async_to_sync(collect)()


def test_sse_framing() -> None:
    body = b": comment\nevent: ping\ndata: {}\n\ndata: a\ndata: b\n\ndata: tail"
    assert _events(body) == [("ping", "{}"), (None, "a\nb"), (None, "tail")]


def test_sse_framing_across_chunks() -> None:
    body = "data: a\r\ndata: b\r\n\r\ndata: é€\r\rdata: c\n\n".encode()
    expected = [(None, "a\nb"), (None, "é€"), (None, "c")]
    assert _events(body) == expected
    # Split at every byte: CRLFs and UTF-8 characters cut in two read as if whole.
    assert _events(*(body[i : i + 1] for i in range(len(body)))) == expected
    # Split after each CR: the LF that follows is the same line end, not an empty line.
    assert _events(*(part + b"\r" for part in body.split(b"\r")[:-1]), body.split(b"\r")[-1]) == expected
    # A body that ends on a CR ends its line there.
    assert _events(b"data: x\r") == [(None, "x")]
    # Only CR, LF and CRLF end a line (U+2028 and form feed are text).
    assert _events("data: a\u2028b\x0cc\n\n".encode()) == [(None, "a\u2028b\x0cc")]


@respx.mock(using="httpx")  # at the client, whatever transport sends the requests
def test_openai_non_stream_parse_and_bad_shape(respx_mock: respx.MockRouter) -> None:
    adapter = OpenAIAdapter(base_url="http://upstream.test/v1", api_key="sk-x")
    route = respx_mock.post("http://upstream.test/v1/chat/completions")
    route.return_value = httpx.Response(
        200,
        json={
            "choices": [{"message": {"content": "hello"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1},
        },
    )
    result = run(adapter.complete, "m", MESSAGES, ChatParams())
    assert result.text == "hello" and result.finish_reason == "length" and result.usage.total_tokens == 4
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-x"
    route.return_value = httpx.Response(200, json={"unexpected": True})
    with pytest.raises(ProviderError) as caught:
        run(adapter.complete, "m", MESSAGES, ChatParams())
    assert caught.value.code == FailureCode.BAD_RESPONSE


@respx.mock(using="httpx")  # at the client, whatever transport sends the requests
def test_gemini_model_list_keeps_chat_models(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("http://g.test/v1beta/models").return_value = httpx.Response(
        200,
        json={
            "models": [
                {
                    "name": "models/gemini-2.0-flash",
                    "displayName": "Gemini 2.0 Flash",
                    "inputTokenLimit": 1048576,
                    "supportedGenerationMethods": ["generateContent"],
                },
                {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
            ]
        },
    )
    models = run(GeminiAdapter(base_url="http://g.test", api_key="k").list_models)
    assert [(m.id, m.context_length) for m in models] == [("gemini-2.0-flash", 1048576)]
