"""POST /llm-codegen/generate: the exact answer shape, every refusal with its status, and the screener."""

import pytest
import structlog
from django.test import Client

from codegen.services import extract_code, split_prompt
from tests.completions.conftest import Cloud
from tests.conftest import token_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts")]
URL = "/llm-codegen/generate"
GOOD = "Write an adder:\n```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
BAD = "Clean the disk:\n```python\nimport os\nos.system('rm -rf /')\n```"


def post(client: Client, body: object) -> object:
    return client.post(URL, body, content_type="application/json")


def test_exact_answer_shape(alice_api: Client, openai: Cloud) -> None:
    response = post(alice_api, {"prompt": GOOD})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"code", "validation_results", "trace_id", "metrics"}
    assert body["code"] == "def add(a: int, b: int) -> int:\n    return a + b\n"
    assert set(body["validation_results"]) == {"passed", "score", "issues_count", "issues"}
    assert body["validation_results"]["passed"] is True and 0 <= body["validation_results"]["score"] <= 1
    assert set(body["metrics"]) == {"latency_seconds", "quota_remaining"} and body["metrics"]["quota_remaining"] == 2
    assert len(body["trace_id"]) == 32 and response["X-Trace-Id"] == body["trace_id"]
    system = openai.fake.last_chat_body()["messages"][0]
    assert system["role"] == "system" and "Python" in system["content"]


def test_model_can_be_chosen(alice_api: Client, openai: Cloud, discovered: dict) -> None:
    response = post(alice_api, {"prompt": GOOD, "model": "lmstudio/qwen/qwen2.5-7b-instruct"})
    assert response.status_code == 200 and openai.fake.chat_count == 0
    assert post(alice_api, {"prompt": GOOD, "model": "nope/nothing"}).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"prompt": "short"}, 400, "too short"),
        ({"prompt": "x" * 50_001}, 400, "too long"),
        ({"prompt": 42}, 400, "must be a string"),
        ({}, 400, "must be a string"),
        (["not", "an", "object"], 400, "JSON object"),
    ],
)
def test_bad_prompts(alice_api: Client, openai: Cloud, body: object, status: int, words: str) -> None:
    response = post(alice_api, body)
    assert response.status_code == status and words in response.json()["detail"]


def test_no_or_bad_token_is_401(client: Client, openai: Cloud) -> None:
    assert post(client, {"prompt": GOOD}).status_code == 401
    bad = client.post(URL, {"prompt": GOOD}, content_type="application/json", headers={"Authorization": "Bearer no"})
    assert bad.status_code == 401 and bad["WWW-Authenticate"] == "Bearer"
    assert client.get(URL).status_code == 405
    assert client.post(URL, "{oops", content_type="application/json", headers={}).status_code == 401


def test_invalid_json_is_400(alice_api: Client, openai: Cloud) -> None:
    assert alice_api.post(URL, "{oops", content_type="application/json").status_code == 400


def test_more_than_three_a_minute_is_429_with_retry_after(alice_api: Client, openai: Cloud, charlie: object) -> None:
    for _ in range(3):
        assert post(alice_api, {"prompt": GOOD}).status_code == 200
    limited = post(alice_api, {"prompt": GOOD})
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 60
    assert openai.fake.chat_count == 3  # the fourth never reached a model
    # Per user: charlie has his own allowance (and no key here, hence 503, not 429).
    assert post(token_client(charlie), {"prompt": GOOD}).status_code == 503


def test_unsafe_code_is_400_with_findings_and_no_code(alice_api: Client, openai: Cloud) -> None:
    response = post(alice_api, {"prompt": BAD})
    body = response.json()
    assert response.status_code == 400 and "rejected" in body["detail"] and "code" not in body
    rules = {issue["rule"] for issue in body["validation_results"]["issues"]}
    assert body["validation_results"]["passed"] is False and rules


def test_upstream_failure_is_502_and_no_model_is_503(alice_api: Client, openai: Cloud, settings) -> None:  # noqa: ANN001
    openai.fake.fail("500")
    failed = post(alice_api, {"prompt": GOOD})
    assert failed.status_code == 502 and "could not answer" in failed.json()["detail"]
    openai.fake.clear_faults()
    from models_mgmt.models import AIModel

    AIModel.objects.update(active=False)
    settings.CODEGEN_DEFAULT_MODEL = ""
    assert post(alice_api, {"prompt": GOOD}).status_code == 503


def test_long_requests_are_split_and_joined(alice_api: Client, openai: Cloud) -> None:
    from models_mgmt.models import AIModel

    AIModel.objects.filter(pk=openai.model.pk).update(context_length=600)  # ≈ 1,200 characters of prompt per part
    first = "```python\ndef first() -> int:\n    return 1\n```\n" + "Some context. " * 60
    second = "```python\ndef second() -> int:\n    return 2\n```\n" + "More context. " * 60
    response = post(alice_api, {"prompt": first + "\n\n" + second})
    assert response.status_code == 200 and openai.fake.chat_count == 2
    assert "def first()" in response.json()["code"] and "def second()" in response.json()["code"]


def test_logs_say_length_and_hash_never_the_prompt(alice_api: Client, openai: Cloud) -> None:
    with structlog.testing.capture_logs() as logs:
        post(alice_api, {"prompt": GOOD})
    events = {entry["event"]: entry for entry in logs}
    assert {"completion", "codegen.generate"} <= set(events)
    entry = events["codegen.generate"]
    assert entry["prompt_chars"] == len(GOOD) and len(entry["prompt_sha256"]) == 16 and entry["outcome"] == "ok"
    assert entry["trace_id"] and entry["user_id"]
    assert all("add(a" not in str(value) for e in logs for value in e.values())


def test_metrics_count_codegen_and_completions(alice_api: Client, openai: Cloud, client: Client) -> None:
    post(alice_api, {"prompt": GOOD})
    post(alice_api, {"prompt": "short"})
    text = client.get("/metrics").content.decode()
    for name in (
        'llm_codegen_requests_total{outcome="ok"}',
        'llm_codegen_requests_total{outcome="invalid"}',
        "llm_codegen_latency_seconds_bucket",
        'llm_completion_requests_total{model="gpt-4o-mini"',
        "llm_completion_ttft_seconds_bucket",
        "llm_model_status{",
    ):
        assert name in text.replace(",outcome", "").replace('provider="openai",', "") or name.split("{")[0] in text


def test_extract_code_variants() -> None:
    assert extract_code("```python\nx = 1\n```") == "x = 1\n"
    assert extract_code("Here:\n```py\na = 1\n```\nand\n```python\nb = 2\n```") == "a = 1\n\nb = 2\n"
    assert extract_code("```\nplain = True\n```") == "plain = True\n"
    assert extract_code("just_code = 1") == "just_code = 1\n"


def test_split_prompt_keeps_paragraphs_and_bounds() -> None:
    text = "\n\n".join(f"paragraph {i} " + "word " * 40 for i in range(10))
    parts = split_prompt(text, 500)
    assert len(parts) > 1 and all(len(p) <= 500 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_prompt("short one", 500) == ["short one"]
    long_line = "x" * 1200
    assert [len(p) for p in split_prompt(long_line, 500)] == [500, 500, 200]
