"""Several users on one instance: a user's private server and the models their own key lists are theirs
alone, on every surface (REST, gateway, pages, picker, alternatives, /metrics); non-staff users never add to
the instance-wide model list; a provider keeps at most MAX_MODELS_PER_PROVIDER models."""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from apikeys.services import apikey_create, apikey_test
from chat.services import chat_model_statuses
from models_mgmt.models import AIModel
from models_mgmt.services import ModelNotFound, model_get, model_suggest_alternative
from tests.conftest import cloud_provider, token_client
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db
KEY = "sk-test-key-1234"
PRIVATE_MODEL = "secret-internal-llm"


@pytest.fixture
def home(alice: User, settings) -> Iterator[FakeOpenAI]:  # noqa: ANN001
    """Alice's own OpenAI-compatible server (on loopback, which an admin allowed), with her key, tested."""
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    with FakeOpenAI(keys={KEY}, models=[PRIVATE_MODEL]) as fake:
        key = apikey_create(
            user=alice, provider="openai_compatible", key=KEY, base_url=f"{fake.url}/v1", label="Home box"
        )
        assert apikey_test(user=alice, key_id=key.pk).ok
        yield fake


def test_private_models_appear_for_their_owner_only(
    home: FakeOpenAI, alice_api: Client, bob_api: Client, charlie: User
) -> None:
    ref = f"home-box/{PRIVATE_MODEL}"
    assert ref in [m["ref"] for m in alice_api.get("/api/models").json()]
    for api in (bob_api, token_client(charlie)):
        assert ref not in [m["ref"] for m in api.get("/api/models").json()]
        assert api.get(f"/api/models/{ref}/status").status_code == 404
        model_pk = AIModel.objects.get(model_id=PRIVATE_MODEL).pk
        assert api.get(f"/api/models/{model_pk}/status").status_code == 404
        assert api.post(f"/api/models/{ref}/load").status_code == 404
        completion = api.post(
            "/api/completions",
            {"model": ref, "messages": [{"role": "user", "content": "hi"}]},
            content_type="application/json",
        )
        assert completion.status_code == 404
    assert home.chat_count == 0


def test_private_models_stay_out_of_others_gateway_picker_and_metrics(
    home: FakeOpenAI, alice: User, bob: User, charlie: User, client: Client
) -> None:
    ref = f"home-box/{PRIVATE_MODEL}"
    assert ref in [m["id"] for m in token_client(alice).get("/v1/models").json()["data"]]
    assert ref in [s.model.ref for s in chat_model_statuses(user=alice)]
    for user in (bob, charlie):
        assert ref not in [m["id"] for m in token_client(user).get("/v1/models").json()["data"]]
        assert ref not in [s.model.ref for s in chat_model_statuses(user=user)]
        with pytest.raises(ModelNotFound):
            model_get(ref=ref, user=user)
    metrics = client.get("/metrics").content.decode()
    assert PRIVATE_MODEL not in metrics and "home-box" not in metrics


def test_a_private_model_is_never_offered_to_someone_else(home: FakeOpenAI, alice: User, bob: User) -> None:
    openai = cloud_provider("openai", "openai")
    failing = AIModel.objects.create(provider=openai, model_id="gpt-4o-mini")
    apikey_create(user=bob, provider="openai", key=KEY)
    suggestion = model_suggest_alternative(model=failing, user=bob)
    assert suggestion is None or suggestion.model.model_id != PRIVATE_MODEL
    mine = model_suggest_alternative(model=failing, user=alice)
    assert mine is not None and mine.model.model_id == PRIVATE_MODEL


def test_the_models_page_shows_own_servers_under_their_own_heading(
    home: FakeOpenAI, alice_web: Client, bob_web: Client
) -> None:
    mine = alice_web.get("/models/").content.decode()
    assert "Your own servers and models" in mine and PRIVATE_MODEL in mine
    assert mine.index("Your own servers and models") < mine.index(PRIVATE_MODEL)
    theirs = bob_web.get("/models/").content.decode()
    assert PRIVATE_MODEL not in theirs and "Your own servers" not in theirs


def test_the_chat_picker_shows_own_servers_under_their_own_heading(
    home: FakeOpenAI, alice_web: Client, bob_web: Client
) -> None:
    mine = alice_web.get(reverse("chat-models")).content.decode()
    assert '<optgroup label="Your own servers">' in mine
    assert mine.index('<optgroup label="Your own servers">') < mine.index(PRIVATE_MODEL)
    assert PRIVATE_MODEL not in bob_web.get(reverse("chat-models")).content.decode()


def test_a_users_key_test_lists_models_for_that_user_only(alice: User, bob: User, charlie: User) -> None:
    with FakeOpenAI(keys={KEY}, models=["gpt-4o-mini", "gpt-4o"]) as fake:
        cloud_provider("openai", "openai", base_url=f"{fake.url}/v1")
        key = apikey_create(user=charlie, provider="openai", key=KEY)
        assert apikey_test(user=charlie, key_id=key.pk).ok
        assert set(AIModel.objects.filter(owner=charlie).values_list("model_id", flat=True)) == {
            "gpt-4o-mini",
            "gpt-4o",
        }
        assert not AIModel.objects.filter(owner__isnull=True).exists()  # nothing instance-wide from charlie
        assert model_get(ref="openai/gpt-4o", user=charlie).owner == charlie
        with pytest.raises(ModelNotFound):
            model_get(ref="openai/gpt-4o", user=alice)
        # Staff testing a shared key fill the instance-wide list, which everyone sees.
        shared = apikey_create(user=bob, provider="openai", key=KEY, shared=True)
        assert apikey_test(user=bob, key_id=shared.pk).ok
        assert set(AIModel.objects.filter(owner__isnull=True).values_list("model_id", flat=True)) == {
            "gpt-4o-mini",
            "gpt-4o",
        }
        assert model_get(ref="openai/gpt-4o", user=alice).owner is None
        assert model_get(ref="openai/gpt-4o", user=charlie).owner is None  # the shared entry first


def test_a_provider_keeps_at_most_the_configured_number_of_models(alice: User, settings) -> None:  # noqa: ANN001
    settings.MAX_MODELS_PER_PROVIDER = 5
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    listed = [f"model-{i:03d}" for i in range(40)]
    with FakeOpenAI(keys={KEY}, models=listed) as fake:
        key = apikey_create(user=alice, provider="openai_compatible", key=KEY, base_url=f"{fake.url}/v1", label="Big")
        result = apikey_test(user=alice, key_id=key.pk)
    assert result.ok and "40 models listed" in result.detail and "35 left out" in result.detail
    assert "MAX_MODELS_PER_PROVIDER" in result.detail
    assert AIModel.objects.filter(provider__name="big").count() == 5
