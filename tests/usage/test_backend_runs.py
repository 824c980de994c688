"""The backend generator's model calls are recorded (kind `backend`) and held to the owner's budget: a run
whose next call is over budget fails and says which limit."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.codegen.conftest import scripted  # noqa: F401  (the scripted OpenAI emulator fixture)
from tests.fakes import backend_script as script
from tests.fakes.backend_script import ScriptedOpenAI
from usage.models import UsageRecord
from usage.services import budget_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts")]
REQUIREMENTS = "A small shop API: items with a name and a price; add, list and fetch items."


def test_a_backend_run_over_budget_fails_naming_the_limit(
    scripted: ScriptedOpenAI,  # noqa: F811
    alice: User,
    bob: User,
    alice_api: Client,
) -> None:
    scripted.set_script("backend-plan", [script.PLAN_ANSWER])
    scripted.set_script("backend-code", [script.GOOD_CODE])
    # The plan is one request; the code would be the second in the same minute.
    budget_set(actor=bob, username="alice", requests_per_minute=1, tokens_per_day=None, cost_per_month_usd=None)
    response = alice_api.post("/api/backends", {"requirements": REQUIREMENTS}, content_type="application/json")
    assert response.status_code == 202, response.content
    run = alice_api.get(f"/api/backends/{response.json()['id']}").json()
    assert run["status"] == "failed" and "requests_per_minute" in run["error"] and "Over budget" in run["error"]
    assert [kind for kind, _ in scripted.asked] == ["backend-plan"]
    records = list(UsageRecord.objects.all())
    assert [(r.kind, r.outcome, r.user) for r in records] == [("backend", "ok", alice)]
