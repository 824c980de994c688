"""Text no database of ours can store or look up (a NUL, a lone surrogate) is refused with a clear 400 before
any query is built from it: on PostgreSQL a NUL in any string parameter was a 500 (schemathesis found one)."""

import pytest
from django.test import Client

from models_mgmt.services import ModelNotFound, model_get, model_resolve
from providers.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "body",
    [
        '{"provider": "openai\\u0000", "key": "sk-test-0123456789"}',
        '{"provider": "openai", "key": "sk-test-0123456789", "label": "a\\ud800b"}',
        '{"provider": ["x", {"nested\\u0000": 1}], "key": "sk-test-0123456789"}',
    ],
)
def test_a_json_body_with_unstorable_text_is_400(alice_api: Client, body: str) -> None:
    response = alice_api.post("/api/keys", body, content_type="application/json")
    assert response.status_code == 400 and "remove it" in response.json()["detail"]
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    "path", ["/api/models/a%00b/status", "/api/usage?user=%00", "/api/budgets/x%00", "/api/models?refresh=%00"]
)
def test_a_path_or_query_with_a_nul_is_400(alice_api: Client, path: str) -> None:
    response = alice_api.get(path)
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


def test_ordinary_text_and_an_escaped_backslash_pass(alice_api: Client) -> None:
    body = '{"provider": "nope", "key": "sk-test-0123456789", "label": "literally \\\\u0000"}'
    response = alice_api.post("/api/keys", body, content_type="application/json")
    assert response.status_code == 400 and "Unknown provider" in response.json()["detail"]


def test_lookups_outside_the_api_refuse_it_too(alice: object) -> None:
    for ref in ("openai/\x00", "\ud800/x"):
        with pytest.raises(ModelNotFound):
            model_get(ref=ref, user=alice)
        with pytest.raises(ModelNotFound):
            model_resolve(ref=ref, user=alice)
