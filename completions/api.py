from collections.abc import AsyncIterator
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router, Status

from accounts.auth import api_auth
from completions.schemas import CompletionIn, CompletionOut
from completions.services import completion_collect, completion_stream
from models_mgmt.schemas import ErrorOut
from models_mgmt.services import model_get
from orchestrator.sse import event_stream_response

router = Router(tags=["completions"], auth=api_auth)

# No model could answer: the upstreams are down or refused (502), or nothing was there to ask (503).
UNAVAILABLE_CODES = {"no_key", "unreachable", "inactive", "failed", "load_failed", "key_unreadable"}


@router.post(
    "",
    response={200: CompletionOut, 404: ErrorOut, 502: CompletionOut, 503: CompletionOut},
    summary="Complete a chat with fallback; `stream: true` answers text/event-stream of the events",
)
async def complete(request: HttpRequest, payload: CompletionIn) -> Status[CompletionOut] | StreamingHttpResponse:
    model = await sync_to_async(model_get)(ref=payload.model)
    user = request.user
    kwargs = {
        "user": user,
        "model": model,
        "messages": payload.chat_messages(),
        "params": payload.chat_params(),
        "fallback": payload.fallback,
    }
    if payload.stream:
        return sse_response(completion_stream(**kwargs))
    result = await completion_collect(**kwargs)
    status = 200
    if result.error is not None:
        status = 503 if result.error.get("code") in UNAVAILABLE_CODES and not result.text else 502
    return Status(status, CompletionOut(**result.__dict__))


def sse_response(events: AsyncIterator) -> StreamingHttpResponse:
    async def body() -> AsyncIterator[bytes]:
        # aclosing: a client that goes away stops the upstream request now, not at garbage collection.
        async with aclosing(events) as stream:
            async for event in stream:
                yield event.sse()

    return event_stream_response(body())
