"""Fake OpenAI API (chat completions and model listing). Base URL for clients: ``f"{fake.url}/v1"``.

Endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /v1/models/{model}``; every one
wants ``Authorization: Bearer <key>``. Errors are ``{"error": {"message", "type", "param", "code"}}``:

- bad key / "401": 401 ``invalid_api_key``, the key masked as OpenAI does; no key: 401, code null
- unknown model / "404": 404 ``model_not_found``
- "context" (or a prompt over ``context_limit`` words): 400 ``context_length_exceeded``
- "429": 429 ``rate_limit_exceeded`` (type ``requests``) with ``retry-after`` (and ``retry-after-ms`` if set)
- "quota": 429, type and code ``insufficient_quota``, no retry headers: retrying is pointless
- "500": 500 ``server_error``; "503" and "529": 503 ``server_error`` (overloaded)
- "error_event" in a stream: ``data: {"error": {... "type": "server_error" ...}}`` then the stream ends
  without ``[DONE]`` (the OpenAI SDK raises on such a line)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from .base import FakeRequest, FakeResponse, json_response
from .cloud import ChatInput, CloudFake, Fault, Reply, StreamPlan, new_id, text_of

_CREATED = {"gpt-4o-mini": 1721172741, "gpt-4o": 1715367049}
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def bearer_key(req: FakeRequest) -> str | None:
    scheme, _, key = req.headers.get("authorization", "").partition(" ")
    return (key.strip() or None) if scheme.lower() == "bearer" else None


def mask(key: str) -> str:
    # OpenAI echoes a wrong key with all but its ends starred out.
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}" if len(key) > 8 else "*" * len(key)


class FakeOpenAI(CloudFake):
    default_models = ("gpt-4o-mini", "gpt-4o")
    id_prefix = "chatcmpl-"
    owned_by: ClassVar[str] = "system"

    def __init__(
        self,
        keys: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(keys, models, host, port)
        self.route("POST", "/v1/chat/completions", self.chat)
        self.route("GET", "/v1/models", self.api(self._list_models))
        self.route("GET", "/v1/models/{model}", self.api(self._get_model))

    # -- wire details Mistral overrides --------------------------------------
    def err(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> FakeResponse:
        error = {"message": message, "type": type_, "param": param, "code": code}
        return json_response({"error": error}, status, {"x-request-id": new_id("req_", 32), **(headers or {})})

    def model_entry(self, model: str) -> dict[str, Any]:
        return {
            "id": model,
            "object": "model",
            "created": _CREATED.get(model, 1_700_000_000),
            "owned_by": self.owned_by,
        }

    def fallback(self, req: FakeRequest) -> FakeResponse:
        return self.err(404, f"Invalid URL ({req.method} {req.path})", "invalid_request_error")

    # -- hooks -----------------------------------------------------------------
    def authorize(self, req: FakeRequest) -> FakeResponse | None:
        key = bearer_key(req)
        if key is None:
            return self.err(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
            )
        return None if key in self.keys else self.error(Fault.AUTH, req, "")

    def check_chat(self, req: FakeRequest, body: dict[str, Any], model: str) -> FakeResponse | None:
        if not model:
            return self.invalid("you must provide a model parameter")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self.invalid("Missing required parameter: 'messages'.", "messages")
        return None if self.known(model) else self.error(Fault.NOT_FOUND, req, model)

    def chat_input(self, body: dict[str, Any]) -> ChatInput:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        users = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        return ChatInput(
            [text_of(m.get("content")) for m in messages],
            users[-1] if users else "",
            self.max_tokens_of(body.get("max_completion_tokens"), body.get("max_tokens")),
        )

    @staticmethod
    def usage(reply: Reply) -> dict[str, int]:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.prompt_tokens + reply.output_tokens,
        }

    def complete(self, reply: Reply, body: dict[str, Any]) -> FakeResponse:
        message = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
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
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
            }
        )

    def stream_plan(self, reply: Reply, req: FakeRequest, body: dict[str, Any]) -> StreamPlan:
        include_usage = (body.get("stream_options") or {}).get("include_usage") is True
        common = {
            "id": reply.id,
            "object": "chat.completion.chunk",
            "created": self.now(),
            "model": reply.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        # With include_usage OpenAI puts "usage": null on every chunk but the last.
        extra = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**common, "choices": [choice], **extra}

        tail: list[Any] = [chunk({}, "length" if reply.truncated else "stop")]
        if include_usage:
            tail.append({**common, "choices": [], "usage": self.usage(reply)})
        return StreamPlan(
            head=[chunk({"role": "assistant", "content": "", "refusal": None})],
            texts=[chunk({"content": p}) for p in reply.pieces],
            tail=[*tail, "[DONE]"],
            error={"error": {"message": _SERVER_ERROR, "type": "server_error", "param": None, "code": None}},
            garbage=b'data: {"id": "%s", "choices": [{"delta": \n\n' % reply.id.encode(),
        )

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
                return self.err(
                    401,
                    f"Incorrect API key provided: {mask(bearer_key(req) or '')}. You can find "
                    "your API key at https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                )
            case Fault.NOT_FOUND:
                return self.err(
                    404,
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                )
            case Fault.CONTEXT:
                tokens, limit = self.context_numbers(tokens, limit)
                return self.err(
                    400,
                    f"This model's maximum context length is {limit} tokens. However, your "
                    f"messages resulted in {tokens} tokens. Please reduce the length of the messages.",
                    "invalid_request_error",
                    "context_length_exceeded",
                    "messages",
                )
            case Fault.RATE_LIMIT:
                headers = {
                    k: v for k, v in (("retry-after", retry_after), ("retry-after-ms", retry_after_ms)) if v is not None
                }
                return self.err(
                    429,
                    f"Rate limit reached for {model} in organization org-fake on requests per "
                    f"min (RPM): Limit 3, Used 3, Requested 1. Please try again in {retry_after or 20}s.",
                    "requests",
                    "rate_limit_exceeded",
                    headers=headers,
                )
            case Fault.QUOTA:
                return self.err(
                    429,
                    "You exceeded your current quota, please check your plan and billing details.",
                    "insufficient_quota",
                    "insufficient_quota",
                )
            case Fault.SERVER_ERROR:
                return self.err(500, _SERVER_ERROR, "server_error")
            case _:  # 503 / 529
                return self.err(503, "The engine is currently overloaded, please try again later.", "server_error")

    def invalid(self, message: str, param: str | None = None) -> FakeResponse:
        return self.err(400, message, "invalid_request_error", param=param)

    # -- models ----------------------------------------------------------------
    def _list_models(self, req: FakeRequest) -> FakeResponse:
        return json_response({"object": "list", "data": [self.model_entry(m) for m in list(self.models)]})

    def _get_model(self, req: FakeRequest) -> FakeResponse:
        model = req.params["model"]
        return json_response(self.model_entry(model)) if self.known(model) else self.error(Fault.NOT_FOUND, req, model)
