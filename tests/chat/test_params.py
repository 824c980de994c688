"""Per-conversation temperature and answer length: validated, and sent to the model."""

import pytest
from asgiref.sync import async_to_sync

from chat import services
from chat.models import Conversation
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db
QWEN = "qwen/qwen2.5-7b-instruct"


@pytest.fixture
def conversation(alice: object) -> Conversation:
    return services.conversation_create(owner=alice)


@pytest.mark.parametrize(
    ("temperature", "max_tokens", "error"),
    [
        ("warm", "", "Temperature is a number from 0 to 2"),
        ("2.5", "", "Temperature is a number from 0 to 2"),
        ("-1", "", "Temperature is a number from 0 to 2"),
        ("nan", "", "Temperature is a number from 0 to 2"),
        ("", "0", "Max answer tokens is a whole number from 1"),
        ("", "12.5", "Max answer tokens is a whole number from 1"),
        ("", "99999999", "Max answer tokens is a whole number from 1"),
    ],
)
def test_bad_values_are_refused_and_nothing_changes(
    conversation: Conversation, temperature: str, max_tokens: str, error: str
) -> None:
    services.conversation_configure(conversation=conversation, temperature="0.3", max_tokens="100")
    with pytest.raises(services.ChatError, match=error):
        services.conversation_configure(
            conversation=conversation, system_prompt="changed", temperature=temperature, max_tokens=max_tokens
        )
    conversation.refresh_from_db()
    assert (conversation.temperature, conversation.max_tokens, conversation.system_prompt) == (0.3, 100, "")


def test_empty_means_the_models_default_and_a_comma_is_a_decimal_point(conversation: Conversation) -> None:
    services.conversation_configure(conversation=conversation, temperature="0,7", max_tokens=" 256 ")
    conversation.refresh_from_db()
    assert (conversation.temperature, conversation.max_tokens) == (0.7, 256)
    services.conversation_configure(conversation=conversation, temperature="", max_tokens="")
    conversation.refresh_from_db()
    assert (conversation.temperature, conversation.max_tokens) == (None, None)


def test_the_model_is_asked_with_them(
    alice: object, conversation: Conversation, discovered: dict, lmstudio: FakeLMStudio
) -> None:
    services.conversation_configure(conversation=conversation, temperature="0.2", max_tokens="2")
    _, answer = services.chat_send(
        conversation=conversation, content="a long question here", model_id=discovered[QWEN].pk
    )

    async def go() -> None:
        async for _ in services.chat_stream(message_id=answer.pk, user=alice):
            pass

    async_to_sync(go)()
    answer.refresh_from_db()
    body = next(r.json() for r in lmstudio.requests if r.path == "/v1/chat/completions")
    assert body["temperature"] == 0.2 and body["max_tokens"] == 2
    assert answer.content == "Echo: a" and answer.completion_tokens == 2
