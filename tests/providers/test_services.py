"""Which provider and key a user may see and use: visibility, the key a call uses, key refusals."""

import pytest
from django.contrib.auth.models import User

from apikeys.services import apikey_create
from providers.models import ApiKey, Provider
from providers.services import (
    KeyNotUsable,
    apikey_failure_for,
    apikey_for_call,
    apikey_mark_failing,
    provider_details_visible,
    providers_visible,
    usable_keys_by_provider,
)
from tests.conftest import cloud_provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def openai(db: None) -> Provider:
    return cloud_provider("openai", "openai")


def private_server(owner: User, name: str = "alice-box") -> Provider:
    return Provider.objects.create(kind="openai_compatible", name=name, base_url="https://box.example/v1", owner=owner)


def test_a_private_provider_is_its_owners_alone(openai: Provider, alice: User, bob: User, charlie: User) -> None:
    box = private_server(alice)
    assert box in providers_visible(user=alice)
    for other in (bob, charlie, None):  # staff included: private means private
        assert box not in providers_visible(user=other) and openai in providers_visible(user=other)


def test_who_reads_a_providers_own_words(openai: Provider, alice: User, bob: User, charlie: User) -> None:
    box = private_server(alice)
    assert provider_details_visible(user=alice, provider=box)
    assert not provider_details_visible(user=bob, provider=box)
    assert provider_details_visible(user=bob, provider=openai)  # staff, instance-wide
    assert not provider_details_visible(user=charlie, provider=openai)
    assert not provider_details_visible(user=None, provider=openai)


def test_own_default_key_beats_other_own_keys_and_shared_ones(openai: Provider, alice: User, bob: User) -> None:
    shared = apikey_create(user=bob, provider="openai", key="sk-shared-000000", shared=True)
    assert apikey_for_call(user=alice, provider=openai) == shared  # no key of her own yet
    first = apikey_create(user=alice, provider="openai", key="sk-alice-first-1", label="work")
    second = apikey_create(user=alice, provider="openai", key="sk-alice-second2", label="home")
    assert first.is_default and not second.is_default
    assert apikey_for_call(user=alice, provider=openai) == first
    assert usable_keys_by_provider(user=alice)[openai.pk] == first
    assert apikey_for_call(user=alice, provider=openai, key_id=second.pk) == second
    assert apikey_for_call(user=alice, provider=openai, key_id=shared.pk) == shared


def test_a_key_of_someone_else_cannot_be_named(openai: Provider, alice: User, charlie: User) -> None:
    key = apikey_create(user=alice, provider="openai", key="sk-alice-first-1")
    with pytest.raises(KeyNotUsable):
        apikey_for_call(user=charlie, provider=openai, key_id=key.pk)
    anthropic = cloud_provider("anthropic", "anthropic")
    with pytest.raises(KeyNotUsable):  # hers, but for another provider
        apikey_for_call(user=alice, provider=anthropic, key_id=key.pk)


def test_a_refused_key_is_told_in_full_only_to_whom_it_concerns(openai: Provider, alice: User, bob: User) -> None:
    own = apikey_create(user=alice, provider="openai", key="sk-alice-first-1")
    apikey_mark_failing(key_id=own.pk, reason="HTTP 401: Incorrect API key provided: sk-al***")
    own.refresh_from_db()
    assert "Incorrect API key" in apikey_failure_for(user=alice, key=own)
    shared = apikey_create(user=bob, provider="openai", key="sk-shared-000000", shared=True)
    apikey_mark_failing(key_id=shared.pk, reason="HTTP 401: Incorrect API key provided: sk-sh***")
    shared.refresh_from_db()
    assert "Incorrect API key" in apikey_failure_for(user=bob, key=shared)
    told = apikey_failure_for(user=alice, key=shared)
    assert "shared" in told and "Incorrect" not in told and "sk-" not in told
    assert ApiKey.objects.filter(failing_reason__contains="Incorrect").count() == 2
