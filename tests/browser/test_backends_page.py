"""The backend generator page in a real browser, with the app served by uvicorn and the run done by a real
Celery worker, whose generated tests run in the real sandbox."""

import pytest
from playwright.sync_api import Page, expect

from apikeys.services import apikey_create
from codegen.models import BackendRun
from models_mgmt.models import AIModel
from tests.browser.conftest import screenshot
from tests.browser.test_models_page import log_in
from tests.conftest import cloud_provider
from tests.fakes import backend_script as script
from tests.fakes.backend_script import ScriptedOpenAI

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("sandbox_env")]


def test_plan_edit_generate_follow_and_download(live_app: str, page: Page, django_user_model: type) -> None:
    alice = django_user_model.objects.create_user("alice", password="alice-password-1")
    script_ = {
        "backend-plan": [script.PLAN_ANSWER],
        "backend-code": [script.BUGGY_CODE],
        "backend-repair": [script.FIXED_ROUTER],
    }
    with ScriptedOpenAI(script=script_, keys={"test-key-1234"}) as openai:
        provider = cloud_provider("openai", "openai", base_url=f"{openai.url}/v1")
        apikey_create(user=alice, provider="openai", key="test-key-1234")
        AIModel.objects.create(provider=provider, model_id="gpt-4o-mini", display_name="GPT-4o mini")
        log_in(page, live_app, "alice", "alice-password-1", landing="/backends/")

        page.get_by_label("Requirements").fill("A small shop API: items with a name and a price.")
        page.get_by_label("Model").select_option("openai/gpt-4o-mini")
        page.get_by_role("button", name="Draft a plan").click()
        plan = page.get_by_label("Plan (JSON: edit it before generating)")
        assert '"project_name": "shop-api"' in plan.input_value()
        plan.fill(plan.input_value().replace('"shop-api"', '"my-shop"'))
        page.get_by_role("button", name="Generate the backend").click()

        run = page.locator("#backend-run")
        expect(run).to_have_attribute("data-status", "finished", timeout=90_000)
        assert BackendRun.objects.get().plan["project_name"] == "my-shop"
        expect(page.locator("#backend-steps")).to_contain_text("✓ Repair")
        rows = page.locator("#backend-rounds tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(1)).to_contain_text("best")
        best = page.locator("details.backend-round[data-round='2']")
        expect(best.locator(".test-cases")).to_contain_text("test_missing_item_is_404 passed")
        router = best.locator(".file-tree details").filter(has_text="app/routers/items.py")
        router.locator("summary").click()
        expect(router.locator("pre.code span.k").first).to_be_visible()  # highlighted on the server
        screenshot(page, "backend-run-finished")
        with page.expect_download() as download:
            page.locator("#backend-download").click()
        assert download.value.suggested_filename == "my-shop.zip"
