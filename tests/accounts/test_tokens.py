"""API tokens: made on the Settings page or by command, shown once, stored hashed, revocable."""

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import ApiToken
from accounts.services import TokenError, api_token_authenticate, api_token_create

pytestmark = pytest.mark.django_db


def test_token_is_stored_hashed_only(alice: object) -> None:
    token, raw = api_token_create(user=alice, name="laptop")
    assert raw.startswith("orch_") and len(raw) > 40
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    assert api_token_authenticate(raw=raw) == alice


def test_inactive_user_token_is_refused(alice: object) -> None:
    _, raw = api_token_create(user=alice, name="x")
    alice.is_active = False
    alice.save()
    assert api_token_authenticate(raw=raw) is None


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_token_needs_a_sane_name(alice: object, name: str) -> None:
    with pytest.raises(TokenError):
        api_token_create(user=alice, name=name)


def test_last_used_is_recorded(alice: object) -> None:
    token, raw = api_token_create(user=alice, name="x")
    api_token_authenticate(raw=raw)
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_settings_page_creates_and_shows_the_token_once(alice_web: Client) -> None:
    response = alice_web.post("/settings/tokens/", {"name": "ci script"})
    html = response.content.decode()
    token = ApiToken.objects.get(name="ci script")
    start = html.index('id="new-token">') + len('id="new-token">')
    raw = html[start : html.index("</code>", start)]
    assert hashlib.sha256(raw.encode()).hexdigest() == token.token_hash
    again = alice_web.get("/settings/").content.decode()
    assert raw not in again and token.prefix in again and "ci script" in again


def test_settings_page_rejects_a_blank_name(alice_web: Client) -> None:
    response = alice_web.post("/settings/tokens/", {"name": " "})
    assert response.status_code == 400 and "name" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoke_own_token_only(alice: object, charlie: object, alice_web: Client) -> None:
    charlies, _ = api_token_create(user=charlie, name="charlie's")
    response = alice_web.post(f"/settings/tokens/{charlies.pk}/revoke/", follow=True)
    assert "No such token" in response.content.decode()
    assert ApiToken.objects.filter(pk=charlies.pk).exists()
    mine, _ = api_token_create(user=alice, name="mine")
    alice_web.post(f"/settings/tokens/{mine.pk}/revoke/")
    assert not ApiToken.objects.filter(pk=mine.pk).exists()


def test_settings_page_lists_only_own_tokens(alice: object, charlie: object, alice_web: Client) -> None:
    api_token_create(user=charlie, name="charlies-secret-script")
    assert "charlies-secret-script" not in alice_web.get("/settings/").content.decode()


def test_settings_page_needs_login(client: Client) -> None:
    assert client.get("/settings/").status_code == 302


def test_create_api_token_command(alice: object) -> None:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", "alice", "--name", "cron", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert api_token_authenticate(raw=raw) == alice and "shown once" in err.getvalue()


def test_create_api_token_command_unknown_user(db: None) -> None:
    with pytest.raises(CommandError, match="No user"):
        call_command("create_api_token", "nobody")


def test_admin_cannot_add_tokens_it_could_never_show(bob: object) -> None:
    bob.is_superuser = True
    bob.save()
    client = Client()
    client.force_login(bob)
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403
