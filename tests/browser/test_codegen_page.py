"""The code generation page in a real browser."""

import json

import pytest
from playwright.sync_api import Page, expect

from apikeys.services import apikey_create
from models_mgmt.models import AIModel
from tests.browser.conftest import screenshot
from tests.browser.test_models_page import log_in
from tests.codegen.test_generate import BAD, GOOD
from tests.codegen.test_runs import SPEC, TEST_MODULE
from tests.conftest import cloud_provider
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.browser


def test_generate_screen_and_run(live_app: str, page: Page, django_user_model: type) -> None:
    alice = django_user_model.objects.create_user("alice", password="alice-password-1")
    with FakeOpenAI(keys={"test-key-1234"}) as openai:
        provider = cloud_provider("openai", "openai", base_url=f"{openai.url}/v1")
        apikey_create(user=alice, provider="openai", key="test-key-1234")
        AIModel.objects.create(provider=provider, model_id="gpt-4o-mini", display_name="GPT-4o mini")
        log_in(page, live_app, "alice", "alice-password-1", landing="/codegen/")

        page.get_by_label("What should the code do?").fill(GOOD)
        page.get_by_label("Model").select_option("openai/gpt-4o-mini")
        page.get_by_role("button", name="Generate").click()
        result = page.locator("#codegen-result")
        expect(result).to_contain_text("def add(a: int, b: int) -> int:")
        expect(result.locator("span.k").first).to_have_text("def")  # highlighted on the server
        expect(result).to_contain_text("score 1.00")
        screenshot(page, "codegen-result")

        page.get_by_label("What should the code do?").fill(BAD)
        page.get_by_role("button", name="Generate").click()
        expect(page.locator("#codegen-error")).to_contain_text("rejected")
        expect(page.locator("#codegen-findings")).to_contain_text("os")
        expect(page.locator("#codegen-result")).to_have_count(0)

        spec = {**SPEC, "info": {**SPEC["info"], "description": f"```python\n{TEST_MODULE}```"}}
        page.get_by_label("OpenAPI document (JSON or YAML)").fill(json.dumps(spec))
        page.get_by_role("button", name="Start a run").click()
        row = page.locator("#runs tr[data-run]").first
        from codegen.models import CodegenRun

        expect(row).not_to_have_attribute("data-status", "queued", timeout=30_000)
        expect(row).not_to_have_attribute("data-status", "running", timeout=30_000)
        assert CodegenRun.objects.get().status == "finished", CodegenRun.objects.get().error
        expect(row.get_by_role("link")).to_have_text(f"generated_{row.get_attribute('data-run')}.py")
