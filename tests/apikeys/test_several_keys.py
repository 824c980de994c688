"""Several keys per provider: labels, one default, a request naming another key, rotation; shared keys are
staff's to test and to read the results of."""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apikeys.services import apikey_create
from models_mgmt.models import AIModel
from providers.models import ApiKey
from tests.conftest import cloud_provider, token_client
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db
WORK, HOME, SHARED = "sk-work-key-1111", "sk-home-key-2222", "sk-shared-key-333"
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake(db: None) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(keys={WORK, HOME, SHARED}, models=["gpt-4o-mini"]) as server:
        provider = cloud_provider("openai", "openai", base_url=f"{server.url}/v1")
        AIModel.objects.create(provider=provider, model_id="gpt-4o-mini")
        yield server


def used_key(server: FakeOpenAI) -> str:
    chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
    return chats[-1].headers["authorization"].removeprefix("Bearer ")


def post(api: Client, path: str, payload: dict | None = None, **headers: str) -> object:
    return api.post(path, payload or {}, content_type="application/json", headers=headers)


def test_first_key_is_the_default_and_a_request_may_name_another(fake: FakeOpenAI, alice: User) -> None:
    api = token_client(alice)
    work = post(api, "/api/keys", {"provider": "openai", "key": WORK, "label": "work"}).json()
    home = post(api, "/api/keys", {"provider": "openai", "key": HOME, "label": "home"}).json()
    assert work["is_default"] and not home["is_default"]
    listed = {k["label"]: k["is_default"] for k in api.get("/api/keys").json()}
    assert listed == {"work": True, "home": False}
    ask = {"model": "openai/gpt-4o-mini", "messages": HELLO}
    assert post(api, "/api/completions", ask).status_code == 200 and used_key(fake) == WORK
    assert post(api, "/api/completions", {**ask, "key_id": home["id"]}).status_code == 200
    assert used_key(fake) == HOME
    gateway = {"model": "openai/gpt-4o-mini", "messages": HELLO}
    response = post(api, "/v1/chat/completions", gateway, **{"X-Orchestrator-Key": str(home["id"])})
    assert response.status_code == 200 and used_key(fake) == HOME
    assert post(api, "/v1/chat/completions", gateway).status_code == 200 and used_key(fake) == WORK


def test_rotation_add_test_make_default_delete(fake: FakeOpenAI, alice: User) -> None:
    api = token_client(alice)
    old = post(api, "/api/keys", {"provider": "openai", "key": WORK, "label": "old"}).json()
    new = post(api, "/api/keys", {"provider": "openai", "key": HOME, "label": "new"}).json()
    assert post(api, f"/api/keys/{new['id']}/test").json()["ok"] is True
    made = post(api, f"/api/keys/{new['id']}/default")
    assert made.status_code == 200 and made.json()["is_default"]
    assert not ApiKey.objects.get(pk=old["id"]).is_default
    assert api.delete(f"/api/keys/{old['id']}").status_code == 204
    post(api, "/api/completions", {"model": "openai/gpt-4o-mini", "messages": HELLO})
    assert used_key(fake) == HOME


def test_deleting_the_default_hands_it_to_the_newest_remaining_key(fake: FakeOpenAI, alice: User) -> None:
    first = apikey_create(user=alice, provider="openai", key=WORK)
    second = apikey_create(user=alice, provider="openai", key=HOME)
    assert token_client(alice).delete(f"/api/keys/{first.pk}").status_code == 204
    assert ApiKey.objects.get(pk=second.pk).is_default


def test_a_named_key_must_be_the_callers_and_for_that_provider(fake: FakeOpenAI, alice: User, charlie: User) -> None:
    key = apikey_create(user=alice, provider="openai", key=WORK)
    apikey_create(user=charlie, provider="openai", key=HOME)
    ask = {"model": "openai/gpt-4o-mini", "messages": HELLO, "key_id": key.pk}
    assert post(token_client(charlie), "/api/completions", ask).status_code == 404
    gateway = {"model": "openai/gpt-4o-mini", "messages": HELLO}
    stolen = post(token_client(charlie), "/v1/chat/completions", gateway, **{"X-Orchestrator-Key": str(key.pk)})
    assert stolen.status_code == 404
    odd = post(token_client(charlie), "/v1/chat/completions", gateway, **{"X-Orchestrator-Key": "²"})
    assert odd.status_code == 400
    cloud_provider("anthropic", "anthropic")
    other = apikey_create(user=alice, provider="anthropic", key="sk-ant-key-4444")
    wrong = post(token_client(alice), "/api/completions", {**ask, "key_id": other.pk})
    assert wrong.status_code == 400 and "anthropic" in wrong.json()["detail"]
    assert fake.chat_count == 0


def test_shared_keys_are_tested_and_their_results_read_by_staff_only(fake: FakeOpenAI, alice: User, bob: User) -> None:
    shared = apikey_create(user=bob, provider="openai", key=SHARED, shared=True)
    alice_api, bob_api = token_client(alice), token_client(bob)
    refused = post(alice_api, f"/api/keys/{shared.pk}/test")
    assert refused.status_code == 403 and fake.count("GET", "/v1/models") == 0
    assert ApiKey.objects.get(pk=shared.pk).last_tested_at is None
    assert post(alice_api, f"/api/keys/{shared.pk}/default").status_code == 403
    assert post(bob_api, f"/api/keys/{shared.pk}/test").json()["ok"] is True
    seen_by_alice = alice_api.get(f"/api/keys/{shared.pk}").json()
    assert seen_by_alice["hint"] == "sk-…-333" and seen_by_alice["last_test_ok"] is None
    assert seen_by_alice["last_test_detail"] == "" and seen_by_alice["last_tested_at"] is None
    seen_by_bob = bob_api.get(f"/api/keys/{shared.pk}").json()
    assert seen_by_bob["last_test_ok"] is True and "models listed" in seen_by_bob["last_test_detail"]
    # A user without a key of their own uses the shared one.
    post(alice_api, "/api/completions", {"model": "openai/gpt-4o-mini", "messages": HELLO})
    assert used_key(fake) == SHARED


def test_the_keys_page_marks_the_default_and_offers_make_default(
    fake: FakeOpenAI, alice: User, alice_web: Client
) -> None:
    apikey_create(user=alice, provider="openai", key=WORK, label="work")
    home = apikey_create(user=alice, provider="openai", key=HOME, label="home")
    page = alice_web.get("/api-keys/").content.decode()
    assert page.count('class="badge default"') == 1 and f"/api-keys/{home.pk}/default/" in page
    response = alice_web.post(f"/api-keys/{home.pk}/default/")
    assert response.status_code == 302 and ApiKey.objects.get(pk=home.pk).is_default
