"""Edit a question, regenerate an answer: versions with ‹ n/m ›, nothing lost, the model sees the branch."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.chat import QWEN, last_answer, open_chat, pick, send, world_of
from tests.browser.conftest import screenshot
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.browser


@pytest.fixture
def world(live_app: str, lmstudio: FakeLMStudio, django_user_model: type) -> Iterator[dict]:
    yield from world_of(live_app, lmstudio, django_user_model)


def question(page: Page) -> Locator:
    return page.locator(".msg.user").first


def done(page: Page) -> None:
    expect(last_answer(page)).to_have_attribute("data-status", "complete", timeout=15_000)


def test_edit_makes_versions_of_the_question_and_regenerate_of_the_answer(page: Page, world: dict) -> None:
    open_chat(page, world)
    pick(page, QWEN)
    send(page, "alpha")
    done(page)

    question(page).get_by_role("button", name="Edit").click()
    editor = question(page).get_by_label("Edit your message")
    expect(editor).to_be_focused()
    editor.fill("beta")
    editor.press("Enter")
    done(page)
    expect(question(page).locator(".body")).to_have_text("beta")
    expect(question(page).locator(".version-count")).to_have_text("2/2")
    expect(last_answer(page).locator(".body")).to_have_text("Echo: beta")
    # The model was shown the edited branch only: no trace of "alpha".
    asked = [r.json() for r in world["lmstudio"].requests if r.path == "/v1/chat/completions"][-1]
    assert [m["content"] for m in asked["messages"]] == ["beta"]

    question(page).get_by_role("button", name="Previous version").click()
    expect(question(page).locator(".body")).to_have_text("alpha")
    expect(question(page).locator(".version-count")).to_have_text("1/2")
    expect(last_answer(page).locator(".body")).to_have_text("Echo: alpha")
    expect(question(page).get_by_role("button", name="Previous version")).to_be_disabled()
    # The focus stays on the arrows as the thread is redrawn (on the one still usable), so the keyboard
    # can go on from there.
    expect(question(page).get_by_role("button", name="Next version")).to_be_focused()
    page.keyboard.press("Enter")
    expect(question(page).locator(".body")).to_have_text("beta")
    expect(question(page).get_by_role("button", name="Previous version")).to_be_focused()

    # Regenerate with another model: a second version of the answer; the first stays.
    pick(page, "gpt-4o-mini")
    last_answer(page).get_by_role("button", name="Regenerate").click()
    done(page)
    expect(last_answer(page).locator(".body")).to_have_text("Echo from gpt-4o-mini: beta")
    expect(last_answer(page).locator(".version-count")).to_have_text("2/2")
    screenshot(page, "chat-versions")
    last_answer(page).get_by_role("button", name="Previous version").click()
    expect(last_answer(page).locator(".body")).to_have_text("Echo: beta")
    expect(last_answer(page).locator(".version-count")).to_have_text("1/2")
    # What is on screen survives a reload; the question keeps its own versions.
    page.reload()
    expect(last_answer(page).locator(".version-count")).to_have_text("1/2")
    expect(question(page).locator(".version-count")).to_have_text("2/2")


def test_a_follow_up_goes_under_the_version_on_screen(page: Page, world: dict) -> None:
    open_chat(page, world)
    pick(page, QWEN)
    send(page, "first")
    done(page)
    last_answer(page).get_by_role("button", name="Regenerate").click()
    expect(last_answer(page).locator(".version-count")).to_have_text("2/2", timeout=15_000)
    last_answer(page).get_by_role("button", name="Previous version").click()
    expect(last_answer(page).locator(".version-count")).to_have_text("1/2")
    send(page, "second")
    expect(page.locator(".msg")).to_have_count(4)
    done(page)
    expect(page.locator(".msg.assistant").first.locator(".version-count")).to_have_text("1/2")
    asked = [r.json() for r in world["lmstudio"].requests if r.path == "/v1/chat/completions"][-1]
    assert [m["role"] for m in asked["messages"]] == ["user", "assistant", "user"]
