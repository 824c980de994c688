"""Fake Gemini API (Generative Language, v1beta). Base URL for clients: ``fake.url`` (paths start with ``/v1beta``).

Endpoints: ``POST /v1beta/models/{model}:generateContent``, ``POST /v1beta/models/{model}:streamGenerateContent``
(``?alt=sse``: one ``data:`` per GenerateContentResponse, no ``[DONE]``, the stream ends at close; without
``alt=sse`` Gemini streams one JSON array instead, and so does this fake), ``GET /v1beta/models``
(``pageSize``, ``pageToken`` -> ``nextPageToken``), ``GET /v1beta/models/{model}``. The key goes in the
``x-goog-api-key`` header or the ``key`` query parameter. Errors are google.rpc.Status
``{"error": {"code", "message", "status", "details"?}}``:

- bad key / "401": **400** ``INVALID_ARGUMENT`` "API key not valid..." with an ErrorInfo ``API_KEY_INVALID``
- no key: 403 ``PERMISSION_DENIED``
- unknown model / "404": 404 ``NOT_FOUND``
- a role other than "user"/"model", no ``contents``: 400 ``INVALID_ARGUMENT``
- "context" (or a prompt over ``context_limit`` words): 400 ``INVALID_ARGUMENT`` "The input token count ..."
- "429": 429 ``RESOURCE_EXHAUSTED`` with a ``RetryInfo`` detail, ``retryDelay`` = ``f"{retry_after}s"``
  (no ``retry-after`` header: Gemini does not send one)
- "quota": 429 ``RESOURCE_EXHAUSTED`` (a per-day QuotaFailure) without ``RetryInfo``
- "500": 500 ``INTERNAL``; "503"/"529": 503 ``UNAVAILABLE`` "The model is overloaded..."
- "error_event" in a stream: ``data: {"error": {"code": 503, ... "status": "UNAVAILABLE"}}`` then the end
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from .base import FakeRequest, FakeResponse, json_response, raw_response
from .cloud import ChatInput, CloudFake, Fault, Reply, StreamPlan, display_name, paginate, text_of

_NAMES = {"gemini-2.0-flash": "Gemini 2.0 Flash", "gemini-2.5-pro": "Gemini 2.5 Pro"}
_OUTPUT_LIMITS = {"gemini-2.0-flash": 8_192, "gemini-2.5-pro": 65_536}
_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)
_OVERLOADED = {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}


def _status(code: int, status: str, message: str, *details: dict[str, Any]) -> FakeResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return json_response({"error": error}, code)


def _quota_failure(quota_id: str) -> dict[str, Any]:
    metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaMetric": metric, "quotaId": quota_id}],
    }


class FakeGemini(CloudFake):
    default_models = ("gemini-2.0-flash", "gemini-2.5-pro")
    context_window = 1_048_576

    def __init__(
        self,
        keys: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(keys, models, host, port)
        self.route("POST", "/v1beta/models/{model}:generateContent", self.chat)
        self.route("POST", "/v1beta/models/{model}:streamGenerateContent", self.chat)
        self.route("GET", "/v1beta/models", self.api(self._list_models))
        self.route("GET", "/v1beta/models/{model}", self.api(self._get_model))

    def fallback(self, req: FakeRequest) -> FakeResponse:
        return raw_response("<!DOCTYPE html><title>Error 404 (Not Found)!!1</title>", 404)  # Google's front end

    # -- hooks -----------------------------------------------------------------
    def chat_model(self, req: FakeRequest, body: dict[str, Any]) -> str:
        return req.params.get("model", "")

    def wants_stream(self, req: FakeRequest, body: dict[str, Any]) -> bool:
        return req.path.endswith(":streamGenerateContent")

    def authorize(self, req: FakeRequest) -> FakeResponse | None:
        key = req.headers.get("x-goog-api-key") or req.query.get("key")
        if not key:
            return _status(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without "
                "established identity). Please use API Key or other form of API consumer identity "
                "to call this API.",
            )
        return None if key in self.keys else self.error(Fault.AUTH, req, "")

    def check_chat(self, req: FakeRequest, body: dict[str, Any], model: str) -> FakeResponse | None:
        if not self.known(model):
            return self.error(Fault.NOT_FOUND, req, model)
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return self.invalid("* GenerateContentRequest.contents: contents is not specified\n")
        if any(not isinstance(c, dict) or c.get("role", "user") not in ("user", "model") for c in contents):
            return self.invalid("Please use a valid role: user, model.")
        return None

    def chat_input(self, body: dict[str, Any]) -> ChatInput:
        contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
        users = [text_of(c.get("parts")) for c in contents if c.get("role", "user") == "user"]
        system = body.get("systemInstruction")
        texts = [
            text_of(system.get("parts")) if isinstance(system, dict) else "",
            *(text_of(c.get("parts")) for c in contents),
        ]
        config = body.get("generationConfig")
        limit = self.max_tokens_of(config.get("maxOutputTokens")) if isinstance(config, dict) else None
        return ChatInput(texts, users[-1] if users else "", limit)

    @staticmethod
    def _response(reply: Reply, text: str, last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        response: dict[str, Any] = {"candidates": [candidate]}
        if last:
            candidate["finishReason"] = "MAX_TOKENS" if reply.truncated else "STOP"
            response["usageMetadata"] = {
                "promptTokenCount": reply.prompt_tokens,
                "candidatesTokenCount": reply.output_tokens,
                "totalTokenCount": reply.prompt_tokens + reply.output_tokens,
            }
        return {**response, "modelVersion": reply.model, "responseId": reply.id}

    def complete(self, reply: Reply, body: dict[str, Any]) -> FakeResponse:
        return json_response(self._response(reply, reply.text, last=True))

    def stream_plan(self, reply: Reply, req: FakeRequest, body: dict[str, Any]) -> StreamPlan:
        pieces = reply.pieces
        texts: list[Any] = [self._response(reply, p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
        error = {"error": _OVERLOADED}
        if req.query.get("alt") == "sse":
            return StreamPlan([], texts, [], error, b'data: {"candidates": [{"content": \n\n')
        # Without alt=sse the stream is one JSON array, sent element by element.
        items = [(b"[" if i == 0 else b",\r\n") + json.dumps(t).encode() for i, t in enumerate(texts)]
        return StreamPlan(
            [],
            items,
            [b"]"],
            b",\r\n" + json.dumps(error).encode() + b"]",
            b',\r\n{"candidates": [{"content": ',
            content_type="application/json",
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
                info = {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
                return _status(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", info)
            case Fault.NOT_FOUND:
                return _status(
                    404,
                    "NOT_FOUND",
                    f"models/{model} is not found for API version v1beta, or is not "
                    "supported for generateContent. Call ListModels to see the list of available "
                    "models and their supported methods.",
                )
            case Fault.CONTEXT:
                tokens, limit = self.context_numbers(tokens, limit)
                return self.invalid(
                    f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit})."
                )
            case Fault.RATE_LIMIT:
                details = [_quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier")]
                if retry_after is not None:
                    details.append(
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}
                    )
                return _status(429, "RESOURCE_EXHAUSTED", _QUOTA_MESSAGE, *details)
            case Fault.QUOTA:
                return _status(
                    429,
                    "RESOURCE_EXHAUSTED",
                    _QUOTA_MESSAGE,
                    _quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
                )
            case Fault.SERVER_ERROR:
                return _status(
                    500,
                    "INTERNAL",
                    "An internal error has occurred. Please retry or report in "
                    "https://developers.generativeai.google/guide/troubleshooting",
                )
            case _:  # 503 / 529
                return _status(503, "UNAVAILABLE", _OVERLOADED["message"])

    def invalid(self, message: str, param: str | None = None) -> FakeResponse:
        return _status(400, "INVALID_ARGUMENT", message)

    # -- models ----------------------------------------------------------------
    def _entry(self, model: str) -> dict[str, Any]:
        return {
            "name": f"models/{model}",
            "version": "001",
            "displayName": display_name(model, _NAMES),
            "description": f"Fake {display_name(model, _NAMES)}",
            "inputTokenLimit": self.context_window,
            "outputTokenLimit": _OUTPUT_LIMITS.get(model, 8_192),
            "supportedGenerationMethods": [
                "generateContent",
                "countTokens",
                "createCachedContent",
                "batchGenerateContent",
            ],
            "temperature": 1,
            "topP": 0.95,
            "topK": 40,
            "maxTemperature": 2,
        }

    def _list_models(self, req: FakeRequest) -> FakeResponse:
        try:
            size = min(int(req.query.get("pageSize") or 50), 1000)
            start = int(base64.urlsafe_b64decode(req.query.get("pageToken", "")).decode() or 0)
        except (ValueError, binascii.Error):
            return self.invalid("Invalid pageSize or pageToken.")
        if size < 1:
            size = 50  # Google treats a non-positive page size as "the default"
        page, more = paginate(list(self.models), size, start)
        payload: dict[str, Any] = {"models": [self._entry(m) for m in page]}
        if more:  # an opaque token, as Google's: clients must pass it back verbatim
            payload["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return json_response(payload)

    def _get_model(self, req: FakeRequest) -> FakeResponse:
        model = req.params["model"]
        return json_response(self._entry(model)) if self.known(model) else self.error(Fault.NOT_FOUND, req, model)
