"""The OpenAI wire format on its own: request parsing, error mapping and the shapes of answers and
chunks, checked against the official SDK's own types. No server, no database."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from completions.events import Budget, CompletionEvent, Delta, Done, Error, Fallback, Loading, Start
from completions.services import CompletionResult
from gateway import openai_format as fmt
from models_mgmt.models import AIModel
from models_mgmt.services import ModelStatus, Status
from orchestrator.failures import FailureCode
from providers.adapters import ChatParams
from providers.models import Provider

USAGE = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}


def body(**fields: Any) -> bytes:
    return json.dumps(
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **fields}
    ).encode()


def test_a_full_request_becomes_the_services_terms() -> None:
    parsed = fmt.parse_chat_request(
        body(
            messages=[
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
                {"role": "assistant", "content": None},
            ],
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=10,
            max_completion_tokens=20,
            temperature=1,
            top_p=0.5,
            stop="END",
            n=1,
            user="someone",
            tools=[],
        )
    )
    assert parsed.model == "openai/gpt-4o-mini" and parsed.stream and parsed.include_usage
    assert parsed.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one\ntwo"},
        {"role": "assistant", "content": ""},
    ]
    # max_completion_tokens is OpenAI's newer name and wins over the deprecated one.
    assert parsed.params == ChatParams(max_tokens=20, temperature=1.0, top_p=0.5, stop=["END"])


def test_defaults() -> None:
    parsed = fmt.parse_chat_request(body(stream_options=None))
    assert not parsed.stream and not parsed.include_usage and parsed.params == ChatParams()


@pytest.mark.parametrize(
    ("raw", "param", "says"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"", None, "JSON object"),
        (b"[1]", None, "JSON object"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model", "Missing required"),
        (body(messages=[]), "messages", "at least 1"),
        (body(messages=["hi"]), "messages[0]", "object"),
        (body(messages=[{"role": "user"}]), "messages[0].content", "Missing required"),
        (body(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role", "Invalid value"),
        (body(messages=[{"role": "tool", "content": "x", "tool_call_id": "1"}]), "messages[0].role", "Tool"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
            "messages[0].content",
            "'image_url' is not supported",
        ),
        (body(messages=[{"role": "user", "content": [{"text": "no type"}]}]), "messages[0].content", "text only"),
        (body(stream="yes"), "stream", "boolean"),
        (body(temperature="hot"), "temperature", "number"),
        (body(temperature=2.5), "temperature", "less than or equal to 2"),
        (body(top_p=-1), "top_p", "greater than or equal to 0"),
        (body(max_tokens=0), "max_tokens", "greater than or equal to 1"),
        (body(max_tokens="5"), "max_tokens", "integer"),
        (body(stop=["a", 1]), "stop[1]", "string"),
        (body(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4"),
        (body(n=2), "n", "Only n=1"),
        (body(stream_options={"include_usage": True}), "stream_options", "only allowed when 'stream'"),
    ],
)
def test_bad_requests_are_400_with_the_parameter_named(raw: bytes, param: str | None, says: str) -> None:
    with pytest.raises(fmt.GatewayError) as caught:
        fmt.parse_chat_request(raw)
    error = caught.value
    assert error.status == 400
    assert error.body()["error"] == {
        "message": error.message,
        "type": "invalid_request_error",
        "param": param,
        "code": None,
    }
    assert says in error.message


@pytest.mark.parametrize(
    ("code", "fallback_codes", "status", "type_", "openai_code"),
    [
        ("rate_limited", [], 429, "requests", "rate_limit_exceeded"),
        ("rate_limited", ["quota"], 429, "requests", "rate_limit_exceeded"),
        ("quota", ["quota"], 429, "insufficient_quota", "insufficient_quota"),
        ("rate_limited", ["server_error"], 503, "server_error", "rate_limited"),
        ("context_length", [], 400, "invalid_request_error", "context_length_exceeded"),
        ("bad_request", [], 400, "invalid_request_error", None),
        ("no_key", [], 503, "server_error", "no_key"),
        ("unreachable", [], 503, "server_error", "unreachable"),
        ("failed", [], 503, "server_error", "failed"),
        ("load_failed", [], 503, "server_error", "load_failed"),
        ("overloaded", [], 503, "server_error", "overloaded"),
        ("timeout", [], 504, "server_error", "timeout"),
        ("stalled", [], 504, "server_error", "stalled"),
        ("server_error", [], 502, "server_error", "server_error"),
        ("auth", [], 502, "server_error", "auth"),
        ("not_found", [], 404, "invalid_request_error", "model_not_found"),
        ("connect", [], 502, "server_error", "connect"),
        ("not_found", ["server_error"], 502, "server_error", "not_found"),  # a fallback's, not the one asked for
        ("not_loaded", [], 503, "server_error", "not_loaded"),
        ("blocked", [], 503, "server_error", "blocked"),
    ],
)
def test_service_errors_map_to_openai_statuses(
    code: str, fallback_codes: list[str], status: int, type_: str, openai_code: str | None
) -> None:
    earlier = [FailureCode(c) for c in fallback_codes]
    error = fmt.service_error(Error(FailureCode(code), "why", "c/d"), earlier)
    assert (error.status, error.type, error.code) == (status, type_, openai_code)
    assert error.body()["error"]["message"] == "why"


def test_over_budget_names_the_limit_and_when_to_retry() -> None:
    budget = Budget("requests_per_minute", "2026-01-01T00:01:00+00:00", 17)
    error = fmt.service_error(Error(FailureCode.OVER_BUDGET, "Over budget", "a/b", budget=budget), [])
    assert (error.status, error.type, error.code, error.param) == (429, "requests", "budget_exceeded", budget.limit)
    assert error.retry_after == 17


@pytest.mark.parametrize("partial", [True, False])
def test_a_partial_answer_is_a_502(partial: bool) -> None:
    # Said by the caller (text came) or by the event itself: either way the answer broke off.
    error = fmt.service_error(Error(FailureCode.STREAM_CUT, "cut", "a/b", partial=not partial), [], partial=partial)
    assert (error.status, error.type, error.code) == (502, "server_error", "stream_cut")
    assert "broke off" in error.message


def test_auth_and_lookup_errors() -> None:
    assert (fmt.missing_api_key().status, fmt.missing_api_key().code) == (401, None)
    assert (fmt.invalid_api_key().status, fmt.invalid_api_key().code) == (401, "invalid_api_key")
    assert fmt.invalid_api_key().type == "invalid_request_error"
    missing = fmt.model_not_found("openai/nope")
    assert (missing.status, missing.code) == (404, "model_not_found") and "openai/nope" in missing.message


def model(model_id: str = "qwen/qwen2.5-7b-instruct", model_type: str = "llm") -> AIModel:
    provider = Provider(name="lmstudio", kind="lmstudio")
    row = AIModel(provider=provider, model_id=model_id, model_type=model_type)
    row.created_at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    return row


def test_model_objects_are_openais() -> None:
    listed = fmt.model_list([model()])
    assert listed["object"] == "list"
    entry = Model.model_validate(listed["data"][0])
    assert entry.id == "lmstudio/qwen/qwen2.5-7b-instruct" and entry.owned_by == "lmstudio"
    assert entry.created == int(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("status", "model_type", "listed"),
    [
        (Status.LOADED, "llm", True),
        (Status.AVAILABLE, "", True),
        (Status.NOT_LOADED, "llm", True),
        (Status.LOADING, "llm", True),
        (Status.LOADED, "embedding", False),
        (Status.FAILED, "llm", False),
        (Status.NO_KEY, "", False),
        (Status.INACTIVE, "llm", False),
        (Status.UNREACHABLE, "llm", False),
    ],
)
def test_which_models_are_listed(status: str, model_type: str, listed: bool) -> None:
    assert fmt.is_listed(ModelStatus(model=model(model_type=model_type), status=status)) is listed


def test_a_collected_result_is_a_chat_completion() -> None:
    result = CompletionResult(
        text="Hello!",
        model="lmstudio/qwen/qwen2.5-7b-instruct",
        usage=USAGE,
        finish_reason="length",
        fallbacks=[{"from": "openai/gpt-4o-mini", "to": "lmstudio/qwen/qwen2.5-7b-instruct", "reason": "503"}],
    )
    raw = fmt.completion_object(
        completion_id="chatcmpl-1", created=1700000000, requested="openai/gpt-4o-mini", result=result
    )
    completion = ChatCompletion.model_validate(raw)
    assert completion.model == "lmstudio/qwen/qwen2.5-7b-instruct" and completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hello!" and completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "length" and completion.usage.total_tokens == 6
    assert raw["orchestrator"] == {
        "model": "lmstudio/qwen/qwen2.5-7b-instruct",
        "requested_model": "openai/gpt-4o-mini",
        "fallbacks": result.fallbacks,
    }


@pytest.mark.parametrize(("given", "sent"), [("stop", "stop"), ("length", "length"), (None, "stop"), ("other", "stop")])
def test_finish_reasons_are_openais(given: str | None, sent: str) -> None:
    assert fmt.finish_reason(given) == sent


def opened(*events: CompletionEvent) -> fmt.Opening:
    opening = fmt.Opening(requested="openai/gpt-4o-mini")
    for e in events:
        if opening.feed(e):
            break
    return opening


def data_lines(raw: bytes) -> list[str]:
    blocks = raw.decode().split("\n\n")
    assert blocks[-1] == "", "every event ends with a blank line"
    assert all(b.startswith("data: ") for b in blocks[:-1])
    return [b.removeprefix("data: ") for b in blocks[:-1]]


def test_the_opening_knows_who_answers_after_a_fallback() -> None:
    opening = opened(
        Start("openai/gpt-4o-mini", 1),
        Fallback("openai/gpt-4o-mini", "lmstudio/qwen", "HTTP 503", FailureCode.SERVER),
        Loading("lmstudio/qwen"),
        Start("lmstudio/qwen", 1),
        Delta("Hi"),
    )
    assert opening.model == "lmstudio/qwen" and opening.first == Delta("Hi")
    assert opening.failure is None and opening.fallback_codes == [FailureCode.SERVER]
    assert opening.fallbacks == [
        {"from": "openai/gpt-4o-mini", "to": "lmstudio/qwen", "reason": "HTTP 503", "code": "server_error"}
    ]


def test_an_opening_that_ends_in_an_error_is_an_error_answer() -> None:
    opening = opened(
        Start("openai/gpt-4o-mini", 1),
        Error(FailureCode.RATE_LIMITED, "slow down", "openai/gpt-4o-mini"),
    )
    assert opening.failure is not None and opening.failure.status == 429
    assert fmt.Opening(requested="x").failure.status == 502  # nothing at all came


@pytest.mark.parametrize("include_usage", [True, False])
def test_a_stream_is_openais_chunks(include_usage: bool) -> None:
    opening = opened(Start("openai/gpt-4o-mini", 1), Delta("Hel"))
    writer = fmt.ChunkWriter(opening=opening, include_usage=include_usage, completion_id="chatcmpl-x")
    raw = writer.head() + writer.event(opening.first) + writer.event(Delta("lo"))
    raw += writer.event(Done("openai/gpt-4o-mini", USAGE, "stop", 5))
    lines = data_lines(raw)
    assert lines[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(line)) for line in lines[:-1]]
    assert {c.id for c in chunks} == {"chatcmpl-x"} and {c.model for c in chunks} == {"openai/gpt-4o-mini"}
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    assert chunks[0].model_extra["orchestrator"]["requested_model"] == "openai/gpt-4o-mini"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finished == ["stop"]
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 6
        assert all(c.usage is None for c in chunks[:-1])
    else:
        assert chunks[-1].choices[0].finish_reason == "stop" and "usage" not in json.loads(lines[-2])


def test_a_failure_after_text_is_an_error_line_without_done() -> None:
    opening = opened(Start("openai/gpt-4o-mini", 1), Delta("Hel"))
    writer = fmt.ChunkWriter(opening=opening, include_usage=True)
    raw = writer.event(Error(FailureCode.STREAM_CUT, "cut off", "x", partial=True))
    assert [json.loads(line) for line in data_lines(raw)] == [
        {"error": {"message": "cut off", "type": "server_error", "param": None, "code": "stream_cut"}}
    ]
    assert writer.event(Delta("more")) == b""  # nothing after the end
