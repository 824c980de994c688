"""What usage accounting costs on the hot path: the completion service against the loopback OpenAI
emulator, side by side in one run, interleaved call by call so the machine's drift hits every mode alike.

    python bench/usage_accounting.py [--n 300]        (or: make bench-usage)

Modes:
  off        budget check and usage record replaced by no-ops (the service as it was before accounting)
  on         accounting on, a user without limits: the budget check reads the cache (no query); the record
             is written after the stream
  limits     accounting on, a user with all three limits: one conditional UPDATE before the call, the
             record and the settling UPDATE after it

Printed: time to first token (what a user waits for) and time to the end of the call (record included),
median and p95, in milliseconds. A fresh SQLite database in a temporary VAR_DIR and the local-memory cache,
unless BENCH_DATABASE_URL (and BENCH_REDIS_URL) name others."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = tempfile.mkdtemp(prefix="bench-usage-")
# The embedded lane by default; BENCH_DATABASE_URL / BENCH_REDIS_URL measure the services lane (a database
# of its own: the script migrates it and leaves its rows there).
for name in ("DATABASE_URL", "REDIS_URL"):
    os.environ.pop(name, None)
    if os.environ.get(f"BENCH_{name}"):
        os.environ[name] = os.environ[f"BENCH_{name}"]
os.environ.update(
    DJANGO_SETTINGS_MODULE="orchestrator.settings",
    VAR_DIR=VAR,
    LMSTUDIO_BASE_URL="http://127.0.0.1:9",
    LOG_LEVEL="WARNING",
)

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from apikeys.services import apikey_create  # noqa: E402
from completions import services  # noqa: E402
from completions.events import Delta  # noqa: E402
from completions.services import completion_stream  # noqa: E402
from models_mgmt.models import AIModel  # noqa: E402
from providers.models import Provider  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402
from usage.models import UsageRecord  # noqa: E402
from usage.services import Admission, budget_set  # noqa: E402

KEY = "test-key-1234"
HELLO = [{"role": "user", "content": "hello there, how are you today?"}]


async def one_call(user: object, model: AIModel) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    async for event in completion_stream(user=user, model=model, messages=HELLO):
        if isinstance(event, Delta) and first is None:
            first = time.perf_counter() - started
    return (first or 0.0) * 1000, (time.perf_counter() - started) * 1000


def off() -> ExitStack:
    stack = ExitStack()
    stack.enter_context(mock.patch.object(services, "budget_admit", lambda **kw: Admission()))
    stack.enter_context(mock.patch.object(services, "usage_record", mock.AsyncMock(return_value=None)))
    return stack


async def run(n: int, users: dict[str, object], model: AIModel) -> dict[str, list[tuple[float, float]]]:
    samples: dict[str, list[tuple[float, float]]] = {mode: [] for mode in users}
    for mode, user in users.items():  # warm-up: pools, caches, counter rows
        for _ in range(10):
            with off() if mode == "off" else ExitStack():
                await one_call(user, model)
    for _ in range(n):
        for mode, user in users.items():
            with off() if mode == "off" else ExitStack():
                samples[mode].append(await one_call(user, model))
    return samples


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=int(os.environ.get("N", "300")), help="calls per mode")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    with FakeOpenAI(keys={KEY}) as fake:
        AIModel.objects.filter(provider__name="openai", model_id="gpt-4o-mini").delete()
        provider, _ = Provider.objects.update_or_create(
            name="openai", defaults={"kind": "openai", "base_url": f"{fake.url}/v1", "enabled": True}
        )
        model = AIModel.objects.select_related("provider").get(
            pk=AIModel.objects.create(provider=provider, model_id="gpt-4o-mini").pk
        )
        users = {}
        run_id = str(int(time.time()))  # a reused database keeps the users of earlier runs
        staff = get_user_model().objects.create_user(f"staff-{run_id}", is_staff=True)
        for mode in ("off", "on", "limits"):
            users[mode] = get_user_model().objects.create_user(f"{mode}-{run_id}")
            apikey_create(user=users[mode], provider="openai", key=KEY)
        budget_set(
            actor=staff,
            username=f"limits-{run_id}",
            requests_per_minute=10**6,
            tokens_per_day=10**12,
            cost_per_month_usd=10**6,
        )
        samples = asyncio.run(run(args.n, users, model))
    records = UsageRecord.objects.count()
    print(f"\nUsage accounting on the hot path: {args.n} calls per mode, interleaved; loopback OpenAI emulator")
    print(f"{'mode':<8} | {'TTFT p50':>9} | {'TTFT p95':>9} | {'total p50':>9} | {'total p95':>9} | vs off (total p50)")
    base = statistics.median(t for _, t in samples["off"])
    for mode, values in samples.items():
        ttft, total = [f for f, _ in values], [t for _, t in values]
        delta = statistics.median(total) - base
        print(
            f"{mode:<8} | {statistics.median(ttft):9.2f} | {pct(ttft, 0.95):9.2f} | {statistics.median(total):9.2f} | "
            f"{pct(total, 0.95):9.2f} | {delta:+.2f} ms"
        )
    print(f"(milliseconds; {records} usage records written by the 'on' and 'limits' modes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
