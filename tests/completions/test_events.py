"""The completion events on the wire, and the failure codes' HTTP statuses. No server, no database."""

import json

import pytest

from completions.events import Budget, Delta, Done, Error, Fallback, Loading, Start
from models_mgmt.services import Status
from orchestrator.failures import HTTP_STATUS, FailureCode, failure_http_status

USAGE = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
BUDGET = Budget("tokens_per_day", "2026-11-30T00:00:00+00:00", 42)


@pytest.mark.parametrize(
    ("event", "sse"),
    [
        (Start("openai/gpt-4o-mini", 1), b'event: start\ndata: {"model": "openai/gpt-4o-mini", "attempt": 1}\n\n'),
        (Loading("lmstudio/qwen"), b'event: loading\ndata: {"model": "lmstudio/qwen"}\n\n'),
        # Not ASCII-escaped: the page shows what the model wrote, and a token is sent as it came.
        (Delta("Grüße 👋\n"), 'event: delta\ndata: {"text": "Grüße 👋\\n"}\n\n'.encode()),
        (
            Fallback("openai/gpt-4o-mini", "lmstudio/qwen", "HTTP 503", FailureCode.SERVER),
            b'event: fallback\ndata: {"from": "openai/gpt-4o-mini", "to": "lmstudio/qwen", "reason": "HTTP 503", '
            b'"code": "server_error"}\n\n',
        ),
        (
            Done("openai/gpt-4o-mini", USAGE, "stop", 12),
            b'event: done\ndata: {"model": "openai/gpt-4o-mini", "usage": {"prompt_tokens": 4, "completion_tokens": 2, '
            b'"total_tokens": 6}, "finish_reason": "stop", "latency_ms": 12}\n\n',
        ),
        (
            Done("ollama/llama3", None, None, 3),
            b'event: done\ndata: {"model": "ollama/llama3", "usage": null, "finish_reason": null, "latency_ms": 3}\n\n',
        ),
        (
            Error(FailureCode.NO_KEY, "No API key for OpenAI", "openai/gpt-4o-mini"),
            b'event: error\ndata: {"code": "no_key", "message": "No API key for OpenAI", '
            b'"model": "openai/gpt-4o-mini"}\n\n',
        ),
        (
            Error(FailureCode.STREAM_CUT, "cut off", "openai/gpt-4o-mini", partial=True),
            b'event: error\ndata: {"code": "stream_cut", "message": "cut off", "model": "openai/gpt-4o-mini", '
            b'"partial": true}\n\n',
        ),
        (
            Error(FailureCode.OVER_BUDGET, "Over budget", "openai/gpt-4o-mini", budget=BUDGET),
            b'event: error\ndata: {"code": "over_budget", "message": "Over budget", "model": "openai/gpt-4o-mini", '
            b'"limit": "tokens_per_day", "resets_at": "2026-11-30T00:00:00+00:00", "retry_after": 42}\n\n',
        ),
    ],
)
def test_each_event_is_sent_as_the_page_and_clients_read_it(event: object, sse: bytes) -> None:
    assert event.sse() == sse
    name, data = sse.decode().removesuffix("\n\n").split("\n")
    assert name == f"event: {event.name}" and json.loads(data.removeprefix("data: ")) == event.as_data()


def test_privacy_is_not_part_of_an_events_identity() -> None:
    # Kept out of shared metrics only: the same start, private or not, is the same event on the wire.
    private = Start("mine/model", 1, private=True)
    assert private == Start("mine/model", 1) and private.sse() == Start("mine/model", 1).sse()
    assert private.private and not Delta("x").private


def test_events_cannot_be_changed_once_made() -> None:
    with pytest.raises(AttributeError):
        Delta("x").text = "y"  # type: ignore[misc]
    assert not hasattr(Delta("x"), "__dict__")  # slots: one is made per token, so it stays small


def test_codes_are_their_wire_strings() -> None:
    assert FailureCode("context_length") is FailureCode.CONTEXT and FailureCode.CONTEXT == "context_length"
    assert json.dumps({"code": FailureCode.RATE_LIMITED}) == '{"code": "rate_limited"}'
    with pytest.raises(ValueError, match="not a valid"):
        FailureCode("something_new")


def test_every_unusable_model_state_is_a_failure_code() -> None:
    # `_plan` turns an unusable model's state into the code the completion fails with.
    unusable = {Status.FAILED, Status.NO_KEY, Status.UNREACHABLE, Status.INACTIVE, Status.NOT_LOADED}
    assert unusable <= {code.value for code in FailureCode}


def test_every_failure_code_has_an_http_status() -> None:
    # A new code without a status fails here, not as a KeyError in the middle of an answer.
    assert set(HTTP_STATUS) == set(FailureCode)
    for code in FailureCode:
        assert code.http_status in {400, 404, 429, 502, 503, 504}, code
        assert failure_http_status(code) == code.http_status


@pytest.mark.parametrize(
    ("code", "earlier", "partial", "status"),
    [
        (FailureCode.NO_KEY, [], False, 503),
        (FailureCode.SERVER, [], False, 502),
        (FailureCode.STALLED, [], False, 504),
        (FailureCode.CONTEXT, [], False, 400),
        (FailureCode.OVER_BUDGET, [], False, 429),
        (FailureCode.NOT_FOUND, [], False, 404),
        (FailureCode.NOT_FOUND, [FailureCode.SERVER], False, 502),  # a fallback's model, not the one asked for
        (FailureCode.RATE_LIMITED, [FailureCode.QUOTA], False, 429),  # every model tried was limited
        (FailureCode.QUOTA, [FailureCode.CONNECT], False, 503),  # another failed otherwise: waiting won't help
        (FailureCode.RATE_LIMITED, ["rate_limited"], False, 429),  # codes read back from JSON are plain strings
        (FailureCode.NO_KEY, [], True, 502),
        (FailureCode.CONTEXT, [], True, 502),  # text came first: whatever broke, the answer is partial
    ],
)
def test_a_failed_completions_status(code: FailureCode, earlier: list[str], partial: bool, status: int) -> None:
    assert failure_http_status(code, earlier=earlier, partial=partial) == status
