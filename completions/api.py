from collections.abc import AsyncIterator
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from ninja import Router, Status

from accounts.auth import api_auth
from completions.events import CompletionEvent, Error
from completions.schemas import CompletionIn, CompletionOut, OverBudgetOut
from completions.services import CompletionResult, completion_collect, completion_params_check, completion_stream
from models_mgmt.schemas import ErrorOut
from models_mgmt.services import model_resolve
from orchestrator.failures import FailureCode, failure_http_status
from orchestrator.sse import event_stream_response
from usage.models import RequestKind

router = Router(tags=["completions"], auth=api_auth)


@router.post(
    "",
    response={
        200: CompletionOut,
        400: ErrorOut | CompletionOut,
        404: ErrorOut | CompletionOut,
        429: OverBudgetOut | CompletionOut,
        502: CompletionOut,
        503: CompletionOut,
        504: CompletionOut,
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
        if (refusal := over_budget_response(first)) is not None:
            await events.aclose()
            return refusal
        return sse_response(events, first)
    result = await completion_collect(**kwargs, whole=True)
    if (refusal := over_budget_response(result.failure)) is not None:
        return refusal
    return Status(_status(result), CompletionOut(**result.__dict__))


def _status(result: CompletionResult) -> int:
    if result.failure is None:
        return 200
    partial = result.failure.partial or bool(result.text)
    return failure_http_status(result.failure.code, earlier=result.fallback_codes, partial=partial)


def over_budget_response(event: CompletionEvent | None) -> JsonResponse | None:
    """429 with Retry-After when the caller's budget refused the request (`detail` names the limit and
    when it resets); None for any other event."""
    if not isinstance(event, Error) or event.code is not FailureCode.OVER_BUDGET or event.budget is None:
        return None
    response = JsonResponse({"detail": event.message, **event.budget.as_dict()}, status=429)
    response["Retry-After"] = str(event.budget.retry_after)
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
