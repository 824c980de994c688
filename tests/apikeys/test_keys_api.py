"""The keys REST API: CRUD and test, the cast's boundaries, and validation."""

import pytest
from django.test import Client

from apikeys.services import apikey_create
from providers.models import ApiKey
from tests.conftest import cloud_provider

pytestmark = pytest.mark.django_db

SECRET = "sk-alice-0123456789abcd"


@pytest.fixture(autouse=True)
def providers(db: None) -> None:
    for name, kind in (("openai", "openai"), ("anthropic", "anthropic"), ("gemini", "google"), ("mistral", "mistral")):
        cloud_provider(name, kind)


def test_create_shows_only_the_hint(alice_api: Client) -> None:
    response = alice_api.post(
        "/api/keys", {"provider": "openai", "key": SECRET, "label": "personal"}, content_type="application/json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["hint"] == "sk-…abcd" and body["label"] == "personal" and not body["shared"]
    assert SECRET not in response.content.decode()
    listed = alice_api.get("/api/keys")
    assert SECRET not in listed.content.decode() and listed.json()[0]["id"] == body["id"]
    assert SECRET not in ApiKey.objects.get().secret


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"provider": "nope", "key": SECRET}, "Unknown provider"),
        ({"provider": "openai", "key": ""}, "empty"),
        ({"provider": "openai", "key": "sk-has space-123"}, "white space"),
        ({"provider": "openai", "key": "short"}, "8 to 512"),
        ({"provider": "openai", "key": "x" * 600}, "8 to 512"),
        ({"provider": "openai_compatible", "key": SECRET}, "base URL"),
        ({"provider": "openai_compatible", "key": SECRET, "base_url": "ftp://x"}, "http:// or https://"),
        ({"provider": "lmstudio", "key": SECRET}, "LM Studio takes no key"),
    ],
)
def test_bad_input_is_400_with_a_reason(alice_api: Client, payload: dict, detail: str) -> None:
    response = alice_api.post("/api/keys", payload, content_type="application/json")
    assert response.status_code == 400 and detail in response.json()["detail"]
    assert SECRET not in response.content.decode()


def test_missing_fields_are_422(alice_api: Client) -> None:
    assert alice_api.post("/api/keys", {"provider": "openai"}, content_type="application/json").status_code == 422


def test_openai_compatible_server_by_base_url(alice_api: Client, settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]  # an admin trusts this address for users' servers
    payload = {
        "provider": "openai_compatible",
        "key": SECRET,
        "base_url": "http://127.0.0.1:11434/v1/",
        "label": "Home Ollama",
    }
    response = alice_api.post("/api/keys", payload, content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    assert body["provider"] == "home-ollama" and body["provider_kind"] == "openai_compatible"
    assert body["provider_private"] and body["base_url"] == "http://127.0.0.1:11434/v1"


def test_charlie_cannot_see_or_touch_alices_key(alice: object, charlie: object) -> None:
    from tests.conftest import token_client

    key = apikey_create(user=alice, provider="openai", key=SECRET)
    charlie_api = token_client(charlie)
    assert charlie_api.get("/api/keys").json() == []
    assert charlie_api.get(f"/api/keys/{key.pk}").status_code == 404
    assert (
        charlie_api.patch(f"/api/keys/{key.pk}", {"label": "mine"}, content_type="application/json").status_code == 404
    )
    assert charlie_api.delete(f"/api/keys/{key.pk}").status_code == 404
    assert charlie_api.post(f"/api/keys/{key.pk}/test").status_code == 404
    assert ApiKey.objects.get(pk=key.pk).label == "OpenAI"


def test_update_label_and_replace_key(alice_api: Client, alice: object) -> None:
    key = apikey_create(user=alice, provider="openai", key=SECRET)
    response = alice_api.patch(
        f"/api/keys/{key.pk}", {"label": "work", "key": "sk-new-key-999999wxyz"}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["label"] == "work" and response.json()["hint"] == "sk-…wxyz"
    bad = alice_api.patch(f"/api/keys/{key.pk}", {"key": "bad key with spaces"}, content_type="application/json")
    assert bad.status_code == 400


def test_delete(alice_api: Client, alice: object) -> None:
    key = apikey_create(user=alice, provider="openai", key=SECRET)
    assert alice_api.delete(f"/api/keys/{key.pk}").status_code == 204
    assert not ApiKey.objects.exists()


def test_shared_keys_are_for_staff_to_manage(alice_api: Client, bob_api: Client) -> None:
    payload = {"provider": "openai", "key": SECRET, "shared": True}
    assert alice_api.post("/api/keys", payload, content_type="application/json").status_code == 403
    created = bob_api.post("/api/keys", payload, content_type="application/json")
    assert created.status_code == 201 and created.json()["shared"]
    key_id = created.json()["id"]
    assert alice_api.get("/api/keys").json()[0]["hint"] == "sk-…abcd"  # visible to all, by hint
    assert alice_api.delete(f"/api/keys/{key_id}").status_code == 403
    assert bob_api.delete(f"/api/keys/{key_id}").status_code == 204


def test_keys_api_needs_auth(client: Client) -> None:
    assert client.get("/api/keys").status_code == 401


def test_a_label_with_a_lone_surrogate_is_400(alice_api: Client) -> None:
    body = '{"provider": "openai", "key": "' + SECRET + '", "label": "work \\ud800"}'
    response = alice_api.post("/api/keys", body, content_type="application/json")
    assert response.status_code == 400 and "lone surrogates" in response.json()["detail"]
    assert not ApiKey.objects.exists()
