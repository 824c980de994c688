"""The pipeline's own edges: a model that fails, a client that breaks, a run that is not queued."""

import pytest

from codegen.backends.pipeline import backend_run_execute
from codegen.models import BackendRun
from tests.fakes import backend_script as script
from tests.fakes.backend_script import ScriptedOpenAI

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_timeouts")]
REQUIREMENTS = "A small shop API: items with a name and a price."


class Broken:
    answered_by = ""

    def generate(self, prompt: str) -> str:
        raise RuntimeError("a bug, not the user's fault")

    async def agenerate(self, prompt: str) -> str:
        raise RuntimeError("a bug, not the user's fault")


def test_an_upstream_failure_fails_the_run_with_the_reason(scripted: ScriptedOpenAI, alice: object) -> None:
    scripted.fail("500")
    run = BackendRun.objects.create(owner=alice, requirements=REQUIREMENTS)
    run = backend_run_execute(run_id=run.pk)
    assert run.status == "failed"
    assert run.error.startswith("The model could not answer")
    assert run.finished_at is not None


def test_a_crash_ends_the_run_failed_without_details_on_the_page(alice: object) -> None:
    run = BackendRun.objects.create(owner=alice, requirements=REQUIREMENTS, plan=script.PLAN)
    run = backend_run_execute(run_id=run.pk, client=Broken())
    assert run.status == "failed"
    assert run.error == "The run failed unexpectedly; the server log has the details."
    assert "bug" not in run.error


def test_only_a_queued_run_is_executed(alice: object) -> None:
    run = BackendRun.objects.create(owner=alice, requirements=REQUIREMENTS, status="finished")
    assert backend_run_execute(run_id=run.pk, client=Broken()).status == "finished"
