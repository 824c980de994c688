"""The models REST API: every endpoint of DESIGN §7, auth, and every bad input."""

import pytest
from django.test import Client
from django.utils import timezone

from models_mgmt.models import AIModel, LoadState
from providers.models import Provider
from tests.conftest import cloud_provider
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db

QWEN, GEMMA = "qwen/qwen2.5-7b-instruct", "google/gemma-3-4b"


def test_list_with_status(alice_api: Client, provider: Provider) -> None:
    response = alice_api.get("/api/models")
    assert response.status_code == 200
    rows = {row["model_id"]: row for row in response.json()}
    assert rows[QWEN]["status"] == "loaded" and rows[QWEN]["icon"] == "✓"
    assert rows[QWEN]["ref"] == f"lmstudio/{QWEN}" and rows[QWEN]["context_length"] == 32768
    assert rows[GEMMA]["status"] == "not_loaded" and rows[GEMMA]["is_local"] is True


def test_refresh_asks_the_server_again(alice_api: Client, provider: Provider, lmstudio: FakeLMStudio) -> None:
    alice_api.get("/api/models")
    lmstudio.reset_log()
    alice_api.get("/api/models")
    assert lmstudio.count() == 0
    alice_api.get("/api/models?refresh=1")
    assert lmstudio.count() == 1


def test_status_by_id_and_by_reference(alice_api: Client, discovered: dict[str, AIModel]) -> None:
    by_id = alice_api.get(f"/api/models/{discovered[QWEN].pk}/status").json()
    by_ref = alice_api.get(f"/api/models/lmstudio/{QWEN}/status").json()
    assert by_id == by_ref and by_id["status"] == "loaded"


def test_load_answers_202_then_wait_says_loaded(alice_api: Client, discovered: dict[str, AIModel]) -> None:
    gemma = discovered[GEMMA]
    response = alice_api.post(f"/api/models/{gemma.pk}/load")
    assert response.status_code == 202 and response.json() == {"status": "loading", "model": gemma.ref}
    # Tasks run in-line here, so the load has finished; waiting answers at once.
    response = alice_api.post(f"/api/models/{gemma.pk}/wait?timeout=5")
    assert response.status_code == 200 and response.json()["status"] == "loaded"


def test_load_of_a_loaded_model_is_200(alice_api: Client, discovered: dict[str, AIModel]) -> None:
    response = alice_api.post(f"/api/models/{discovered[QWEN].pk}/load")
    assert response.status_code == 200 and response.json()["status"] == "loaded"


def test_wait_on_a_failed_load_is_409_with_the_reason(
    alice_api: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    lmstudio.fail_load(GEMMA, message="Failed to load model: insufficient memory")
    alice_api.post(f"/api/models/{discovered[GEMMA].pk}/load")
    response = alice_api.post(f"/api/models/{discovered[GEMMA].pk}/wait?timeout=5")
    assert response.status_code == 409
    assert response.json()["status"] == "failed" and "insufficient memory" in response.json()["reason"]


@pytest.mark.django_db(transaction=True)
def test_wait_times_out_with_504(alice_api: Client, discovered: dict[str, AIModel]) -> None:
    AIModel.objects.filter(model_id=GEMMA).update(load_state=LoadState.LOADING, load_started_at=timezone.now())
    response = alice_api.post(f"/api/models/{discovered[GEMMA].pk}/wait?timeout=1")
    assert response.status_code == 504 and response.json()["status"] == "loading"


@pytest.mark.parametrize("timeout", ["0", "601", "-5", "soon"])
def test_wait_timeout_out_of_range_is_422(alice_api: Client, discovered: dict[str, AIModel], timeout: str) -> None:
    assert alice_api.post(f"/api/models/{discovered[GEMMA].pk}/wait?timeout={timeout}").status_code == 422


def test_unknown_model_is_404(alice_api: Client, provider: Provider) -> None:
    for path in ("/api/models/999999/status", "/api/models/lmstudio/nope/status", "/api/models/nope/status"):
        response = alice_api.get(path)
        assert response.status_code == 404 and "detail" in response.json()
    assert alice_api.post("/api/models/999999/load").status_code == 404
    assert alice_api.post("/api/models/999999/wait?timeout=1").status_code == 404
    assert alice_api.get("/api/models/999999/alternative").status_code == 404


def test_load_of_a_cloud_model_is_400(alice_api: Client, db: None) -> None:
    openai = cloud_provider("openai")
    model = AIModel.objects.create(provider=openai, model_id="gpt-4o-mini")
    response = alice_api.post(f"/api/models/{model.pk}/load")
    assert response.status_code == 400 and "cloud" in response.json()["detail"]


def test_load_when_lm_studio_is_down_is_503(
    alice_api: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    lmstudio.set_down(True)
    alice_api.get("/api/models?refresh=1")
    response = alice_api.post(f"/api/models/{discovered[GEMMA].pk}/load")
    assert response.status_code == 503 and "unreachable" in response.json()["detail"]


def test_list_when_lm_studio_is_down_still_answers(
    alice_api: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    lmstudio.set_down(True)
    response = alice_api.get("/api/models?refresh=1")
    assert response.status_code == 200
    assert {row["status"] for row in response.json()} == {"unreachable"}


@pytest.mark.parametrize("header", [None, "Bearer orch_not-a-real-token", "Bearer ", "Basic abc", "Bearer x"])
def test_missing_or_wrong_token_is_401(header: str | None, provider: Provider) -> None:
    client = Client(headers={"Authorization": header} if header else {})
    for method, path in (("get", "/api/models"), ("post", "/api/models/1/load"), ("post", "/api/models/sync")):
        response = getattr(client, method)(path)
        assert response.status_code == 401, (method, path, header)
        assert response.json() == {"detail": "Unauthorized"}


def test_session_auth_needs_csrf(alice: object, provider: Provider) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get("/api/models").status_code == 200
    assert client.post("/api/models/1/load").status_code == 403


def test_revoked_token_is_refused(alice: object, provider: Provider) -> None:
    from accounts.services import api_token_create, api_token_revoke

    token, raw = api_token_create(user=alice, name="t")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    assert client.get("/api/models").status_code == 200
    api_token_revoke(user=alice, token_id=token.pk)
    assert client.get("/api/models").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/models/{id}/unload"), ("post", "/api/models/sync")],
)
def test_staff_only_endpoints_refuse_others_with_403(
    alice_api: Client, discovered: dict[str, AIModel], method: str, path: str
) -> None:
    response = getattr(alice_api, method)(path.format(id=discovered[QWEN].pk))
    assert response.status_code == 403 and response.json() == {"detail": "Only staff can do this."}


def test_unload_by_staff(bob_api: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    response = bob_api.post(f"/api/models/{discovered[QWEN].pk}/unload")
    assert response.status_code == 200 and response.json()["status"] == "not_loaded"
    assert lmstudio.models[QWEN].instances == []


def test_unload_on_v0_is_409(bob_api: Client, lmstudio_v0: FakeLMStudio, db: None) -> None:
    from tests.conftest import point_provider_at

    point_provider_at(lmstudio_v0)
    bob_api.get("/api/models")
    response = bob_api.post(f"/api/models/lmstudio/{QWEN}/unload")
    assert response.status_code == 409 and "v0" in response.json()["detail"]


def test_unload_of_a_cloud_model_is_400(bob_api: Client, db: None) -> None:
    openai = cloud_provider("openai")
    model = AIModel.objects.create(provider=openai, model_id="gpt-4o-mini")
    assert bob_api.post(f"/api/models/{model.pk}/unload").status_code == 400


def test_alternative_with_reason(alice_api: Client, discovered: dict[str, AIModel]) -> None:
    response = alice_api.get(f"/api/models/{discovered[GEMMA].pk}/alternative")
    assert response.status_code == 200
    body = response.json()
    assert body["model"]["model_id"] == QWEN and body["tier"] == "loaded" and body["reason"]


def test_no_alternative_is_404(alice_api: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.set_down(True)
    alice_api.get("/api/models?refresh=1")
    response = alice_api.get(f"/api/models/{discovered[GEMMA].pk}/alternative")
    assert response.status_code == 404 and "No usable alternative" in response.json()["detail"]


def test_reset_failures_by_staff(bob_api: Client, discovered: dict[str, AIModel]) -> None:
    AIModel.objects.filter(model_id=GEMMA).update(load_state=LoadState.FAILED, load_error="oom")
    response = bob_api.post("/api/models/failures/reset")
    assert response.status_code == 200 and response.json() == {"reset": 1}


def test_reset_failures_by_a_user_leaves_instance_wide_models_alone(
    alice_api: Client, discovered: dict[str, AIModel]
) -> None:
    AIModel.objects.filter(model_id=GEMMA).update(load_state=LoadState.FAILED, load_error="oom")
    response = alice_api.post("/api/models/failures/reset")
    assert response.status_code == 200 and response.json() == {"reset": 0}
    assert AIModel.objects.get(model_id=GEMMA).load_state == LoadState.FAILED


def test_sync_by_staff(bob_api: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    lmstudio.add_model("mistral-7b-instruct-v0.3")
    response = bob_api.post("/api/models/sync")
    assert response.status_code == 200
    # The instance's Ollama and llama.cpp are asked too (and refuse here): LM Studio's line is the one.
    [result] = [r for r in response.json()["providers"] if r["provider"] == "lmstudio"]
    assert result["ok"] and result["added"] == 1 and result["listed"] == 5


def test_openapi_document_and_docs(client: Client) -> None:
    document = client.get("/api/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    for path in ("/api/models", "/api/models/{ref}/load", "/api/models/{ref}/wait", "/api/models/sync"):
        assert path in paths, path
    assert client.get("/api/docs").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/models/%C2%B2/status"),
        ("post", "/api/models/%C2%B2/load"),
        ("get", "/api/models/%C2%B2/alternative"),
        ("post", "/api/models/%C2%B2/wait"),
        ("get", "/api/models/%D9%A3/status"),  # an Arabic-Indic digit: isdigit() but not an id
    ],
)
def test_a_ref_of_unicode_digits_is_a_clear_404(alice_api: Client, method: str, path: str) -> None:
    response = getattr(alice_api, method)(path)
    assert response.status_code == 404 and "No model" in response.json()["detail"]
