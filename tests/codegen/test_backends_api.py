"""The backend generator through its REST API, against the scripted OpenAI emulator; generated tests run
in the real sandbox. Celery runs in-line here (tests/conftest.py), so a POST returns after the run."""

import io
import zipfile
from pathlib import Path

import pytest
from django.test import Client

from codegen.models import BackendRun
from tests.conftest import token_client
from tests.fakes import backend_script as script
from tests.fakes.backend_script import ScriptedOpenAI

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts", "sandbox_env")]
REQUIREMENTS = "A small shop API: items with a name and a price; add, list and fetch items."


def _create(api: Client, **body: object) -> dict:
    response = api.post("/api/backends", {"requirements": REQUIREMENTS, **body}, content_type="application/json")
    assert response.status_code == 202, response.content
    assert set(response.json()) == {"id", "status"}
    return api.get(f"/api/backends/{response.json()['id']}").json()


def _zip(api: Client, run_id: int) -> dict[str, str]:
    response = api.get(f"/api/backends/{run_id}/archive")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_a_good_project_finishes_with_its_tests_passed_in_the_sandbox(
    scripted: ScriptedOpenAI, alice_api: Client
) -> None:
    scripted.set_script("backend-plan", [script.PLAN_ANSWER])
    scripted.set_script("backend-code", [script.GOOD_CODE])
    run = _create(alice_api)
    assert run["status"] == "finished", run["error"]
    assert run["error"] == ""
    assert run["plan"]["project_name"] == "shop-api"
    assert [r["number"] for r in run["rounds"]] == [1] and run["best_round"] == 1
    tests = run["validation"]["tests"]
    assert tests["ran"] and (tests["passed"], tests["failed"], tests["errors"]) == (3, 0, 0)
    assert {c["name"].rsplit("::", 1)[-1] for c in tests["cases"]} == {
        "test_create_and_get_item",
        "test_list_items",
        "test_missing_item_is_404",
    }
    paths = {f["path"] for f in run["files"]}
    assert {"app/main.py", "app/db.py", "app/models.py", "app/schemas.py", "app/routers/items.py"} <= paths
    assert {"tests/conftest.py", "tests/test_items.py", "requirements.txt", "README.md"} <= paths
    assert all(f["lines"] > 0 for f in run["files"] if f["path"].endswith(("main.py", "items.py")))
    files = _zip(alice_api, run["id"])
    assert "shop-api/app/routers/items.py" in files
    assert 'raise HTTPException(status_code=404, detail="Item not found")' in files["shop-api/app/routers/items.py"]
    assert files["shop-api/tests/test_items.py"] == script.TESTS
    assert [kind for kind, _ in scripted.asked] == ["backend-plan", "backend-code"]


def test_a_given_plan_skips_the_planning_call(scripted: ScriptedOpenAI, alice_api: Client) -> None:
    scripted.set_script("backend-code", [script.GOOD_CODE])
    run = _create(alice_api, plan=script.PLAN, max_rounds=1)
    assert run["status"] == "finished", run["error"]
    assert [kind for kind, _ in scripted.asked] == ["backend-code"]
    code_prompt = scripted.asked[0][1]
    assert "--- app/models.py ---" in code_prompt and '"project_name": "shop-api"' in code_prompt


def test_a_project_with_a_dangerous_file_is_refused_naming_file_and_finding(
    scripted: ScriptedOpenAI, alice_api: Client
) -> None:
    scripted.set_script("backend-code", [script.DANGEROUS_CODE])
    run = _create(alice_api, plan=script.PLAN, max_rounds=1)
    assert run["status"] == "failed"
    assert "app/helpers.py" in run["error"] and "import-not-allowed" in run["error"]
    assert run["validation"]["tests"] == {
        "ran": False,
        "reason": "not run: the screener rejected the project (see findings)",
    }
    assert run["validation"]["screener"]["app/helpers.py"]["passed"] is False
    assert run["validation"]["screener"]["app/routers/items.py"]["passed"] is True
    assert run["archive_url"] is None
    refused = alice_api.get(f"/api/backends/{run['id']}/archive")
    assert refused.status_code == 409
    body = refused.json()
    assert "screener" in body["detail"]
    assert any(f["path"] == "app/helpers.py" and f["rule"] == "import-not-allowed" for f in body["findings"])


def test_failing_tests_are_repaired_round_by_round(scripted: ScriptedOpenAI, alice_api: Client) -> None:
    scripted.set_script("backend-code", [script.BUGGY_CODE])
    scripted.set_script("backend-repair", [script.FIXED_ROUTER])
    run = _create(alice_api, plan=script.PLAN, max_rounds=3)
    assert run["status"] == "finished", run["error"]
    scores = [(r["number"], r["score"]["tests_passed"], r["score"]["tests_failed"]) for r in run["rounds"]]
    assert scores == [(1, 2, 1), (2, 3, 0)]
    assert run["best_round"] == 2
    assert run["rounds"][1]["changed"] == ["app/routers/items.py"]
    repair_prompt = scripted.asked[-1][1]
    assert "test_missing_item_is_404" in repair_prompt and "--- app/routers/items.py ---" in repair_prompt


def test_the_best_round_is_kept_not_the_last(scripted: ScriptedOpenAI, alice_api: Client) -> None:
    scripted.set_script("backend-code", [script.BUGGY_CODE])
    scripted.set_script("backend-repair", [script.WORSE_ROUTER])
    run = _create(alice_api, plan=script.PLAN, max_rounds=3)
    assert run["status"] == "failed"
    assert [r["score"]["tests_failed"] for r in run["rounds"]] == [1, 2, 2]
    # the worse router leaves `select` imported and unused: ruff says so, without blocking
    assert any(f["rule"] == "lint:F401" for f in run["rounds"][1]["validation"]["lint"])
    assert run["rounds"][1]["score"]["screener_passed"] is True
    assert run["best_round"] == 1
    assert "Round 1, the best" in run["error"] and "test_missing_item_is_404" in run["error"]
    files = _zip(alice_api, run["id"])  # the screener passed it, so the best round can be inspected
    assert "return list(session.scalars" in files["shop-api/app/routers/items.py"]


def test_with_the_echo_emulator_the_run_fails_with_a_clear_reason(openai: object, alice_api: Client) -> None:
    run = _create(alice_api)
    assert run["status"] == "failed"
    assert run["error"] == "The model's plan is unusable: The model's answer has no ```json block with a plan."
    assert run["rounds"] == [] and run["best_round"] is None


def test_with_the_echo_emulator_and_a_plan_the_run_fails_with_a_clear_reason(openai: object, alice_api: Client) -> None:
    run = _create(alice_api, plan=script.PLAN)
    assert run["status"] == "failed"
    assert run["error"].startswith("The model's answer held no files")


def test_without_bwrap_the_project_is_validated_statically_only(
    scripted: ScriptedOpenAI,
    alice_api: Client,
    settings,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    settings.CODEGEN_SANDBOX_ENV = tmp_path / "no-env"
    scripted.set_script("backend-code", [script.GOOD_CODE])
    run = _create(alice_api, plan=script.PLAN, max_rounds=3)
    assert run["status"] == "failed"
    assert len(run["rounds"]) == 1, "no repair can make the sandbox appear"
    assert run["validation"]["score"]["screener_passed"] is True
    assert run["validation"]["tests"]["ran"] is False
    assert "the tests did not run" in run["error"] and "make run" in run["error"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"requirements": "short"}, 400),
        ({"requirements": REQUIREMENTS, "max_rounds": 0}, 422),
        ({"requirements": REQUIREMENTS, "max_rounds": 6}, 422),
        ({"requirements": REQUIREMENTS, "plan": {"project_name": "x"}}, 400),
        ({"requirements": REQUIREMENTS, "model": "openai/no-such-model"}, 404),
        ({"requirements": 42}, 422),
        ({"requirements": REQUIREMENTS + "\x00"}, 400),  # PostgreSQL stores no NUL (found by schemathesis)
        ({"requirements": REQUIREMENTS + "\ud800"}, 400),
    ],
)
def test_bad_input_is_refused_clearly(scripted: ScriptedOpenAI, alice_api: Client, body: dict, status: int) -> None:
    response = alice_api.post("/api/backends", body, content_type="application/json")
    assert response.status_code == status, response.content
    assert response.json()["detail"]
    assert not BackendRun.objects.exists()


def test_a_bad_plan_says_what_is_wrong(scripted: ScriptedOpenAI, alice_api: Client) -> None:
    plan = {**script.PLAN, "endpoints": [{"method": "GET", "path": "/x", "entity": "Nope"}]}
    response = alice_api.post(
        "/api/backends", {"requirements": REQUIREMENTS, "plan": plan}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "unknown entity 'Nope'" in response.json()["detail"]


def test_runs_are_owner_only(scripted: ScriptedOpenAI, alice_api: Client, charlie: object) -> None:
    scripted.set_script("backend-code", [script.GOOD_CODE])
    run = _create(alice_api, plan=script.PLAN, max_rounds=1)
    outsider = token_client(charlie)
    assert outsider.get(f"/api/backends/{run['id']}").status_code == 404
    assert outsider.get(f"/api/backends/{run['id']}/archive").status_code == 404
    assert outsider.get("/api/backends").json() == []
    assert [r["id"] for r in alice_api.get("/api/backends").json()] == [run["id"]]
    assert Client().get(f"/api/backends/{run['id']}").status_code == 401
