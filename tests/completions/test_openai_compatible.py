"""Genspark and a user's own OpenAI-compatible server speak OpenAI's wire format: both work end to end."""

import pytest
from django.test import Client

from apikeys.services import apikey_create
from tests.conftest import cloud_provider
from tests.fakes.base import FakeRequest, FakeResponse, json_response
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db
KEY = "gsk-test-0000000000"


class GensparkLike(FakeOpenAI):
    """An OpenAI-compatible proxy that, like Genspark's, may not list its models."""

    def handle(self, req: FakeRequest) -> FakeResponse | None:
        if req.path.endswith("/models"):
            return json_response({"error": {"message": "Not found", "code": "not_found"}}, 404)
        return super().handle(req)


def test_genspark_key_test_falls_back_to_a_one_token_call(alice: object, alice_api: Client) -> None:
    with GensparkLike(keys={KEY}, models=["gpt-4o-mini"]) as fake:
        cloud_provider("genspark", "genspark", base_url=f"{fake.url}/v1")
        key = apikey_create(user=alice, provider="genspark", key=KEY)
        result = alice_api.post(f"/api/keys/{key.pk}/test").json()
        assert result["ok"] is True and fake.chat_count == 1
        assert fake.last_chat_body()["max_tokens"] == 1


def test_own_openai_compatible_server_lists_and_answers(alice: object, alice_api: Client, settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]  # the emulator is on loopback, which the guard refuses
    with FakeOpenAI(keys={KEY}, models=["llama3.2:3b"]) as fake:
        created = alice_api.post(
            "/api/keys",
            {"provider": "openai_compatible", "key": KEY, "base_url": f"{fake.url}/v1", "label": "Home server"},
            content_type="application/json",
        ).json()
        assert alice_api.post(f"/api/keys/{created['id']}/test").json()["ok"] is True
        payload = {"model": "home-server/llama3.2:3b", "messages": [{"role": "user", "content": "hi"}]}
        result = alice_api.post("/api/completions", payload, content_type="application/json").json()
        assert result["text"] == "Echo from llama3.2:3b: hi" and result["model"] == "home-server/llama3.2:3b"
