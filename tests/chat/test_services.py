"""Chat services: nothing typed is lost, answers are saved however the stream ends."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import ExitStack

import pytest
from asgiref.sync import async_to_sync

from chat import services
from chat.models import Message, MessageStatus
from models_mgmt.models import AIModel
from tests.completions.conftest import Cloud, start_cloud
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts")]
QWEN, GEMMA = "qwen/qwen2.5-7b-instruct", "google/gemma-3-4b"


@pytest.fixture
def openai(db: None, alice: object) -> Cloud:
    with ExitStack() as stack:
        yield start_cloud(stack, "openai", alice)


def run_stream(message: Message, user: object, *, stop_after: int | None = None) -> list:
    async def go() -> list:
        updates = []
        stream = services.chat_stream(message_id=message.pk, user=user)
        async for update in stream:
            updates.append(update)
            if stop_after is not None and len([u for u in updates if u.kind == "delta"]) >= stop_after:
                await stream.aclose()  # the browser went away
                break
        return updates

    return async_to_sync(go)()


def test_send_stores_the_question_before_any_model_is_asked(alice: object, discovered: dict) -> None:
    conversation = services.conversation_create(owner=alice)
    question, answer = services.chat_send(
        conversation=conversation, content="Hello\nthere", model_id=discovered[QWEN].pk
    )
    assert question.content == "Hello\nthere" and question.role == "user"
    assert answer.status == MessageStatus.PENDING and answer.requested_model == discovered[QWEN]
    conversation.refresh_from_db()
    assert conversation.title == "Hello" and conversation.model == discovered[QWEN]


@pytest.mark.parametrize(("content", "error"), [("   ", "Type a message"), ("x" * 100_001, "at most")])
def test_send_refuses_empty_or_huge_messages(alice: object, discovered: dict, content: str, error: str) -> None:
    conversation = services.conversation_create(owner=alice)
    with pytest.raises(services.ChatError, match=error):
        services.chat_send(conversation=conversation, content=content, model_id=discovered[QWEN].pk)
    assert not Message.objects.exists()


def test_send_refuses_embedding_models_and_no_model(alice: object, discovered: dict) -> None:
    conversation = services.conversation_create(owner=alice)
    with pytest.raises(services.ChatError, match="embedding"):
        services.chat_send(
            conversation=conversation, content="hi", model_id=discovered["text-embedding-nomic-embed-text-v1.5"].pk
        )
    with pytest.raises(services.ChatError, match="Choose a model"):
        services.chat_send(conversation=conversation, content="hi", model_id=None)


def test_answer_is_streamed_and_saved_with_its_facts(alice: object, discovered: dict) -> None:
    conversation = services.conversation_create(owner=alice)
    services.conversation_configure(conversation=conversation, system_prompt="Be brief.")
    _, answer = services.chat_send(conversation=conversation, content="hello there", model_id=discovered[QWEN].pk)
    updates = run_stream(answer, alice)
    assert "".join(u.text for u in updates if u.kind == "delta") == "Echo: hello there"
    answer.refresh_from_db()
    assert answer.status == MessageStatus.COMPLETE and answer.content == "Echo: hello there"
    assert answer.answered_by == discovered[QWEN] and answer.latency_ms is not None
    assert answer.completion_tokens == 3 and answer.prompt_tokens > 0


def test_history_carries_the_system_prompt_and_earlier_turns(
    alice: object, discovered: dict, lmstudio: FakeLMStudio
) -> None:
    conversation = services.conversation_create(owner=alice)
    services.conversation_configure(conversation=conversation, system_prompt="Be brief.")
    _, first = services.chat_send(conversation=conversation, content="one", model_id=discovered[QWEN].pk)
    run_stream(first, alice)
    _, second = services.chat_send(conversation=conversation, content="two", model_id=discovered[QWEN].pk)
    history = services.chat_history(conversation=conversation, before=second)
    assert history == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "Echo: one"},
        {"role": "user", "content": "two"},
    ]


def test_a_second_stream_of_the_same_answer_does_not_ask_again(alice: object, openai: Cloud) -> None:
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(conversation=conversation, content="hi", model_id=openai.model.pk)
    run_stream(answer, alice)
    assert [u.kind for u in run_stream(answer, alice)] == ["end"]
    assert openai.fake.chat_count == 1


def test_fallback_is_labelled(alice: object, openai: Cloud, discovered: dict) -> None:
    openai.fake.fail("503")
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(conversation=conversation, content="hi", model_id=openai.model.pk)
    updates = run_stream(answer, alice)
    assert any(u.kind == "notice" and "failed" in u.text for u in updates)
    answer.refresh_from_db()
    assert answer.status == MessageStatus.COMPLETE and answer.answered_by == discovered[QWEN]
    assert answer.fallbacks[0]["from"] == openai.model.ref and "503" in answer.fallbacks[0]["reason"]


def test_without_auto_fallback_the_error_is_kept_and_an_alternative_offered(
    alice: object, openai: Cloud, discovered: dict
) -> None:
    openai.fake.fail("503")
    conversation = services.conversation_create(owner=alice)
    services.conversation_configure(conversation=conversation, auto_fallback=False)
    _, answer = services.chat_send(conversation=conversation, content="hi", model_id=openai.model.pk)
    run_stream(answer, alice)
    answer.refresh_from_db()
    assert answer.status == MessageStatus.ERROR and "503" in answer.error and answer.content == ""
    suggestion = services.chat_alternative(message=answer, user=alice)
    assert suggestion is not None and suggestion.model == discovered[QWEN]
    retried = services.chat_regenerate(conversation=conversation, model_id=suggestion.model.pk)
    # The failed answer stays, as version 1 of 2; the retry is the one on screen.
    assert Message.objects.get(pk=answer.pk).status == MessageStatus.ERROR
    shown = services.chat_branch(conversation=conversation)[-1]
    assert (shown.message.pk, shown.index, shown.count, shown.previous_id) == (retried.pk, 2, 2, answer.pk)
    run_stream(retried, alice)
    retried.refresh_from_db()
    assert retried.content == "Echo: hi" and retried.answered_by == discovered[QWEN]


def test_mid_stream_failure_keeps_the_partial_answer(alice: object, openai: Cloud) -> None:
    openai.fake.fail("cut")
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(conversation=conversation, content="hello there friend", model_id=openai.model.pk)
    run_stream(answer, alice)
    answer.refresh_from_db()
    assert answer.status == MessageStatus.ERROR and answer.content.startswith("Echo from")
    assert answer.error and answer.error_code == "stream_cut"


def test_stop_keeps_what_was_written(alice: object, openai: Cloud) -> None:
    openai.fake.chunk_delay = 0.3
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(
        conversation=conversation, content="one two three four five six seven eight", model_id=openai.model.pk
    )

    async def go() -> None:
        async for update in services.chat_stream(message_id=answer.pk, user=alice):
            if update.kind == "delta":
                from asgiref.sync import sync_to_async

                await sync_to_async(services.chat_stop)(owner=alice, message_id=answer.pk)

    async_to_sync(go)()
    answer.refresh_from_db()
    assert answer.status == MessageStatus.STOPPED and answer.content.startswith("Echo")
    assert len(answer.content.split()) < 10


def test_a_browser_that_leaves_mid_answer_keeps_the_partial_text(alice: object, openai: Cloud) -> None:
    openai.fake.chunk_delay = 0.05
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(conversation=conversation, content="a b c d e f g", model_id=openai.model.pk)
    updates = run_stream(answer, alice, stop_after=2)
    sent = "".join(u.text for u in updates if u.kind == "delta")
    answer.refresh_from_db()
    # At least what the page was shown is kept, and the answer did stop short.
    assert answer.status == MessageStatus.STOPPED and sent.startswith("Echo from")
    assert answer.content.startswith(sent) and "g" not in answer.content.split()


def test_charlie_cannot_reach_alices_conversation(alice: object, charlie: object, discovered: dict) -> None:
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(conversation=conversation, content="secret", model_id=discovered[QWEN].pk)
    with pytest.raises(services.ConversationNotFound):
        services.conversation_get(owner=charlie, pk=conversation.pk)
    with pytest.raises(services.ConversationNotFound):
        services.chat_stop(owner=charlie, message_id=answer.pk)
    assert [u.kind for u in run_stream(answer, charlie)] == ["end"]
    answer.refresh_from_db()
    assert answer.status == MessageStatus.PENDING


def test_rename_and_regenerate_rules(alice: object, discovered: dict) -> None:
    conversation = services.conversation_create(owner=alice)
    with pytest.raises(services.ChatError):
        services.conversation_rename(conversation=conversation, title="  ")
    assert services.conversation_rename(conversation=conversation, title=" Plans ").title == "Plans"
    with pytest.raises(services.ChatError, match="no question"):
        services.chat_regenerate(conversation=conversation, model_id=discovered[QWEN].pk)


def test_a_not_loaded_model_is_loaded_with_progress(alice: object, discovered: dict, lmstudio: FakeLMStudio) -> None:
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(conversation=conversation, content="hi", model_id=discovered[GEMMA].pk)
    updates = run_stream(answer, alice)
    assert updates[0].kind == "notice" and updates[0].text == "Loading Gemma 3 4B… 0 s"
    answer.refresh_from_db()
    assert answer.content == "Echo: hi" and lmstudio.models[GEMMA].instances
    assert AIModel.objects.get(model_id=GEMMA).load_state == "idle"


def test_nul_characters_are_refused_not_stored(alice: object, discovered: dict) -> None:
    conversation = services.conversation_create(owner=alice)
    with pytest.raises(services.ChatError, match="The message contains a NUL character"):
        services.chat_send(conversation=conversation, content="a\x00b", model_id=discovered[QWEN].pk)
    with pytest.raises(services.ChatError, match="The title contains a NUL"):
        services.conversation_rename(conversation=conversation, title="a\x00b")
    with pytest.raises(services.ChatError, match="The system prompt contains a NUL"):
        services.conversation_configure(conversation=conversation, system_prompt="a\x00b")
    assert not Message.objects.exists()
    assert services.conversation_search(owner=alice, query="\x00") == []


# --- the text sent in pieces a browser keeps up with ---------------------------------------------------


def test_a_long_answer_reaches_the_page_in_few_pieces_and_is_saved_whole(alice: object, openai: Cloud) -> None:
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(
        conversation=conversation, content="answer with 3000 words", model_id=openai.model.pk
    )
    updates = run_stream(answer, alice)
    deltas = [u.text for u in updates if u.kind == "delta"]
    answer.refresh_from_db()
    assert answer.status == MessageStatus.COMPLETE and len(answer.content.split()) == 3000
    assert "".join(deltas) == answer.content
    # The emulator sends one event per word; the page gets them joined (50 ms or 4 KB a piece).
    assert len(deltas) < 3000 / 5 and max(map(len, deltas)) <= services.FLUSH_CHARS + 20


async def _source(items: list[services.StreamUpdate | asyncio.Event], log: list[str]) -> AsyncIterator:
    """Yields the updates in order; at an Event it waits until the test sets it. Notes how it ended."""
    try:
        for item in items:
            if isinstance(item, asyncio.Event):
                await item.wait()
            else:
                yield item
                log.append(item.text)
        log.append("finished")
    finally:
        log.append("closed")


def _coalesce(items: list, *, interval: float = 60.0, max_chars: int = 1000, log: list | None = None) -> list:
    async def go() -> list:
        stream = services._coalesced(
            _source(items, log if log is not None else []), interval=interval, max_chars=max_chars
        )
        return [(u.kind, u.text) async for u in stream]

    return async_to_sync(go)()


def D(text: str) -> services.StreamUpdate:  # noqa: N802
    return services.StreamUpdate("delta", text)


def test_pieces_within_the_interval_are_joined_and_the_last_ones_flushed_at_the_end() -> None:
    log: list[str] = []
    out = _coalesce([D("a"), D("b"), D("c"), D("d")], log=log)
    # The first piece goes at once (the page shows the answer has begun); the rest wait for the interval,
    # which a whole minute long never ends here: the end of the stream sends them.
    assert out == [("delta", "a"), ("delta", "bcd")]
    assert log == ["a", "b", "c", "d", "finished", "closed"]


def test_pieces_are_flushed_once_max_chars_wait() -> None:
    out = _coalesce([D("a"), D("bb"), D("cc"), D("d"), D("eeee"), D("f")], max_chars=3)
    assert out == [("delta", "a"), ("delta", "bbcc"), ("delta", "deeee"), ("delta", "f")]


def test_waiting_text_goes_out_when_the_interval_ends_even_if_the_model_is_silent() -> None:
    async def go() -> list:
        silence = asyncio.Event()
        stream = services._coalesced(_source([D("a"), D("b"), silence, D("c")], []), interval=0.05, max_chars=1000)
        out = []
        async for update in stream:
            out.append(update.text)
            if update.text == "b":
                # Only the timer could have sent "b": the source is silent until this is set.
                silence.set()
        return out

    assert async_to_sync(asyncio.wait_for)(go(), 10) == ["a", "b", "c"]


def test_other_updates_keep_their_place_after_the_text_before_them() -> None:
    notice, end = services.StreamUpdate("notice", "Loading…"), services.StreamUpdate("end")
    out = _coalesce([D("a"), D("b"), notice, D("c"), D("d"), end])
    assert out == [("delta", "a"), ("delta", "b"), ("notice", "Loading…"), ("delta", "cd"), ("end", "")]


def test_a_browser_that_leaves_while_the_model_is_silent_closes_the_answer() -> None:
    log: list[str] = []

    async def go() -> str:
        never = asyncio.Event()
        stream = services._coalesced(_source([D("a"), D("b"), never], log), interval=60, max_chars=1000)
        first = await anext(stream)
        waiting = asyncio.ensure_future(anext(stream))  # "b" waits for the interval, the model for ever
        while "b" not in log and not waiting.done():
            await asyncio.sleep(0)  # a turn of the loop, no time: until the source has handed "b" over
        waiting.cancel()  # what the server does when the browser leaves
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        return first.text

    assert async_to_sync(asyncio.wait_for)(go(), 10) == "a"
    assert log[-1] == "closed" and "finished" not in log
