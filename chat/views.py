import re
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from chat import services
from chat.models import Conversation, Message, MessageStatus
from orchestrator.sse import event_stream_response


def _conversation(request: HttpRequest, pk: int) -> Conversation:
    try:
        return services.conversation_get(owner=request.user, pk=pk)
    except services.ConversationNotFound:
        raise Http404("No such conversation.") from None


MAX_IMPORT_BYTES = 10 * 1024 * 1024
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _message_context(message: Message, user: object, item: services.BranchItem | None = None) -> dict[str, object]:
    alternative = None
    if message.role == "assistant" and message.status == MessageStatus.ERROR:
        alternative = services.chat_alternative(message=message, user=user)
    return {"m": message, "alternative": alternative, "v": item or services.chat_versions(message=message)}


def _picker_context(request: HttpRequest, selected_id: str | int | None) -> dict[str, object]:
    statuses = services.chat_model_statuses(user=request.user)
    selected = next((s for s in statuses if str(s.model.pk) == str(selected_id)), None)
    return {"statuses": statuses, "selected": selected}


def _items(request: HttpRequest, conversation: Conversation | None) -> list[dict[str, object]]:
    branch = services.chat_branch(conversation=conversation) if conversation else []
    return [_message_context(item.message, request.user, item) for item in branch]


def _page(
    request: HttpRequest, conversation: Conversation | None, *, status: int = 200, settings_error: str = ""
) -> HttpResponse:
    if conversation is not None:
        model_id = conversation.model_id
    else:
        last = services.chat_last_model(user=request.user)
        model_id = last.pk if last else None
    context = {
        "conversation": conversation,
        "conversations": services.conversation_list(owner=request.user),
        "items": _items(request, conversation),
        "max_answer_tokens": services.MAX_ANSWER_TOKENS,
        "settings_error": settings_error,
        "settings": _settings_values(request, conversation, refused=bool(settings_error)),
        **_picker_context(request, model_id),
    }
    return render(request, "chat/chat.html", context, status=status)


def _settings_values(request: HttpRequest, conversation: Conversation | None, *, refused: bool) -> dict[str, object]:
    """What the Settings form shows: after a refusal, what the user typed (nothing typed is lost)."""
    if refused:
        return {
            "system_prompt": request.POST.get("system_prompt", ""),
            "temperature": request.POST.get("temperature", ""),
            "max_tokens": request.POST.get("max_tokens", ""),
            "auto_fallback": request.POST.get("auto_fallback") == "1",
        }
    if conversation is None:
        return {}
    return {
        "system_prompt": conversation.system_prompt,
        "temperature": "" if conversation.temperature is None else conversation.temperature,
        "max_tokens": "" if conversation.max_tokens is None else conversation.max_tokens,
        "auto_fallback": conversation.auto_fallback,
    }


def _thread(request: HttpRequest, conversation: Conversation) -> HttpResponse:
    """The branch on screen, redrawn after it changed (an edit, another version, a regenerate)."""
    if not request.htmx:
        return redirect("chat-conversation", pk=conversation.pk)
    response = render(request, "chat/_thread.html", {"items": _items(request, conversation)})
    response["HX-Retarget"] = "#thread"
    response["HX-Reswap"] = "innerHTML"
    return response


def _error(request: HttpRequest, message: str, status: int = 400, *, target: str = "#composer-error") -> HttpResponse:
    response = render(request, "chat/_error.html", {"error": message}, status=status)
    if request.htmx:
        response["HX-Retarget"] = target
        response["HX-Reswap"] = "innerHTML"
    return response


@login_required
@require_GET
def chat_home(request: HttpRequest) -> HttpResponse:
    latest = services.conversation_list(owner=request.user).first()
    if latest is not None and "new" not in request.GET:
        return redirect("chat-conversation", pk=latest.pk)
    return _page(request, None)


@login_required
@require_GET
def conversation_page(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    if request.GET.get("m"):
        # A search hit may be on another version: show the branch that holds it.
        try:
            services.chat_switch(conversation=conversation, message_id=request.GET["m"])
        except services.ConversationNotFound:
            raise Http404("No such message.") from None
    return _page(request, conversation)


@login_required
@require_POST
def chat_start(request: HttpRequest) -> HttpResponse:
    """The first message of a new conversation."""
    conversation = services.conversation_create(owner=request.user)
    try:
        services.chat_send(
            conversation=conversation, content=request.POST.get("content", ""), model_id=request.POST.get("model")
        )
    except services.ChatError as exc:
        conversation.delete()
        return _error(request, exc.message)
    return _go(request, conversation)


def _go(request: HttpRequest, conversation: Conversation | None) -> HttpResponse:
    target = f"/chat/{conversation.pk}/" if conversation else "/?new=1"
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return redirect(target)


@login_required
@require_POST
def chat_send(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    try:
        question, answer = services.chat_send(
            conversation=conversation, content=request.POST.get("content", ""), model_id=request.POST.get("model")
        )
    except services.ChatError as exc:
        return _error(request, exc.message)
    if not request.htmx:
        return redirect("chat-conversation", pk=pk)
    context = {"items": [_message_context(question, request.user), _message_context(answer, request.user)]}
    return render(request, "chat/_messages.html", context)


def _change_thread(request: HttpRequest, conversation: Conversation, change: Callable[[], object]) -> HttpResponse:
    """Run a change to the conversation's messages and answer with the thread (or the reason it was refused)."""
    try:
        change()
    except services.ConversationNotFound:
        raise Http404("No such message.") from None
    except services.ChatError as exc:
        return _error(request, exc.message)
    return _thread(request, conversation)


@login_required
@require_POST
def chat_regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    return _change_thread(
        request,
        conversation,
        lambda: services.chat_regenerate(
            conversation=conversation, model_id=request.POST.get("model"), message_id=request.POST.get("message")
        ),
    )


@login_required
@require_POST
def chat_edit(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    return _change_thread(
        request,
        conversation,
        lambda: services.chat_edit(
            conversation=conversation,
            message_id=message_id,
            content=request.POST.get("content", ""),
            model_id=request.POST.get("model"),
        ),
    )


@login_required
@require_POST
def chat_switch(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    return _change_thread(
        request, conversation, lambda: services.chat_switch(conversation=conversation, message_id=message_id)
    )


@login_required
@require_POST
def chat_stop(request: HttpRequest, message_id: int) -> HttpResponse:
    try:
        services.chat_stop(owner=request.user, message_id=message_id)
    except services.ConversationNotFound:
        raise Http404("No such message.") from None
    return HttpResponse(status=204)


def _sse(event: str, data: str) -> bytes:
    # Every line break the browser's EventSource knows (CR, LF, CRLF) starts a new data line: a bare CR
    # left in the text would end the line there and let the rest pose as a field of its own.
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return f"event: {event}\n{lines}\n".encode()


@login_required
async def chat_stream(request: HttpRequest, message_id: int) -> StreamingHttpResponse:
    user = await request.auser()

    async def events() -> AsyncIterator[bytes]:
        async with aclosing(services.chat_stream(message_id=message_id, user=user)) as updates:
            async for update in updates:
                if update.kind == "end":
                    break
                if update.kind == "delta":
                    # Plain text, which the page appends as text (static/js/app.js): not HTML for htmx.
                    yield _sse("text", update.text)
                else:
                    yield _sse(update.kind, escape(update.text))
        message = await sync_to_async(
            lambda: (
                Message.objects.select_related("requested_model__provider", "answered_by__provider")
                .filter(pk=message_id, conversation__owner=user)
                .first()
            )
        )()
        if message is not None:
            html = await sync_to_async(render_to_string)(
                "chat/_message.html", await sync_to_async(_message_context)(message, user), request
            )
            yield _sse("final", html)
            # After the answer: the page has it whole (and Send back) while the model thinks of a title.
            title = await services.chat_autotitle(message_id=message_id, user=user)
            if title:
                yield _sse("title", escape(title))
        # The browser closes its EventSource on "end", so it never reconnects and asks again.
        yield _sse("end", "")

    return event_stream_response(events())


@login_required
@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    return _go(request, None)


@login_required
@require_POST
def conversation_rename(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    try:
        services.conversation_rename(conversation=conversation, title=request.POST.get("title", ""))
    except services.ChatError as exc:
        return _error(request, exc.message)
    return _go(request, conversation)


@login_required
@require_POST
def conversation_delete(request: HttpRequest, pk: int) -> HttpResponse:
    services.conversation_delete(conversation=_conversation(request, pk))
    return _go(request, services.conversation_list(owner=request.user).first())


@login_required
@require_POST
def conversation_settings(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    try:
        services.conversation_configure(
            conversation=conversation,
            system_prompt=request.POST.get("system_prompt"),
            auto_fallback=request.POST.get("auto_fallback") == "1",
            temperature=request.POST.get("temperature"),
            max_tokens=request.POST.get("max_tokens"),
        )
    except services.ChatError as exc:
        if request.htmx:
            return _error(request, exc.message, target="#settings-error")
        return _page(request, conversation, status=400, settings_error=exc.message)
    return _go(request, conversation)


@login_required
@require_GET
def model_picker(request: HttpRequest) -> HttpResponse:
    return render(request, "chat/_picker.html", _picker_context(request, request.GET.get("model")))


@login_required
@require_GET
def conversation_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    hits = services.conversation_search(owner=request.user, query=query)
    return render(request, "chat/_search.html", {"hits": hits, "query": query.strip()})


def _download_name(conversation: Conversation, extension: str) -> str:
    return f"{slugify(conversation.title)[:60] or 'conversation'}-{conversation.pk}.{extension}"


@login_required
@require_GET
def conversation_export_markdown(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    response = HttpResponse(
        services.conversation_export_markdown(conversation=conversation), content_type="text/markdown; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_download_name(conversation, "md")}"'
    return response


@login_required
@require_GET
def conversation_export_json(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    response = JsonResponse(
        services.conversation_export(conversation=conversation), json_dumps_params={"ensure_ascii": False, "indent": 1}
    )
    response["Content-Disposition"] = f'attachment; filename="{_download_name(conversation, "json")}"'
    return response


@login_required
@require_POST
def conversation_import(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise services.ChatError("Choose a JSON file exported from a conversation.")
        if upload.size > MAX_IMPORT_BYTES:
            raise services.ChatError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
        conversation = services.conversation_import(owner=request.user, raw=upload.read())
    except services.ChatError as exc:
        flash.error(request, f"Import failed: {exc.message}")
        return _page(request, None, status=400)
    flash.success(request, f"Imported “{conversation.title}”.")
    return redirect("chat-conversation", pk=conversation.pk)
