"""The chat endpoint checks the token, the body and the model in one trip to the database thread
(bench/RESULTS.md); its errors keep their order: a bad token is a 401 whatever the body."""

import json

import pytest
from django.test import Client

from accounts.services import api_token_create
from tests.conftest import cloud_provider

pytestmark = pytest.mark.django_db
URL = "/v1/chat/completions"
GOOD = json.dumps({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


def post(body: str, token: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = Client(headers=headers).post(URL, data=body, content_type="application/json")
    return response.status_code, response.json()["error"]


@pytest.fixture
def token(alice: object) -> str:
    cloud_provider("openai")
    return api_token_create(user=alice, name="hot path")[1]


def test_a_bad_token_is_401_even_with_a_bad_body(token: str) -> None:
    for body in ("{not json", GOOD):
        status, error = post(body, "orch_not-a-real-token")
        assert status == 401 and error["code"] == "invalid_api_key"
    assert post("{not json", None)[0] == 401


def test_then_the_body_then_the_model(token: str) -> None:
    status, error = post("{not json", token)
    assert status == 400 and "not valid JSON" in error["message"]
    status, error = post(GOOD.replace("gpt-4o-mini", "no-such-model"), token)
    assert status == 404 and error["code"] == "model_not_found"


def test_a_body_too_large_is_413_after_the_token(token: str, settings) -> None:  # noqa: ANN001
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    big = json.dumps({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 500}]})
    assert post(big, "orch_not-a-real-token")[0] == 401
    assert post(big, token)[0] == 413
