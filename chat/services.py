"""Conversations and their messages. The user's message is stored before any model is asked, so nothing
typed is lost; the answer is written by `chat_stream`, which saves whatever text arrived however the
stream ends (done, failed, stopped, or the browser gone)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from chat.models import Conversation, Message, MessageRole, MessageStatus
from completions.services import CompletionEvent, completion_stream
from models_mgmt.models import AIModel
from models_mgmt.services import (
    ModelStatus,
    Suggestion,
    model_list_with_status,
    model_status,
    model_suggest_alternative,
    models_visible,
)
from orchestrator.errors import ServiceError
from providers.adapters import ChatParams

MAX_MESSAGE_CHARS = 100_000
TITLE_CHARS = 60
STOP_CHECK_SECONDS = 0.5


class ChatError(ServiceError):
    pass


class ConversationNotFound(ChatError):
    status_code = 404


# --- conversations -------------------------------------------------------------------------------------


def conversation_list(*, owner: AbstractBaseUser) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner=owner)


def conversation_get(*, owner: AbstractBaseUser, pk: int) -> Conversation:
    """Someone else's conversation is answered exactly like a missing one."""
    conversation = Conversation.objects.select_related("model__provider").filter(owner=owner, pk=pk).first()
    if conversation is None:
        raise ConversationNotFound("No such conversation.")
    return conversation


def conversation_create(*, owner: AbstractBaseUser, model: AIModel | None = None) -> Conversation:
    return Conversation.objects.create(owner=owner, model=model)


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = title.strip()
    if not title or len(title) > 200:
        raise ChatError("A title is 1 to 200 characters.")
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def conversation_configure(
    *, conversation: Conversation, system_prompt: str | None = None, auto_fallback: bool | None = None
) -> Conversation:
    if system_prompt is not None:
        if len(system_prompt) > MAX_MESSAGE_CHARS:
            raise ChatError(f"The system prompt is longer than {MAX_MESSAGE_CHARS} characters.")
        conversation.system_prompt = system_prompt.strip()
    if auto_fallback is not None:
        conversation.auto_fallback = auto_fallback
    conversation.save(update_fields=["system_prompt", "auto_fallback", "updated_at"])
    return conversation


# --- messages ------------------------------------------------------------------------------------------


def _chat_model(model_id: int | str | None, conversation: Conversation) -> AIModel:
    model = (
        models_visible(user=conversation.owner).filter(pk=model_id).first()
        if model_id not in (None, "")
        else conversation.model
    )
    if model is None:
        raise ChatError("Choose a model first.")
    if not model.can_chat:
        raise ChatError(f"{model.name} is an embedding model; it cannot chat.")
    return model


def chat_send(*, conversation: Conversation, content: str, model_id: int | str | None) -> tuple[Message, Message]:
    """Store the user's message, then an empty answer for `chat_stream` to write."""
    if not content.strip():
        raise ChatError("Type a message first.")
    if len(content) > MAX_MESSAGE_CHARS:
        raise ChatError(f"A message is at most {MAX_MESSAGE_CHARS} characters.")
    model = _chat_model(model_id, conversation)
    with transaction.atomic():
        question = Message.objects.create(conversation=conversation, role=MessageRole.USER, content=content)
        answer = Message.objects.create(
            conversation=conversation,
            role=MessageRole.ASSISTANT,
            status=MessageStatus.PENDING,
            requested_model=model,
        )
        conversation.model = model
        if not conversation.title:
            first_line = content.strip().splitlines()[0]
            conversation.title = first_line[:TITLE_CHARS] + ("…" if len(first_line) > TITLE_CHARS else "")
        conversation.save(update_fields=["model", "title", "updated_at"])
    return question, answer


def chat_regenerate(*, conversation: Conversation, model_id: int | str | None = None) -> Message:
    """A new answer to the last question (with another model if given); the old answer is replaced."""
    model = _chat_model(model_id, conversation)
    last_question = conversation.messages.filter(role=MessageRole.USER).last()
    if last_question is None:
        raise ChatError("There is no question to answer again.")
    with transaction.atomic():
        conversation.messages.filter(role=MessageRole.ASSISTANT, created_at__gte=last_question.created_at).exclude(
            status=MessageStatus.STREAMING
        ).delete()
        answer = Message.objects.create(
            conversation=conversation, role=MessageRole.ASSISTANT, status=MessageStatus.PENDING, requested_model=model
        )
        conversation.model = model
        conversation.save(update_fields=["model", "updated_at"])
    return answer


def chat_stop(*, owner: AbstractBaseUser, message_id: int) -> Message:
    message = Message.objects.filter(pk=message_id, conversation__owner=owner).first()
    if message is None:
        raise ConversationNotFound("No such message.")
    Message.objects.filter(pk=message.pk).update(stop_requested=True)
    return message


def chat_history(*, conversation: Conversation, before: Message) -> list[dict[str, str]]:
    """What the model is shown: the system prompt, then every exchange before `before` that has text."""
    history = [{"role": "system", "content": conversation.system_prompt}] if conversation.system_prompt else []
    for message in conversation.messages.filter(created_at__lt=before.created_at).exclude(pk=before.pk):
        if message.content:
            history.append({"role": message.role, "content": message.content})
    return history


def chat_alternative(*, message: Message, user: AbstractBaseUser) -> Suggestion | None:
    """What to offer after a failed answer: the suggested alternative to every model that failed on it."""
    failed = message.answered_by or message.requested_model
    if failed is None:
        return None
    tried_refs = {str(f.get("from")) for f in message.fallbacks}
    visible = models_visible(user=user)
    tried = [
        m.pk
        for m in visible.filter(provider__name__in=[r.partition("/")[0] for r in tried_refs])
        if m.ref in tried_refs
    ]
    return model_suggest_alternative(model=failed, user=user, exclude=tried)


def chat_model_statuses(*, user: AbstractBaseUser) -> list[ModelStatus]:
    return [s for s in model_list_with_status(user=user) if s.model.can_chat and s.model.active]


def chat_model_status(*, model: AIModel, user: AbstractBaseUser) -> ModelStatus:
    return model_status(model=model, user=user)


# --- the answer, streamed ------------------------------------------------------------------------------


@dataclass
class StreamUpdate:
    """One thing for the page: a notice (loading, fallback), a piece of text, or the end."""

    kind: str  # "notice" | "delta" | "end"
    text: str = ""


async def _with_ticks(events: AsyncIterator[CompletionEvent], interval: float) -> AsyncIterator[CompletionEvent | None]:
    """The events, with None whenever `interval` passes without one, so a slow load can show progress
    and a stop request is noticed while the model is silent."""
    iterator = aiter(events)
    pending: asyncio.Future[CompletionEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            finished, pending = pending, None
            try:
                yield finished.result()
            except StopAsyncIteration:
                return
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            # Let the cancelled read unwind inside the stream (it closes its upstream response) before
            # closing the stream itself; both must happen while the event loop is still here.
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending
        await events.aclose()  # type: ignore[attr-defined]


def _claim(message_id: int, owner: AbstractBaseUser) -> Message | None:
    """Only a pending answer is generated, once: a reconnecting browser must not run the prompt again."""
    claimed = Message.objects.filter(pk=message_id, conversation__owner=owner, status=MessageStatus.PENDING).update(
        status=MessageStatus.STREAMING
    )
    if not claimed:
        return None
    return Message.objects.select_related("conversation", "requested_model__provider").get(pk=message_id)


def _model_by_ref(ref: str, user: AbstractBaseUser) -> AIModel | None:
    provider, _, model_id = ref.partition("/")
    return models_visible(user=user).filter(provider__name=provider, model_id=model_id).order_by("owner_id").first()


def _display_name(ref: str, user: AbstractBaseUser) -> str:
    model = _model_by_ref(ref, user)
    return model.name if model else ref


def _stop_requested(message_id: int) -> bool:
    return Message.objects.filter(pk=message_id, stop_requested=True).exists()


def _save_answer(message_id: int, fields: dict[str, object]) -> None:
    Message.objects.filter(pk=message_id).update(**fields)
    Conversation.objects.filter(messages__pk=message_id).update(updated_at=timezone.now())


async def chat_stream(*, message_id: int, user: AbstractBaseUser) -> AsyncIterator[StreamUpdate]:
    """Write a pending answer from the completion service, telling the page as it goes. The text is
    saved in `finally`: whatever ends the stream, what arrived is kept."""
    message = await sync_to_async(_claim)(message_id, user)
    if message is None:
        yield StreamUpdate("end")
        return
    conversation = message.conversation
    model = message.requested_model
    if model is None:
        await sync_to_async(_save_answer)(
            message_id, {"status": MessageStatus.ERROR, "error": "The model chosen for this answer is gone."}
        )
        yield StreamUpdate("end")
        return
    history = await sync_to_async(chat_history)(conversation=conversation, before=message)
    parts: list[str] = []
    fallbacks: list[dict[str, object]] = []
    outcome: dict[str, object] = {"status": MessageStatus.STOPPED, "error": "The page was closed before the end."}
    loading: tuple[str, float] | None = None
    started = time.monotonic()
    last_stop_check = started
    stream = completion_stream(
        user=user, model=model, messages=history, params=ChatParams(), fallback=conversation.auto_fallback
    )
    try:
        async with aclosing(_with_ticks(stream, 1.0)) as events:
            async for event in events:
                now = time.monotonic()
                if now - last_stop_check >= STOP_CHECK_SECONDS:
                    last_stop_check = now
                    if await sync_to_async(_stop_requested)(message_id):
                        outcome = {"status": MessageStatus.STOPPED, "error": ""}
                        break
                if event is None:
                    if loading is not None:
                        name, since = loading
                        yield StreamUpdate("notice", f"Loading {name}… {int(now - since)} s")
                    continue
                if event.type == "loading":
                    name = await sync_to_async(_display_name)(event.data["model"], user)
                    loading = (name, now)
                    yield StreamUpdate("notice", f"Loading {name}… 0 s")
                elif event.type == "start":
                    loading = None
                    yield StreamUpdate("notice", "")
                elif event.type == "fallback":
                    fallbacks.append({**event.data})
                    yield StreamUpdate("notice", f"{event.data['from']} failed: {event.data['reason']}")
                elif event.type == "delta":
                    parts.append(event.data["text"])
                    yield StreamUpdate("delta", event.data["text"])
                elif event.type == "done":
                    usage = event.data.get("usage") or {}
                    outcome = {
                        "status": MessageStatus.COMPLETE,
                        "error": "",
                        "answered_by_ref": event.data["model"],
                        "prompt_tokens": usage.get("prompt_tokens"),
                        "completion_tokens": usage.get("completion_tokens"),
                    }
                elif event.type == "error":
                    outcome = {
                        "status": MessageStatus.ERROR,
                        "error": event.data["message"],
                        "error_code": event.data.get("code", ""),
                        "answered_by_ref": event.data.get("model") or "",
                    }
    finally:
        outcome.update(
            content="".join(parts),
            fallbacks=fallbacks,
            latency_ms=int((time.monotonic() - started) * 1000),
        )
        ref = str(outcome.get("answered_by_ref") or "")
        if ref:
            outcome["answered_by"] = await sync_to_async(_model_by_ref)(ref, user)
        # Shielded: a browser that left cancels this task, and the save must still happen.
        await asyncio.shield(sync_to_async(_save_answer)(message_id, outcome))
    yield StreamUpdate("end")
