"""Specs an attacker sends: YAML aliases (a "billion laughs"), tags beyond plain data, deep nesting, huge
documents and broken Unicode are refused with a 400 before anything is stored; a good spec is stored as
sent, never expanded."""

import json

import pytest
from django.test import Client

from codegen.models import CodegenRun
from codegen.specs import SpecError, spec_parse, spec_text_of

pytestmark = pytest.mark.django_db
URL = "/api/codegen/runs"

LAUGHS = "\n".join(
    ["openapi: 3.0.0", "info: {title: lol, version: '1'}", "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"x{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(9))}]" for i in range(1, 9)]
    + ["paths: {/lol: {get: {summary: *a8}}}"]
)
GOOD_YAML = """openapi: 3.0.3
info:
  title: Notes
  version: 2024-01-01
paths:
  /notes:
    get:
      responses:
        200: {description: the notes}
"""


def _post(client: Client, spec: object) -> object:
    return client.post(URL, {"spec": spec}, content_type="application/json")


def test_billion_laughs_is_refused_at_once_and_nothing_is_stored(alice_api: Client) -> None:
    assert len(LAUGHS) < 1000  # a few hundred bytes that would expand to 9**9 strings (bench/spec_bomb.py)
    response = _post(alice_api, LAUGHS)
    assert response.status_code == 400 and "alias" in response.json()["detail"]
    assert not CodegenRun.objects.exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("openapi: 3.0.0\nbase: &b {x: 1}\npaths: {/a: *b}\n", r"alias \(line 3\)"),
        ("openapi: 3.0.0\npaths: !!python/object:os.system {}\n", "only plain data"),
        ("openapi: 3.0.0\nkey: !!binary aGVsbG8=\npaths: {/a: {}}\n", "only plain data"),
        ("openapi: 3.0.0\ntags: !!set {a, b}\npaths: {/a: {}}\n", "only plain data"),
        ("openapi: 3.0.0\nx: !custom 1\npaths: {/a: {}}\n", "only plain data"),
        ("openapi: 3.0.0\npaths: {/a: " + "[" * 70 + "]" * 70 + "}\n", "nests deeper than 64"),
    ],
    ids=["alias", "python-tag", "binary", "set", "custom-tag", "deep-yaml"],
)
def test_yaml_beyond_plain_data_is_refused(text: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        spec_parse(text=text)


def test_yaml_dates_stay_strings_and_numeric_keys_work() -> None:
    document = spec_parse(text=GOOD_YAML)
    assert document["info"]["version"] == "2024-01-01"
    json.dumps(document)  # plain data all the way down


@pytest.mark.parametrize("depth", [65, 100_000], ids=["just-too-deep", "recursion-bomb"])
def test_json_depth_is_capped(alice_api: Client, depth: int) -> None:
    text = '{"openapi": "3.0.0", "paths": {"/a": ' + "[" * depth + "]" * depth + "}}"
    response = _post(alice_api, text)
    assert response.status_code == 400 and "nests deeper than 64" in response.json()["detail"]


def test_a_deep_json_body_is_a_4xx_not_a_500(alice_api: Client) -> None:
    body = '{"spec": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = alice_api.post(URL, body, content_type="application/json")
    assert 400 <= response.status_code < 500 and "detail" in response.json()


def test_size_limit(alice_api: Client, settings) -> None:  # noqa: ANN001
    settings.CODEGEN_SPEC_MAX_BYTES = 1000
    big = GOOD_YAML + "# " + "x" * 1000 + "\n"
    response = _post(alice_api, big)
    assert response.status_code == 400 and "at most 1000 are accepted" in response.json()["detail"]


def test_lone_surrogate_is_a_400(alice_api: Client) -> None:
    body = '{"spec": "openapi: 3.0.0\\ninfo: {title: \\ud800}\\npaths: {/a: {get: {}}}"}'
    response = alice_api.post(URL, body, content_type="application/json")
    assert response.status_code == 400 and "not valid Unicode" in response.json()["detail"]


def test_the_spec_is_stored_as_sent(alice_api: Client) -> None:
    response = _post(alice_api, GOOD_YAML)
    assert response.status_code == 202, response.content
    run = CodegenRun.objects.get(pk=response.json()["id"])
    assert run.spec == GOOD_YAML and run.title == "Notes"  # the text, byte for byte; parsed again when run


def test_an_object_is_stored_as_its_json() -> None:
    spec = {"openapi": "3.0.0", "info": {"title": "Ünïcode"}, "paths": {"/a": {}}}
    assert json.loads(spec_text_of(raw=spec)) == spec and "Ünïcode" in spec_text_of(raw=spec)


def test_the_page_refuses_the_laughs_with_a_message(alice_web: Client) -> None:
    response = alice_web.post("/codegen/runs/", {"spec": LAUGHS}, follow=True)
    assert response.status_code == 200 and "aliases are not accepted" in response.content.decode()
    assert not CodegenRun.objects.exists()
