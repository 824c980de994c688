"""A real llama.cpp llama-server in router mode (built from source by scripts/build-llama-server.sh, cached
outside the repository) with two tiny models in its models dir, driven through the app as the instance-wide
`llamacpp` provider: discover → load (llama-server answers at once; the task polls until loaded) → chat →
unload → unloaded. The models write gibberish, so the chat checks shapes and counts, never words."""

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client

from models_mgmt.models import AIModel, LoadState
from providers.kinds import ProviderKind
from providers.models import Provider
from tests.engine.conftest import Router

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


@pytest.fixture
def router_provider(llama_router: Router, settings) -> Provider:  # noqa: ANN001
    settings.LLAMACPP_BASE_URL = llama_router.url  # the instance-wide provider follows its setting
    settings.MODEL_LOAD_TIMEOUT = 60.0
    provider = Provider.objects.get(kind=ProviderKind.LLAMACPP, owner__isnull=True)
    assert provider.name == "llamacpp" and provider.base_url == ""
    return provider


def server_states(router: Router) -> dict[str, str]:
    listed = httpx.get(f"{router.url}/models", timeout=10).json()["data"]
    return {m["id"]: m["status"]["value"] for m in listed}


def statuses(client: Client) -> dict[str, str]:
    response = client.get("/api/models?refresh=1")
    assert response.status_code == 200
    return {m["model_id"]: m["status"] for m in response.json() if m["provider"] == "llamacpp"}


def test_discover_load_chat_unload_against_a_real_router(
    alice_api: Client, bob_api: Client, router_provider: Provider, llama_router: Router
) -> None:
    assert statuses(alice_api) == {"tiny-alpha": "not_loaded", "tiny-beta": "not_loaded"}

    response = alice_api.post("/api/models/llamacpp/tiny-alpha/load")
    assert response.status_code == 202, response.content
    waited = alice_api.post("/api/models/llamacpp/tiny-alpha/wait?timeout=60").json()
    assert waited["status"] == "loaded", waited
    assert server_states(llama_router)["tiny-alpha"] == "loaded"
    assert statuses(alice_api) == {"tiny-alpha": "loaded", "tiny-beta": "not_loaded"}

    body = {
        "model": "llamacpp/tiny-alpha",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 8,
        "temperature": 0,
        "fallback": False,
    }
    answer = alice_api.post("/api/completions", body, content_type="application/json")
    assert answer.status_code == 200, answer.content
    result = answer.json()
    assert result["model"] == "llamacpp/tiny-alpha" and result["error"] is None
    assert result["text"] and result["finish_reason"] == "length"

    assert alice_api.post("/api/models/llamacpp/tiny-alpha/unload").status_code == 403  # instance-wide
    unloaded = bob_api.post("/api/models/llamacpp/tiny-alpha/unload")
    assert unloaded.status_code == 200 and unloaded.json()["status"] == "not_loaded"
    assert server_states(llama_router)["tiny-alpha"] == "unloaded"


def test_a_chat_with_an_unloaded_model_loads_it_first(
    alice: User, alice_api: Client, bob_api: Client, router_provider: Provider, llama_router: Router
) -> None:
    statuses(alice_api)
    body = {"model": "llamacpp/tiny-beta", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    answer = alice_api.post("/api/completions", {**body, "fallback": False}, content_type="application/json")
    # Random weights may spend their few tokens on pieces that decode to nothing: the answer is judged by
    # its usage and clean end, not by its text.
    result = answer.json()
    assert answer.status_code == 200 and result["error"] is None, answer.content
    assert result["model"] == "llamacpp/tiny-beta" and result["usage"]["completion_tokens"] > 0
    assert server_states(llama_router)["tiny-beta"] == "loaded"
    assert AIModel.objects.get(provider=router_provider, model_id="tiny-beta").load_state == LoadState.IDLE
    assert bob_api.post("/api/models/llamacpp/tiny-beta/unload").status_code == 200
    assert server_states(llama_router)["tiny-beta"] == "unloaded"
