"""Fake Anthropic Messages API. Base URL for clients: ``fake.url`` (paths start with ``/v1``).

Endpoints: ``POST /v1/messages``, ``GET /v1/models`` (``limit``, ``after_id``),
``GET /v1/models/{model}``. Every one wants ``x-api-key`` and ``anthropic-version`` headers. Errors are
``{"type": "error", "error": {"type", "message"}, "request_id"}`` (plus a ``request-id`` header):

- bad key / "401": 401 ``authentication_error`` "invalid x-api-key" (no key: "x-api-key header is required")
- no ``anthropic-version``, no ``max_tokens``, a ``system`` role inside ``messages``: 400 ``invalid_request_error``
- unknown model / "404": 404 ``not_found_error`` "model: <name>"
- "context" (or a prompt over ``context_limit`` words): 400 ``invalid_request_error`` "prompt is too long: ..."
- "429": 429 ``rate_limit_error`` with ``retry-after`` (and ``retry-after-ms`` if set)
- "quota": 429 ``rate_limit_error`` "You have reached your specified API usage limits..." with no
  ``retry-after``: the spend cap, which retrying will not lift
- "500": 500 ``api_error``; "503": 503 ``api_error``; "529": 529 ``overloaded_error``
- "error_event" in a stream: ``event: error`` ``{"type": "error", "error": {"type": "overloaded_error",
  "message": "Overloaded"}}`` after HTTP 200 and a few deltas, then the stream ends (no ``message_stop``)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import FakeRequest, FakeResponse, json_response, sse_event
from .cloud import ChatInput, CloudFake, Fault, Reply, StreamPlan, display_name, new_id, paginate, text_of

_NAMES = {"claude-3-5-haiku-latest": "Claude Haiku 3.5", "claude-sonnet-4-5": "Claude Sonnet 4.5"}
_CREATED = {"claude-3-5-haiku-latest": "2024-10-22T00:00:00Z", "claude-sonnet-4-5": "2025-09-29T00:00:00Z"}


def _event(data: dict[str, Any]) -> bytes:
    return sse_event(data, event=data["type"])  # Anthropic names every event after its payload's type


class FakeAnthropic(CloudFake):
    default_models = ("claude-3-5-haiku-latest", "claude-sonnet-4-5")
    context_window = 200_000
    id_prefix = "msg_01"

    def __init__(
        self,
        keys: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(keys, models, host, port)
        self.route("POST", "/v1/messages", self.chat)
        self.route("GET", "/v1/models", self.api(self._list_models))
        self.route("GET", "/v1/models/{model}", self.api(self._get_model))

    @staticmethod
    def err(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> FakeResponse:
        request_id = new_id("req_011", 21)
        body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}
        return json_response(body, status, {"request-id": request_id, **(headers or {})})

    def fallback(self, req: FakeRequest) -> FakeResponse:
        return self.err(404, "not_found_error", "Not Found")

    # -- hooks -----------------------------------------------------------------
    def authorize(self, req: FakeRequest) -> FakeResponse | None:
        key = req.headers.get("x-api-key")
        if not key:
            return self.err(401, "authentication_error", "x-api-key header is required")
        if key not in self.keys:
            return self.error(Fault.AUTH, req, "")
        if not req.headers.get("anthropic-version"):
            return self.invalid("anthropic-version: header is required")
        return None

    def check_chat(self, req: FakeRequest, body: dict[str, Any], model: str) -> FakeResponse | None:
        for name in ("model", "messages", "max_tokens"):
            if name not in body:
                return self.invalid(f"{name}: Field required")
        if self.max_tokens_of(body["max_tokens"]) is None:
            return self.invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return self.invalid("messages: at least one message is required")
        if any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
            return self.invalid(
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        return None if self.known(model) else self.error(Fault.NOT_FOUND, req, model)

    def chat_input(self, body: dict[str, Any]) -> ChatInput:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        users = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        texts = [text_of(body.get("system")), *(text_of(m.get("content")) for m in messages)]
        return ChatInput(texts, users[-1] if users else "", self.max_tokens_of(body.get("max_tokens")))

    @staticmethod
    def _stop_reason(reply: Reply) -> str:
        return "max_tokens" if reply.truncated else "end_turn"

    def complete(self, reply: Reply, body: dict[str, Any]) -> FakeResponse:
        return json_response(
            {
                "id": reply.id,
                "type": "message",
                "role": "assistant",
                "model": reply.model,
                "content": [{"type": "text", "text": reply.text}],
                "stop_reason": self._stop_reason(reply),
                "stop_sequence": None,
                "usage": {
                    "input_tokens": reply.prompt_tokens,
                    "output_tokens": reply.output_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
            headers={"request-id": new_id("req_011", 21)},
        )

    def stream_plan(self, reply: Reply, req: FakeRequest, body: dict[str, Any]) -> StreamPlan:
        message = {
            "id": reply.id,
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": 1},
        }
        head = [
            _event({"type": "message_start", "message": message}),
            _event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            _event({"type": "ping"}),
        ]
        texts = [
            _event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})
            for p in reply.pieces
        ]
        tail = [
            _event({"type": "content_block_stop", "index": 0}),
            _event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop_reason(reply), "stop_sequence": None},
                    "usage": {"output_tokens": reply.output_tokens},
                }
            ),
            _event({"type": "message_stop"}),
        ]
        error = _event({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        garbage = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'
        return StreamPlan(head, texts, tail, error, garbage)

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
                return self.err(401, "authentication_error", "invalid x-api-key")
            case Fault.NOT_FOUND:
                return self.err(404, "not_found_error", f"model: {model}")
            case Fault.CONTEXT:
                tokens, limit = self.context_numbers(tokens, limit)
                return self.invalid(f"prompt is too long: {tokens} tokens > {limit} maximum")
            case Fault.RATE_LIMIT:
                headers = {
                    k: v for k, v in (("retry-after", retry_after), ("retry-after-ms", retry_after_ms)) if v is not None
                }
                return self.err(
                    429,
                    "rate_limit_error",
                    "This request would exceed the rate limit for your "
                    "organization of 50 requests per minute. Please try again later.",
                    headers,
                )
            case Fault.QUOTA:
                return self.err(
                    429,
                    "rate_limit_error",
                    "You have reached your specified API usage limits. "
                    "You will regain access on 2099-01-01 at 00:00 UTC.",
                )
            case Fault.SERVER_ERROR:
                return self.err(500, "api_error", "Internal server error")
            case Fault.UNAVAILABLE:
                return self.err(503, "api_error", "Service unavailable")
            case _:  # 529
                return self.err(529, "overloaded_error", "Overloaded")

    def invalid(self, message: str, param: str | None = None) -> FakeResponse:
        return self.err(400, "invalid_request_error", message)

    # -- models ----------------------------------------------------------------
    def _entry(self, model: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model,
            "display_name": display_name(model, _NAMES),
            "created_at": _CREATED.get(model, "2025-01-01T00:00:00Z"),
        }

    def _list_models(self, req: FakeRequest) -> FakeResponse:
        models = list(self.models)
        try:
            limit = int(req.query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return self.invalid("limit: Input should be between 1 and 1000")
        after = req.query.get("after_id")
        page, has_more = paginate(models, limit, models.index(after) + 1 if after in models else 0)
        return json_response(
            {
                "data": [self._entry(m) for m in page],
                "has_more": has_more,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )

    def _get_model(self, req: FakeRequest) -> FakeResponse:
        model = req.params["model"]
        return json_response(self._entry(model)) if self.known(model) else self.error(Fault.NOT_FOUND, req, model)
