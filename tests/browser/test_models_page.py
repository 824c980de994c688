"""Press Load on the Models page and watch 🔄 turn into ✓, in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from models_mgmt.models import AIModel
from tests.browser.conftest import screenshot
from tests.conftest import point_provider_at
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.browser

GEMMA = "google/gemma-3-4b"


def log_in(page: object, url: str, username: str, password: str, landing: str = "/models/") -> None:
    page.goto(f"{url}/accounts/login/?next={landing}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Log out")).to_have_count(0)  # the form is gone
    expect(page.locator("body")).to_contain_text(f"Log out {username}")


def test_load_button_shows_loading_then_loaded(
    live_app: str, page: object, lmstudio: FakeLMStudio, django_user_model: type
) -> None:
    django_user_model.objects.create_user("alice", password="alice-password-1")
    point_provider_at(lmstudio)
    lmstudio.hold_loads()
    log_in(page, live_app, "alice", "alice-password-1")

    gemma = AIModel.objects.get(model_id=GEMMA)
    row = page.locator(f"#model-{gemma.pk}")
    expect(row).to_have_attribute("data-status", "not_loaded")
    expect(row.locator(".icon")).to_have_text("○")

    row.get_by_role("button", name="Load").click()
    expect(row).to_have_attribute("data-status", "loading")
    expect(row.locator(".icon")).to_have_text("🔄")
    assert lmstudio.wait_for_load_started(1, timeout=30)
    screenshot(page, "models-loading")

    lmstudio.release_loads()
    expect(row).to_have_attribute("data-status", "loaded", timeout=30_000)
    expect(row.locator(".icon")).to_have_text("✓")
    assert lmstudio.models[GEMMA].instances == [GEMMA]
    screenshot(page, "models-loaded")


def test_failed_load_shows_the_reason_and_the_page_survives_lm_studio_down(
    live_app: str, page: object, lmstudio: FakeLMStudio, django_user_model: type
) -> None:
    django_user_model.objects.create_user("alice", password="alice-password-1")
    point_provider_at(lmstudio)
    lmstudio.fail_load(GEMMA, message="Failed to load model: insufficient memory")
    log_in(page, live_app, "alice", "alice-password-1")
    gemma = AIModel.objects.get(model_id=GEMMA)
    row = page.locator(f"#model-{gemma.pk}")
    row.get_by_role("button", name="Load").click()
    expect(row).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(row).to_contain_text("insufficient memory")
    expect(row.locator(".icon")).to_have_attribute("title", re.compile(r"^failed: .*insufficient memory"))

    lmstudio.set_down(True)
    page.goto(f"{live_app}/models/?refresh=1")
    expect(page.locator("tr[data-status=unreachable]").first).to_contain_text("LM Studio unreachable")
    screenshot(page, "models-unreachable")
