"""Change one's own password; staff create a user and reset a password; in a real browser."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.browser.test_models_page import log_in

pytestmark = pytest.mark.browser


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_a_user_changes_their_password(live_app: str, page: Page, django_user_model: type) -> None:
    django_user_model.objects.create_user("alice", password="alice-password-1")
    log_in(page, live_app, "alice", "alice-password-1", landing="/settings/")
    page.get_by_label("Current password").fill("wrong-one")
    page.get_by_label("New password", exact=True).fill("alice-new-pass-2")
    page.get_by_label("New password again").fill("alice-new-pass-2")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#messages")).to_contain_text("The current password is wrong.")
    page.get_by_label("Current password").fill("alice-password-1")
    page.get_by_label("New password", exact=True).fill("alice-new-pass-2")
    page.get_by_label("New password again").fill("alice-new-pass-2")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#messages")).to_contain_text("Password changed.")
    log_out(page)
    log_in(page, live_app, "alice", "alice-new-pass-2", landing="/settings/")


def test_staff_create_a_user_and_reset_a_password(live_app: str, page: Page, django_user_model: type) -> None:
    django_user_model.objects.create_user("bob", password="bob-password-1", is_staff=True)
    log_in(page, live_app, "bob", "bob-password-1", landing="/settings/")
    page.get_by_role("link", name="Users →").click()
    page.get_by_label("User name").fill("dora")
    page.get_by_label("Password", exact=True).fill("dora-password-1")
    page.get_by_label("Password again").fill("dora-password-1")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("#messages")).to_contain_text("User “dora” created.")
    dora = page.locator(f"#user-{django_user_model.objects.get(username='dora').pk}")
    dora.locator("summary", has_text="Reset password").click()
    dora.get_by_label("New password for dora").fill("dora-reset-pass-3")
    dora.get_by_label("Again").fill("dora-reset-pass-3")
    dora.get_by_role("button", name="Set password").click()
    expect(page.locator("#messages")).to_contain_text("New password set for “dora”.")
    screenshot(page, "users-page")
    log_out(page)
    log_in(page, live_app, "dora", "dora-reset-pass-3", landing="/")
    expect(page.locator("#composer")).to_be_visible()
