"""Ollama and llama.cpp's router end to end, each against its loopback emulator: listing, status, load
(slow, failing), chat, unload, and what one refresh costs (Ollama 2 requests, llama.cpp 1)."""

import threading
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from models_mgmt.models import AIModel, LoadState
from models_mgmt.services import Status, model_list_with_status, model_load_start, model_status
from providers.http import close_upstream_clients
from providers.kinds import ProviderKind
from providers.models import Provider
from tests.conftest import point_provider_at, token_client
from tests.fakes.llamacpp import FakeLlamaCpp
from tests.fakes.lmstudio import FakeLMStudio
from tests.fakes.ollama import FakeOllama

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts")]

LLAMA, QWEN, EMBED = "llama3.2:3b", "qwen2.5:7b", "nomic-embed-text:latest"


def instance_server(name: str, kind: str, url: str) -> Provider:
    provider, _ = Provider.objects.update_or_create(
        name=name, defaults={"kind": kind, "base_url": url, "enabled": True, "owner": None}
    )
    return provider


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


@pytest.fixture
def ollama_provider(db: None, ollama: FakeOllama) -> Provider:
    return instance_server("ollama", ProviderKind.OLLAMA, ollama.url)


@pytest.fixture
def llamacpp() -> Iterator[FakeLlamaCpp]:
    with FakeLlamaCpp() as fake:
        yield fake


@pytest.fixture
def llamacpp_provider(db: None, llamacpp: FakeLlamaCpp) -> Provider:
    return instance_server("llamacpp", ProviderKind.LLAMACPP, llamacpp.url)


def listed(client: Client, kind: str) -> dict[str, dict]:
    response = client.get("/api/models?refresh=1")
    assert response.status_code == 200
    return {m["model_id"]: m for m in response.json() if m["provider_kind"] == kind}


def chat(client: Client, ref: str) -> dict:
    body = {"model": ref, "messages": [{"role": "user", "content": "hello there"}], "fallback": False}
    response = client.post("/api/completions", body, content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


# --- the instance-wide providers ----------------------------------------------------------------------


def test_migrations_create_the_instance_wide_local_servers(db: None, settings) -> None:  # noqa: ANN001
    ollama = Provider.objects.get(kind=ProviderKind.OLLAMA, owner__isnull=True)
    llamacpp = Provider.objects.get(kind=ProviderKind.LLAMACPP, owner__isnull=True)
    assert (ollama.name, ollama.base_url, llamacpp.name, llamacpp.base_url) == ("ollama", "", "llamacpp", "")
    settings.OLLAMA_BASE_URL, settings.LLAMACPP_BASE_URL = "http://gpu.lan:11434/", "http://gpu.lan:8080"
    assert (ollama.effective_base_url, llamacpp.effective_base_url) == ("http://gpu.lan:11434", "http://gpu.lan:8080")


def test_the_providers_follow_their_base_url_settings(
    db: None,
    settings,
    ollama: FakeOllama,
    llamacpp: FakeLlamaCpp,  # noqa: ANN001
) -> None:
    settings.OLLAMA_BASE_URL, settings.LLAMACPP_BASE_URL = ollama.url, llamacpp.url
    refs = {s.model.ref for s in model_list_with_status(refresh=True)}
    assert {f"ollama/{LLAMA}", f"ollama/{QWEN}", "llamacpp/tiny-alpha", "llamacpp/tiny-beta"} <= refs


# --- Ollama -------------------------------------------------------------------------------------------


def test_ollama_models_are_listed_with_their_state(alice_api: Client, ollama_provider: Provider) -> None:
    models = listed(alice_api, "ollama")
    assert set(models) == {LLAMA, QWEN, EMBED}
    assert models[LLAMA]["status"] == "loaded" and models[LLAMA]["icon"] == "✓"
    assert models[LLAMA]["ref"] == f"ollama/{LLAMA}" and models[LLAMA]["context_length"] == 4096
    assert models[QWEN]["status"] == "not_loaded" and models[QWEN]["size_bytes"] == 4_683_087_332
    assert models[EMBED]["model_type"] == "embedding"


def test_one_ollama_refresh_is_two_requests(ollama_provider: Provider, ollama: FakeOllama) -> None:
    ollama.add_model("extra:1b")
    model_list_with_status(refresh=True)
    ollama.reset_log()
    model_list_with_status(refresh=True)
    assert [(r.method, r.path) for r in ollama.requests] == [("GET", "/api/tags"), ("GET", "/api/ps")]
    model_list_with_status()  # cached: no question at all
    assert ollama.count() == 2


def test_ollama_status_of_one_model(alice_api: Client, ollama_provider: Provider) -> None:
    listed(alice_api, "ollama")
    response = alice_api.get(f"/api/models/ollama/{QWEN}/status")
    assert response.status_code == 200 and response.json()["status"] == "not_loaded"


def test_ollama_load_chat_and_unload(
    alice_api: Client, bob_api: Client, ollama_provider: Provider, ollama: FakeOllama
) -> None:
    listed(alice_api, "ollama")
    response = alice_api.post(f"/api/models/ollama/{QWEN}/load")
    assert response.status_code == 202 and response.json() == {"status": "loading", "model": f"ollama/{QWEN}"}
    load = next(r for r in ollama.requests if r.path == "/api/generate")
    assert load.json() == {"model": QWEN, "keep_alive": "30m", "stream": False}  # OLLAMA_KEEP_ALIVE
    assert alice_api.post(f"/api/models/ollama/{QWEN}/wait?timeout=5").json()["status"] == "loaded"
    assert QWEN in ollama.loaded()

    result = chat(alice_api, f"ollama/{QWEN}")
    assert result["text"] == "Echo: hello there" and result["model"] == f"ollama/{QWEN}"
    assert ollama.count("POST", "/v1/chat/completions") == 1

    assert alice_api.post(f"/api/models/ollama/{QWEN}/unload").status_code == 403  # instance-wide: staff only
    assert QWEN in ollama.loaded()
    response = bob_api.post(f"/api/models/ollama/{QWEN}/unload")
    assert response.status_code == 200 and response.json()["status"] == "not_loaded"
    unload = [r.json() for r in ollama.requests if r.path == "/api/generate"][-1]
    assert unload == {"model": QWEN, "keep_alive": 0, "stream": False}
    assert QWEN not in ollama.loaded()


def test_a_chat_with_an_idle_ollama_model_loads_it_first(
    alice_api: Client, ollama_provider: Provider, ollama: FakeOllama
) -> None:
    listed(alice_api, "ollama")
    assert chat(alice_api, f"ollama/{QWEN}")["text"] == "Echo: hello there"
    assert ollama.count("POST", "/api/generate") == 1 and QWEN in ollama.loaded()


def test_a_failed_ollama_load_shows_ollamas_own_reason(
    alice_api: Client, charlie: User, ollama_provider: Provider, ollama: FakeOllama
) -> None:
    reason = "model requires more system memory (9.4 GiB) than is available (3.1 GiB)"
    ollama.fail_load(QWEN, reason, status=500)
    listed(alice_api, "ollama")
    assert alice_api.post(f"/api/models/ollama/{QWEN}/load").status_code == 202
    response = alice_api.post(f"/api/models/ollama/{QWEN}/wait?timeout=5")
    assert response.status_code == 409
    assert response.json()["status"] == "failed" and reason in response.json()["reason"]
    model = AIModel.objects.get(provider=ollama_provider, model_id=QWEN)
    assert model.load_state == LoadState.FAILED and reason in model.load_error
    # The instance's own server: its words are everybody's to read (provider_details_visible).
    assert reason in model_status(model=model, user=charlie).reason


def test_an_unknown_model_is_ollamas_404(ollama_provider: Provider, ollama: FakeOllama) -> None:
    model_list_with_status(refresh=True)
    gone = AIModel.objects.get(provider=ollama_provider, model_id=QWEN)
    with ollama._cond:
        del ollama.models[QWEN]
    ollama.add_model(QWEN + "-renamed")
    model_load_start(model=gone)
    gone.refresh_from_db()
    assert gone.load_state == LoadState.FAILED and f"model '{QWEN}' not found" in gone.load_error


@pytest.mark.django_db(transaction=True)
def test_a_slow_ollama_load_shows_loading_until_it_ends(
    alice_api: Client, ollama_provider: Provider, ollama: FakeOllama
) -> None:
    listed(alice_api, "ollama")
    model = AIModel.objects.get(provider=ollama_provider, model_id=QWEN)
    ollama.hold_loads()

    def load() -> None:
        try:
            model_load_start(model=model)  # tasks run in-line: this thread is the worker, held by Ollama
        finally:
            connection.close()

    worker = threading.Thread(target=load)
    worker.start()
    try:
        assert ollama.wait_for_load_started()
        response = alice_api.get(f"/api/models/ollama/{QWEN}/status?refresh=1")
        assert (response.json()["status"], response.json()["icon"]) == ("loading", "🔄")
    finally:
        ollama.release_loads()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert alice_api.get(f"/api/models/ollama/{QWEN}/status?refresh=1").json()["status"] == "loaded"


def test_ollama_down_malformed_or_slow_is_unreachable_with_a_reason(
    ollama_provider: Provider,
    ollama: FakeOllama,
    settings,  # noqa: ANN001
) -> None:
    settings.UPSTREAM_READ_TIMEOUT = 0.5
    close_upstream_clients()  # clients are kept per base URL with the timeout they were made with
    model_list_with_status(refresh=True)
    ollama.malformed = True
    status = next(s for s in model_list_with_status(refresh=True) if s.model.model_id == LLAMA)
    assert status.status == Status.UNREACHABLE and "not JSON" in status.reason
    ollama.malformed = False
    ollama.response_delay = 1.0
    status = next(s for s in model_list_with_status(refresh=True) if s.model.model_id == LLAMA)
    assert status.status == Status.UNREACHABLE and "did not answer in time" in status.reason
    ollama.response_delay = 0.0
    ollama.set_down(True)
    status = next(s for s in model_list_with_status(refresh=True) if s.model.model_id == LLAMA)
    assert status.status == Status.UNREACHABLE and "Ollama unreachable" in status.reason
    ollama.set_down(False)
    assert next(s for s in model_list_with_status(refresh=True) if s.model.model_id == LLAMA).status == Status.LOADED


def test_a_users_own_ollama_goes_through_the_outbound_guard(
    alice: User,
    charlie: User,
    ollama: FakeOllama,
    settings,  # noqa: ANN001
) -> None:
    own = Provider.objects.create(name="alice-ollama", kind=ProviderKind.OLLAMA, base_url=ollama.url, owner=alice)
    assert own.guarded
    statuses = model_list_with_status(user=alice, refresh=True)
    assert not [s for s in statuses if s.model.provider_id == own.pk]  # nothing listed: the guard refused
    assert ollama.count() == 0
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    mine = {s.model.model_id for s in model_list_with_status(user=alice, refresh=True) if s.model.provider_id == own.pk}
    assert mine == {LLAMA, QWEN, EMBED}
    assert not [s for s in model_list_with_status(user=charlie, refresh=True) if s.model.provider_id == own.pk]


# --- llama.cpp router ---------------------------------------------------------------------------------


def test_llamacpp_models_are_listed_with_one_request(
    alice_api: Client, llamacpp_provider: Provider, llamacpp: FakeLlamaCpp
) -> None:
    models = listed(alice_api, "llamacpp")
    assert {k: v["status"] for k, v in models.items()} == {"tiny-alpha": "not_loaded", "tiny-beta": "not_loaded"}
    llamacpp.reset_log()
    model_list_with_status(refresh=True)
    assert [(r.method, r.path) for r in llamacpp.requests] == [("GET", "/models")]


def test_llamacpp_load_polls_until_loaded_then_chats_and_unloads(
    alice_api: Client, bob_api: Client, llamacpp_provider: Provider, llamacpp: FakeLlamaCpp
) -> None:
    listed(alice_api, "llamacpp")
    llamacpp.load_delay = 0.3  # answered at once, loaded later: the runtime polls GET /models
    assert alice_api.post("/api/models/llamacpp/tiny-alpha/load").status_code == 202
    assert alice_api.post("/api/models/llamacpp/tiny-alpha/wait?timeout=5").json()["status"] == "loaded"
    assert llamacpp.status_of("tiny-alpha") == "loaded" and llamacpp.count("GET", "/models") >= 2
    assert chat(alice_api, "llamacpp/tiny-alpha")["text"] == "Echo: hello there"
    assert alice_api.post("/api/models/llamacpp/tiny-alpha/unload").status_code == 403
    response = bob_api.post("/api/models/llamacpp/tiny-alpha/unload")
    assert response.status_code == 200 and response.json()["status"] == "not_loaded"
    assert llamacpp.status_of("tiny-alpha") == "unloaded"


def test_a_failed_llamacpp_load_says_how_the_model_process_ended(
    alice_api: Client, llamacpp_provider: Provider, llamacpp: FakeLlamaCpp
) -> None:
    llamacpp.fail_load("tiny-beta", exit_code=1)
    listed(alice_api, "llamacpp")
    alice_api.post("/api/models/llamacpp/tiny-beta/load")
    response = alice_api.post("/api/models/llamacpp/tiny-beta/wait?timeout=5")
    assert response.status_code == 409 and response.json()["status"] == "failed"
    assert "exited with code 1" in response.json()["reason"]


def test_a_model_evicted_by_models_max_shows_not_loaded(
    alice_api: Client,
    db: None,
    settings,  # noqa: ANN001
) -> None:
    with FakeLlamaCpp(models_max=1) as fake:
        instance_server("llamacpp", ProviderKind.LLAMACPP, fake.url)
        listed(alice_api, "llamacpp")
        for name in ("tiny-alpha", "tiny-beta"):
            alice_api.post(f"/api/models/llamacpp/{name}/load")
            assert alice_api.post(f"/api/models/llamacpp/{name}/wait?timeout=5").json()["status"] == "loaded"
        models = listed(alice_api, "llamacpp")
        assert (models["tiny-alpha"]["status"], models["tiny-beta"]["status"]) == ("not_loaded", "loaded")


def test_llamacpp_refuses_a_model_it_does_not_list(llamacpp_provider: Provider, llamacpp: FakeLlamaCpp) -> None:
    model_list_with_status(refresh=True)
    ghost = AIModel.objects.create(provider=llamacpp_provider, model_id="ghost")
    model_load_start(model=ghost)
    ghost.refresh_from_db()
    assert ghost.load_state == LoadState.FAILED and "model is not found" in ghost.load_error


def test_something_else_at_the_llamacpp_url_is_unreachable(llamacpp_provider: Provider, llamacpp: FakeLlamaCpp) -> None:
    model_list_with_status(refresh=True)
    llamacpp.malformed = True
    statuses = [s for s in model_list_with_status(refresh=True) if s.model.provider_id == llamacpp_provider.pk]
    assert statuses and all(s.status == Status.UNREACHABLE for s in statuses)


def test_a_single_model_llama_server_is_one_loaded_model_it_cannot_unload(
    alice_api: Client, bob_api: Client, db: None
) -> None:
    with FakeLlamaCpp(models=["model.gguf"], router=False) as fake:
        instance_server("llamacpp", ProviderKind.LLAMACPP, fake.url)
        assert {k: v["status"] for k, v in listed(alice_api, "llamacpp").items()} == {"model.gguf": "loaded"}
        assert chat(alice_api, "llamacpp/model.gguf")["text"] == "Echo: hello there"
        response = bob_api.post("/api/models/llamacpp/model.gguf/unload")
        assert response.status_code == 409 and "not in router mode" in response.json()["detail"]
        assert fake.count("POST", "/models/unload") == 0


def test_ollama_keep_alive_in_seconds_goes_as_a_number(
    ollama_provider: Provider,
    ollama: FakeOllama,
    settings,  # noqa: ANN001
) -> None:
    settings.OLLAMA_KEEP_ALIVE = "600"
    model_list_with_status(refresh=True)
    model_load_start(model=AIModel.objects.get(provider=ollama_provider, model_id=QWEN))
    assert ollama.models[QWEN].keep_alive == 600 and QWEN in ollama.loaded()


# --- load options and who unloads -----------------------------------------------------------------------


def test_load_options_reach_each_server_that_takes_them(
    alice_api: Client, provider: Provider, lmstudio: FakeLMStudio, ollama_provider: Provider, ollama: FakeOllama
) -> None:
    model_list_with_status(refresh=True)
    options = {"context_length": 8192, "flash_attention": True}
    response = alice_api.post("/api/models/lmstudio/google/gemma-3-4b/load", options, content_type="application/json")
    assert response.status_code == 202
    assert [r.json() for r in lmstudio.requests if r.path == "/api/v1/models/load"] == [
        {"model": "google/gemma-3-4b", "context_length": 8192, "flash_attention": True}
    ]
    assert lmstudio.models["google/gemma-3-4b"].context_of("google/gemma-3-4b") == 8192

    body = {"context_length": 16384}
    assert alice_api.post(f"/api/models/ollama/{QWEN}/load", body, content_type="application/json").status_code == 202
    load = next(r.json() for r in ollama.requests if r.path == "/api/generate")
    assert load["options"] == {"num_ctx": 16384}

    refused = alice_api.post(f"/api/models/ollama/{LLAMA}/load", options, content_type="application/json")
    assert refused.status_code == 400 and "flash_attention" in refused.json()["detail"]


def test_llamacpp_takes_no_load_options_and_bad_ones_are_422(
    alice_api: Client, llamacpp_provider: Provider, llamacpp: FakeLlamaCpp
) -> None:
    model_list_with_status(refresh=True)
    url = "/api/models/llamacpp/tiny-alpha/load"
    refused = alice_api.post(url, {"context_length": 4096}, content_type="application/json")
    assert refused.status_code == 400 and "takes no load option context_length" in refused.json()["detail"]
    for bad in ({"context_length": 3}, {"context_length": "many"}, {"colour": "red"}, [1]):
        assert alice_api.post(url, bad, content_type="application/json").status_code == 422, bad
    assert alice_api.post(url, "{", content_type="application/json").status_code == 422
    assert llamacpp.count("POST", "/models/load") == 0
    assert alice_api.post(url).status_code == 202  # no body: the server's defaults


def test_lm_studio_v0_cannot_take_load_options_and_says_so(
    alice_api: Client, lmstudio_v0: FakeLMStudio, db: None
) -> None:
    point_provider_at(lmstudio_v0)
    model_list_with_status(refresh=True)
    url = "/api/models/lmstudio/google/gemma-3-4b"
    alice_api.post(f"{url}/load", {"context_length": 8192}, content_type="application/json")
    failed = alice_api.post(f"{url}/wait?timeout=5").json()
    assert failed["status"] == "failed" and "takes no load options" in failed["reason"]


def test_the_models_page_offers_a_context_length_where_the_server_takes_one(
    alice_web: Client, ollama_provider: Provider, llamacpp_provider: Provider, ollama: FakeOllama
) -> None:
    page = alice_web.get("/models/?refresh=1").content.decode()
    assert page.count('name="context_length"') == 2  # Ollama's two idle models; llama.cpp's take none
    assert "Ollama" in page and "llama.cpp" in page  # which server each model lives on
    qwen = AIModel.objects.get(provider=ollama_provider, model_id=QWEN)
    row = alice_web.post(f"/models/{qwen.pk}/load/", {"context_length": "2048"}, headers={"HX-Request": "true"})
    assert row.status_code == 200
    assert next(r.json() for r in ollama.requests if r.path == "/api/generate")["options"] == {"num_ctx": 2048}
    bad = alice_web.post(f"/models/{qwen.pk}/load/", {"context_length": "lots"}, headers={"HX-Request": "true"})
    assert "whole number of tokens" in bad.content.decode()


def test_a_private_servers_owner_unloads_its_models_and_nobody_else_does(
    alice: User,
    alice_api: Client,
    charlie: User,
    ollama: FakeOllama,
    settings,  # noqa: ANN001
) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    Provider.objects.create(name="alice-ollama", kind=ProviderKind.OLLAMA, base_url=ollama.url, owner=alice)
    model_list_with_status(user=alice, refresh=True)
    assert token_client(charlie).post(f"/api/models/alice-ollama/{LLAMA}/unload").status_code == 404
    response = alice_api.post(f"/api/models/alice-ollama/{LLAMA}/unload")
    assert response.status_code == 200 and response.json()["status"] == "not_loaded"
    assert LLAMA not in ollama.loaded()


# --- servers added on the page ------------------------------------------------------------------------


def test_a_user_adds_an_ollama_server_of_their_own_within_the_guard(
    alice: User,
    alice_api: Client,
    charlie: User,
    ollama: FakeOllama,
    settings,  # noqa: ANN001
) -> None:
    body = {"kind": "ollama", "base_url": ollama.url, "name": "my-ollama"}
    refused = alice_api.post("/api/models/servers", body, content_type="application/json")
    assert refused.status_code == 400 and "refused" in refused.json()["detail"]  # loopback, not allowed
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    added = alice_api.post("/api/models/servers", body, content_type="application/json")
    assert added.status_code == 201
    assert added.json() == {"name": "my-ollama", "kind": "ollama", "base_url": ollama.url, "private": True}
    assert Provider.objects.get(name="my-ollama").owner == alice
    assert f"my-ollama/{QWEN}" in {m["ref"] for m in alice_api.get("/api/models?refresh=1").json()}
    assert token_client(charlie).get(f"/api/models/my-ollama/{QWEN}/status").status_code == 404
    bad = [
        {"kind": "openai", "base_url": "https://api.example.com"},
        {"kind": "ollama", "base_url": "http://u:p@gpu.example:11434"},
        {"kind": "ollama", "base_url": "ftp://gpu.example"},
    ]
    for body in bad:
        assert alice_api.post("/api/models/servers", body, content_type="application/json").status_code == 400, body


def test_staff_add_an_instance_wide_llamacpp_server_on_the_page(
    bob_web: Client, alice_api: Client, llamacpp: FakeLlamaCpp
) -> None:
    page = bob_web.get("/models/").content.decode()
    assert "Add a local server" in page and 'value="llamacpp"' in page
    response = bob_web.post("/models/servers/", {"kind": "llamacpp", "base_url": llamacpp.url, "name": "gpu-box"})
    assert response.status_code == 302
    server = Provider.objects.get(name="gpu-box")
    assert server.owner is None and server.kind == "llamacpp"  # staff: the instance's
    assert "gpu-box/tiny-alpha" in {m["ref"] for m in alice_api.get("/api/models?refresh=1").json()}
