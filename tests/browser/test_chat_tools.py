"""Copy, search, export and import, and the model a new chat starts on, in a real browser."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from chat import services
from chat.models import Conversation
from models_mgmt.models import AIModel
from tests.browser.chat import QWEN, last_answer, open_chat, pick, send, world_of
from tests.browser.conftest import screenshot
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.browser


@pytest.fixture
def world(live_app: str, lmstudio: FakeLMStudio, django_user_model: type) -> Iterator[dict]:
    yield from world_of(live_app, lmstudio, django_user_model)


def done(page: Page) -> None:
    expect(last_answer(page)).to_have_attribute("data-status", "complete", timeout=15_000)


def clipboard(page: Page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def test_copy_an_answer_and_a_code_block(page: Page, world: dict) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=world["url"])
    open_chat(page, world)
    pick(page, QWEN)
    send(page, "look:\n```python\nprint(1)\n```")
    done(page)
    answer = last_answer(page)
    answer.get_by_role("button", name="Copy", exact=True).click()
    expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    assert clipboard(page) == "Echo: look:\n```python\nprint(1)\n```"
    answer.get_by_role("button", name="Copy code").click()
    assert clipboard(page) == "print(1)\n"
    # Without the clipboard API (plain HTTP on another host) the fallback copies too.
    page.evaluate("Object.defineProperty(window, 'isSecureContext', {value: false})")
    page.evaluate("navigator.clipboard.writeText('something else')")
    answer.get_by_role("button", name="Copy code").click()
    expect(answer.locator(".copy-code")).to_have_text("Copied")
    assert clipboard(page) == "print(1)\n"


def test_search_finds_titles_and_messages_and_opens_the_message(
    page: Page, world: dict, django_user_model: type
) -> None:
    open_chat(page, world)  # the first listing discovers LM Studio's models
    alice = django_user_model.objects.get(username="alice")
    model = AIModel.objects.get(model_id=QWEN).pk
    for topic in ("apples", "bananas"):
        conversation = services.conversation_create(owner=alice)
        services.chat_send(conversation=conversation, content=f"Tell me about {topic}", model_id=model)
        services.conversation_rename(conversation=conversation, title=f"Fruit: {topic}")
    target = Conversation.objects.get(title="Fruit: apples")
    hit = target.messages.get(role="user")
    page.reload()
    page.get_by_role("searchbox", name="Search conversations").fill("about APPLES")
    results = page.locator(".search-results")
    expect(results.locator(".search-hit")).to_have_count(1)
    expect(results).to_contain_text("Tell me about apples")
    page.get_by_role("searchbox", name="Search conversations").fill("fruit")
    expect(results.locator(".search-hit")).to_have_count(2)
    page.get_by_role("searchbox", name="Search conversations").fill("about apples")
    expect(results.locator(".search-hit")).to_have_count(1)
    screenshot(page, "chat-search")
    results.locator(".search-hit").click()
    expect(page).to_have_url(re.compile(rf"/chat/{target.pk}/\?m={hit.pk}#msg-{hit.pk}$"))
    expect(page.locator(f"#msg-{hit.pk}")).to_have_class(re.compile(r"\bhighlight\b"))
    page.get_by_role("searchbox", name="Search conversations").fill("kiwis")
    expect(results).to_contain_text("Nothing matches")


def test_export_and_import_round_trip(page: Page, world: dict, tmp_path: Path) -> None:
    open_chat(page, world)
    pick(page, QWEN)
    send(page, "round trip")
    done(page)
    last_answer(page).get_by_role("button", name="Regenerate").click()
    expect(last_answer(page).locator(".version-count")).to_have_text("2/2", timeout=15_000)
    done(page)
    with page.expect_download() as markdown_download:
        page.get_by_role("link", name="Export as Markdown").click()
    markdown = Path(markdown_download.value.path()).read_text()
    assert "## You" in markdown and "round trip" in markdown and "(version 2 of 2)" in markdown
    with page.expect_download() as json_download:
        page.get_by_role("link", name=re.compile("Export as JSON")).click()
    saved = tmp_path / json_download.value.suggested_filename
    json_download.value.save_as(saved)
    exported = json.loads(saved.read_text())
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant", "assistant"]

    page.get_by_label("Exported JSON file").set_input_files(str(saved))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#messages")).to_contain_text("Imported")
    copy = Conversation.objects.order_by("-pk").first()
    expect(page).to_have_url(re.compile(rf"/chat/{copy.pk}/$"))
    expect(page.locator("#chat-title")).to_have_text(exported["title"])
    expect(last_answer(page).locator(".version-count")).to_have_text("2/2")
    expect(last_answer(page).locator(".body")).to_have_text("Echo: round trip")
    expect(page.locator(".msg.user .body")).to_have_text("round trip")
    assert Conversation.objects.count() == 2


def test_a_new_chat_starts_on_the_last_model(page: Page, world: dict) -> None:
    open_chat(page, world)
    expect(page.locator("#model-select")).to_have_value("")
    pick(page, "gpt-4o-mini")
    send(page, "hello")
    done(page)
    page.get_by_role("button", name="+ New chat").click()
    expect(page.locator("#chat-title")).to_have_text("New chat")
    expect(page.locator("#model-select")).to_have_value(str(AIModel.objects.get(model_id="gpt-4o-mini").pk))
    send(page, "and again")
    done(page)
    expect(last_answer(page).locator(".body")).to_have_text("Echo from gpt-4o-mini: and again")
