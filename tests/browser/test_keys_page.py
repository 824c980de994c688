"""The API-keys page in a real browser: add a key, test it, see the outcome, delete it."""

import re

import pytest
from playwright.sync_api import Page, expect

from providers.models import ApiKey
from tests.browser.conftest import screenshot
from tests.browser.test_models_page import log_in
from tests.conftest import cloud_provider
from tests.fakes.anthropic import FakeAnthropic

pytestmark = pytest.mark.browser
KEY = "sk-ant-test-0123456789"


def test_add_test_and_delete_a_key(live_app: str, page: Page, django_user_model: type) -> None:
    django_user_model.objects.create_user("alice", password="alice-password-1")
    with FakeAnthropic(keys={KEY}) as anthropic:
        cloud_provider("anthropic", "anthropic", base_url=anthropic.url)
        log_in(page, live_app, "alice", "alice-password-1", landing="/api-keys/")
        page.get_by_label("Provider").select_option("anthropic")
        page.get_by_label("Label").fill("personal")
        page.get_by_label("Key", exact=True).fill(KEY)
        page.get_by_role("button", name="Store key").click()
        row = page.locator(".key-row").first
        expect(row).to_contain_text("personal")
        expect(row).to_contain_text("sk-…6789")
        expect(page.locator("body")).not_to_contain_text(KEY)
        expect(row).to_contain_text("not tested yet")

        row.get_by_role("button", name="Test").click()
        expect(row.locator(".test-result")).to_have_attribute("data-ok", "true")
        expect(row.locator(".test-result")).to_contain_text(re.compile(r"works\s+\(\d+ ms\)"))
        expect(row.locator(".test-result")).to_contain_text("2 models listed")
        screenshot(page, "keys-tested")

        anthropic.keys.clear()  # the provider stops accepting it: the page must say so, in its words
        row.get_by_role("button", name="Test").click()
        expect(row.locator(".test-result")).to_have_attribute("data-ok", "false")
        expect(row.locator(".test-result")).to_contain_text("invalid x-api-key")

        page.once("dialog", lambda d: d.accept())
        row.get_by_role("button", name="Delete").click()
        expect(page.locator(".key-row")).to_have_count(0)
        expect(page.locator("#messages")).to_contain_text("Key deleted")
    assert not ApiKey.objects.exists()
