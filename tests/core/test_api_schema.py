"""Schemathesis against /api/openapi.json: every operation gets generated input (bounded examples), and no
answer may be a 5xx, break its documented schema, or carry a status the document does not list."""

from collections.abc import Iterator

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import api_token_create

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
EXAMPLES = 25  # per operation: enough to hit odd strings, numbers and shapes, quick enough for every run

# Read once at collection: the document itself needs no database.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


@pytest.fixture(autouse=True)
def _in_process(db: None, settings) -> Iterator[None]:  # noqa: ANN001
    # No upstream may be reached from here: every provider points at a port that refuses at once.
    for name in ("LMSTUDIO", "OPENAI", "ANTHROPIC", "GEMINI", "MISTRAL", "GENSPARK"):
        setattr(settings, f"{name}_BASE_URL", "http://127.0.0.1:9")
    # The WSGI handler closes the database connection around each request, and the test's transaction
    # lives on it (Django's own test client disconnects the same receivers).
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def bearer(alice: User) -> dict[str, str]:
    _, raw = api_token_create(user=alice, name="schemathesis")
    # identity: the WSGI transport hands schemathesis the body as sent, and the app gzips JSON on request.
    return {"Authorization": f"Bearer {raw}", "Accept-Encoding": "identity"}


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
def test_api_answers_as_documented(case: schemathesis.Case, bearer: dict[str, str]) -> None:
    # What the issue asks of every answer. Left out: schemathesis' opinions on which generated inputs should
    # be accepted (ST202): the schema types `provider` as a string, the service refuses "" with a 400.
    case.call_and_validate(headers=bearer, checks=CHECKS)
