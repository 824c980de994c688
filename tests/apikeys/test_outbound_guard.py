"""A user's own server goes through the outbound guard: URLs that reach the instance's network are refused
when the key is stored, and again at every connection (so a name that later resolves inward gets nothing),
and nothing of a refused host ever comes back. Staff and the settings may point anywhere."""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apikeys.services import apikey_create, apikey_test
from models_mgmt.models import AIModel
from providers.models import Provider
from tests.conftest import token_client
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db
KEY = "sk-test-key-1234"


@pytest.fixture
def internal(db: None) -> Iterator[FakeOpenAI]:
    """An internal service on this machine's loopback, with a model list and an error body worth stealing."""
    with FakeOpenAI(keys={KEY}, models=["internal-secret-model"]) as fake:
        yield fake


def add(api: Client, base_url: str) -> object:
    payload = {"provider": "openai_compatible", "key": KEY, "base_url": base_url, "label": "mine"}
    return api.post("/api/keys", payload, content_type="application/json")


@pytest.mark.parametrize(
    "template",
    [
        "{url}/v1",
        "http://localhost:{port}/v1",
        "http://[::1]:{port}/v1",
        "http://169.254.169.254/latest/meta-data",
        "http://2130706433:{port}/v1",
        "http://10.0.0.7/v1",
        "http://192.168.1.20:11434/v1",
        "http://[::ffff:127.0.0.1]:{port}/v1",
        "{url}/v1?",
        "{url}/v1?x=",
        "{url}/v1#frag",
        "http://user:s3cr3tpw@example.com/v1",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
    ],
)
def test_internal_or_odd_urls_are_refused_when_stored(internal: FakeOpenAI, alice: User, template: str) -> None:
    response = add(token_client(alice), template.format(url=internal.url, port=internal.port))
    assert response.status_code == 400 and "base URL is refused" in response.json()["detail"]
    assert "s3cr3tpw" not in response.json()["detail"]
    assert not Provider.objects.filter(owner=alice).exists() and internal.requests == []


def test_the_guard_holds_at_connection_time(internal: FakeOpenAI, alice: User, settings) -> None:  # noqa: ANN001
    # Stored while an admin allowed the address; then the allowance goes (as a DNS answer could change).
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    key = apikey_create(user=alice, provider="openai_compatible", key=KEY, base_url=f"{internal.url}/v1", label="box")
    settings.PRIVATE_UPSTREAM_ALLOWLIST = []
    result = apikey_test(user=alice, key_id=key.pk)
    assert not result.ok and "loopback" in result.detail
    assert "internal-secret-model" not in result.detail and internal.requests == []
    assert not AIModel.objects.exists()
    completion = token_client(alice).post(
        "/api/completions",
        {"model": "box/anything", "messages": [{"role": "user", "content": "hi"}]},
        content_type="application/json",
    )
    assert completion.status_code == 503 and completion.json()["error"]["code"] == "blocked"
    assert internal.requests == []


def test_staff_may_point_their_own_server_anywhere(internal: FakeOpenAI, bob: User) -> None:
    created = add(token_client(bob), f"{internal.url}/v1")
    assert created.status_code == 201
    result = apikey_test(user=bob, key_id=created.json()["id"])
    assert result.ok and AIModel.objects.filter(model_id="internal-secret-model", owner=bob).exists()


def test_an_allowlisted_home_server_works(internal: FakeOpenAI, alice: User, settings) -> None:  # noqa: ANN001
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.0/8"]
    created = add(token_client(alice), f"{internal.url}/v1")
    assert created.status_code == 201 and created.json()["provider_private"]
    assert apikey_test(user=alice, key_id=created.json()["id"]).ok


def test_a_name_that_does_not_resolve_yet_is_stored_and_checked_at_connection(alice: User) -> None:
    created = add(token_client(alice), "http://no-such-host.invalid/v1")
    assert created.status_code == 201
    result = apikey_test(user=alice, key_id=created.json()["id"])
    assert not result.ok and "cannot connect to http://no-such-host.invalid/v1" in result.detail
