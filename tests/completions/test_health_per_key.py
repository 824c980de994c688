"""Health is attributed to what failed: a refused key marks that key, for its owner only; an outage cools the
model down for everyone; a bad request degrades nobody. Reasons are the provider's own words only for those
who may read them."""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apikeys.services import apikey_create
from models_mgmt.models import AIModel
from models_mgmt.services import Status, model_status
from providers.models import ApiKey
from tests.conftest import cloud_provider, token_client
from tests.fakes.cloud import Fault
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db
GOOD, BAD = "sk-good-key-1234", "sk-bad-key-56789"
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def openai(db: None, settings) -> Iterator[tuple[FakeOpenAI, AIModel]]:  # noqa: ANN001
    settings.COMPLETION_RETRIES = 0
    with FakeOpenAI(keys={GOOD}, models=["gpt-4o-mini"]) as fake:
        provider = cloud_provider("openai", "openai", base_url=f"{fake.url}/v1")
        yield fake, AIModel.objects.create(provider=provider, model_id="gpt-4o-mini")


def ask(api: Client, **extra: object) -> dict:
    payload = {"model": "openai/gpt-4o-mini", "messages": HELLO, "fallback": False, **extra}
    response = api.post("/api/completions", payload, content_type="application/json")
    return {"status": response.status_code, **response.json()}


def test_a_bad_key_beside_a_good_one_degrades_only_its_owner(
    openai: tuple[FakeOpenAI, AIModel], alice: User, bob: User, charlie: User
) -> None:
    fake, model = openai
    apikey_create(user=charlie, provider="openai", key=BAD)
    apikey_create(user=alice, provider="openai", key=GOOD)
    for _ in range(5):  # far past MODEL_ALLOWED_FAILS: it must not matter
        refused = ask(token_client(charlie))
        assert refused["status"] in (502, 503) and refused["error"]["code"] in ("auth", "no_key")
    model.refresh_from_db()
    assert model.failure_count == 0 and model.cooldown_until is None
    assert ApiKey.objects.get(owner=charlie).failing_reason
    assert model_status(model=model, user=charlie).status == Status.NO_KEY
    assert model_status(model=model, user=alice).status == Status.AVAILABLE
    answered = ask(token_client(alice))
    assert answered["status"] == 200 and answered["text"]
    # Charlie's key was refused after its first call: later ones were not sent.
    assert fake.chat_count == 2


def test_an_outage_cools_the_model_down_for_everyone_with_generic_words(
    openai: tuple[FakeOpenAI, AIModel], alice: User, bob: User, charlie: User, settings
) -> None:  # noqa: ANN001
    settings.MODEL_ALLOWED_FAILS = 2
    fake, model = openai
    for user in (alice, charlie, bob):
        apikey_create(user=user, provider="openai", key=GOOD)
    fake.fail(Fault.SERVER_ERROR)
    for _ in range(2):
        assert ask(token_client(alice))["status"] == 502
    fake.clear_faults()
    model.refresh_from_db()
    for user in (alice, charlie):
        status = model_status(model=model, user=user)
        assert status.status == Status.FAILED
        assert "HTTP 500" in status.reason and "the provider failed" in status.reason
        assert fake.url not in status.reason and "Sorry" not in status.reason  # none of the upstream's words
    staff = model_status(model=model, user=bob)
    assert staff.status == Status.FAILED and staff.reason == model.last_error and "Sorry" in staff.reason
    assert ask(token_client(charlie))["status"] == 503  # cooling down: not even asked
    assert fake.chat_count == 2


def test_a_bad_request_degrades_nobody(openai: tuple[FakeOpenAI, AIModel], alice: User, settings) -> None:  # noqa: ANN001
    settings.MODEL_ALLOWED_FAILS = 1
    fake, model = openai
    apikey_create(user=alice, provider="openai", key=GOOD)
    fake.fail(Fault.CONTEXT, times=3)
    for _ in range(3):
        assert ask(token_client(alice))["error"]["code"] == "context_length"
    model.refresh_from_db()
    assert model.failure_count == 0 and model.cooldown_until is None


def test_reset_failures_clears_the_callers_own_refused_key(
    openai: tuple[FakeOpenAI, AIModel], alice: User, charlie: User
) -> None:
    apikey_create(user=charlie, provider="openai", key=BAD)
    ask(token_client(charlie))
    assert ApiKey.objects.get(owner=charlie).failing_reason
    assert token_client(alice).post("/api/models/failures/reset").status_code == 200
    assert ApiKey.objects.get(owner=charlie).failing_reason  # alice cannot touch charlie's key
    assert token_client(charlie).post("/api/models/failures/reset").status_code == 200
    assert not ApiKey.objects.get(owner=charlie).failing_reason
