"""GET /api/models writes its rows itself (bench/RESULTS.md, "Status listing (issue 11)"): the body is the one
ninja's schema path gave, entry for entry, for every status and owner; the documented schema is unchanged;
the number of queries does not grow with the number of models."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder
from pydantic import TypeAdapter

from apikeys.services import apikey_create
from models_mgmt import listing
from models_mgmt.models import AIModel
from models_mgmt.schemas import ModelOut
from models_mgmt.services import ModelStatus, Status, model_list_with_status
from providers.models import Provider
from providers.services import apikey_mark_failing
from tests.conftest import cloud_provider, token_client
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db
LLAMA = "meta-llama-3.1-8b-instruct"


def schema_body(statuses: list[ModelStatus]) -> list[dict]:
    """The body as ninja wrote it before: each entry validated as ModelOut, then json.dumps with ninja's
    encoder. The fields are read through the model's own properties (ref, name, is_local)."""
    entries = [
        {
            "id": s.model.pk,
            "ref": s.model.ref,
            "provider": s.model.provider.name,
            "provider_kind": s.model.provider.kind,
            "model_id": s.model.model_id,
            "display_name": s.model.name,
            "model_type": s.model.model_type,
            "context_length": s.model.context_length,
            "size_bytes": s.model.size_bytes,
            "is_local": s.model.is_local,
            "active": s.model.active,
            "priority": s.model.priority,
            "source": s.model.source,
            "status": s.status,
            "icon": s.icon,
            "reason": s.reason,
            "failure_count": s.model.failure_count,
            "cooldown_until": s.model.cooldown_until,
        }
        for s in statuses
    ]
    validated = TypeAdapter(list[ModelOut]).validate_python(entries)
    return json.loads(json.dumps([e.model_dump() for e in validated], cls=NinjaJSONEncoder))


@pytest.fixture
def mixed(discovered: dict[str, AIModel], alice: User, bob: User, lmstudio: FakeLMStudio) -> dict[str, AIModel]:
    """Every kind of entry: loaded and not loaded local models, a switched-off one, cloud models with a
    working key, a refused key and none, one cooling down (to the microsecond), alice's and bob's own."""
    openai = cloud_provider("openai")
    mistral = cloud_provider("mistral")
    anthropic = cloud_provider("anthropic")
    apikey_create(user=alice, provider="openai", key="sk-alice-key-1234")
    apikey_mark_failing(key_id=apikey_create(user=alice, provider="mistral", key="mistral-key-9876").pk, reason="401")
    AIModel.objects.filter(model_id=LLAMA).update(active=False)
    cooling = AIModel.objects.create(
        provider=openai,
        model_id="gpt-4o",
        display_name="GPT-4o",
        priority=5,
        failure_count=3,
        cooldown_until=timezone.now().replace(microsecond=123456) + timedelta(minutes=5),
        last_error="upstream said: overloaded (request id r-1)",
        last_error_public="The provider is overloaded",
    )
    return {
        "cooling": cooling,
        "mini": AIModel.objects.create(provider=openai, model_id="gpt-4o-mini", context_length=128000),
        "mistral": AIModel.objects.create(provider=mistral, model_id="mistral-large"),
        "claude": AIModel.objects.create(provider=anthropic, model_id="claude-x"),
        "alices": AIModel.objects.create(provider=openai, model_id="ft:alice-tuned", owner=alice),
        "bobs": AIModel.objects.create(provider=openai, model_id="ft:bob-tuned", owner=bob),
    }


def test_the_body_is_the_schema_body_for_every_status(mixed: dict[str, AIModel], alice: User) -> None:
    response = token_client(alice).get("/api/models")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body == schema_body(model_list_with_status(user=alice))
    by_id = {m["model_id"]: m for m in body}
    assert {m["status"] for m in body} >= {
        Status.LOADED,
        Status.NOT_LOADED,
        Status.INACTIVE,
        Status.AVAILABLE,
        Status.FAILED,
        Status.NO_KEY,
    }
    cooling = by_id["gpt-4o"]
    # Django's encoder: milliseconds and "Z", as ninja wrote it
    assert cooling["cooldown_until"] == mixed["cooling"].cooldown_until.isoformat()[:23] + "Z"
    assert cooling["reason"] == "The provider is overloaded"  # a user is not shown the upstream's words
    assert by_id["gpt-4o-mini"]["display_name"] == "gpt-4o-mini" and by_id["gpt-4o-mini"]["cooldown_until"] is None
    assert by_id["mistral-large"]["status"] == Status.NO_KEY and "refused" in by_id["mistral-large"]["reason"]
    assert by_id["claude-x"]["reason"].startswith("No API key")


def test_each_user_sees_their_own_entries_and_the_instance_wide_ones(
    mixed: dict[str, AIModel], alice: User, bob: User, charlie: User
) -> None:
    shared = {m.model_id for m in AIModel.objects.filter(owner__isnull=True)}
    for user, own in ((alice, {"ft:alice-tuned"}), (bob, {"ft:bob-tuned"}), (charlie, set())):
        body = token_client(user).get("/api/models").json()
        assert {m["model_id"] for m in body} == shared | own
        assert body == schema_body(model_list_with_status(user=user))
    assert Client().get("/api/models").status_code == 401


def test_staff_read_the_upstreams_words(mixed: dict[str, AIModel], bob: User) -> None:
    bob.is_staff = True
    bob.save()
    body = {m["model_id"]: m for m in token_client(bob).get("/api/models").json()}
    assert body["gpt-4o"]["reason"] == "upstream said: overloaded (request id r-1)"


def test_refresh_and_a_disabled_provider_read_the_same_way(
    mixed: dict[str, AIModel], alice: User, provider: Provider, lmstudio: FakeLMStudio
) -> None:
    client = token_client(alice)
    lmstudio.reset_log()
    assert client.get("/api/models?refresh=1").json() == schema_body(model_list_with_status(user=alice))
    assert lmstudio.count() == 1
    Provider.objects.filter(pk=provider.pk).update(enabled=False)
    body = client.get("/api/models").json()
    local = [m for m in body if m["provider"] == provider.name]
    assert local and all(m["status"] == Status.INACTIVE for m in local)
    assert body == schema_body(model_list_with_status(user=alice))
    assert client.get("/api/models?refresh=maybe").status_code == 422


def test_the_documented_response_is_still_the_list_of_model_out(client: Client) -> None:
    schema = client.get("/api/openapi.json").json()
    ok = schema["paths"]["/api/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"items": {"$ref": "#/components/schemas/ModelOut"}, "title": "Response", "type": "array"}
    assert set(schema["components"]["schemas"]["ModelOut"]["properties"]) == set(ModelOut.model_fields)


def test_every_row_has_exactly_the_schemas_fields(mixed: dict[str, AIModel], alice: User) -> None:
    for status in model_list_with_status(user=alice):
        row = ModelOut.row(status)
        assert list(row) == list(ModelOut.model_fields)
        assert ModelOut.model_validate(row).model_dump() == row


def test_queries_do_not_grow_with_the_number_of_models(
    mixed: dict[str, AIModel], alice: User, lmstudio: FakeLMStudio, django_assert_num_queries
) -> None:  # noqa: ANN001
    client = token_client(alice)
    client.get("/api/models")  # the first listing stores what the server lists
    client.get("/api/models")  # and its writes (discovery, a refused key) emptied the in-process caches
    # Made afresh (the kept body forgotten): the visible providers; the visible models; the keys alice's
    # calls would use. The token is served from the in-process cache the first listing filled
    # (orchestrator/hotcache.py).
    listing.forget_for_tests()
    with django_assert_num_queries(3):
        first = client.get("/api/models").json()
    # Then the body kept for alice answers, with no query at all (models_mgmt/listing.py).
    with django_assert_num_queries(0):
        assert client.get("/api/models").json() == first
    lmstudio.make_models(60)
    openai = cloud_provider("openai")
    AIModel.objects.bulk_create([AIModel(provider=openai, model_id=f"gpt-extra-{i}") for i in range(40)])
    client.get("/api/models?refresh=1")  # stores the 60 new local models
    client.get("/api/models")
    listing.forget_for_tests()
    with django_assert_num_queries(3):
        second = client.get("/api/models").json()
    assert len(second) == len(first) + 100
    with django_assert_num_queries(0):
        assert client.get("/api/models").json() == second
