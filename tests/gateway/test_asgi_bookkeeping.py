"""The hot path's bookkeeping after the response (gateway/asgi.py), driven in process the way uvicorn drives
it: once the response is out, `receive()` reports a disconnect at once. The usage record is written in the
request's own task, which the server waits for when it shuts down, before that task ends."""

import asyncio
import json
from contextlib import ExitStack
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from accounts.services import api_token_create
from orchestrator.asgi import application
from tests.completions.conftest import Cloud, start_cloud
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cloud(alice: User) -> Any:
    with ExitStack() as stack:
        yield start_cloud(stack, "openai", alice)


def _serve_one(token: str, body: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """The messages sent, and the tasks still running when the application returned."""
    sent: list[dict[str, Any]] = []
    response_done = asyncio.Event()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await response_done.wait()  # as uvicorn: a finished response reads as a disconnect
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            response_done.set()

    async def run() -> list[str]:
        await application(scope, receive, send)
        return [repr(t) for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]

    return sent, async_to_sync(run)()


def test_the_usage_record_is_written_before_the_request_task_ends(cloud: Cloud, alice: User) -> None:
    token = api_token_create(user=alice, name="hot")[1]
    body = json.dumps({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    sent, running = _serve_one(token, body)
    assert sent[0]["status"] == 200 and json.loads(sent[1]["body"])["choices"][0]["message"]["content"]
    # Not cancelled with the answer's task when the finished response read as a disconnect, and so not left
    # to a shielded task the server does not wait for: done by the time the application returns.
    assert running == []
    assert UsageRecord.objects.get().outcome == "ok"
