"""Login throttling (django-axes): a username+IP is locked after LOGIN_FAILURE_LIMIT wrong passwords, on the
app's login and the admin's, with a clear page; other addresses are not; staff unlock."""

from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db
LIMIT = 10  # the default of LOGIN_FAILURE_LIMIT
ATTACKER = "203.0.113.7"


def _login(client: Client, url: str, username: str, password: str, ip: str = ATTACKER) -> object:
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.parametrize(
    ("url", "user_fixture", "password"),
    [("/accounts/login/", "alice", "alice-password-1"), ("/admin/login/", "bob", "bob-password-1")],
    ids=["app-login", "admin-login"],
)
def test_lockout_after_the_limit_then_even_the_right_password_is_refused(
    request: pytest.FixtureRequest, url: str, user_fixture: str, password: str
) -> None:
    user: User = request.getfixturevalue(user_fixture)
    client = Client()
    for attempt in range(1, LIMIT):
        response = _login(client, url, user.username, f"wrong-{attempt}")
        assert response.status_code == 200, f"attempt {attempt} already refused"  # the form again, with its error
    assert _login(client, url, user.username, "wrong-last").status_code == 429

    locked = _login(client, url, user.username, password)
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and f"{LIMIT} wrong passwords" in page and "0:15:00" in page
    assert "_auth_user_id" not in client.session


def test_right_password_before_the_limit_logs_in_and_resets_the_count(alice: User) -> None:
    client = Client()
    for attempt in range(LIMIT - 1):
        _login(client, "/accounts/login/", "alice", f"wrong-{attempt}")
    assert _login(client, "/accounts/login/", "alice", "alice-password-1").status_code == 302
    assert not AccessAttempt.objects.filter(username="alice").exists()


def test_lock_is_per_address(alice: User) -> None:
    for attempt in range(LIMIT):
        _login(Client(), "/accounts/login/", "alice", f"wrong-{attempt}")
    assert _login(Client(), "/accounts/login/", "alice", "alice-password-1").status_code == 429
    elsewhere = _login(Client(), "/accounts/login/", "alice", "alice-password-1", ip="198.51.100.2")
    assert elsewhere.status_code == 302  # alice at her own address is not locked out by an attacker


def test_limit_and_duration_come_from_settings(alice: User, settings) -> None:  # noqa: ANN001
    settings.AXES_FAILURE_LIMIT = 2
    client = Client()
    assert _login(client, "/accounts/login/", "alice", "wrong").status_code == 200
    assert _login(client, "/accounts/login/", "alice", "wrong").status_code == 429


def test_staff_unlock_in_the_admin(alice: User, django_user_model: type[User]) -> None:
    for attempt in range(LIMIT):
        _login(Client(), "/accounts/login/", "alice", f"wrong-{attempt}")
    attempt = AccessAttempt.objects.get(username="alice")
    admin = django_user_model.objects.create_superuser("root", password="root-password-1")
    staff = Client()
    staff.force_login(admin)
    listing = staff.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    deleted = staff.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert _login(Client(), "/accounts/login/", "alice", "alice-password-1").status_code == 302


def test_unlock_from_a_shell(alice: User) -> None:
    for attempt in range(LIMIT):
        _login(Client(), "/accounts/login/", "alice", f"wrong-{attempt}")
    call_command("axes_reset_username", "alice", stdout=StringIO())
    assert _login(Client(), "/accounts/login/", "alice", "alice-password-1").status_code == 302


def test_api_tokens_are_not_throttled_by_logins(alice: User, alice_api: Client) -> None:
    for attempt in range(LIMIT):
        _login(Client(), "/accounts/login/", "alice", f"wrong-{attempt}")
    assert alice_api.get("/api/models").status_code == 200


def test_the_guessed_passwords_are_not_stored(alice: User) -> None:
    _login(Client(), "/accounts/login/", "alice", "a-guess-worth-hiding")
    attempt = AccessAttempt.objects.get(username="alice")
    assert "a-guess-worth-hiding" not in f"{attempt.get_data} {attempt.post_data}"
    assert attempt.ip_address == ATTACKER and attempt.failures_since_start == 1
