"""The chat pages, their HTMX fragments and the SSE endpoint."""

import re

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient, Client

from chat import services
from chat.models import Conversation, Message, MessageStatus
from models_mgmt.models import AIModel

pytestmark = pytest.mark.django_db
QWEN = "qwen/qwen2.5-7b-instruct"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def conversation(alice: object, discovered: dict[str, AIModel]) -> Conversation:
    conversation = services.conversation_create(owner=alice, model=discovered[QWEN])
    services.conversation_rename(conversation=conversation, title="Trip plans")
    return conversation


def test_login_required(client: Client) -> None:
    assert client.get("/").status_code == 302
    assert client.get("/chat/1/").status_code == 302


def test_home_without_conversations_shows_an_empty_chat(alice_web: Client, discovered: dict) -> None:
    response = alice_web.get("/")
    html = response.content.decode()
    assert response.status_code == 200 and 'id="composer"' in html and 'hx-post="/chat/start/"' in html
    assert "✓ Qwen2.5 7B Instruct" in html and "○ Gemma 3 4B" in html
    assert "Nomic Embed" not in html  # embedding models cannot chat


def test_home_opens_the_newest_conversation(alice_web: Client, conversation: Conversation) -> None:
    assert alice_web.get("/")["Location"] == f"/chat/{conversation.pk}/"
    assert alice_web.get("/?new=1").status_code == 200


def test_sidebar_lists_newest_first_and_only_mine(
    alice: object, charlie: object, alice_web: Client, conversation: Conversation
) -> None:
    newer = services.conversation_create(owner=alice)
    services.conversation_rename(conversation=newer, title="Newer one")
    services.conversation_rename(conversation=services.conversation_create(owner=charlie), title="Charlie's")
    html = alice_web.get(f"/chat/{conversation.pk}/").content.decode()
    sidebar = html.split('class="conversations"')[1].split("</nav>")[0]
    assert sidebar.index("Newer one") < sidebar.index("Trip plans") and "Charlie" not in html


def test_charlie_gets_404_everywhere(charlie: object, conversation: Conversation) -> None:
    client = Client()
    client.force_login(charlie)
    pk = conversation.pk
    assert client.get(f"/chat/{pk}/").status_code == 404
    for path in (
        f"/chat/{pk}/send/",
        f"/chat/{pk}/rename/",
        f"/chat/{pk}/delete/",
        f"/chat/{pk}/settings/",
        f"/chat/{pk}/regenerate/",
    ):
        assert client.post(path, {"content": "x", "title": "x"}).status_code == 404, path
    assert Conversation.objects.get(pk=pk).title == "Trip plans"


def test_send_returns_the_question_and_a_streaming_answer(
    alice_web: Client, conversation: Conversation, discovered: dict
) -> None:
    response = alice_web.post(
        f"/chat/{conversation.pk}/send/", {"content": "hello <b>there</b>", "model": discovered[QWEN].pk}, headers=HTMX
    )
    html = response.content.decode()
    answer = Message.objects.get(role="assistant")
    assert response.status_code == 200 and "hello &lt;b&gt;there&lt;/b&gt;" in html
    assert f'sse-connect="/chat/messages/{answer.pk}/stream/"' in html and 'sse-close="end"' in html
    assert f'data-stop-url="/chat/messages/{answer.pk}/stop/"' in html


def test_send_errors_go_to_the_composer(alice_web: Client, conversation: Conversation) -> None:
    response = alice_web.post(f"/chat/{conversation.pk}/send/", {"content": "  "}, headers=HTMX)
    assert response.status_code == 400 and response["HX-Retarget"] == "#composer-error"
    assert "Type a message" in response.content.decode()


def test_start_creates_a_conversation_and_redirects(alice_web: Client, discovered: dict) -> None:
    response = alice_web.post("/chat/start/", {"content": "first question", "model": discovered[QWEN].pk}, headers=HTMX)
    conversation = Conversation.objects.get()
    assert response.status_code == 204 and response["HX-Redirect"] == f"/chat/{conversation.pk}/"
    assert conversation.title == "first question"
    failed = alice_web.post("/chat/start/", {"content": "", "model": discovered[QWEN].pk}, headers=HTMX)
    assert failed.status_code == 400 and Conversation.objects.count() == 1


def stream(client_user: object, message: Message) -> tuple[object, str]:
    async def go() -> tuple[object, str]:
        client = AsyncClient()
        await client.aforce_login(client_user)
        response = await client.get(f"/chat/messages/{message.pk}/stream/")
        return response, b"".join([c async for c in response.streaming_content]).decode()

    return async_to_sync(go)()


def sse_events(raw: str) -> list[tuple[str, str]]:
    """(event, data) as a browser's EventSource reads them: CR, LF and CRLF end a line, one space after
    the colon is dropped, data lines are joined with LF."""
    events, name, data = [], "message", []
    for line in re.split(r"\r\n|\r|\n", raw):
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = "message", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return events


def test_stream_endpoint_sends_text_then_html_and_closes(
    alice: object, conversation: Conversation, discovered: dict
) -> None:
    _, answer = services.chat_send(conversation=conversation, content="hi <i>", model_id=discovered[QWEN].pk)
    response, raw = stream(alice, answer)
    assert response["Content-Type"] == "text/event-stream" and response["X-Accel-Buffering"] == "no"
    events = sse_events(raw)
    # The text as text (the page inserts it as text); the finished answer as escaped, rendered HTML.
    assert "".join(data for name, data in events if name == "text") == "Echo: hi <i>"
    assert [name for name, _ in events if name not in ("text", "notice")] == ["final", "end"]
    assert "&lt;i&gt;" in dict(events)["final"] and "<i>" not in dict(events)["final"]
    final, end = raw.split("event: final")[1].split("event: end")
    assert 'class="msg assistant status-complete"' in final and "sse-connect" not in final
    assert end.strip() == "data:"
    answer.refresh_from_db()
    assert answer.status == MessageStatus.COMPLETE


def test_line_breaks_in_the_text_cannot_forge_an_event(
    alice: object, conversation: Conversation, discovered: dict
) -> None:
    forged = "a\revent: final\rdata: <b>forged</b>\r\rb\r\nc\nd"
    _, answer = services.chat_send(conversation=conversation, content=forged, model_id=discovered[QWEN].pk)
    _, raw = stream(alice, answer)
    events = sse_events(raw)
    assert [name for name, _ in events if name not in ("text", "notice")] == ["final", "end"]
    assert "<b>forged</b>" not in dict(events)["final"]
    text = "".join(data for name, data in events if name == "text")
    assert text == "Echo: " + forged.replace("\r\n", "\n").replace("\r", "\n")


def test_stream_of_someone_elses_answer_sends_nothing(
    charlie: object, conversation: Conversation, discovered: dict
) -> None:
    _, answer = services.chat_send(conversation=conversation, content="secret", model_id=discovered[QWEN].pk)
    _, raw = stream(charlie, answer)
    assert raw == "event: end\ndata: \n\n" and "secret" not in raw


def test_stop_endpoint(alice_web: Client, conversation: Conversation, discovered: dict) -> None:
    _, answer = services.chat_send(conversation=conversation, content="hi", model_id=discovered[QWEN].pk)
    assert alice_web.post(f"/chat/messages/{answer.pk}/stop/").status_code == 204
    assert Message.objects.get(pk=answer.pk).stop_requested
    assert alice_web.post("/chat/messages/999999/stop/").status_code == 404


def test_rename_settings_delete(alice_web: Client, conversation: Conversation) -> None:
    pk = conversation.pk
    alice_web.post(f"/chat/{pk}/rename/", {"title": "Holiday"})
    alice_web.post(f"/chat/{pk}/settings/", {"system_prompt": "Answer in French.", "auto_fallback": ""})
    conversation.refresh_from_db()
    assert conversation.title == "Holiday" and conversation.system_prompt == "Answer in French."
    assert conversation.auto_fallback is False
    assert alice_web.post(f"/chat/{pk}/rename/", {"title": ""}).status_code == 400
    response = alice_web.post(f"/chat/{pk}/delete/")
    assert response.status_code == 302 and not Conversation.objects.filter(pk=pk).exists()


def test_regenerate_adds_a_version_and_redraws_the_thread(
    alice: object, alice_web: Client, conversation: Conversation, discovered: dict
) -> None:
    _, answer = services.chat_send(conversation=conversation, content="hi", model_id=discovered[QWEN].pk)
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.COMPLETE, content="first take")
    response = alice_web.post(f"/chat/{conversation.pk}/regenerate/", {"message": answer.pk}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and response["HX-Retarget"] == "#thread"
    assert list(Message.objects.filter(role="assistant").values_list("status", flat=True)) == ["complete", "pending"]
    assert "sse-connect" in html and "first take" not in html
    Message.objects.filter(status=MessageStatus.PENDING).update(status=MessageStatus.COMPLETE, content="second take")
    page = alice_web.get(f"/chat/{conversation.pk}/").content.decode()
    assert '<span class="version-count">2/2</span>' in page and "second take" in page and "first take" not in page


def test_finished_conversation_shows_model_latency_tokens_and_markdown(
    alice: object, alice_web: Client, conversation: Conversation, discovered: dict
) -> None:
    _, answer = services.chat_send(conversation=conversation, content="**bold** please", model_id=discovered[QWEN].pk)
    stream(alice, answer)
    html = alice_web.get(f"/chat/{conversation.pk}/").content.decode()
    assert "<strong>bold</strong>" in html and f"lmstudio/{QWEN}" in html and "tokens" in html and " ms" in html


def test_picker_partial_keeps_the_selection(alice_web: Client, discovered: dict) -> None:
    html = alice_web.get(f"/chat/models/?model={discovered['google/gemma-3-4b'].pk}", headers=HTMX).content.decode()
    assert f'value="{discovered["google/gemma-3-4b"].pk}" data-status="not_loaded" selected' in html
    assert "loaded before it answers" in html


def test_pages_carry_a_content_security_policy(alice_web: Client, conversation: Conversation) -> None:
    policy = alice_web.get(f"/chat/{conversation.pk}/")["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy and "img-src 'self'" in policy and "object-src 'none'" in policy


def test_regenerate_with_the_model_chosen_in_the_picker(
    alice_web: Client, conversation: Conversation, discovered: dict
) -> None:
    _, answer = services.chat_send(conversation=conversation, content="hi", model_id=discovered[QWEN].pk)
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.COMPLETE, content="old")
    html = alice_web.get(f"/chat/{conversation.pk}/").content.decode()
    assert 'hx-include="#model-select"' in html
    gemma = discovered["google/gemma-3-4b"]
    alice_web.post(f"/chat/{conversation.pk}/regenerate/", {"model": gemma.pk}, headers=HTMX)
    assert Message.objects.filter(role="assistant").last().requested_model == gemma


def test_charlie_gets_404_on_versions_exports_and_hits(
    charlie: object, conversation: Conversation, discovered: dict
) -> None:
    question, _ = services.chat_send(conversation=conversation, content="private", model_id=discovered[QWEN].pk)
    client = Client()
    client.force_login(charlie)
    pk = conversation.pk
    for path in (f"/chat/{pk}/messages/{question.pk}/edit/", f"/chat/{pk}/messages/{question.pk}/show/"):
        assert client.post(path, {"content": "x"}, headers=HTMX).status_code == 404, path
    for path in (f"/chat/{pk}/export.md", f"/chat/{pk}/export.json", f"/chat/{pk}/?m={question.pk}"):
        response = client.get(path)
        assert response.status_code == 404 and b"private" not in response.content, path
    assert "Nothing matches" in client.get("/chat/search/?q=private").content.decode()
    own = services.conversation_create(owner=charlie)
    # Someone else's message through one's own conversation is not found either.
    assert client.post(f"/chat/{own.pk}/messages/{question.pk}/show/", headers=HTMX).status_code == 404
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_edit_and_version_arrows_redraw_the_thread(
    alice_web: Client, conversation: Conversation, discovered: dict
) -> None:
    question, answer = services.chat_send(conversation=conversation, content="first", model_id=discovered[QWEN].pk)
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.COMPLETE, content="reply one")
    response = alice_web.post(
        f"/chat/{conversation.pk}/messages/{question.pk}/edit/", {"content": "second"}, headers=HTMX
    )
    assert response.status_code == 200 and response["HX-Retarget"] == "#thread"
    html = response.content.decode()
    assert "second" in html and '<span class="version-count">2/2</span>' in html and "reply one" not in html
    back = alice_web.post(f"/chat/{conversation.pk}/messages/{question.pk}/show/", headers=HTMX).content.decode()
    assert '<span class="version-count">1/2</span>' in back and "reply one" in back
    assert 'aria-label="Next version"' in back
    empty = alice_web.post(f"/chat/{conversation.pk}/messages/{question.pk}/edit/", {"content": " "}, headers=HTMX)
    assert empty.status_code == 400 and "Type a message" in empty.content.decode()


def test_settings_refuse_bad_parameters_with_a_clear_error(alice_web: Client, conversation: Conversation) -> None:
    response = alice_web.post(
        f"/chat/{conversation.pk}/settings/", {"temperature": "hot", "max_tokens": "100"}, headers=HTMX
    )
    assert response.status_code == 400 and response["HX-Retarget"] == "#settings-error"
    assert "Temperature is a number from 0 to 2" in response.content.decode()
    ok = alice_web.post(f"/chat/{conversation.pk}/settings/", {"temperature": "0.5", "max_tokens": "300"})
    conversation.refresh_from_db()
    assert ok.status_code == 302 and (conversation.temperature, conversation.max_tokens) == (0.5, 300)
    html = alice_web.get(f"/chat/{conversation.pk}/").content.decode()
    assert 'name="temperature" inputmode="decimal" value="0.5"' in html
    # Without htmx the whole page comes back, the form open with what was typed and the reason.
    page = alice_web.post(
        f"/chat/{conversation.pk}/settings/", {"system_prompt": "Be terse.", "temperature": "3", "max_tokens": "300"}
    )
    html = page.content.decode()
    assert page.status_code == 400 and "Temperature is a number from 0 to 2" in html
    assert 'value="3"' in html and ">Be terse.</textarea>" in html and '<details class="popover" open>' in html


def test_search_links_to_the_message(alice_web: Client, conversation: Conversation, discovered: dict) -> None:
    question, _ = services.chat_send(
        conversation=conversation, content="the <b>ferry</b> times", model_id=discovered[QWEN].pk
    )
    html = alice_web.get("/chat/search/?q=FERRY", headers=HTMX).content.decode()
    assert f'href="/chat/{conversation.pk}/?m={question.pk}#msg-{question.pk}"' in html
    assert "&lt;b&gt;ferry&lt;/b&gt;" in html and "<b>" not in html
    assert "Nothing matches" in alice_web.get("/chat/search/?q=zebra", headers=HTMX).content.decode()
    assert alice_web.get("/chat/search/?q=", headers=HTMX).content.decode().strip() == ""


def test_exports_download_and_the_json_imports_back(
    alice_web: Client, conversation: Conversation, discovered: dict
) -> None:
    services.chat_send(conversation=conversation, content="hello", model_id=discovered[QWEN].pk)
    markdown = alice_web.get(f"/chat/{conversation.pk}/export.md")
    assert markdown["Content-Type"].startswith("text/markdown")
    assert markdown["Content-Disposition"] == f'attachment; filename="trip-plans-{conversation.pk}.md"'
    assert "# Trip plans" in markdown.content.decode()
    exported = alice_web.get(f"/chat/{conversation.pk}/export.json")
    assert exported["Content-Disposition"].endswith(f'-{conversation.pk}.json"')
    upload = SimpleUploadedFile("trip.json", exported.content, content_type="application/json")
    response = alice_web.post("/chat/import/", {"file": upload})
    copy = Conversation.objects.exclude(pk=conversation.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/chat/{copy.pk}/"
    assert [m.content for m in copy.messages.all()] == ["hello", ""]


def test_a_bad_import_is_a_400_that_says_why(alice_web: Client) -> None:
    bad = alice_web.post("/chat/import/", {"file": SimpleUploadedFile("x.json", b"{nope", "application/json")})
    assert bad.status_code == 400 and "Import failed: The file is not JSON" in bad.content.decode()
    missing = alice_web.post("/chat/import/", {})
    assert missing.status_code == 400 and "Choose a JSON file" in missing.content.decode()
    assert not Conversation.objects.exists()


def test_a_new_chat_starts_on_the_last_model(alice_web: Client, discovered: dict) -> None:
    gemma = discovered["google/gemma-3-4b"]
    html = alice_web.get("/?new=1").content.decode()
    assert "Choose a model…" in html
    alice_web.post("/chat/start/", {"content": "hi", "model": gemma.pk}, headers=HTMX)
    html = alice_web.get("/?new=1").content.decode()
    assert "Choose a model…" not in html and f'value="{gemma.pk}" data-status="not_loaded" selected' in html


def test_the_stream_sends_the_models_title_after_the_final_answer(alice: object, discovered: dict) -> None:
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(conversation=conversation, content="**hi** there", model_id=discovered[QWEN].pk)
    _, raw = stream(alice, answer)
    _, after_final = raw.split("event: final")
    title_event, end = after_final.split("event: end")
    assert "event: title\ndata: Echo: User: hi there\n" in title_event and end.strip() == "data:"
    conversation.refresh_from_db()
    assert conversation.title == "Echo: User: hi there"


def test_an_imported_answer_without_a_known_model_renders(alice: object, alice_web: Client) -> None:
    raw = (
        b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": [{"id": 1, "role": "user", '
        b'"content": "hi"}, {"id": 2, "parent": 1, "role": "assistant", "content": "hello", "status": "complete"}]}'
    )
    conversation = services.conversation_import(owner=alice, raw=raw)
    response = alice_web.get(f"/chat/{conversation.pk}/")
    assert response.status_code == 200 and "hello" in response.content.decode()
