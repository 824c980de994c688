"""The OpenAI-compatible chat answer the Ollama and llama.cpp emulators give (an echo of the last user
message, streamed as SSE or whole), so their chat path is as real as LM Studio's emulator's."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

from .base import FakeResponse, json_response, sse_response

_ids = itertools.count(1)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def echo_chat(
    body: dict[str, Any], *, model: str, chunk_delay: float = 0.0, cut_after: int | None = None
) -> FakeResponse:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last_user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    words = re.findall(r"\s*\S+", f"Echo: {last_user}")
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    finish = "stop"
    if isinstance(limit, int) and 0 < limit < len(words):
        words, finish = words[:limit], "length"
    prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(words),
        "total_tokens": prompt_tokens + len(words),
    }
    common = {"id": f"chatcmpl-{next(_ids)}", "created": int(time.time()), "model": model}
    if not body.get("stream"):
        choice = {"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": finish}
        return json_response({**common, "object": "chat.completion", "choices": [choice], "usage": usage})

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            **common,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    events: list[Any] = [
        chunk({"role": "assistant", "content": w} if i == 0 else {"content": w}) for i, w in enumerate(words)
    ]
    events.append(chunk({}, finish))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append({**common, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    events.append("[DONE]")
    return sse_response(events, chunk_delay=chunk_delay, cut_after=cut_after)


def request_body(req: Any) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
