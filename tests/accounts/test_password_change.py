"""A user changes their own password from the Settings page."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import logs_in

pytestmark = pytest.mark.django_db


def change(client: Client, old: str, new: str, again: str | None = None) -> object:
    return client.post(
        "/settings/password/", {"old_password": old, "new_password": new, "new_password_again": again or new}
    )


def test_change_keeps_the_session_and_the_new_password_logs_in(alice: User, alice_web: Client) -> None:
    response = change(alice_web, "alice-password-1", "a-much-better-one-2")
    assert response.status_code == 302 and response["Location"] == "/settings/"
    assert "Password changed." in alice_web.get("/settings/").content.decode()  # still logged in
    alice.refresh_from_db()
    assert alice.check_password("a-much-better-one-2")
    assert logs_in("alice", "a-much-better-one-2") and not logs_in("alice", "alice-password-1")


@pytest.mark.parametrize(
    ("old", "new", "again", "error"),
    [
        ("wrong", "a-much-better-one-2", None, "The current password is wrong."),
        ("alice-password-1", "a-much-better-one-2", "something-else-3", "The two new passwords differ."),
        ("alice-password-1", "short", None, "too short"),
        ("alice-password-1", "password123", None, "too common"),
    ],
)
def test_refused_changes_say_why_and_change_nothing(
    alice: User, alice_web: Client, old: str, new: str, again: str | None, error: str
) -> None:
    response = change(alice_web, old, new, again)
    html = response.content.decode()
    assert response.status_code == 400 and "Password not changed" in html and error in html
    assert f'value="{new}"' not in html  # a password is never echoed back
    alice.refresh_from_db()
    assert alice.check_password("alice-password-1")


def test_login_required(client: Client) -> None:
    response = change(client, "x", "y")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
