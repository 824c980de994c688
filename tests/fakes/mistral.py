"""Fake Mistral API: OpenAI-shaped chat, Mistral's own errors. Base URL for clients: ``f"{fake.url}/v1"``.

Endpoints as ``FakeOpenAI`` (``POST /v1/chat/completions``, ``GET /v1/models[/{model}]``, Bearer auth).
Where Mistral differs from OpenAI on the wire:

- bad or missing key / "401": 401 ``{"detail": "Unauthorized"}``
- unknown model / "404": **400** ``{"object": "error", "message": "Invalid model: x", "type": "invalid_model",
  "param": null, "code": "1500"}``; other errors use the same ``object: error`` envelope
- OpenAI-only fields Mistral's strict schema is known to refuse (``max_completion_tokens``, ``store``,
  ``stream_options``): 422 ``extra_forbidden``, the limit is ``max_tokens``
- a stream carries ``usage`` in its final chunk (with ``finish_reason``), never in a separate chunk
- "429": 429 ``rate_limited`` code "1300" with ``retry-after``; "quota": the same envelope, a monthly-limit
  message and no ``retry-after`` (that message is invented: Mistral's exact wording is not documented)
- "context": 400 ``invalid_request_message_error`` code "3051"; "500": 500 ``internal_server_error``;
  "503"/"529": 503 ``service_unavailable`` (codes of these three are plausible, not verified)
- "error_event": like OpenAI, a ``data: {"error": {...}}`` line then the end of the stream
"""

from __future__ import annotations

from typing import Any

from .base import FakeRequest, FakeResponse, json_response
from .cloud import Fault, Reply, StreamPlan
from .openai import FakeOpenAI, bearer_key

_CREATED = 1_736_000_000
_REFUSED_FIELDS = ("max_completion_tokens", "store", "stream_options")


class FakeMistral(FakeOpenAI):
    default_models = ("mistral-small-latest", "mistral-large-latest")
    context_window = 131_072
    id_prefix = ""
    owned_by = "mistralai"

    def err(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> FakeResponse:
        body = {"object": "error", "message": message, "type": type_, "param": param, "code": code}
        return json_response(body, status, headers)

    def model_entry(self, model: str) -> dict[str, Any]:
        capabilities = {
            "completion_chat": True,
            "completion_fim": False,
            "function_calling": True,
            "fine_tuning": False,
            "vision": False,
        }
        return {
            "id": model,
            "object": "model",
            "created": _CREATED,
            "owned_by": self.owned_by,
            "capabilities": capabilities,
            "name": model,
            "max_context_length": self.context_window,
            "type": "base",
        }

    def fallback(self, req: FakeRequest) -> FakeResponse:
        return json_response({"detail": "Not Found"}, 404)

    def check_chat(self, req: FakeRequest, body: dict[str, Any], model: str) -> FakeResponse | None:
        extra = [
            {
                "type": "extra_forbidden",
                "loc": ["body", name],
                "msg": "Extra inputs are not permitted",
                "input": body[name],
            }
            for name in _REFUSED_FIELDS
            if name in body
        ]
        if extra:
            return json_response(
                {
                    "object": "error",
                    "message": {"detail": extra},
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                },
                422,
            )
        return super().check_chat(req, body, model)

    def complete(self, reply: Reply, body: dict[str, Any]) -> FakeResponse:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": reply.text, "tool_calls": None},
            "finish_reason": "length" if reply.truncated else "stop",
        }
        return json_response(
            {
                "id": reply.id,
                "object": "chat.completion",
                "created": self.now(),
                "model": reply.model,
                "choices": [choice],
                "usage": self.usage(reply),
            }
        )

    def stream_plan(self, reply: Reply, req: FakeRequest, body: dict[str, Any]) -> StreamPlan:
        common = {"id": reply.id, "object": "chat.completion.chunk", "created": self.now(), "model": reply.model}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**common, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        final = {**chunk({"content": ""}, "length" if reply.truncated else "stop"), "usage": self.usage(reply)}
        openai_like = super().stream_plan(reply, req, body)
        return StreamPlan(
            head=[chunk({"role": "assistant", "content": ""})],
            texts=[chunk({"content": p}) for p in reply.pieces],
            tail=[final, "[DONE]"],
            error=openai_like.error,
            garbage=openai_like.garbage,
        )

    def authorize(self, req: FakeRequest) -> FakeResponse | None:
        return None if bearer_key(req) in self.keys else self.error(Fault.AUTH, req, "")

    def error(
        self,
        fault: Fault,
        req: FakeRequest,
        model: str,
        *,
        retry_after: str | None = "1",
        retry_after_ms: str | None = None,
        tokens: int | None = None,
        limit: int | None = None,
    ) -> FakeResponse:
        match fault:
            case Fault.AUTH:
                return json_response({"detail": "Unauthorized"}, 401)
            case Fault.NOT_FOUND:
                return self.err(400, f"Invalid model: {model}", "invalid_model", "1500")
            case Fault.CONTEXT:
                tokens, limit = self.context_numbers(tokens, limit)
                return self.err(
                    400,
                    f"Prompt contains {tokens} tokens and 0 draft tokens, too large for model "
                    f"with {limit} maximum context length",
                    "invalid_request_message_error",
                    "3051",
                )
            case Fault.RATE_LIMIT:
                headers = {"retry-after": retry_after} if retry_after is not None else {}
                return self.err(429, "Requests rate limit exceeded", "rate_limited", "1300", headers=headers)
            case Fault.QUOTA:
                return self.err(429, "Monthly usage limit exceeded", "rate_limited", "1300")
            case Fault.SERVER_ERROR:
                return self.err(500, "Internal server error", "internal_server_error", "1000")
            case _:  # 503 / 529
                return self.err(503, "Service unavailable", "service_unavailable", "1000")
