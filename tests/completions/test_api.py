"""POST /api/completions: JSON and text/event-stream, fallback visible, bad input refused."""

import json
from contextlib import ExitStack

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from accounts.services import api_token_create
from models_mgmt.models import AIModel
from tests.completions.conftest import Cloud, start_cloud

pytestmark = pytest.mark.usefixtures("fast_timeouts")
QWEN = "qwen/qwen2.5-7b-instruct"


@pytest.fixture
def openai(db: None, alice: object) -> Cloud:
    with ExitStack() as stack:
        yield start_cloud(stack, "openai", alice)


def body(model: str, **extra: object) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}


def test_json_completion(alice_api: Client, openai: Cloud) -> None:
    response = alice_api.post(
        "/api/completions", body("openai/gpt-4o-mini", max_tokens=50), content_type="application/json"
    )
    assert response.status_code == 200
    result = response.json()
    assert result["text"] == "Echo from gpt-4o-mini: hello there" and result["model"] == "openai/gpt-4o-mini"
    assert result["usage"]["total_tokens"] > 0 and result["finish_reason"] == "stop" and result["error"] is None
    assert openai.fake.last_chat_body()["max_tokens"] == 50


def test_json_completion_falls_back_and_says_so(
    alice_api: Client, openai: Cloud, discovered: dict[str, AIModel]
) -> None:
    openai.fake.fail("503")
    result = alice_api.post("/api/completions", body("openai/gpt-4o-mini"), content_type="application/json").json()
    assert result["model"] == f"lmstudio/{QWEN}" and result["text"] == "Echo: hello there"
    assert result["fallbacks"][0]["from"] == "openai/gpt-4o-mini" and "503" in result["fallbacks"][0]["reason"]


def test_json_failure_without_fallback_is_502(alice_api: Client, openai: Cloud) -> None:
    openai.fake.fail("500")
    response = alice_api.post(
        "/api/completions", body("openai/gpt-4o-mini", fallback=False), content_type="application/json"
    )
    assert response.status_code == 502 and response.json()["error"]["code"] == "server_error"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("context", 400, "context_length"), ("429", 429, "rate_limited"), ("timeout", 504, "timeout")],
)
def test_a_failure_has_the_same_status_as_on_the_gateway(
    alice_api: Client, openai: Cloud, fault: str, status: int, code: str
) -> None:
    # One mapping from failure code to HTTP status, shared with /v1/chat/completions.
    openai.fake.fail(fault)
    response = alice_api.post(
        "/api/completions", body("openai/gpt-4o-mini", fallback=False), content_type="application/json"
    )
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert response.json()["text"] == "" and response.json()["model"] == "openai/gpt-4o-mini"


def test_no_usable_model_is_503(charlie: object, openai: Cloud) -> None:
    from tests.conftest import token_client

    response = token_client(charlie).post(
        "/api/completions", body("openai/gpt-4o-mini"), content_type="application/json"
    )
    assert response.status_code == 503 and response.json()["error"]["code"] == "no_key"


def test_a_whole_answer_cut_off_is_asked_again(alice_api: Client, openai: Cloud) -> None:
    # Not streamed: the answer is asked for whole, so a cut-off one is no answer yet, and asking again can help.
    openai.fake.fail("cut", times=1)
    response = alice_api.post("/api/completions", body("openai/gpt-4o-mini"), content_type="application/json")
    assert response.status_code == 200 and response.json()["text"] == "Echo from gpt-4o-mini: hello there"
    assert openai.fake.last_chat_body()["stream"] is False
    openai.fake.fail("cut")
    response = alice_api.post(
        "/api/completions", body("openai/gpt-4o-mini", fallback=False), content_type="application/json"
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "stream_cut" and response.json()["text"] == ""


def test_a_cut_stream_keeps_its_partial_text(alice: object, openai: Cloud) -> None:
    openai.fake.fail("cut")
    got = sse_events(stream(alice, body("openai/gpt-4o-mini", stream=True, fallback=False))[1])
    assert "".join(d["text"] for kind, d in got if kind == "delta").startswith("Echo from")
    assert got[-1][0] == "error" and got[-1][1]["partial"] is True and got[-1][1]["code"] == "stream_cut"


@pytest.mark.parametrize(
    "payload",
    [
        {"messages": [{"role": "user", "content": "x"}]},
        {"model": "openai/gpt-4o-mini", "messages": []},
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]},
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "temperature": 3},
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
    ],
)
def test_bad_input_is_422(alice_api: Client, openai: Cloud, payload: dict) -> None:
    assert alice_api.post("/api/completions", payload, content_type="application/json").status_code == 422


def test_unknown_model_is_404_and_no_token_is_401(alice_api: Client, openai: Cloud, client: Client) -> None:
    assert alice_api.post("/api/completions", body("openai/nope"), content_type="application/json").status_code == 404
    assert (
        client.post("/api/completions", body("openai/gpt-4o-mini"), content_type="application/json").status_code == 401
    )


def sse_events(raw: str) -> list[tuple[str, dict]]:
    out = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def stream(alice: object, payload: dict) -> tuple[object, str]:
    _, raw_token = api_token_create(user=alice, name="sse")

    async def go() -> tuple[object, str]:
        # Per request: AsyncClient(headers=...) files default headers where ASGI requests do not look.
        response = await AsyncClient().post(
            "/api/completions",
            payload,
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw_token}"},
        )
        chunks = [chunk async for chunk in response.streaming_content]
        return response, b"".join(chunks).decode()

    return async_to_sync(go)()


def test_streaming_events(alice: object, openai: Cloud) -> None:
    response, raw = stream(alice, body("openai/gpt-4o-mini", stream=True))
    assert response["Content-Type"] == "text/event-stream"
    assert response["X-Accel-Buffering"] == "no" and response["Cache-Control"] == "no-cache"
    got = sse_events(raw)
    assert got[0] == ("start", {"model": "openai/gpt-4o-mini", "attempt": 1})
    assert got[-1][0] == "done" and got[-1][1]["model"] == "openai/gpt-4o-mini"
    assert "".join(d["text"] for kind, d in got if kind == "delta") == "Echo from gpt-4o-mini: hello there"


def test_streaming_fallback_and_mid_stream_error(alice: object, openai: Cloud, discovered: dict) -> None:
    openai.fake.fail("401", times=1)
    kinds = [kind for kind, _ in sse_events(stream(alice, body("openai/gpt-4o-mini", stream=True))[1])]
    assert kinds[:2] == ["start", "fallback"] and kinds[-1] == "done"
    openai.fake.fail("error_event", times=1)
    AIModel.objects.filter(model_id="gpt-4o-mini").update(cooldown_until=None, failure_count=0)
    from providers.models import ApiKey

    ApiKey.objects.update(failing_reason="")
    got = sse_events(stream(alice, body("openai/gpt-4o-mini", stream=True))[1])
    assert [k for k, _ in got][-1] == "error" and got[-1][1]["partial"] is True
    assert any(k == "delta" for k, _ in got)
