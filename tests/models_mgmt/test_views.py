"""The Models page and its HTMX partials."""

import pytest
from django.test import Client

from models_mgmt.models import AIModel
from providers.models import Provider
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db

QWEN, GEMMA = "qwen/qwen2.5-7b-instruct", "google/gemma-3-4b"
HTMX = {"HX-Request": "true"}


def test_login_required(client: Client) -> None:
    response = client.get("/models/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_page_lists_every_model_with_icon_facts_and_htmx(alice_web: Client, provider: Provider) -> None:
    response = alice_web.get("/models/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Qwen2.5 7B Instruct" in html and "Gemma 3 4B" in html and "Nomic Embed Text v1.5" in html
    assert "✓" in html and "○" in html
    assert "32,768" in html  # context length
    assert "4.4\xa0GB" in html  # size as LM Studio reports it
    assert "django_htmx/htmx-2.min.js" in html  # served by us, no CDN
    assert "cdn" not in html.lower()


def test_models_page_is_in_the_navigation(alice_web: Client, provider: Provider) -> None:
    assert '<a href="/models/" aria-current="page">Models</a>' in alice_web.get("/models/").content.decode()


def test_page_works_when_lm_studio_is_down(alice_web: Client, discovered: dict, lmstudio: FakeLMStudio) -> None:
    lmstudio.set_down(True)
    response = alice_web.get("/models/?refresh=1")
    html = response.content.decode()
    assert response.status_code == 200
    assert "LM Studio unreachable" in html and "❌" in html


def test_load_button_answers_with_a_polling_row(
    alice_web: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    from orchestrator.celery import app

    app.conf.task_always_eager = False  # leave the task queued: the row must say loading
    try:
        from unittest import mock

        with mock.patch("models_mgmt.tasks.model_load_task.apply_async") as send:
            response = alice_web.post(f"/models/{discovered[GEMMA].pk}/load/", headers=HTMX)
        # The claim names the task it sent.
        send.assert_called_once_with((discovered[GEMMA].pk,), task_id=AIModel.objects.get(model_id=GEMMA).load_task_id)
    finally:
        app.conf.task_always_eager = True
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-status="loading"' in html and "🔄" in html
    assert f'hx-get="/models/{discovered[GEMMA].pk}/row/"' in html and 'hx-trigger="every 1s"' in html


def test_row_after_a_failed_load_shows_the_reason(
    alice_web: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    lmstudio.fail_load(GEMMA, message="Failed to load model: insufficient memory")
    alice_web.post(f"/models/{discovered[GEMMA].pk}/load/", headers=HTMX)
    html = alice_web.get(f"/models/{discovered[GEMMA].pk}/row/", headers=HTMX).content.decode()
    assert 'data-status="failed"' in html and "insufficient memory" in html
    assert "every 1s" not in html  # polling stops once the load has ended


def test_load_error_is_shown_in_the_row(
    alice_web: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    lmstudio.set_down(True)
    alice_web.get("/models/?refresh=1")
    response = alice_web.post(f"/models/{discovered[GEMMA].pk}/load/", headers=HTMX)
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()


def test_load_without_htmx_redirects_with_a_message(
    alice_web: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio
) -> None:
    lmstudio.set_down(True)
    alice_web.get("/models/?refresh=1")
    response = alice_web.post(f"/models/{discovered[GEMMA].pk}/load/", follow=True)
    assert "unreachable" in response.content.decode()


def test_unknown_model_row_is_404(alice_web: Client, provider: Provider) -> None:
    assert alice_web.get("/models/999999/row/").status_code == 404
    assert alice_web.post("/models/999999/load/").status_code == 404


def test_staff_buttons_are_for_staff_only(alice_web: Client, bob_web: Client, discovered: dict) -> None:
    alice_html = alice_web.get("/models/").content.decode()
    bob_html = bob_web.get("/models/").content.decode()
    assert ">Sync<" not in alice_html and "Unload" not in alice_html
    # Everyone may reset what they may see (their own models and keys); staff also the instance-wide ones.
    assert "Forget failures of your own models and keys" in alice_html
    assert "Reset failures" in bob_html and ">Sync<" in bob_html and "Unload" in bob_html
    pk = discovered[QWEN].pk
    for path in (f"/models/{pk}/unload/", f"/models/{pk}/active/", "/models/sync/"):
        assert alice_web.post(path).status_code == 302, path  # to the admin login: not staff


def test_staff_unload(bob_web: Client, discovered: dict[str, AIModel], lmstudio: FakeLMStudio) -> None:
    html = bob_web.post(f"/models/{discovered[QWEN].pk}/unload/", headers=HTMX).content.decode()
    assert 'data-status="not_loaded"' in html and lmstudio.models[QWEN].instances == []


def test_staff_deactivates_and_activates(bob_web: Client, discovered: dict[str, AIModel]) -> None:
    pk = discovered[GEMMA].pk
    html = bob_web.post(f"/models/{pk}/active/", {"active": "0"}, headers=HTMX).content.decode()
    assert 'data-status="inactive"' in html and "Activate" in html
    assert not AIModel.objects.get(pk=pk).active
    bob_web.post(f"/models/{pk}/active/", {"active": "1"}, headers=HTMX)
    assert AIModel.objects.get(pk=pk).active


def test_staff_sync_and_reset_return_the_table_with_a_message(
    bob_web: Client, discovered: dict, lmstudio: FakeLMStudio
) -> None:
    lmstudio.add_model("mistral-7b-instruct-v0.3")
    html = bob_web.post("/models/sync/", headers=HTMX).content.decode()
    assert 'id="models-table"' in html and "1 new" in html and "Mistral 7B Instruct V0.3" in html
    html = bob_web.post("/models/failures/reset/", headers=HTMX).content.decode()
    assert "Forgot the failures of 0 model(s)" in html
    lmstudio.set_down(True)
    html = bob_web.post("/models/sync/", headers=HTMX).content.decode()
    assert "unreachable" in html


def test_table_partial_for_polling(alice_web: Client, provider: Provider) -> None:
    html = alice_web.get("/models/", headers=HTMX).content.decode()
    assert html.count("<html") == 0 and 'id="models-table"' in html and 'hx-trigger="every 10s"' in html
