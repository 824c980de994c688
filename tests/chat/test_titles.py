"""Titles: plain text, from the model after the first exchange, else the trimmed first line."""

from contextlib import ExitStack

import pytest
from asgiref.sync import async_to_sync

from chat import services
from chat.models import Conversation, Message
from tests.completions.conftest import start_cloud
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db
QWEN = "qwen/qwen2.5-7b-instruct"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("**Bold** _plan_ for `today`", "Bold plan for today"),
        ("\n\n# Heading line\nsecond line", "Heading line"),
        ('Title: "Trip to [Lisbon](http://x.test)".', "Trip to Lisbon"),
        ("- a list item", "a list item"),
        ("word " * 30, ("word " * 12).strip() + "…"),
        ("***", ""),
    ],
)
def test_plain_title(text: str, title: str) -> None:
    assert services.plain_title(text) == title


def first_exchange(user: object, conversation: Conversation, model_id: int, content: str) -> Message:
    _, answer = services.chat_send(conversation=conversation, content=content, model_id=model_id)

    async def go() -> None:
        async for _ in services.chat_stream(message_id=answer.pk, user=user):
            pass

    async_to_sync(go)()
    return answer


def test_the_model_titles_the_first_exchange(alice: object, discovered: dict, lmstudio: FakeLMStudio) -> None:
    conversation = services.conversation_create(owner=alice)
    answer = first_exchange(alice, conversation, discovered[QWEN].pk, "**Plans** for *today*")
    conversation.refresh_from_db()
    assert conversation.title == "Plans for today" and conversation.title_is_auto
    title = async_to_sync(services.chat_autotitle)(message_id=answer.pk, user=alice)
    # The emulator echoes the last user message: the exchange it was given to title.
    body = [r.json() for r in lmstudio.requests if r.path == "/v1/chat/completions"][-1]
    assert body["messages"][0]["content"] == services.TITLE_PROMPT and body["max_tokens"] == services.TITLE_MAX_TOKENS
    assert body["messages"][1]["content"].startswith("User: **Plans** for *today*\n\nAssistant: Echo:")
    assert title == "Echo: User: Plans for today"  # its first line, Markdown gone
    conversation.refresh_from_db()
    assert conversation.title == title and not conversation.title_is_auto
    # Once: a later answer does not retitle.
    assert async_to_sync(services.chat_autotitle)(message_id=answer.pk, user=alice) is None


def test_a_renamed_or_later_exchange_is_not_retitled(alice: object, discovered: dict) -> None:
    conversation = services.conversation_create(owner=alice)
    first = first_exchange(alice, conversation, discovered[QWEN].pk, "one")
    second = first_exchange(alice, conversation, discovered[QWEN].pk, "two")
    assert async_to_sync(services.chat_autotitle)(message_id=second.pk, user=alice) is None
    services.conversation_rename(conversation=conversation, title="Mine")
    assert async_to_sync(services.chat_autotitle)(message_id=first.pk, user=alice) is None
    conversation.refresh_from_db()
    assert conversation.title == "Mine"


def test_without_a_model_to_ask_the_first_line_stays(
    alice: object, charlie: object, discovered: dict, lmstudio: FakeLMStudio
) -> None:
    conversation = services.conversation_create(owner=alice)
    answer = first_exchange(alice, conversation, discovered[QWEN].pk, "Where is the *station*?\nmore")
    lmstudio.stop()
    assert async_to_sync(services.chat_autotitle)(message_id=answer.pk, user=alice) is None
    assert async_to_sync(services.chat_autotitle)(message_id=answer.pk, user=charlie) is None
    conversation.refresh_from_db()
    assert conversation.title == "Where is the station?" and conversation.title_is_auto


def test_a_slow_title_is_given_up_and_the_first_line_stays(alice: object, monkeypatch: pytest.MonkeyPatch) -> None:
    with ExitStack() as stack:
        openai = start_cloud(stack, "openai", alice)
        conversation = services.conversation_create(owner=alice)
        answer = first_exchange(alice, conversation, openai.model.pk, "Slow *title* please")
        openai.fake.chunk_delay = 0.5
        monkeypatch.setattr(services, "TITLE_TIMEOUT_SECONDS", 0.3)
        assert async_to_sync(services.chat_autotitle)(message_id=answer.pk, user=alice) is None
    conversation.refresh_from_db()
    assert conversation.title == "Slow title please" and conversation.title_is_auto
