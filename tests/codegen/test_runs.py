"""Test-generation runs: OpenAPI in, a screened pytest module out, or a clear failure."""

import json

import pytest
from django.test import Client

from codegen.models import CodegenRun
from codegen.services import codegen_run_execute, parse_spec, plan_from_spec, render_tests_prompt
from tests.completions.conftest import Cloud

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts")]

TEST_MODULE = """import httpx
import pytest


@pytest.fixture
def client() -> httpx.Client:
    return httpx.Client(base_url="http://api.test")


def test_get_pets_lists_pets(client: httpx.Client) -> None:
    response = client.get("/pets")

    assert response.status_code == 200
"""
SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Pets", "version": "1.0"},
    "paths": {
        "/pets": {
            "get": {
                "summary": "List pets",
                "responses": {
                    "200": {
                        "content": {
                            "application/json": {
                                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}
                            }
                        }
                    }
                },
            },
            "post": {
                "summary": "Add a pet",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"type": "object", "properties": {"name": {"type": "string"}}}}
                    }
                },
                "responses": {"201": {"description": "created"}, "422": {"description": "bad"}},
            },
        },
        "/pets/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True}],
            "delete": {"operationId": "deletePet", "responses": {"204": {"description": "gone"}}},
        },
    },
}
YAML_SPEC = """openapi: 3.1.0
info: {title: Notes, version: '2'}
paths:
  /notes:
    get:
      summary: List notes
      responses: {'200': {description: ok}}
"""


class Recorded:
    """A pluggable model client with a fixed answer."""

    def __init__(self, answer: str) -> None:
        self.answer, self.prompts = answer, []

    def generate(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answer

    async def agenerate(self, prompt: str) -> str:
        return self.generate(prompt)


def test_plan_and_prompt() -> None:
    plan = plan_from_spec(parse_spec(SPEC))
    assert [(e["method"], e["path"]) for e in plan] == [("GET", "/pets"), ("POST", "/pets"), ("DELETE", "/pets/{id}")]
    assert plan[0]["responses"] == {"200": "array of Pet"} and plan[1]["request_schema"] == "{name: string}"
    assert plan[2]["parameters"] == [{"name": "id", "location": "path", "required": True}]
    prompt = render_tests_prompt(spec=SPEC, plan=plan, max_tests=2)
    assert "Pets" in prompt and "- DELETE /pets/{id} — deletePet" in prompt and "at most 2 tests" in prompt
    assert "Arrange-Act-Assert" in prompt


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("{not json: [", "neither JSON nor YAML"),
        ({"info": {}}, "not an OpenAPI"),
        ({"openapi": "3.0.0", "paths": {}}, "no paths"),
    ],
)
def test_bad_specs(spec: object, words: str) -> None:
    from codegen.services import CodegenError

    with pytest.raises(CodegenError, match=words):
        parse_spec(spec)


def test_yaml_spec_is_read() -> None:
    assert plan_from_spec(parse_spec(YAML_SPEC))[0]["path"] == "/notes"


def test_run_with_a_pluggable_client_finishes_with_the_artifact(alice: object) -> None:
    run = CodegenRun.objects.create(owner=alice, spec=SPEC, options={"max_tests_per_endpoint": 2})
    client = Recorded(f"Here you go:\n```python\n{TEST_MODULE}```")
    run = codegen_run_execute(run_id=run.pk, client=client)
    assert run.status == "finished" and run.artifact == TEST_MODULE and run.validation["passed"] is True
    assert len(run.plan) == 3 and "GET /pets" in client.prompts[0] and run.trace_id


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("```python\nimport httpx\n\ndef helper():\n    return 1\n```", "no test function"),
        ("```python\nimport os\n\ndef test_x():\n    os.system('id')\n```", "rejected by the screener"),
    ],
)
def test_run_fails_clearly_on_bad_output(alice: object, answer: str, words: str) -> None:
    run = CodegenRun.objects.create(owner=alice, spec=SPEC)
    run = codegen_run_execute(run_id=run.pk, client=Recorded(answer))
    assert run.status == "failed" and words in run.error and run.artifact == ""


def test_run_with_no_model_reachable_fails_with_a_reason(alice_api: Client) -> None:
    from models_mgmt.models import AIModel

    AIModel.objects.update(active=False)
    response = alice_api.post("/api/codegen/runs", {"spec": SPEC}, content_type="application/json")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    run = alice_api.get(f"/api/codegen/runs/{response.json()['id']}").json()  # tasks run in-line here
    assert run["status"] == "failed" and "No model is available" in run["error"] and run["artifact_url"] is None


def test_run_through_the_api_and_the_completion_service(alice_api: Client, openai: Cloud) -> None:
    spec = {**SPEC, "info": {**SPEC["info"], "description": f"```python\n{TEST_MODULE}```"}}
    response = alice_api.post(
        "/api/codegen/runs", {"spec": json.dumps(spec), "max_tests_per_endpoint": 1}, content_type="application/json"
    )
    assert response.status_code == 202
    run = alice_api.get(f"/api/codegen/runs/{response.json()['id']}").json()
    assert run["status"] == "finished", run["error"]
    assert run["answered_by"] == "openai/gpt-4o-mini" and run["artifact_url"].endswith("/artifact")
    download = alice_api.get(run["artifact_url"])
    assert download["Content-Disposition"] == f'attachment; filename="generated_{run["id"]}.py"'
    assert download.content.decode() == TEST_MODULE
    assert [r["id"] for r in alice_api.get("/api/codegen/runs").json()] == [run["id"]]


def test_runs_api_refusals(alice_api: Client, charlie: object, alice: object) -> None:
    from tests.conftest import token_client

    assert alice_api.post("/api/codegen/runs", {"spec": "nope"}, content_type="application/json").status_code == 400
    assert (
        alice_api.post(
            "/api/codegen/runs", {"spec": SPEC, "max_tests_per_endpoint": 0}, content_type="application/json"
        ).status_code
        == 422
    )
    run = CodegenRun.objects.create(owner=alice, spec=SPEC, artifact=TEST_MODULE, status="finished")
    charlie_api = token_client(charlie)
    assert charlie_api.get(f"/api/codegen/runs/{run.pk}").status_code == 404
    assert charlie_api.get(f"/api/codegen/runs/{run.pk}/artifact").status_code == 404
    assert Client().get("/api/codegen/runs").status_code == 401
