"""The /codegen/ page."""

import pytest
from django.test import Client

from tests.codegen.test_generate import BAD, GOOD
from tests.codegen.test_runs import SPEC
from tests.completions.conftest import Cloud

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts")]


def test_page_needs_login_and_lists_models(client: Client, alice_web: Client, openai: Cloud) -> None:
    assert client.get("/codegen/").status_code == 302
    html = alice_web.get("/codegen/").content.decode()
    assert "Code generation" in html and "gpt-4o-mini · openai" in html and "No runs yet" in html


def test_generate_on_the_page_shows_highlighted_code(alice_web: Client, openai: Cloud) -> None:
    html = alice_web.post("/codegen/generate/", {"prompt": GOOD, "model": ""}).content.decode()
    assert 'id="codegen-result"' in html and '<span class="k">def</span>' in html and "score 1.00" in html


def test_unsafe_code_on_the_page_shows_findings_not_code(alice_web: Client, openai: Cloud) -> None:
    html = alice_web.post("/codegen/generate/", {"prompt": BAD}).content.decode()
    assert 'id="codegen-error"' in html and 'id="codegen-findings"' in html and 'id="codegen-result"' not in html


def test_start_a_run_on_the_page(alice_web: Client, openai: Cloud) -> None:
    import json

    html = alice_web.post("/codegen/runs/", {"spec": json.dumps(SPEC)}, follow=True).content.decode()
    assert "queued: Pets" in html and 'data-status="failed"' in html  # the echo is no test module
    html = alice_web.post("/codegen/runs/", {"spec": "not a spec"}, follow=True).content.decode()
    assert "neither JSON nor YAML" in html or "not an OpenAPI" in html
