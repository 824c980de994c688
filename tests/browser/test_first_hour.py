"""What a newcomer sees with the emulators (code mode on, as `make emulators` runs them), in a real browser:
the README's prompt gives screened code, a plain OpenAPI document gives a finished test-generation run; and
what an attacker guessing passwords sees."""

import pytest
from playwright.sync_api import Page, expect

from apikeys.services import apikey_create
from codegen.models import CodegenRun
from models_mgmt.models import AIModel
from tests.browser.conftest import screenshot
from tests.browser.test_models_page import log_in
from tests.conftest import cloud_provider
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.browser
README_PROMPT = "A function that returns the n-th Fibonacci number, with type hints"
SPEC_YAML = """openapi: 3.0.3
info: {title: Notes, version: '1'}
paths:
  /notes:
    get:
      responses: {'200': {description: the notes}}
    post:
      requestBody: {content: {application/json: {schema: {type: object}}}}
      responses: {'201': {description: made}}
"""


def test_code_page_with_the_emulator_in_code_mode(live_app: str, page: Page, django_user_model: type) -> None:
    alice = django_user_model.objects.create_user("alice", password="alice-password-1")
    with FakeOpenAI(keys={"test-key-1234"}) as openai:
        openai.code_mode = True
        provider = cloud_provider("openai", "openai", base_url=f"{openai.url}/v1")
        apikey_create(user=alice, provider="openai", key="test-key-1234")
        AIModel.objects.create(provider=provider, model_id="gpt-4o-mini", display_name="GPT-4o mini")
        log_in(page, live_app, "alice", "alice-password-1", landing="/codegen/")

        page.get_by_label("What should the code do?").fill(README_PROMPT)
        page.get_by_role("button", name="Generate").click()
        result = page.locator("#codegen-result")
        expect(result).to_contain_text("def fibonacci(n: int) -> int:")
        expect(result).to_contain_text("openai/gpt-4o-mini")
        screenshot(page, "first-hour-code")

        page.get_by_label("OpenAPI document (JSON or YAML)").fill(SPEC_YAML)
        page.get_by_role("button", name="Start a run").click()
        row = page.locator("#runs tr[data-run]").first
        expect(row).to_have_attribute("data-status", "finished", timeout=30_000)
        run = CodegenRun.objects.get()
        assert run.spec.replace("\r\n", "\n") == SPEC_YAML  # as sent (a form sends CRLF line ends)
        assert "def test_post_notes_answers_201" in run.artifact
        expect(row.get_by_role("link")).to_have_text(f"generated_{run.pk}.py")


def test_guessing_passwords_ends_on_the_lockout_page(live_app: str, page: Page, django_user_model: type) -> None:
    django_user_model.objects.create_user("alice", password="alice-password-1")
    for attempt in range(10):
        page.goto(f"{live_app}/accounts/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(f"guess-{attempt}")
        page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Too many failed logins")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("blocked for 0:15:00")
    page.goto(f"{live_app}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Too many failed logins")).to_be_visible()
