"""The chat and the Models page on a 390 px phone, and the dark theme."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from chat.models import Conversation, Message, MessageRole, MessageStatus
from models_mgmt.models import AIModel
from tests.browser.chat import open_chat, world_of
from tests.browser.conftest import ARTIFACTS, screenshot
from tests.browser.test_models_page import log_in
from tests.conftest import cloud_provider
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def world(live_app: str, lmstudio: FakeLMStudio, django_user_model: type) -> Iterator[dict]:
    yield from world_of(live_app, lmstudio, django_user_model)


def long_conversation(owner: object, exchanges: int) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title="A long talk", title_is_auto=False)
    parent = None
    for n in range(exchanges):
        answer = f"Answer {n}\n\n" + "text " * 40
        for role, text in ((MessageRole.USER, f"Question {n}"), (MessageRole.ASSISTANT, answer)):
            parent = Message.objects.create(
                conversation=conversation, parent=parent, role=role, content=text, status=MessageStatus.COMPLETE
            )
    conversation.leaf = parent
    conversation.save()
    return conversation


def screen(page: Page, name: str) -> None:
    """What the phone shows, not the whole scrolled page: the point is where it opens."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def in_view(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] < size["height"] and box["y"] + box["height"] > 0 and box["x"] >= 0


def test_phone_opens_at_the_latest_message_with_the_list_in_a_drawer(
    page: Page, world: dict, django_user_model: type
) -> None:
    alice = django_user_model.objects.get(username="alice")
    older = long_conversation(alice, 2)
    conversation = long_conversation(alice, 25)
    page.set_viewport_size(PHONE)
    page.emulate_media(reduced_motion="reduce")  # the drawer appears at once, for the screenshot
    log_in(page, world["url"], "alice", "alice-password-1", landing=f"/chat/{conversation.pk}/")
    last = conversation.leaf_id
    expect(page.locator(f"#msg-{last}")).to_be_visible()
    assert in_view(page, f"#msg-{last}"), "the newest message is on screen"
    assert not in_view(page, ".msg >> nth=0"), "not the first one"
    expect(page.locator("#composer")).to_be_in_viewport()
    sidebar = page.locator("#sidebar")
    expect(sidebar).to_be_hidden()
    screen(page, "chat-phone-long")

    opener = page.get_by_role("button", name="Conversations")
    expect(opener).to_have_attribute("aria-expanded", "false")
    opener.click()
    expect(sidebar).to_be_visible()
    expect(opener).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("searchbox", name="Search conversations")).to_be_focused()
    assert in_view(page, f"#msg-{last}"), "opening the drawer keeps the place in the conversation"
    screen(page, "chat-phone-drawer")
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    opener.click()
    sidebar.locator(f"[data-conversation='{older.pk}']").click()
    expect(page).to_have_url(f"{world['url']}/chat/{older.pk}/")
    expect(sidebar).to_be_hidden()
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= PHONE["width"], "nothing sticks out sideways"


def test_models_page_on_a_phone_is_cards_with_actions_and_reasons(page: Page, world: dict) -> None:
    provider = cloud_provider("mistral", "mistral", base_url="http://127.0.0.1:9")
    AIModel.objects.create(provider=provider, model_id="mistral-small-latest", display_name="Mistral Small")
    page.set_viewport_size(PHONE)
    log_in(page, world["url"], "alice", "alice-password-1")
    gemma = AIModel.objects.get(model_id="google/gemma-3-4b")
    load = page.locator(f"#model-{gemma.pk}").get_by_role("button", name="Load")
    expect(load).to_be_visible()
    box = load.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    mistral = page.locator(f"#model-{AIModel.objects.get(model_id='mistral-small-latest').pk}")
    expect(mistral.locator(".reason")).to_be_visible()
    expect(mistral.locator("td").nth(5)).to_contain_text("mistral")  # the provider: shown, not clipped
    cell = mistral.locator("td").nth(5).bounding_box()
    assert cell["x"] >= 0 and cell["x"] + cell["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "models-phone")


def background(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_dark_theme_follows_the_system_and_the_toggle_sticks(page: Page, world: dict) -> None:
    page.emulate_media(color_scheme="dark")
    open_chat(page, world)
    dark, light = "rgb(18, 21, 28)", "rgb(247, 248, 250)"
    assert background(page) == dark
    toggle = page.get_by_role("button", name="Dark theme")
    expect(toggle).to_have_text("☀ Light")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    screenshot(page, "chat-dark")
    toggle.click()
    expect(toggle).to_have_text("☾ Dark")
    assert background(page) == light
    page.reload()
    assert background(page) == light, "the choice outlives the page"
    page.emulate_media(color_scheme="light")
    toggle.click()
    assert background(page) == dark
    page.goto(f"{world['url']}/models/")
    assert background(page) == dark, "every page"
    page.keyboard.press("Tab")  # the toggle is reachable from the keyboard
    page.locator("#theme-toggle").focus()
    page.keyboard.press("Enter")
    assert background(page) == light
