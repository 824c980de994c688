"""`<provider>/<model id>` of a cloud provider works on first use, before any listing, for a caller with a
usable key; the model then joins the registry as the caller's own. A model the provider lacks gives the
provider's own 404, with no fallback."""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User

from apikeys.services import apikey_create
from models_mgmt.models import AIModel, ModelSource
from models_mgmt.services import model_resolve
from tests.conftest import cloud_provider, token_client
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db
KEY = "sk-test-key-1234"
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake(db: None) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(keys={KEY}, models=["gpt-4o-mini", "gpt-4o"]) as server:
        cloud_provider("openai", "openai", base_url=f"{server.url}/v1")
        # A fallback candidate, so "no fallback" below is a decision, not a lack of choice.
        cloud_provider("anthropic", "anthropic")
        yield server


def ask(user: User, model: str, **extra: object) -> object:
    return token_client(user).post(
        "/api/completions", {"model": model, "messages": HELLO, **extra}, content_type="application/json"
    )


def test_a_named_model_works_at_once_and_joins_the_registry_as_the_callers(
    fake: FakeOpenAI, alice: User, bob: User
) -> None:
    apikey_create(user=alice, provider="openai", key=KEY)
    assert not AIModel.objects.exists()
    response = ask(alice, "openai/gpt-4o")
    assert response.status_code == 200 and response.json()["text"] == "Echo from gpt-4o: hi"
    row = AIModel.objects.get(model_id="gpt-4o")
    assert row.owner == alice and row.source == ModelSource.NAMED
    assert ask(alice, "openai/gpt-4o").status_code == 200 and AIModel.objects.count() == 1
    assert "openai/gpt-4o" not in [m["ref"] for m in token_client(bob).get("/api/models").json()]
    gateway = token_client(alice).post(
        "/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": HELLO}, content_type="application/json"
    )
    assert gateway.status_code == 200 and gateway["X-Orchestrator-Model"] == "openai/gpt-4o-mini"


def test_a_model_the_provider_lacks_is_its_own_404_without_fallback(fake: FakeOpenAI, alice: User) -> None:
    apikey_create(user=alice, provider="openai", key=KEY)
    apikey_create(user=alice, provider="anthropic", key=KEY)
    AIModel.objects.create(provider=cloud_provider("anthropic", "anthropic"), model_id="claude-3-5-haiku-latest")
    response = ask(alice, "openai/gpt-99-imaginary")
    body = response.json()
    assert response.status_code == 404 and body["error"]["code"] == "not_found" and body["fallbacks"] == []
    assert "gpt-99-imaginary" in body["error"]["message"]
    assert not AIModel.objects.filter(model_id="gpt-99-imaginary").exists()


def test_without_a_key_a_named_model_is_404_saying_what_to_do(fake: FakeOpenAI, charlie: User) -> None:
    response = ask(charlie, "openai/gpt-4o")
    assert response.status_code == 404 and "add a key for OpenAI" in response.json()["detail"]
    assert ask(charlie, "nosuchprovider/gpt-4o").status_code == 404
    assert ask(charlie, "openai/has space").status_code == 404
    assert fake.chat_count == 0


def test_resolving_never_writes(fake: FakeOpenAI, alice: User) -> None:
    apikey_create(user=alice, provider="openai", key=KEY)
    model = model_resolve(ref="openai/gpt-4o", user=alice)
    assert model.pk is None and model.owner == alice and not AIModel.objects.exists()
