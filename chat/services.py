"""Conversations and their messages. The user's message is stored before any model is asked, so nothing
typed is lost; the answer is written by `chat_stream`, which saves whatever text arrived however the
stream ends (done, failed, stopped, or the browser gone)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chat.models import ChatPreference, Conversation, Message, MessageRole, MessageStatus
from completions.events import CompletionEvent, Delta, Done, Error, Fallback, Loading, Start
from completions.services import completion_collect, completion_stream
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
from orchestrator.text import unstorable_reason
from providers.adapters import ChatParams

MAX_MESSAGE_CHARS = 100_000
TITLE_CHARS = 60
STOP_CHECK_SECONDS = 0.5
MAX_TEMPERATURE = 2.0
MAX_ANSWER_TOKENS = 1_000_000
SEARCH_RESULTS = 20
SNIPPET_CHARS = 60
EXPORT_FORMAT = "ai-orchestrator-conversation"
EXPORT_VERSION = 1
MAX_IMPORT_MESSAGES = 5_000
TITLE_MAX_TOKENS = 16
TITLE_TIMEOUT_SECONDS = 8.0
TITLE_PROMPT = (
    "Give the conversation below a title of at most six words. Answer with the title only: plain text, "
    "no quotes, no Markdown, no full stop."
)


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


def _refuse_nul(text: str, what: str) -> None:
    reason = unstorable_reason(text)
    if reason:
        raise ChatError(f"{what} contains {reason}.")


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = title.strip()
    if not title or len(title) > 200:
        raise ChatError("A title is 1 to 200 characters.")
    _refuse_nul(title, "The title")
    conversation.title = title
    conversation.title_is_auto = False
    conversation.save(update_fields=["title", "title_is_auto", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def _parse_temperature(raw: str | float) -> float | None:
    if isinstance(raw, str):
        raw = raw.strip().replace(",", ".")
        if not raw:
            return None
        try:
            raw = float(raw)
        except ValueError:
            raise ChatError("Temperature is a number from 0 to 2, e.g. 0.7.") from None
    if not 0 <= raw <= MAX_TEMPERATURE:  # also refuses NaN
        raise ChatError("Temperature is a number from 0 to 2, e.g. 0.7.")
    return float(raw)


def _parse_max_tokens(raw: str | int) -> int | None:
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            return None
        if not raw.isdigit():
            raise ChatError(f"Max answer tokens is a whole number from 1 to {MAX_ANSWER_TOKENS:,}.")
        raw = int(raw)
    if not 1 <= raw <= MAX_ANSWER_TOKENS:
        raise ChatError(f"Max answer tokens is a whole number from 1 to {MAX_ANSWER_TOKENS:,}.")
    return raw


def conversation_configure(
    *,
    conversation: Conversation,
    system_prompt: str | None = None,
    auto_fallback: bool | None = None,
    temperature: str | float | None = None,
    max_tokens: str | int | None = None,
) -> Conversation:
    """Each argument left None is kept; an empty temperature or token limit means the model's default."""
    if system_prompt is not None and len(system_prompt) > MAX_MESSAGE_CHARS:
        raise ChatError(f"The system prompt is longer than {MAX_MESSAGE_CHARS} characters.")
    _refuse_nul(system_prompt or "", "The system prompt")
    # Everything is checked before anything is changed: one bad field saves none.
    new_temperature = _parse_temperature(temperature) if temperature is not None else conversation.temperature
    new_max_tokens = _parse_max_tokens(max_tokens) if max_tokens is not None else conversation.max_tokens
    if system_prompt is not None:
        conversation.system_prompt = system_prompt.strip()
    if auto_fallback is not None:
        conversation.auto_fallback = auto_fallback
    conversation.temperature, conversation.max_tokens = new_temperature, new_max_tokens
    conversation.save(update_fields=["system_prompt", "auto_fallback", "temperature", "max_tokens", "updated_at"])
    return conversation


def chat_params(*, conversation: Conversation) -> ChatParams:
    return ChatParams(temperature=conversation.temperature, max_tokens=conversation.max_tokens)


# --- titles --------------------------------------------------------------------------------------------

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*_`~#>|]+")


def plain_title(text: str) -> str:
    """A title as plain text: the first non-empty line, Markdown marks and quotes gone, trimmed at a word."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = _MARKUP.sub("", _LINK.sub(r"\1", line))
    line = re.sub(r"^\s*(?:[-+]\s+|\d+[.)]\s+|title:\s*)", "", line, flags=re.IGNORECASE)
    line = " ".join(line.split()).strip(" \"'“”.")
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[:TITLE_CHARS]
    if " " in cut[TITLE_CHARS // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"


# --- the branch on screen ------------------------------------------------------------------------------


@dataclass
class BranchItem:
    """A message on the branch shown, with where it stands among its versions (siblings)."""

    message: Message
    index: int = 1
    count: int = 1
    previous_id: int | None = None
    next_id: int | None = None


@dataclass
class _Tree:
    by_id: dict[int, Message] = field(default_factory=dict)
    children: dict[int | None, list[Message]] = field(default_factory=dict)

    def descend(self, message: Message) -> Message:
        """The newest version at every step below `message`: where a switch to it lands."""
        while self.children.get(message.pk):
            message = self.children[message.pk][-1]
        return message


def _tree(conversation: Conversation) -> _Tree:
    tree = _Tree()
    messages = conversation.messages.select_related("requested_model__provider", "answered_by__provider")
    for message in messages.order_by("created_at", "pk"):
        tree.by_id[message.pk] = message
        tree.children.setdefault(message.parent_id, []).append(message)
    return tree


def _chain(tree: _Tree, leaf: Message | None) -> list[Message]:
    chain: list[Message] = []
    seen: set[int] = set()
    while leaf is not None and leaf.pk not in seen:
        seen.add(leaf.pk)
        chain.append(leaf)
        leaf = tree.by_id.get(leaf.parent_id) if leaf.parent_id else None
    return chain[::-1]


def chat_branch(*, conversation: Conversation) -> list[BranchItem]:
    """The messages on screen, oldest first: the leaf and its ancestors, each with its versions."""
    tree = _tree(conversation)
    leaf = tree.by_id.get(conversation.leaf_id) if conversation.leaf_id else None
    if leaf is None and tree.by_id:
        leaf = tree.descend(tree.children[None][-1]) if tree.children.get(None) else None
    items = []
    for message in _chain(tree, leaf):
        siblings = tree.children.get(message.parent_id, [message])
        index = next(i for i, m in enumerate(siblings) if m.pk == message.pk)
        items.append(
            BranchItem(
                message=message,
                index=index + 1,
                count=len(siblings),
                previous_id=siblings[index - 1].pk if index > 0 else None,
                next_id=siblings[index + 1].pk if index + 1 < len(siblings) else None,
            )
        )
    return items


def chat_versions(*, message: Message) -> BranchItem:
    """Where one message stands among its versions, for a message drawn on its own (a new or final one)."""
    siblings = list(
        Message.objects.filter(conversation_id=message.conversation_id, parent_id=message.parent_id)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )
    index = siblings.index(message.pk) if message.pk in siblings else 0
    return BranchItem(
        message=message,
        index=index + 1,
        count=max(len(siblings), 1),
        previous_id=siblings[index - 1] if index > 0 else None,
        next_id=siblings[index + 1] if index + 1 < len(siblings) else None,
    )


def _message_in(conversation: Conversation, message_id: int | str | None) -> Message:
    message = conversation.messages.filter(pk=message_id).first() if str(message_id or "").isdigit() else None
    if message is None:
        raise ConversationNotFound("No such message in this conversation.")
    return message


def chat_switch(*, conversation: Conversation, message_id: int | str) -> Conversation:
    """Show the branch through a message (another version, or a search hit): its newest descendants."""
    message = _message_in(conversation, message_id)
    tree = _tree(conversation)
    conversation.leaf = tree.descend(tree.by_id[message.pk])
    # Not `updated_at`: looking at another version is not a change to the conversation.
    Conversation.objects.filter(pk=conversation.pk).update(leaf=conversation.leaf)
    return conversation


# --- messages ------------------------------------------------------------------------------------------


def _chat_model(model_id: int | str | None, conversation: Conversation) -> AIModel:
    if model_id not in (None, "") and not (str(model_id).isascii() and str(model_id).isdigit()):
        raise ChatError("Choose a model from the list.")
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


def _check_content(content: str) -> None:
    if not content.strip():
        raise ChatError("Type a message first.")
    _refuse_nul(content, "The message")
    if len(content) > MAX_MESSAGE_CHARS:
        raise ChatError(f"A message is at most {MAX_MESSAGE_CHARS} characters.")


def chat_last_model(*, user: AbstractBaseUser) -> AIModel | None:
    """The model the user asked last, where a new chat starts."""
    preference = ChatPreference.objects.select_related("last_model__provider").filter(user=user).first()
    return preference.last_model if preference else None


def _ask(conversation: Conversation, parent: Message | None, content: str | None, model: AIModel) -> tuple:
    """A question (unless regenerating) under `parent`, and a pending answer under it, now on screen."""
    with transaction.atomic():
        question = None
        if content is not None:
            question = Message.objects.create(
                conversation=conversation, parent=parent, role=MessageRole.USER, content=content
            )
            parent = question
        answer = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role=MessageRole.ASSISTANT,
            status=MessageStatus.PENDING,
            requested_model=model,
        )
        conversation.model = model
        conversation.leaf = answer
        fields = ["model", "leaf", "updated_at"]
        if content is not None and not conversation.title:
            conversation.title = plain_title(content) or "Untitled"
            fields.append("title")
        conversation.save(update_fields=fields)
        ChatPreference.objects.update_or_create(user_id=conversation.owner_id, defaults={"last_model": model})
    return question, answer


def chat_send(*, conversation: Conversation, content: str, model_id: int | str | None) -> tuple[Message, Message]:
    """Store the user's message at the end of the branch on screen, then an empty answer for
    `chat_stream` to write."""
    _check_content(content)
    model = _chat_model(model_id, conversation)
    leaf = conversation.messages.filter(pk=conversation.leaf_id).first() if conversation.leaf_id else None
    return _ask(conversation, leaf, content, model)


def chat_edit(
    *, conversation: Conversation, message_id: int | str, content: str, model_id: int | str | None
) -> tuple[Message, Message]:
    """An edited question is a new version beside the old one (same parent), answered afresh; the old
    question and everything after it stay, one ‹ › away."""
    original = _message_in(conversation, message_id)
    if original.role != MessageRole.USER:
        raise ChatError("Only a question can be edited; ask for another answer with Regenerate.")
    _check_content(content)
    model = _chat_model(model_id, conversation)
    return _ask(conversation, original.parent, content, model)


def chat_regenerate(
    *, conversation: Conversation, model_id: int | str | None = None, message_id: int | str | None = None
) -> Message:
    """Another version of an answer (the one given, else the last on screen), with another model if
    given. The earlier versions are kept."""
    if message_id not in (None, ""):
        answer = _message_in(conversation, message_id)
        question = answer.parent if answer.role == MessageRole.ASSISTANT else answer
    else:
        leaf = conversation.messages.filter(pk=conversation.leaf_id).first() if conversation.leaf_id else None
        question = leaf.parent if leaf is not None and leaf.role == MessageRole.ASSISTANT else leaf
    if question is None or question.role != MessageRole.USER:
        raise ChatError("There is no question to answer again.")
    model = _chat_model(model_id, conversation)
    _, answer = _ask(conversation, question, None, model)
    return answer


def chat_stop(*, owner: AbstractBaseUser, message_id: int) -> Message:
    message = Message.objects.filter(pk=message_id, conversation__owner=owner).first()
    if message is None:
        raise ConversationNotFound("No such message.")
    Message.objects.filter(pk=message.pk).update(stop_requested=True)
    return message


def chat_history(*, conversation: Conversation, before: Message) -> list[dict[str, str]]:
    """What the model is shown: the system prompt, then the branch above `before` (never other
    versions), the messages that have text."""
    history = [{"role": "system", "content": conversation.system_prompt}] if conversation.system_prompt else []
    tree = _tree(conversation)
    parent = tree.by_id.get(before.parent_id) if before.parent_id else None
    for message in _chain(tree, parent):
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


# --- search --------------------------------------------------------------------------------------------


@dataclass
class SearchHit:
    conversation: Conversation
    message: Message | None
    snippet: str


def _snippet(text: str, query: str) -> str:
    flat = " ".join(text.split())
    at = flat.lower().find(query.lower())
    if at < 0:
        return flat[: SNIPPET_CHARS * 2] + ("…" if len(flat) > SNIPPET_CHARS * 2 else "")
    start, end = max(0, at - SNIPPET_CHARS), min(len(flat), at + len(query) + SNIPPET_CHARS)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


def conversation_search(*, owner: AbstractBaseUser, query: str) -> list[SearchHit]:
    """The owner's conversations whose title or messages match, newest first; a message hit names the
    message. PostgreSQL matches words by full-text search (stems, any order) as well as by substring."""
    query = " ".join(query.replace("\x00", " ").split())[:200]
    if not query:
        return []
    hits: list[SearchHit] = []
    titled = conversation_list(owner=owner).filter(title__icontains=query)[:SEARCH_RESULTS]
    hits.extend(SearchHit(conversation=c, message=None, snippet=c.title) for c in titled)
    messages = Message.objects.select_related("conversation").filter(conversation__owner=owner)
    matches = Q(content__icontains=query)
    if connection.vendor == "postgresql":
        messages = messages.annotate(search=SearchVector("content"))
        matches |= Q(search=SearchQuery(query, search_type="websearch"))
    for message in messages.filter(matches).order_by("-created_at")[:SEARCH_RESULTS]:
        snippet = _snippet(message.content, query)
        hits.append(SearchHit(conversation=message.conversation, message=message, snippet=snippet))
    return hits[:SEARCH_RESULTS]


# --- export and import ---------------------------------------------------------------------------------


def conversation_export(*, conversation: Conversation) -> dict[str, object]:
    """Everything, every version: each message names its parent, and `branch` lists the ones on screen."""
    tree = _tree(conversation)
    branch = [item.message.pk for item in chat_branch(conversation=conversation)]
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "title": conversation.title,
        "system_prompt": conversation.system_prompt,
        "model": conversation.model.ref if conversation.model else None,
        "temperature": conversation.temperature,
        "max_tokens": conversation.max_tokens,
        "auto_fallback": conversation.auto_fallback,
        "created_at": conversation.created_at.isoformat(),
        "branch": branch,
        "messages": [
            {
                "id": m.pk,
                "parent": m.parent_id,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "model": m.answered_by_ref or (m.requested_model.ref if m.requested_model else None),
                "requested_model": m.requested_model.ref if m.requested_model else None,
                "created_at": m.created_at.isoformat(),
                "latency_ms": m.latency_ms,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "error": m.error,
            }
            for m in tree.by_id.values()
        ],
    }


def conversation_export_markdown(*, conversation: Conversation) -> str:
    """The branch on screen as a readable document; versions are noted, not repeated."""
    lines = [f"# {conversation.title or 'Untitled'}", ""]
    if conversation.system_prompt:
        lines += ["**System prompt:**", "", conversation.system_prompt, ""]
    for item in chat_branch(conversation=conversation):
        m = item.message
        who = "You" if m.role == MessageRole.USER else (m.answered_by_ref or "Assistant")
        version = f" (version {item.index} of {item.count})" if item.count > 1 else ""
        lines += [f"## {who}{version}", "", f"*{m.created_at:%Y-%m-%d %H:%M} UTC*", "", m.content, ""]
        if m.error:
            lines += [f"> {m.get_status_display()}: {m.error}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _field(data: dict, key: str, kind: type, default: object, where: str) -> object:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ChatError(f"{where}: {key!r} must be {kind.__name__}.")
    return value


def _timestamp(value: object, where: str) -> datetime:
    if value in (None, ""):
        return timezone.now()
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well formed but impossible, e.g. month 13
        moment = None
    if moment is None:
        raise ChatError(f"{where}: 'created_at' is not an ISO 8601 date and time.")
    # A time without a zone is read as UTC, the zone exports are written in.
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def conversation_import(*, owner: AbstractBaseUser, raw: bytes | str) -> Conversation:
    """A conversation from an export, as a new conversation of `owner` (ids are new; the tree, texts,
    models and times are kept). All or nothing: a file with one bad message imports nothing."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ChatError("The file is not JSON; import takes a conversation exported as JSON.") from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ChatError("This JSON is not a conversation exported from AI Orchestrator.")
    if data.get("version") != EXPORT_VERSION:
        raise ChatError(f"Export version {data.get('version')!r} is not supported (this app reads {EXPORT_VERSION}).")
    items = data.get("messages")
    if not isinstance(items, list) or not items:
        raise ChatError("The export has no messages.")
    if len(items) > MAX_IMPORT_MESSAGES:
        raise ChatError(f"An import holds at most {MAX_IMPORT_MESSAGES} messages.")
    title = plain_title(str(_field(data, "title", str, "", "The conversation")))[:200]
    system_prompt = str(_field(data, "system_prompt", str, "", "The conversation"))
    if len(system_prompt) > MAX_MESSAGE_CHARS:
        raise ChatError(f"The system prompt is longer than {MAX_MESSAGE_CHARS} characters.")
    _refuse_nul(title + system_prompt, "The conversation's title or system prompt")
    temperature = data.get("temperature")
    max_tokens = data.get("max_tokens")
    temperature = _parse_temperature(temperature) if isinstance(temperature, int | float) else None
    max_tokens = _parse_max_tokens(max_tokens) if _count(max_tokens) else None
    # Only models the owner may chat with are linked; other names stay as text.
    usable = {s.model.ref: s.model for s in chat_model_statuses(user=owner)}
    statuses = set(MessageStatus.values) - {MessageStatus.PENDING, MessageStatus.STREAMING}
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=owner,
            title=title or "Imported conversation",
            title_is_auto=False,
            system_prompt=system_prompt,
            temperature=temperature,
            max_tokens=max_tokens,
            auto_fallback=data.get("auto_fallback") is not False,
            model=usable.get(str(data.get("model"))),
            created_at=_timestamp(data.get("created_at"), "The conversation"),
        )
        new_ids: dict[object, Message] = {}
        for number, item in enumerate(items, start=1):
            where = f"Message {number}"
            if not isinstance(item, dict):
                raise ChatError(f"{where} is not an object.")
            role = item.get("role")
            if role not in MessageRole.values:
                raise ChatError(f"{where}: role must be 'user' or 'assistant'.")
            content = str(_field(item, "content", str, "", where))
            if len(content) > MAX_MESSAGE_CHARS:
                raise ChatError(f"{where} is longer than {MAX_MESSAGE_CHARS} characters.")
            key, parent_key = item.get("id"), item.get("parent")
            if not isinstance(key, int | str) or key in new_ids:
                raise ChatError(f"{where}: each message needs its own 'id' (a number or a string).")
            if parent_key is not None and (not isinstance(parent_key, int | str) or parent_key not in new_ids):
                raise ChatError(f"{where}: its parent must come before it in the file.")
            _refuse_nul(content, where)
            status = item.get("status") if item.get("status") in statuses else MessageStatus.STOPPED
            model_ref = str(_field(item, "model", str, "", where))[:300]
            requested = str(_field(item, "requested_model", str, "", where))
            new_ids[key] = Message.objects.create(
                conversation=conversation,
                parent=new_ids.get(parent_key),
                role=role,
                content=content,
                status=status if role == MessageRole.ASSISTANT else MessageStatus.COMPLETE,
                answered_by_ref=model_ref if role == MessageRole.ASSISTANT else "",
                answered_by=usable.get(model_ref),
                requested_model=usable.get(requested),
                error=str(_field(item, "error", str, "", where))[:2000],
                latency_ms=_count(item.get("latency_ms")),
                prompt_tokens=_count(item.get("prompt_tokens")),
                completion_tokens=_count(item.get("completion_tokens")),
                created_at=_timestamp(item.get("created_at"), where),
            )
        branch = data.get("branch")
        leaf_key = branch[-1] if isinstance(branch, list) and branch else None
        leaf = new_ids.get(leaf_key) if isinstance(leaf_key, int | str) else None
        if leaf is None:
            leaf = list(new_ids.values())[-1]
        conversation.leaf = leaf
        conversation.save(update_fields=["leaf", "updated_at"])
    return conversation


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None


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
        user=user,
        model=model,
        messages=history,
        params=chat_params(conversation=conversation),
        fallback=conversation.auto_fallback,
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
                match event:
                    case Loading():
                        name = await sync_to_async(_display_name)(event.model, user)
                        loading = (name, now)
                        yield StreamUpdate("notice", f"Loading {name}… 0 s")
                    case Start():
                        loading = None
                        yield StreamUpdate("notice", "")
                    case Fallback():
                        fallbacks.append(event.as_data())
                        yield StreamUpdate("notice", f"{event.from_model} failed: {event.reason}")
                    case Delta():
                        parts.append(event.text)
                        yield StreamUpdate("delta", event.text)
                    case Done():
                        usage = event.usage or {}
                        outcome = {
                            "status": MessageStatus.COMPLETE,
                            "error": "",
                            "answered_by_ref": event.model,
                            "prompt_tokens": usage.get("prompt_tokens"),
                            "completion_tokens": usage.get("completion_tokens"),
                        }
                    case Error():
                        outcome = {
                            "status": MessageStatus.ERROR,
                            "error": event.message,
                            "error_code": event.code,
                            "answered_by_ref": event.model or "",
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


# --- the title, after the first answer -----------------------------------------------------------------


def _title_request(message_id: int, owner: AbstractBaseUser) -> tuple[Conversation, AIModel, list] | None:
    """The first exchange to title, when the conversation still has an automatic title."""
    answer = (
        Message.objects.select_related("conversation", "parent", "answered_by__provider", "requested_model__provider")
        .filter(pk=message_id, conversation__owner=owner, role=MessageRole.ASSISTANT)
        .first()
    )
    if answer is None or not answer.conversation.title_is_auto or answer.parent is None:
        return None
    if answer.parent.parent_id is not None or answer.status != MessageStatus.COMPLETE or not answer.content:
        return None
    model = answer.answered_by or answer.requested_model
    if model is None:
        return None
    exchange = f"User: {answer.parent.content[:2000]}\n\nAssistant: {answer.content[:2000]}"
    messages = [{"role": "system", "content": TITLE_PROMPT}, {"role": "user", "content": exchange}]
    return answer.conversation, model, messages


def _save_title(conversation_id: int, title: str) -> bool:
    # Only while the title is still automatic: a rename made meanwhile wins.
    return bool(
        Conversation.objects.filter(pk=conversation_id, title_is_auto=True).update(title=title, title_is_auto=False)
    )


async def chat_autotitle(*, message_id: int, user: AbstractBaseUser) -> str | None:
    """Ask the model that wrote the first answer for a short plain-text title. When it cannot be asked
    or says nothing usable, the trimmed first line set at send time stays. Returns the new title."""
    request = await sync_to_async(_title_request)(message_id, user)
    if request is None:
        return None
    conversation, model, messages = request
    params = ChatParams(max_tokens=TITLE_MAX_TOKENS, temperature=0.2)
    try:
        # Bounded: the page waits for it before the answer is final, and a title is not worth a long wait.
        result = await asyncio.wait_for(
            completion_collect(user=user, model=model, messages=messages, params=params, fallback=False),
            timeout=TITLE_TIMEOUT_SECONDS,
        )
    except TimeoutError:
        return None
    title = plain_title(result.text or "") if not result.error else ""
    if not title:
        return None
    return title if await sync_to_async(_save_title)(conversation.pk, title) else None
