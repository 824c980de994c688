import json
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from tests.completions.conftest import Cloud, start_cloud


@pytest.fixture
def openai(db: None, alice: object, fast_timeouts: None) -> Iterator[Cloud]:
    """OpenAI's emulator (it reports usage), alice's key, and gpt-4o-mini registered."""
    with ExitStack() as stack:
        yield start_cloud(stack, "openai", alice)


def body(model: str = "openai/gpt-4o-mini", text: str = "hello there", **extra: object) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def post(url: str, payload: dict, token: str) -> tuple[int, dict[str, str], str]:
    """A request through the ASGI handler, streamed answers read to the end: status, headers, body."""

    async def go() -> tuple[int, dict[str, str], str]:
        # Per request: AsyncClient(headers=...) files default headers where ASGI requests do not look.
        response = await AsyncClient().post(
            url, json.dumps(payload), content_type="application/json", headers={"Authorization": f"Bearer {token}"}
        )
        if response.streaming:
            text = b"".join([chunk async for chunk in response.streaming_content]).decode()
        else:
            text = response.content.decode()
        return response.status_code, dict(response.headers), text

    return async_to_sync(go)()
