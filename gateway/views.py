"""An OpenAI-compatible API over the completion service, for tools that speak OpenAI's protocol.

GET /v1/models, GET /v1/models/<ref>, POST /v1/chat/completions; authenticated by API token only
(`Authorization: Bearer orch_...`), never by session, so CSRF does not apply. The wire format and the
error table live in `gateway.openai_format`.

A streamed answer waits for its first text before the response starts: fallbacks happen only before
it, so by then the answering model is known (for `X-Orchestrator-Model` and every chunk's `model`), and
a request no model could answer gets a real HTTP error status that SDKs raise as their own exceptions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.services import api_token_authenticate
from completions.services import (
    CompletionEvent,
    ParamsError,
    completion_collect,
    completion_params_check,
    completion_stream,
)
from gateway import openai_format as fmt
from models_mgmt.models import AIModel
from models_mgmt.services import (
    ModelError,
    ModelNotFound,
    model_get,
    model_list_with_status,
    model_resolve,
    model_status,
)
from orchestrator import hotcache
from orchestrator.sse import event_stream_response
from providers.services import KeyNotUsable
from usage.models import RequestKind

MODEL_HEADER = "X-Orchestrator-Model"
# Names one of the caller's keys (their own or a shared one, by id) for the model's provider.
KEY_HEADER = "X-Orchestrator-Key"


def error_response(error: fmt.GatewayError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status)
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def _caller(request: HttpRequest) -> AbstractBaseUser:
    raw = _bearer(request)
    if raw is None:
        raise fmt.missing_api_key()
    user = await sync_to_async(api_token_authenticate)(raw=raw)
    if user is None:
        raise fmt.invalid_api_key()
    return user


def _check_method(request: HttpRequest, method: str) -> None:
    if request.method != method:
        raise fmt.method_not_allowed(request.method or "", request.path)


def _listed_models(user: AbstractBaseUser) -> list[AIModel]:
    return [s.model for s in model_list_with_status(user=user) if fmt.is_listed(s)]


def _listed_model(user: AbstractBaseUser, ref: str) -> AIModel:
    try:
        model = model_get(ref=ref, user=user)
    except ModelNotFound:
        raise fmt.model_not_found(ref) from None
    if not fmt.is_listed(model_status(model=model, user=user)):
        raise fmt.model_not_found(ref)  # the list does not show it, so neither does a lookup
    return model


def _key_id(header: str | None) -> int | None:
    if header is None:
        return None
    if not (header.isascii() and header.isdigit()) or len(header) > 18:
        raise fmt.invalid_request(f"{KEY_HEADER} must be the numeric id of one of your keys.")
    return int(header)


def _chat_model(ref: str, user: AbstractBaseUser, key_id: int | None) -> AIModel:
    try:
        model = model_resolve(ref=ref, user=user, key_id=key_id)
    except ModelNotFound:
        raise fmt.model_not_found(ref) from None
    except KeyNotUsable as exc:
        raise fmt.invalid_request(exc.message, status=404) from None
    except ModelError as exc:
        raise fmt.invalid_request(exc.message, status=exc.status_code) from None
    if not model.can_chat:
        raise fmt.not_a_chat_model(ref)
    return model


def _check_params(model: AIModel, chat: fmt.ChatRequest) -> None:
    try:
        completion_params_check(model=model, params=chat.params)
    except ParamsError as exc:
        raise fmt.invalid_request(exc.message, param="max_tokens") from None


def _chat_call(
    raw: str, body: bytes | fmt.GatewayError, key_header: str | None
) -> tuple[AbstractBaseUser, fmt.ChatRequest, AIModel, int | None]:
    """The caller, the request and the model asked for, in one trip to the database thread (a trip costs
    about as much as a query). The checks keep their order: the token, then the body, then the model."""
    user = api_token_authenticate(raw=raw)
    if user is None:
        raise fmt.invalid_api_key()
    if isinstance(body, fmt.GatewayError):
        raise body
    chat = fmt.parse_chat_request(body)
    key_id = _key_id(key_header)
    model = _chat_model(chat.model, user, key_id)
    _check_params(model, chat)
    return user, chat, model, key_id


@csrf_exempt  # only so that a POST gets OpenAI's 405, not Django's CSRF page
async def models(request: HttpRequest) -> HttpResponse:
    try:
        _check_method(request, "GET")
        user = await _caller(request)
        listed = await sync_to_async(_listed_models)(user)
    except fmt.GatewayError as exc:
        return error_response(exc)
    return JsonResponse(fmt.model_list(listed))


@csrf_exempt
async def model_detail(request: HttpRequest, ref: str) -> HttpResponse:
    try:
        _check_method(request, "GET")
        user = await _caller(request)
        model = await sync_to_async(_listed_model)(user, ref)
    except fmt.GatewayError as exc:
        return error_response(exc)
    return JsonResponse(fmt.model_object(model))


@csrf_exempt  # bearer tokens only: no cookie, so no cross-site request forgery to guard against
async def chat_completions(request: HttpRequest) -> HttpResponse:
    """Django's way in; `gateway.asgi` serves the same endpoint without Django's request cycle, and both
    answer with `chat_reply`."""
    if request.method != "POST":
        return error_response(fmt.method_not_allowed(request.method or "", request.path))
    try:
        body: bytes | fmt.GatewayError = request.body
    except RequestDataTooBig:
        body = fmt.body_too_large()  # reported after the token is checked
    reply = await chat_reply(bearer=_bearer(request), body=body, key_header=request.headers.get(KEY_HEADER))
    return reply.django()


@dataclass
class Reply:
    """An answer before it is rendered: by Django (`django()`) or straight onto ASGI (`gateway.asgi`)."""

    status: int = 200
    data: dict[str, Any] | None = None  # a JSON body
    stream: AsyncIterator[bytes] | None = None  # an event stream
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, error: fmt.GatewayError) -> Reply:
        headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
        return cls(error.status, error.body(), headers=headers)

    def django(self) -> HttpResponse:
        if self.stream is not None:
            response: HttpResponse = event_stream_response(self.stream)
        else:
            response = JsonResponse(self.data, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


async def chat_reply(*, bearer: str | None, body: bytes | fmt.GatewayError, key_header: str | None) -> Reply:
    """POST /v1/chat/completions, whoever carries it. The token, the body and the model are read from the
    in-process caches when they hold them, else in one trip to the database thread."""
    try:
        if bearer is None:
            raise fmt.missing_api_key()
        user, chat, model, key_id = await hotcache.run(_chat_call, bearer, body, key_header)
    except fmt.GatewayError as exc:
        return Reply.error(exc)

    if chat.stream:
        events = completion_stream(
            user=user, model=model, messages=chat.messages, params=chat.params, key_id=key_id, kind=RequestKind.GATEWAY
        )
        return await _stream(events, requested=model.ref, include_usage=chat.include_usage)

    created = int(time.time())
    # Asked for whole upstream too, as the caller asked for it: no stream to read piece by piece.
    result = await completion_collect(
        user=user,
        model=model,
        messages=chat.messages,
        params=chat.params,
        key_id=key_id,
        kind=RequestKind.GATEWAY,
        whole=True,
    )
    if result.failure is not None:
        return Reply.error(fmt.service_error(result.failure, result.fallback_codes, partial=bool(result.text)))
    data = fmt.completion_object(
        completion_id=fmt.new_completion_id(), created=created, requested=model.ref, result=result
    )
    return Reply(data=data, headers={MODEL_HEADER: result.model or model.ref})


async def _stream(events: AsyncIterator[CompletionEvent], *, requested: str, include_usage: bool) -> Reply:
    opening = fmt.Opening(requested=requested)
    try:
        async for event in events:
            if opening.feed(event):
                break
    except BaseException:
        # A client gone while a model loads cancels this view; the upstream request must end with it.
        await _close(events)
        raise
    if (failure := opening.failure) is not None:
        await _close(events)
        return Reply.error(failure)

    writer = fmt.ChunkWriter(opening=opening, include_usage=include_usage)

    async def body() -> AsyncIterator[bytes]:
        # aclosing: a client that goes away stops the upstream request now, not at garbage collection.
        async with aclosing(events) as rest:
            yield writer.head()
            if opening.first is not None:
                yield writer.event(opening.first)
            async for event in rest:
                if chunk := writer.event(event):
                    yield chunk

    return Reply(stream=body(), headers={MODEL_HEADER: opening.model or requested})


async def _close(events: AsyncIterator[CompletionEvent]) -> None:
    # completion_stream is an async generator; its declared type only promises iteration.
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


@csrf_exempt
async def unknown(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(fmt.unknown_url(request.method or "", request.path))
