"""Export as Markdown and JSON; the JSON imports back as a new conversation with its versions."""

import json

import pytest

from chat import services
from chat.models import Conversation, Message, MessageStatus

pytestmark = pytest.mark.django_db
QWEN = "qwen/qwen2.5-7b-instruct"


@pytest.fixture
def branched(alice: object, discovered: dict) -> Conversation:
    """A question with two versions, the second answered twice; the screen shows the newest."""
    model = discovered[QWEN].pk
    conversation = services.conversation_create(owner=alice)
    services.conversation_configure(conversation=conversation, system_prompt="Be brief.", temperature="0.4")
    question, first = services.chat_send(conversation=conversation, content="Capital of France?", model_id=model)
    Message.objects.filter(pk=first.pk).update(status=MessageStatus.COMPLETE, content="Paris.")
    services.chat_edit(conversation=conversation, message_id=question.pk, content="Capital of *Spain*?", model_id=model)
    Message.objects.filter(status=MessageStatus.PENDING).update(status=MessageStatus.COMPLETE, content="Madrid.")
    services.chat_regenerate(conversation=conversation)
    Message.objects.filter(status=MessageStatus.PENDING).update(
        status=MessageStatus.COMPLETE, content="**Madrid**", answered_by_ref=f"lmstudio/{QWEN}"
    )
    conversation.refresh_from_db()
    return conversation


def test_markdown_is_the_branch_on_screen(branched: Conversation) -> None:
    text = services.conversation_export_markdown(conversation=branched)
    assert text.startswith("# Capital of France?\n") and "Be brief." in text  # titled by the first question
    assert "## You (version 2 of 2)" in text and "Capital of *Spain*?" in text
    assert f"## lmstudio/{QWEN} (version 2 of 2)" in text and "**Madrid**" in text
    assert "Paris." not in text and "Madrid.\n" not in text


def test_json_round_trip_keeps_every_version(
    alice: object, bob: object, branched: Conversation, discovered: dict
) -> None:
    exported = services.conversation_export(conversation=branched)
    assert exported["format"] == "ai-orchestrator-conversation" and exported["temperature"] == 0.4
    assert len(exported["messages"]) == 5 and len(exported["branch"]) == 2
    first_answer = exported["messages"][1]
    assert first_answer["model"] == f"lmstudio/{QWEN}" and first_answer["parent"] == exported["messages"][0]["id"]
    assert first_answer["created_at"].startswith(str(branched.created_at.year))

    copy = services.conversation_import(owner=bob, raw=json.dumps(exported).encode())
    assert copy.owner == bob and copy.pk != branched.pk and copy.title == branched.title
    # The instance's LM Studio model is bob's to use too, so it is linked again.
    assert (copy.system_prompt, copy.temperature, copy.model) == ("Be brief.", 0.4, discovered[QWEN])
    again = services.conversation_export(conversation=copy)
    strip = lambda data: [  # noqa: E731
        (m["role"], m["content"], m["status"], m["model"], m["created_at"]) for m in data["messages"]
    ]
    assert strip(again) == strip(exported)
    shown = [(i.message.content, i.index, i.count) for i in services.chat_branch(conversation=copy)]
    assert shown == [("Capital of *Spain*?", 2, 2), ("**Madrid**", 2, 2)]
    assert Conversation.objects.filter(owner=alice).count() == 1


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a conversation exported"),
        (b'{"format": "ai-orchestrator-conversation", "version": 9, "messages": []}', "version 9"),
        (b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": []}', "no messages"),
        (
            b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": [{"id": 1, "role": "system"}]}',
            "Message 1: role",
        ),
        (
            b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": '
            b'[{"id": 1, "role": "user", "content": "a", "parent": 7}]}',
            "Message 1: its parent must come before it",
        ),
        (
            b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": '
            b'[{"id": 1, "role": "user", "content": "a"}, {"id": 2, "role": "assistant", "content": 5}]}',
            "Message 2: 'content' must be str",
        ),
        (
            b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": '
            b'[{"id": 1, "role": "user", "content": "a", "created_at": "yesterday"}]}',
            "not an ISO 8601",
        ),
        (
            b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": '
            b'[{"id": 1, "role": "user", "content": "a", "created_at": "2025-13-45T00:00:00"}]}',
            "not an ISO 8601",
        ),
        (
            b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": '
            b'[{"id": [1], "role": "user", "content": "a"}]}',
            "each message needs its own 'id'",
        ),
        (
            b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": '
            b'[{"id": 1, "role": "user", "content": "a"}, {"id": 2, "role": "user", "content": "b", "parent": {}}]}',
            "Message 2: its parent must come before it",
        ),
        (
            b'{"format": "ai-orchestrator-conversation", "version": 1, "messages": '
            b'[{"id": 1, "role": "user", "content": "a\\u0000b"}]}',
            "NUL character",
        ),
    ],
)
def test_a_bad_file_imports_nothing_and_says_why(alice: object, raw: bytes, error: str) -> None:
    with pytest.raises(services.ChatError, match=error):
        services.conversation_import(owner=alice, raw=raw)
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_an_unfinished_answer_imports_as_stopped(alice: object) -> None:
    raw = json.dumps(
        {
            "format": "ai-orchestrator-conversation",
            "version": 1,
            "messages": [
                {"id": "q", "role": "user", "content": "hi", "created_at": "2025-03-01T10:00:00"},
                {"id": "a", "parent": "q", "role": "assistant", "content": "he", "status": "streaming"},
            ],
        }
    )
    conversation = services.conversation_import(owner=alice, raw=raw)
    assert conversation.title == "Imported conversation"
    branch = [i.message for i in services.chat_branch(conversation=conversation)]
    assert [m.status for m in branch] == ["complete", "stopped"]
    assert branch[0].created_at.isoformat() == "2025-03-01T10:00:00+00:00"  # no zone given: UTC
