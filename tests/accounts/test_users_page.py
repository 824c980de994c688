"""Staff create users and reset passwords from a page; nobody else sees it."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import logs_in

pytestmark = pytest.mark.django_db


def test_staff_create_a_user_who_can_log_in(bob_web: Client) -> None:
    page = bob_web.get("/settings/users/").content.decode()
    assert "bob" in page and 'name="is_staff"' not in page  # staff, not superuser: no staff checkbox
    response = bob_web.post(
        "/settings/users/new/", {"username": "dora", "password": "dora-password-1", "password_again": "dora-password-1"}
    )
    assert response.status_code == 302 and response["Location"] == "/settings/users/"
    dora = User.objects.get(username="dora")
    assert not dora.is_staff and logs_in("dora", "dora-password-1")
    assert "dora-password-1" not in bob_web.get("/settings/users/").content.decode()


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        ({"username": "alice"}, 400, "is taken"),
        ({"username": "ALICE"}, 400, "is taken"),
        ({"username": "bad name!"}, 400, "Enter a valid username"),
        ({"password_again": "other-password-9"}, 400, "differ"),
        ({"password": "short", "password_again": "short"}, 400, "too short"),
        ({"is_staff": "1"}, 403, "Only a superuser can make staff"),
    ],
)
def test_bad_new_users_are_refused(alice: User, bob_web: Client, fields: dict, status: int, error: str) -> None:
    data = {"username": "erin", "password": "erin-password-1", "password_again": "erin-password-1", **fields}
    response = bob_web.post("/settings/users/new/", data)
    assert response.status_code == status and error in response.content.decode()
    assert User.objects.count() == 2


def test_a_superuser_makes_staff(django_user_model: type[User]) -> None:
    root = django_user_model.objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.force_login(root)
    data = {"username": "sam", "password": "sam-password-1", "password_again": "sam-password-1", "is_staff": "1"}
    assert client.post("/settings/users/new/", data).status_code == 302
    assert User.objects.get(username="sam").is_staff


def test_staff_reset_a_users_password_but_not_a_staff_members(
    alice: User, bob: User, bob_web: Client, django_user_model: type[User]
) -> None:
    data = {"password": "fresh-password-7", "password_again": "fresh-password-7"}
    response = bob_web.post(f"/settings/users/{alice.pk}/password/", data)
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("fresh-password-7")
    other_staff = django_user_model.objects.create_user("sally", password="sally-password-1", is_staff=True)
    refused = bob_web.post(f"/settings/users/{other_staff.pk}/password/", data)
    assert refused.status_code == 403 and "Only a superuser" in refused.content.decode()
    other_staff.refresh_from_db()
    assert other_staff.check_password("sally-password-1")
    assert bob_web.post("/settings/users/99999/password/", data).status_code == 404


def test_charlie_is_refused_everywhere(alice: User, charlie: User) -> None:
    client = Client()
    client.force_login(charlie)
    assert client.get("/settings/users/").status_code == 404
    data = {"username": "mallory", "password": "mallory-pass-1", "password_again": "mallory-pass-1"}
    assert client.post("/settings/users/new/", data).status_code == 404
    reset = {"password": "taken-over-pass-1", "password_again": "taken-over-pass-1"}
    assert client.post(f"/settings/users/{alice.pk}/password/", reset).status_code == 404
    alice.refresh_from_db()
    assert alice.check_password("alice-password-1") and not User.objects.filter(username="mallory").exists()
    assert "Users →" not in client.get("/settings/").content.decode()
