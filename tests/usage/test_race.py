"""Two real server processes on one database cannot overspend a budget by racing: requests fired at both
at once are admitted exactly up to the limit."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest
from django.contrib.auth.models import User

from accounts.services import api_token_create
from tests.completions.conftest import Cloud, start_cloud
from tests.processes import asgi_server
from usage.models import UsageRecord
from usage.services import budget_set

pytestmark = pytest.mark.django_db(transaction=True)
ENV = {"LMSTUDIO_BASE_URL": "http://127.0.0.1:9", "COMPLETION_TIMEOUT": "10"}
REQUESTS = 16


@pytest.fixture
def servers(django_db_setup: None) -> Iterator[list[str]]:
    with asgi_server(**ENV) as first, asgi_server(**ENV) as second:
        yield [first, second]


@pytest.fixture
def cloud(alice: User) -> Iterator[Cloud]:
    with ExitStack() as stack:
        yield start_cloud(stack, "openai", alice)


def fire(servers: list[str], token: str, payload: dict) -> list[int]:
    """REQUESTS requests at once, alternating between the two processes."""

    def one(n: int) -> int:
        url = f"{servers[n % 2]}/api/completions"
        return httpx.post(url, json=payload, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        return list(pool.map(one, range(REQUESTS)))


def test_requests_per_minute_across_two_processes(servers: list[str], cloud: Cloud, alice: User, bob: User) -> None:
    budget_set(actor=bob, username="alice", requests_per_minute=5, tokens_per_day=None, cost_per_month_usd=None)
    _, token = api_token_create(user=alice, name="race")
    payload = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}
    first_minute = int(time.time() // 60)
    statuses = fire(servers, token, payload)
    minutes = int(time.time() // 60) - first_minute + 1
    admitted = statuses.count(200)
    assert statuses.count(429) == REQUESTS - admitted, statuses
    if minutes == 1:
        assert admitted == 5, statuses
    else:  # the burst straddled a minute boundary (the limit counts per calendar minute): 5 in each at most
        assert 5 <= admitted <= 5 * minutes, statuses
    assert cloud.fake.chat_count == admitted and UsageRecord.objects.filter(user=alice).count() == admitted


def test_tokens_per_day_across_two_processes(servers: list[str], cloud: Cloud, alice: User, bob: User) -> None:
    # Each request reserves its prompt (about 7 tokens, estimated) and its max_tokens (20): the limit holds
    # three reservations, whatever the timing.
    budget_set(actor=bob, username="alice", requests_per_minute=None, tokens_per_day=90, cost_per_month_usd=None)
    _, token = api_token_create(user=alice, name="race")
    payload = {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 20,
    }
    statuses = fire(servers, token, payload)
    admitted = statuses.count(200)
    assert admitted >= 3 and statuses.count(429) == REQUESTS - admitted, statuses
    spent = sum(r.total_tokens for r in UsageRecord.objects.filter(user=alice))
    assert 0 < spent <= 90
