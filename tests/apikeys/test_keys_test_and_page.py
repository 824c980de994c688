"""Testing a key against the provider, and the API-keys page."""

import logging
from contextlib import ExitStack

import pytest
from django.test import Client

from apikeys.services import apikey_create
from models_mgmt.models import AIModel
from providers.models import ApiKey
from tests.conftest import cloud_provider
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db
SECRET = "sk-live-a1b2c3d4e5f6g7h8"


@pytest.fixture
def fakes() -> dict:
    with ExitStack() as stack:
        fakes = {
            "openai": stack.enter_context(FakeOpenAI(keys={SECRET})),
            "anthropic": stack.enter_context(FakeAnthropic(keys={SECRET})),
            "gemini": stack.enter_context(FakeGemini(keys={SECRET})),
        }
        cloud_provider("openai", "openai", base_url=f"{fakes['openai'].url}/v1")
        cloud_provider("anthropic", "anthropic", base_url=fakes["anthropic"].url)
        cloud_provider("gemini", "google", base_url=fakes["gemini"].url)
        yield fakes


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_good_key_lists_models_which_become_available(
    alice: object, alice_api: Client, fakes: dict, provider: str
) -> None:
    key = apikey_create(user=alice, provider=provider, key=SECRET)
    result = alice_api.post(f"/api/keys/{key.pk}/test").json()
    assert result["ok"] is True and result["latency_ms"] >= 0 and "2 models listed" in result["detail"]
    statuses = {m["model_id"]: m for m in alice_api.get("/api/models").json() if m["provider"] == provider}
    assert set(statuses) == set(fakes[provider].models)
    assert {m["status"] for m in statuses.values()} == {"available"} and {m["icon"] for m in statuses.values()} == {
        "🌐"
    }
    key.refresh_from_db()
    assert key.last_test_ok is True and key.last_tested_at is not None


@pytest.mark.parametrize(
    ("provider", "words"),
    [("openai", "Incorrect API key"), ("anthropic", "invalid x-api-key"), ("gemini", "API key not valid")],
)
def test_a_bad_key_is_reported_in_the_providers_words(
    alice: object, alice_api: Client, fakes: dict, provider: str, words: str
) -> None:
    key = apikey_create(user=alice, provider=provider, key="sk-wrong-key-000000000")
    response = alice_api.post(f"/api/keys/{key.pk}/test")
    result = response.json()
    assert response.status_code == 200 and result["ok"] is False and words in result["detail"]
    assert "sk-wrong-key-000000000" not in response.content.decode()
    key.refresh_from_db()
    assert key.failing_reason and key.last_test_ok is False


def test_unreachable_provider(alice: object, alice_api: Client, fakes: dict) -> None:
    key = apikey_create(user=alice, provider="openai", key=SECRET)
    fakes["openai"].set_down(True)
    result = alice_api.post(f"/api/keys/{key.pk}/test").json()
    assert result["ok"] is False and "cannot connect" in result["detail"]


def test_undecryptable_key_says_re_enter(alice: object, alice_api: Client, fakes: dict) -> None:
    key = apikey_create(user=alice, provider="openai", key=SECRET)
    ApiKey.objects.filter(pk=key.pk).update(secret=key.secret[:-6] + "AAAAAA")
    result = alice_api.post(f"/api/keys/{key.pk}/test").json()
    assert result["ok"] is False and "re-enter" in result["detail"]


def test_staff_sync_lists_cloud_models(bob: object, bob_api: Client, fakes: dict) -> None:
    apikey_create(user=bob, provider="anthropic", key=SECRET, shared=True)
    providers = {p["provider"]: p for p in bob_api.post("/api/models/sync").json()["providers"]}
    assert providers["anthropic"]["ok"] and providers["anthropic"]["added"] == 2
    assert AIModel.objects.filter(provider__name="anthropic").count() == 2


def test_page_add_test_edit_delete(alice: object, alice_web: Client, fakes: dict) -> None:
    page = alice_web.get("/api-keys/")
    assert page.status_code == 200 and "Add a key" in page.content.decode()
    response = alice_web.post("/api-keys/add/", {"provider": "openai", "key": SECRET, "label": "personal"}, follow=True)
    html = response.content.decode()
    assert "sk-…g7h8" in html and SECRET not in html and "personal" in html
    key = ApiKey.objects.get(owner=alice)
    tested = alice_web.post(f"/api-keys/{key.pk}/test/", headers={"HX-Request": "true"}).content.decode()
    assert 'data-ok="true"' in tested and "ms)" in tested
    alice_web.post(f"/api-keys/{key.pk}/", {"label": "renamed", "key": ""})
    key.refresh_from_db()
    assert key.label == "renamed" and key.hint == "sk-…g7h8"
    alice_web.post(f"/api-keys/{key.pk}/delete/")
    assert not ApiKey.objects.exists()


def test_page_shows_errors_and_keeps_the_form(alice_web: Client, fakes: dict) -> None:
    response = alice_web.post("/api-keys/add/", {"provider": "openai", "key": "has space in it", "label": "mine"})
    html = response.content.decode()
    assert response.status_code == 400 and "white space" in html and 'value="mine"' in html
    assert "has space in it" not in html  # a rejected key is not echoed back either


def test_page_refuses_charlie_on_alices_key(alice: object, charlie: object, fakes: dict) -> None:
    key = apikey_create(user=alice, provider="openai", key=SECRET)
    client = Client()
    client.force_login(charlie)
    assert SECRET[-4:] not in client.get("/api-keys/").content.decode()
    assert client.post(f"/api-keys/{key.pk}/delete/").status_code == 404
    assert client.post(f"/api-keys/{key.pk}/test/").status_code == 404
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_no_plaintext_anywhere_in_a_full_lifecycle(
    alice: object, bob: object, fakes: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """Create, list, test (good and refused), use in a completion, replace, rotate, delete — through the
    pages, the API and the admin — and look for the key in every response and every log line."""
    from django.core.management import call_command

    from tests.conftest import token_client

    caplog.set_level(logging.DEBUG)
    web, api = Client(), token_client(alice)
    web.force_login(alice)
    admin = Client()
    bob.is_superuser = True
    bob.save()
    admin.force_login(bob)
    seen: list[str] = []

    def keep(response: object) -> None:
        seen.append(response.content.decode(errors="replace") if not response.streaming else "")

    keep(web.post("/api-keys/add/", {"provider": "openai", "key": SECRET}, follow=True))
    key = ApiKey.objects.get(owner=alice)
    for response in (
        web.get("/api-keys/"),
        api.get("/api/keys"),
        api.get(f"/api/keys/{key.pk}"),
        api.post(f"/api/keys/{key.pk}/test"),
        web.post(f"/api-keys/{key.pk}/test/", headers={"HX-Request": "true"}),
        api.get("/api/models?refresh=1"),
        api.post(
            "/api/completions",
            {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            content_type="application/json",
        ),
        admin.get("/admin/apikeys/apikey/"),
        admin.get(f"/admin/apikeys/apikey/{key.pk}/change/"),
    ):
        keep(response)
    fakes["openai"].keys.clear()  # the provider now refuses it: errors must not carry it either
    keep(api.post(f"/api/keys/{key.pk}/test"))
    keep(
        api.post(
            "/api/completions",
            {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "fallback": False},
            content_type="application/json",
        )
    )
    keep(api.patch(f"/api/keys/{key.pk}", {"key": SECRET[::-1]}, content_type="application/json"))
    call_command("rotate_encryption_keys")
    keep(api.delete(f"/api/keys/{key.pk}"))
    assert len(seen) == 14 and all(seen[:2])
    for text in seen + [caplog.text]:
        assert SECRET not in text and SECRET[::-1] not in text
