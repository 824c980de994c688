"""Odd input to code generation is a 400 with a clear `detail` and costs no quota; a rejection says which
model wrote the code; the page's generations are counted in llm_codegen_* like the API's."""

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from tests.codegen.test_generate import BAD, GOOD
from tests.completions.conftest import Cloud

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts")]
URL = "/llm-codegen/generate"


def _count(outcome: str) -> float:
    return REGISTRY.get_sample_value("llm_codegen_requests_total", {"outcome": outcome}) or 0.0


@pytest.mark.parametrize("model", [5, ["openai/gpt-4o-mini"], {"ref": "x"}, True, 1.5])
def test_a_model_that_is_not_a_string_is_a_400(alice_api: Client, openai: Cloud, model: object) -> None:
    response = alice_api.post(URL, {"prompt": GOOD, "model": model}, content_type="application/json")
    assert response.status_code == 400 and "'model' must be a string" in response.json()["detail"]
    assert openai.fake.chat_count == 0


@pytest.mark.parametrize("prompt", ["\\ud800 a function that adds two numbers", "a function \\udfff that adds"])
def test_a_lone_surrogate_in_the_prompt_is_a_400_that_costs_no_quota(
    alice_api: Client,
    openai: Cloud,
    settings,
    prompt: str,  # noqa: ANN001
) -> None:
    settings.CODEGEN_RATE_LIMIT = 1
    body = '{"prompt": "' + prompt + '"}'
    for _ in range(3):
        response = alice_api.post(URL, body, content_type="application/json")
        assert response.status_code == 400 and "not valid Unicode" in response.json()["detail"]
    good = alice_api.post(URL, {"prompt": GOOD}, content_type="application/json")
    assert good.status_code == 200 and good.json()["metrics"]["quota_remaining"] == 0


def test_a_rejection_names_the_model_that_wrote_the_code(alice_api: Client, openai: Cloud) -> None:
    response = alice_api.post(URL, {"prompt": BAD}, content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["model"] == openai.model.ref and response["X-Orchestrator-Model"] == openai.model.ref
    assert openai.model.ref in body["detail"] and body["validation_results"]["passed"] is False
    assert "rm -rf" not in response.content.decode()  # the findings, never the code


def test_a_success_names_the_model_in_a_header(alice_api: Client, openai: Cloud) -> None:
    response = alice_api.post(URL, {"prompt": GOOD}, content_type="application/json")
    assert response.status_code == 200 and response["X-Orchestrator-Model"] == openai.model.ref


def test_the_page_shows_which_model_wrote_rejected_code(alice_web: Client, openai: Cloud) -> None:
    html = alice_web.post("/codegen/generate/", {"prompt": BAD}).content.decode()
    assert 'id="codegen-error"' in html and f"The code {openai.model.ref} wrote was rejected" in html


def test_the_page_is_counted_in_the_metrics(alice_web: Client, openai: Cloud) -> None:
    ok, rejected, invalid = _count("ok"), _count("rejected"), _count("invalid")
    alice_web.post("/codegen/generate/", {"prompt": GOOD})
    alice_web.post("/codegen/generate/", {"prompt": BAD})
    alice_web.post("/codegen/generate/", {"prompt": "short"})
    assert (_count("ok"), _count("rejected"), _count("invalid")) == (ok + 1, rejected + 1, invalid + 1)
