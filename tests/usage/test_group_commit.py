"""Usage records of requests that end together are written in one transaction (usage_record,
usage_record_many), and one request that cannot be written costs no other request its records. A budget
counter is settled whenever the user has one, and no UPDATE is sent when there is none."""

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from usage.models import BudgetCounter, UsageRecord
from usage.services import Admission, CallRecord, Periods, usage_record, usage_record_many

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _close_the_database_thread_s_connection() -> Iterator[None]:
    # The writes run in asgiref's database thread, whose connection would outlive the test database.
    yield
    asyncio.run(sync_to_async(connections.close_all)())


def call(outcome: str = "ok") -> CallRecord:
    return CallRecord(
        model_ref="openai/gpt-4o-mini",
        provider_name="openai",
        provider_kind="openai",
        model_id="gpt-4o-mini",
        private=False,
        key_id=None,
        started_at=datetime.now(tz=UTC),
        started=time.monotonic(),
        prompt_estimate=5,
        outcome=outcome,
        usage={"prompt_tokens": 5, "completion_tokens": 7},
    )


def item(user: User | None) -> dict:
    return {"user": user, "kind": "gateway", "calls": [call()], "admission": Admission()}


def test_concurrent_requests_are_all_recorded(alice: User, bob: User) -> None:
    async def many() -> None:
        await asyncio.gather(*(usage_record(**item(user)) for user in [alice, bob] * 10))

    asyncio.run(many())
    assert UsageRecord.objects.filter(user=alice).count() == 10 and UsageRecord.objects.filter(user=bob).count() == 10
    assert all(r.completion_tokens == 7 for r in UsageRecord.objects.all())


def test_a_request_that_cannot_be_written_costs_the_others_nothing(alice: User, charlie: User) -> None:
    gone = User.objects.get(pk=charlie.pk)
    charlie.delete()  # deleted while its request ran: its record's user no longer exists
    outcomes = usage_record_many(batch=[item(alice), item(gone), item(alice)])
    assert outcomes[0] is None and outcomes[2] is None and isinstance(outcomes[1], Exception)
    assert UsageRecord.objects.filter(user=alice).count() == 2 and UsageRecord.objects.count() == 2


def test_a_failure_reaches_the_request_that_waits_for_it(alice: User, charlie: User) -> None:
    gone = User.objects.get(pk=charlie.pk)
    charlie.delete()

    async def both() -> list[object]:
        return await asyncio.gather(usage_record(**item(gone)), usage_record(**item(alice)), return_exceptions=True)

    first, second = asyncio.run(both())
    assert isinstance(first, Exception) and second is None
    assert UsageRecord.objects.filter(user=alice).count() == 1


def _counter_updates(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "usage_budgetcounter"')]


def test_without_a_reservation_or_a_counter_there_is_nothing_to_settle(alice: User) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert usage_record_many(batch=[item(alice), item(alice)]) == [None, None]
    assert _counter_updates(queries) == []
    assert UsageRecord.objects.filter(user=alice).count() == 2 and not BudgetCounter.objects.exists()


def test_a_counter_left_from_earlier_limits_still_counts_what_is_spent(alice: User) -> None:
    assert usage_record_many(batch=[item(alice)]) == [None]  # no counter yet: remembered as such
    periods = Periods.at(datetime.now(tz=UTC))
    BudgetCounter.objects.create(user=alice, day=periods.day, day_tokens=100, month=periods.month)
    with CaptureQueriesContext(connection) as queries:
        assert usage_record_many(batch=[item(alice)]) == [None]
    assert len(_counter_updates(queries)) == 1
    assert BudgetCounter.objects.get(user=alice).day_tokens == 112  # 5 prompt + 7 completion tokens
    BudgetCounter.objects.filter(user=alice).delete()
    with CaptureQueriesContext(connection) as queries:
        assert usage_record_many(batch=[item(alice)]) == [None]
    assert _counter_updates(queries) == []
