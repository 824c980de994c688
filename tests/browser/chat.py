"""What the chat's browser tests share: alice's world behind the emulators, and the moves of a user."""

from collections.abc import Iterator
from contextlib import ExitStack

from playwright.sync_api import Locator, Page, expect

from apikeys.services import apikey_create
from models_mgmt.models import AIModel
from tests.browser.test_models_page import log_in
from tests.conftest import cloud_provider, point_provider_at
from tests.fakes.lmstudio import FakeLMStudio
from tests.fakes.openai import FakeOpenAI

QWEN, GEMMA = "qwen/qwen2.5-7b-instruct", "google/gemma-3-4b"


def world_of(live_app: str, lmstudio: FakeLMStudio, django_user_model: type) -> Iterator[dict]:
    """alice, LM Studio with its models, and OpenAI (alice's key) behind the emulators."""
    with ExitStack() as stack:
        openai = stack.enter_context(FakeOpenAI(keys={"test-key-1234"}))
        openai.chunk_delay = 0.02
        alice = django_user_model.objects.create_user("alice", password="alice-password-1")
        point_provider_at(lmstudio)
        provider = cloud_provider("openai", "openai", base_url=f"{openai.url}/v1")
        apikey_create(user=alice, provider="openai", key="test-key-1234")
        AIModel.objects.create(provider=provider, model_id="gpt-4o-mini", display_name="GPT-4o mini")
        yield {"url": live_app, "openai": openai, "lmstudio": lmstudio}


def open_chat(page: Page, world: dict) -> None:
    log_in(page, world["url"], "alice", "alice-password-1", landing="/")
    expect(page.locator("#composer")).to_be_visible()


def pick(page: Page, model_id: str) -> None:
    value = str(AIModel.objects.get(model_id=model_id).pk)
    page.select_option("#model-select", value)
    expect(page.locator("#model-select")).to_have_value(value)


def send(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.keyboard.press("Enter")


def last_answer(page: Page) -> Locator:
    return page.locator(".msg.assistant").last
