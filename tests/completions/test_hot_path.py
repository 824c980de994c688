"""What the request path no longer does (bench/RESULTS.md): a cloud model's key is read once per plan,
and a call that succeeds on a model with no failures on record does not go to the database thread."""

from contextlib import ExitStack
from unittest import mock

import pytest
from asgiref.sync import async_to_sync

from completions import services
from completions.services import _plan, _Ready, completion_collect
from models_mgmt.services import Status
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
