from collections.abc import AsyncIterator
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router, Status

from accounts.auth import api_auth
from completions.schemas import CompletionIn, CompletionOut
from completions.services import UNAVAILABLE_CODES, completion_collect, completion_stream
from models_mgmt.schemas import ErrorOut
from models_mgmt.services import model_resolve
from orchestrator.sse import event_stream_response
from providers.adapters import ErrorCode

router = Router(tags=["completions"], auth=api_auth)


@router.post(
    "",
    response={200: CompletionOut, 400: ErrorOut, 404: ErrorOut | CompletionOut, 502: CompletionOut, 503: CompletionOut},
    summary="Complete a chat with fallback; `stream: true` answers text/event-stream of the events",
)
async def complete(request: HttpRequest, payload: CompletionIn) -> Status[CompletionOut] | StreamingHttpResponse:
    user = request.user
    model = await sync_to_async(model_resolve)(ref=payload.model, user=user, key_id=payload.key_id)
    kwargs = {
        "user": user,
        "model": model,
        "messages": payload.chat_messages(),
        "params": payload.chat_params(),
        "fallback": payload.fallback,
        "key_id": payload.key_id,
    }
    if payload.stream:
        return sse_response(completion_stream(**kwargs))
    result = await completion_collect(**kwargs)
    status = 200
    if result.error is not None:
        code = result.error.get("code")
        status = 503 if code in UNAVAILABLE_CODES and not result.text else 502
        if code == ErrorCode.NOT_FOUND and not result.text and model.pk is None:
            status = 404  # a model named on first use that its provider does not have
    return Status(status, CompletionOut(**result.__dict__))


def sse_response(events: AsyncIterator) -> StreamingHttpResponse:
    async def body() -> AsyncIterator[bytes]:
        # aclosing: a client that goes away stops the upstream request now, not at garbage collection.
        async with aclosing(events) as stream:
            async for event in stream:
                yield event.sse()

    return event_stream_response(body())
