"""Search across one's own conversations, titles and message texts."""

import pytest

from chat import services
from chat.models import Message, MessageStatus

pytestmark = pytest.mark.django_db
QWEN = "qwen/qwen2.5-7b-instruct"


def test_titles_and_texts_match_case_insensitively_and_name_the_message(
    alice: object, charlie: object, discovered: dict
) -> None:
    trip = services.conversation_create(owner=alice)
    services.conversation_rename(conversation=trip, title="Trip to Lisbon")
    cooking = services.conversation_create(owner=alice)
    question, reply = services.chat_send(
        conversation=cooking, content="How long do I boil an egg?", model_id=discovered[QWEN].pk
    )
    filler = "word " * 40
    Message.objects.filter(pk=reply.pk).update(
        status=MessageStatus.COMPLETE, content=f"{filler}For a soft EGG, six minutes in LISBON style. {filler}"
    )
    secret = services.conversation_create(owner=charlie)
    services.chat_send(conversation=secret, content="lisbon egg secrets", model_id=discovered[QWEN].pk)

    hits = services.conversation_search(owner=alice, query="  lisbon ")
    assert [(h.conversation.pk, h.message and h.message.pk) for h in hits] == [(trip.pk, None), (cooking.pk, reply.pk)]
    snippet = hits[1].snippet
    assert "six minutes in LISBON" in snippet and snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) < 200
    eggs = services.conversation_search(owner=alice, query="egg")
    assert [h.conversation.pk for h in eggs if h.message is None] == [cooking.pk]  # its title
    assert {h.message.pk for h in eggs if h.message} == {question.pk, reply.pk}
    assert services.conversation_search(owner=alice, query="") == []
    assert services.conversation_search(owner=alice, query="nothing like this") == []
    assert services.conversation_search(owner=charlie, query="six minutes") == []
