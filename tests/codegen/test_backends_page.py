"""The backend generator's pages (server side): draft a plan, edit it, start, follow the run."""

import json

import pytest
from django.test import Client

from codegen.models import BackendRun
from tests.fakes import backend_script as script
from tests.fakes.backend_script import ScriptedOpenAI

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts", "sandbox_env")]
REQUIREMENTS = "A small shop API: items with a name and a price; add, list and fetch items."


@pytest.fixture
def alice_web(alice: object) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def test_the_page_needs_a_login() -> None:
    response = Client().get("/backends/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_page_offers_requirements_and_models(scripted: ScriptedOpenAI, alice_web: Client) -> None:
    page = alice_web.get("/backends/").content.decode()
    assert 'name="requirements"' in page and "openai/gpt-4o-mini" in page and "No runs yet." in page
    assert 'id="sandbox-reason"' not in page


def test_a_drafted_plan_is_shown_for_editing(scripted: ScriptedOpenAI, alice_web: Client) -> None:
    scripted.set_script("backend-plan", [script.PLAN_ANSWER])
    response = alice_web.post("/backends/plan/", {"requirements": REQUIREMENTS, "model": "openai/gpt-4o-mini"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="backend-plan"' in page and "&quot;project_name&quot;: &quot;shop-api&quot;" in page
    assert not BackendRun.objects.exists(), "drafting a plan starts no run"


def test_an_unusable_plan_is_a_clear_error(openai: object, alice_web: Client) -> None:
    response = alice_web.post("/backends/plan/", {"requirements": REQUIREMENTS})
    assert response.status_code == 400
    assert "no ```json block" in response.content.decode()


def test_the_edited_plan_is_generated_and_followed(scripted: ScriptedOpenAI, alice_web: Client) -> None:
    scripted.set_script("backend-code", [script.GOOD_CODE])
    plan = json.dumps({**script.PLAN, "project_name": "edited-shop"})
    response = alice_web.post(
        "/backends/start/", {"requirements": REQUIREMENTS, "model": "", "plan": plan, "max_rounds": "2"}
    )
    run = BackendRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/backends/{run.pk}/"
    assert run.plan["project_name"] == "edited-shop" and run.max_rounds == 2
    page = alice_web.get(f"/backends/{run.pk}/").content.decode()
    assert 'data-status="finished"' in page and 'id="backend-run-finished"' in page
    assert 'hx-trigger="every 2s"' not in page, "a finished run is not polled"
    assert f'href="/api/backends/{run.pk}/archive"' in page and "edited-shop.zip" in page
    assert "app/routers/items.py" in page and "test_missing_item_is_404" in page
    assert '<span class="k">def</span>' in page or '<span class="kd">def</span>' in page  # highlighted
    partial = alice_web.get(f"/backends/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<section class="card" id="backend-run"')


def test_a_broken_plan_comes_back_as_typed(scripted: ScriptedOpenAI, alice_web: Client) -> None:
    response = alice_web.post("/backends/start/", {"requirements": REQUIREMENTS, "plan": '{"project_name": '})
    assert response.status_code == 400
    page = response.content.decode()
    assert "The plan is not valid JSON" in page and "{&quot;project_name&quot;: </textarea>" in page
    assert not BackendRun.objects.exists()


def test_a_running_run_is_polled(scripted: ScriptedOpenAI, alice: object, alice_web: Client) -> None:
    run = BackendRun.objects.create(owner=alice, requirements=REQUIREMENTS, status="validating", plan=script.PLAN)
    page = alice_web.get(f"/backends/{run.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert "✓ Plan" in page and "✓ Code" in page and "🔄 Validate" in page and "○ Repair" in page


def test_someone_elses_run_is_not_found(scripted: ScriptedOpenAI, alice: object, charlie: object) -> None:
    run = BackendRun.objects.create(owner=alice, requirements=REQUIREMENTS)
    outsider = Client()
    outsider.force_login(charlie)
    assert outsider.get(f"/backends/{run.pk}/").status_code == 404
    assert "No runs yet." in outsider.get("/backends/").content.decode()
