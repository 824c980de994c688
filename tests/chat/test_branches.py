"""Edit and regenerate make versions; the model sees only the branch on screen; nothing is deleted."""

import pytest
from asgiref.sync import async_to_sync

from chat import services
from chat.models import Conversation, Message, MessageStatus
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db
QWEN = "qwen/qwen2.5-7b-instruct"


def answer(message: Message, user: object) -> Message:
    async def go() -> None:
        async for _ in services.chat_stream(message_id=message.pk, user=user):
            pass

    async_to_sync(go)()
    message.refresh_from_db()
    return message


def shown(conversation: Conversation) -> list[tuple[str, str, int, int]]:
    conversation.refresh_from_db()
    return [
        (i.message.role, i.message.content, i.index, i.count) for i in services.chat_branch(conversation=conversation)
    ]


@pytest.fixture
def talk(alice: object, discovered: dict) -> Conversation:
    """alice asked two questions and got two answers."""
    conversation = services.conversation_create(owner=alice)
    model = discovered[QWEN].pk
    answer(services.chat_send(conversation=conversation, content="one", model_id=model)[1], alice)
    answer(services.chat_send(conversation=conversation, content="two", model_id=model)[1], alice)
    return conversation


def test_edit_branches_and_the_model_sees_only_the_new_branch(
    alice: object, talk: Conversation, discovered: dict, lmstudio: FakeLMStudio
) -> None:
    first = talk.messages.get(content="one")
    question, pending = services.chat_edit(
        conversation=talk, message_id=first.pk, content="uno", model_id=discovered[QWEN].pk
    )
    assert question.parent_id is None and pending.parent_id == question.pk
    assert services.chat_history(conversation=talk, before=pending) == [{"role": "user", "content": "uno"}]
    answer(pending, alice)
    assert shown(talk) == [("user", "uno", 2, 2), ("assistant", "Echo: uno", 1, 1)]
    # Nothing was deleted: the old question and the exchange after it are one ‹ away.
    assert Message.objects.filter(conversation=talk).count() == 6
    services.chat_switch(conversation=talk, message_id=first.pk)
    assert shown(talk) == [
        ("user", "one", 1, 2),
        ("assistant", "Echo: one", 1, 1),
        ("user", "two", 1, 1),
        ("assistant", "Echo: two", 1, 1),
    ]


def test_regenerate_adds_a_version_and_the_arrows_move_between_them(alice: object, talk: Conversation) -> None:
    last = talk.messages.get(content="Echo: two")
    again = answer(services.chat_regenerate(conversation=talk, message_id=last.pk), alice)
    assert again.parent_id == last.parent_id and Message.objects.filter(pk=last.pk).exists()
    branch = services.chat_branch(conversation=talk)
    assert (branch[-1].message.pk, branch[-1].index, branch[-1].count) == (again.pk, 2, 2)
    assert branch[-1].previous_id == last.pk and branch[-1].next_id is None
    services.chat_switch(conversation=talk, message_id=branch[-1].previous_id)
    assert shown(talk)[-1] == ("assistant", "Echo: two", 1, 2)
    # The history of an answer to an earlier question holds nothing from after it.
    first_answer = talk.messages.get(content="Echo: one")
    older = services.chat_regenerate(conversation=talk, message_id=first_answer.pk)
    assert services.chat_history(conversation=talk, before=older) == [{"role": "user", "content": "one"}]
    assert shown(talk) == [("user", "one", 1, 1), ("assistant", "", 2, 2)]


def test_a_switch_lands_on_the_newest_version_below(alice: object, talk: Conversation, discovered: dict) -> None:
    second_question = talk.messages.get(content="two")
    services.chat_edit(conversation=talk, message_id=second_question.pk, content="deux", model_id=discovered[QWEN].pk)
    services.chat_switch(conversation=talk, message_id=talk.messages.get(content="one").pk)
    assert [m for _, m, _, _ in shown(talk)][-2:] == ["deux", ""]


def test_sending_continues_the_branch_on_screen(alice: object, talk: Conversation, discovered: dict) -> None:
    services.chat_switch(conversation=talk, message_id=talk.messages.get(content="one").pk)
    services.chat_regenerate(conversation=talk, message_id=talk.messages.get(content="Echo: one").pk)
    Message.objects.filter(status=MessageStatus.PENDING).update(status=MessageStatus.COMPLETE, content="other")
    question, _ = services.chat_send(conversation=talk, content="three", model_id=discovered[QWEN].pk)
    assert question.parent.content == "other"
    assert [m for _, m, _, _ in shown(talk)] == ["one", "other", "three", ""]


def test_edit_rules(alice: object, charlie: object, talk: Conversation, discovered: dict) -> None:
    reply = talk.messages.get(content="Echo: one")
    with pytest.raises(services.ChatError, match="Only a question"):
        services.chat_edit(conversation=talk, message_id=reply.pk, content="x", model_id=discovered[QWEN].pk)
    question = talk.messages.get(content="one")
    with pytest.raises(services.ChatError, match="Type a message"):
        services.chat_edit(conversation=talk, message_id=question.pk, content=" ", model_id=discovered[QWEN].pk)
    other = services.conversation_create(owner=charlie)
    with pytest.raises(services.ConversationNotFound):
        services.chat_edit(conversation=other, message_id=question.pk, content="x", model_id=discovered[QWEN].pk)
    with pytest.raises(services.ConversationNotFound):
        services.chat_switch(conversation=other, message_id=question.pk)
    assert Message.objects.count() == 4


def test_last_model_is_remembered_per_user(alice: object, bob: object, discovered: dict) -> None:
    assert services.chat_last_model(user=alice) is None
    gemma = discovered["google/gemma-3-4b"]
    services.chat_send(conversation=services.conversation_create(owner=alice), content="hi", model_id=gemma.pk)
    assert services.chat_last_model(user=alice) == gemma and services.chat_last_model(user=bob) is None
