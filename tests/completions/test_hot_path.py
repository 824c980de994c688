"""What the request path no longer does (bench/RESULTS.md): a cloud model's key is read once per plan,
and a call that succeeds on a model with no failures on record does not go to the database thread."""

from contextlib import ExitStack
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from completions import services
from completions.services import _plan, _Ready, completion_collect
from models_mgmt.services import Status
from orchestrator import deferred, observability
from tests.completions.conftest import Cloud, start_cloud

pytestmark = pytest.mark.usefixtures("fast_timeouts")
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def openai(db: None, alice: object) -> Cloud:
    with ExitStack() as stack:
        yield start_cloud(stack, "openai", alice)


def test_planning_a_cloud_call_reads_the_key_once(openai: Cloud, alice: object, django_assert_num_queries) -> None:  # noqa: ANN001
    with django_assert_num_queries(1):
        plan = _plan(openai.model, alice, None)
    assert isinstance(plan, _Ready) and plan.key is not None


def test_without_a_key_the_plan_still_says_so(openai: Cloud, charlie: object) -> None:
    plan = _plan(openai.model, charlie, None)
    assert not isinstance(plan, _Ready) and plan.code == Status.NO_KEY


def test_a_success_touches_the_database_only_to_forget_failures(openai: Cloud, alice: object) -> None:
    with mock.patch.object(services.registry, "model_record_success") as record:
        assert async_to_sync(completion_collect)(user=alice, model=openai.model, messages=HELLO).ok
        record.assert_not_called()
        openai.model.failure_count = 2  # as a failed call before this one left it
        assert async_to_sync(completion_collect)(user=alice, model=openai.model, messages=HELLO).ok
        record.assert_called_once_with(model=openai.model)


def test_the_span_metrics_and_log_line_wait_for_the_response_when_the_server_defers(
    openai: Cloud, alice: object
) -> None:
    observability.setup_tracing()
    exported = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exported))
    completions = observability.COMPLETIONS.labels("openai", "gpt-4o-mini", "ok")

    async def answer() -> tuple[int, float, int]:
        with deferred.collecting() as later:
            before = completions._value.get()
            result = await completion_collect(user=alice, model=openai.model, messages=HELLO, whole=True)
            assert result.ok
            waiting = (len(exported.get_finished_spans()), completions._value.get() - before)
            await deferred.run(later)
        return *waiting, completions._value.get() - before

    try:
        spans_before, counted_before, counted_after = async_to_sync(answer)()
    finally:
        exported.shutdown()  # keeps nothing from the tests after this one (the provider is the process's)
    # Nothing said before the response went out; all of it once it had.
    assert (spans_before, counted_before, counted_after) == (0, 0, 1)
    [span] = exported.get_finished_spans()
    assert span.name == "llm.completion" and span.attributes["llm.outcome"] == "ok"
    assert span.attributes["llm.model"] == span.attributes["llm.requested_model"] == "openai/gpt-4o-mini"
    # The call's own times, not those of the bookkeeping after it.
    assert 0 < span.end_time - span.start_time < 10**9
