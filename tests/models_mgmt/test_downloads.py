"""LM Studio downloads (API v1): started by staff (or a private server's owner), followed to the end, the
new model listed when it completes; the server's own words when it refuses or fails."""

import pytest
from django.test import Client

from models_mgmt.models import AIModel
from providers.models import Provider
from tests.conftest import point_provider_at
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db

NEW = "qwen/qwen3-4b"
HTMX = {"HX-Request": "true"}


def start(client: Client, model: str = NEW, provider: str = "lmstudio") -> object:
    return client.post("/api/models/downloads", {"provider": provider, "model": model}, content_type="application/json")


def test_a_download_is_followed_to_the_end_and_the_model_listed(
    bob_api: Client, provider: Provider, lmstudio: FakeLMStudio
) -> None:
    response = start(bob_api)
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "downloading" and job["progress"] == 0 and job["total_size_bytes"] == 2_500_000_000
    assert [r.json() for r in lmstudio.requests if r.path == "/api/v1/models/download"] == [{"model": NEW}]
    seen = []
    for _ in range(5):
        state = bob_api.get(f"/api/models/downloads/lmstudio/{job['job_id']}").json()
        seen.append((state["status"], state["progress"]))
        if state["status"] != "downloading":
            break
    assert seen == [("downloading", 0.4), ("downloading", 0.8), ("completed", 1.0)]
    assert AIModel.objects.filter(provider=provider, model_id=NEW).exists()  # listed at once, no Sync needed
    assert start(bob_api).json()["status"] == "already_downloaded"


def test_downloads_are_for_staff_and_bad_input_is_4xx(
    alice_api: Client, bob_api: Client, provider: Provider, lmstudio: FakeLMStudio
) -> None:
    assert start(alice_api).status_code == 403
    assert lmstudio.count("POST", "/api/v1/models/download") == 0
    missing = start(bob_api, "nobody/no-such-model")
    assert missing.status_code == 404 and "Could not find model 'nobody/no-such-model'" in missing.json()["detail"]
    assert start(bob_api, "two words").status_code == 400
    assert start(bob_api, provider="openai").status_code == 404  # not a local server
    assert start(bob_api, provider="llamacpp").status_code == 409  # a local server that does not download
    assert bob_api.get("/api/models/downloads/lmstudio/job_nope").status_code == 404
    assert bob_api.get("/api/models/downloads/lmstudio/..%2F..").status_code == 404
    assert alice_api.get("/api/models/downloads/lmstudio/job_nope").status_code == 403


def test_a_failed_download_says_why(bob_api: Client, provider: Provider, lmstudio: FakeLMStudio) -> None:
    lmstudio.download_failures[NEW] = "Not enough disk space"
    job = start(bob_api).json()
    state = bob_api.get(f"/api/models/downloads/lmstudio/{job['job_id']}").json()
    assert state["status"] == "failed" and state["error"] == "Not enough disk space"
    assert not AIModel.objects.filter(model_id=NEW).exists()


def test_lm_studio_v0_cannot_download_and_says_so(bob_api: Client, lmstudio_v0: FakeLMStudio, db: None) -> None:
    point_provider_at(lmstudio_v0)
    response = start(bob_api)
    assert response.status_code == 409 and "API v0" in response.json()["detail"]


def test_the_models_page_downloads_with_a_progress_bar(
    alice_web: Client, bob_web: Client, provider: Provider, lmstudio: FakeLMStudio
) -> None:
    assert "Download to lmstudio" not in alice_web.get("/models/").content.decode()
    assert "Download to lmstudio" in bob_web.get("/models/").content.decode()
    lmstudio.download_step = 2_000_000_000
    first = bob_web.post("/models/downloads/", {"provider": "lmstudio", "model": NEW}, headers=HTMX).content.decode()
    assert "<progress" in first and 'value="0.0"' in first and 'hx-trigger="every 1s"' in first
    job_id = next(iter(lmstudio._jobs))
    polled = bob_web.get(f"/models/downloads/lmstudio/{job_id}/", headers=HTMX).content.decode()
    assert 'value="0.8"' in polled and "every 1s" in polled
    done = bob_web.get(f"/models/downloads/lmstudio/{job_id}/", headers=HTMX).content.decode()
    assert 'data-status="completed"' in done and "every 1s" not in done.split('id="models-table"')[0]
    assert 'hx-swap-oob="true"' in done and NEW in done  # the table comes along with the new model in it
    refused = alice_web.post("/models/downloads/", {"provider": "lmstudio", "model": NEW}, headers=HTMX)
    assert "Only staff can do this." in refused.content.decode()
