from collections.abc import AsyncIterator
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from ninja import Router, Status

from accounts.auth import api_auth
from completions.schemas import CompletionIn, CompletionOut, OverBudgetOut
from completions.services import (
    OVER_BUDGET,
    UNAVAILABLE_CODES,
    CompletionEvent,
    completion_collect,
    completion_params_check,
    completion_stream,
)
from models_mgmt.schemas import ErrorOut
from models_mgmt.services import model_resolve
from orchestrator.sse import event_stream_response
from providers.adapters import ErrorCode
from usage.models import RequestKind

router = Router(tags=["completions"], auth=api_auth)


@router.post(
    "",
    response={
        200: CompletionOut,
        400: ErrorOut,
        404: ErrorOut | CompletionOut,
        429: OverBudgetOut,
        502: CompletionOut,
        503: CompletionOut,
    },
    summary="Complete a chat with fallback; `stream: true` answers text/event-stream of the events",
)
async def complete(
    request: HttpRequest, payload: CompletionIn
) -> Status[CompletionOut] | StreamingHttpResponse | JsonResponse:
    user = request.user
    model = await sync_to_async(model_resolve)(ref=payload.model, user=user, key_id=payload.key_id)
    completion_params_check(model=model, params=payload.chat_params())
    kwargs = {
        "user": user,
        "model": model,
        "messages": payload.chat_messages(),
        "params": payload.chat_params(),
        "fallback": payload.fallback,
        "key_id": payload.key_id,
        "kind": RequestKind.API,
    }
    if payload.stream:
        events = completion_stream(**kwargs)
        # The budget answers before anything else: read the first event, so a refusal is a real 429.
        first = await anext(events)
        if first.type == "error" and first.data.get("code") == OVER_BUDGET:
            await events.aclose()
            return over_budget_response(first.data)
        return sse_response(events, first)
    result = await completion_collect(**kwargs)
    if result.error is not None and result.error.get("code") == OVER_BUDGET:
        return over_budget_response(result.error)
    status = 200
    if result.error is not None:
        code = result.error.get("code")
        status = 503 if code in UNAVAILABLE_CODES and not result.text else 502
        if code == ErrorCode.NOT_FOUND and not result.text and model.pk is None:
            status = 404  # a model named on first use that its provider does not have
    return Status(status, CompletionOut(**result.__dict__))


def over_budget_response(error: dict) -> JsonResponse:
    """429 with Retry-After; `detail` names the limit and when it resets."""
    body = {k: error[k] for k in ("limit", "resets_at", "retry_after")}
    response = JsonResponse({"detail": error["message"], **body}, status=429)
    response["Retry-After"] = str(error["retry_after"])
    return response


def sse_response(events: AsyncIterator, first: CompletionEvent | None = None) -> StreamingHttpResponse:
    async def body() -> AsyncIterator[bytes]:
        # aclosing: a client that goes away stops the upstream request now, not at garbage collection.
        async with aclosing(events) as stream:
            if first is not None:
                yield first.sse()
            async for event in stream:
                yield event.sse()

    return event_stream_response(body())
