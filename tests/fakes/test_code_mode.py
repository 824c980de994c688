"""The emulators' code mode: a request for code gets a fenced answer the app's screener accepts, a
test-generation prompt a pytest module for its endpoints; through the real app, end to end."""

import ast
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from django.test import Client

from codegen.models import CodegenRun, RunStatus
from codegen.screening import screen_code
from codegen.services import SYSTEM_PROMPT, extract_code, plan_from_spec, render_tests_prompt, validate_test_module
from tests.completions.conftest import Cloud, start_cloud
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.code_mode import code_answer
from tests.fakes.gemini import FakeGemini
from tests.fakes.lmstudio import FakeLMStudio
from tests.fakes.mistral import FakeMistral
from tests.fakes.openai import FakeOpenAI
from tests.fakes.serve_all import _chunk_delay, configure

README_PROMPT = "A function that returns the n-th Fibonacci number, with type hints"
SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Pets", "version": "1"},
    "paths": {
        "/pets": {
            "get": {"summary": "List pets", "responses": {"200": {"description": "the pets"}}},
            "post": {
                "summary": "Add a pet",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"201": {"description": "added"}, "422": {"description": "invalid"}},
            },
        },
        "/pets/{petId}": {
            "get": {
                "parameters": [{"name": "petId", "in": "path", "required": True}],
                "responses": {"200": {"description": "one pet"}, "404": {"description": "no such pet"}},
            }
        },
    },
}


@pytest.fixture
def openai(db: None, alice: object, settings) -> Iterator[Cloud]:  # noqa: ANN001
    """OpenAI's emulator in code mode, with a key of alice's, as the default code generation model."""
    with ExitStack() as stack:
        cloud = start_cloud(stack, "openai", alice)
        cloud.fake.code_mode = True
        settings.CODEGEN_DEFAULT_MODEL = cloud.model.ref
        yield cloud


def _functions(code: str) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize(
    ("prompt", "function"),
    [
        (README_PROMPT, "fibonacci"),
        ("Write a factorial function", "factorial"),
        ("Python code that checks whether a number is prime", "is_prime"),
        ("Implement a palindrome check", "is_palindrome"),
        ("A function counting the words of a text", "word_counts"),
    ],
)
def test_a_request_for_code_gets_screened_code_that_fits_it(prompt: str, function: str) -> None:
    code = extract_code(code_answer(system=SYSTEM_PROMPT, prompt=prompt) or "")
    assert function in _functions(code)
    screening = screen_code(code)
    assert screening.passed, screening.as_dict()


def test_the_fibonacci_answer_computes_fibonacci() -> None:
    # The emulator's code is fixed text of this repository, so running it here is safe (the app never runs it).
    namespace: dict[str, object] = {}
    exec(compile(extract_code(code_answer(system="", prompt=README_PROMPT) or ""), "answer", "exec"), namespace)
    assert [namespace["fibonacci"](n) for n in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]


def test_a_plain_chat_prompt_is_not_code() -> None:
    assert code_answer(system="You are a helpful assistant.", prompt="Hello, how are you?") is None


def test_a_test_generation_prompt_gets_a_module_testing_each_endpoint() -> None:
    prompt = render_tests_prompt(spec=SPEC, plan=plan_from_spec(SPEC), max_tests=2)
    code = extract_code(code_answer(system=SYSTEM_PROMPT, prompt=prompt) or "")
    assert validate_test_module(code).passed
    tests = {name for name in _functions(code) if name.startswith("test_")}
    assert {"test_get_pets_answers_200", "test_post_pets_answers_201", "test_get_pets_by_petid_answers_200"} <= tests
    assert len(tests) == 6  # at most 2 each, as the prompt asks
    assert '"/pets/1"' in code  # path parameters filled in


def test_chunk_delay_option() -> None:
    assert _chunk_delay("0.25") == (None, 0.25)
    assert _chunk_delay("openai=0.5") == ("openai", 0.5)
    for bad in ("nobody=1", "openai=fast", "-1", "11"):
        with pytest.raises(Exception, match="unknown emulator|not a number|between 0 and 10"):
            _chunk_delay(bad)


def test_configure_sets_code_mode_and_each_delay() -> None:
    # Not started: configure only sets attributes, so no port is needed.
    servers = [FakeLMStudio(), FakeOpenAI(), FakeAnthropic(), FakeGemini(), FakeMistral()]
    configure(servers, code_mode=True, delays={None: 0.1, "openai": 0.5, "lmstudio": 0.2})
    assert all(server.code_mode for server in servers)
    assert servers[0].stream_chunk_delay == 0.2 and servers[1].chunk_delay == 0.5
    assert [s.chunk_delay for s in servers[2:]] == [0.1, 0.1, 0.1]
    configure(servers, code_mode=False, delays={})
    assert not any(server.code_mode for server in servers) and servers[1].chunk_delay == 0.0


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_timeouts")
def test_the_readme_prompt_passes_through_the_app(alice_api: Client, openai: Cloud) -> None:
    response = alice_api.post("/llm-codegen/generate", {"prompt": README_PROMPT}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["validation_results"]["passed"] is True and "def fibonacci(n: int) -> int:" in body["code"]


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_timeouts")
def test_a_run_finishes_with_the_emulator(alice_api: Client, openai: Cloud) -> None:
    created = alice_api.post("/api/codegen/runs", {"spec": SPEC}, content_type="application/json")
    assert created.status_code == 202, created.content
    run = CodegenRun.objects.get(pk=created.json()["id"])  # Celery is eager in tests: the run is done
    assert run.status == RunStatus.FINISHED, run.error
    assert "def test_get_pets_answers_200" in run.artifact


def test_lm_studio_emulator_answers_code_too() -> None:
    with FakeLMStudio() as fake:
        fake.code_mode = True
        model = next(iter(fake.models))
        body = {
            "model": model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": README_PROMPT}],
        }
        answer = httpx.post(f"{fake.url}/v1/chat/completions", json=body, timeout=10).json()
        assert "def fibonacci" in answer["choices"][0]["message"]["content"]
        fake.code_mode = False
        echoed = httpx.post(f"{fake.url}/v1/chat/completions", json=body, timeout=10).json()
        assert echoed["choices"][0]["message"]["content"].startswith("Echo: ")
