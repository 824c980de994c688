"""Usage accounting, prices and budgets.

The completion service calls two things here, and nothing else: `budget_admit` once before a request's
first upstream call (inside the trip to the database thread it makes anyway; no query at all for a user
without limits), and `usage_record_calls` once after the stream has ended, in its `finally`, so a stopped
or failed stream is recorded too. Everything else serves the Usage page and the API.

Budgets are enforced by one conditional UPDATE of the user's `BudgetCounter` row: the request is counted
and its tokens and cost reserved only if every limit still holds afterwards, so two processes racing for
the last unit cannot both get it (SQLite serialises writers; PostgreSQL re-checks the WHERE on the locked
row). After the call the reservation is replaced by what the provider reported."""

from __future__ import annotations

import asyncio
import calendar
import csv
import io
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.db.models import Case, Count, F, Sum, Value, When
from django.db.models.functions import TruncDate
from django.db.models.lookups import LessThanOrEqual
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from orchestrator import hotcache, observability
from orchestrator.errors import ServiceError
from orchestrator.text import unstorable_reason
from usage.models import Budget, BudgetCounter, Price, UsageRecord

# About four characters a token: the estimate used when a provider reports no usage, and for reservations.
CHARS_PER_TOKEN = 4
PRIVATE = "private"
GROUPS = ("day", "model", "provider", "user")
MAX_RANGE_DAYS = 366
PRICES_CACHE_KEY = "usage:prices"
_NO_OWN_BUDGET = "default"  # cached for a user without a row of their own


class UsageError(ServiceError):
    pass


class UsageForbidden(UsageError):
    status_code = 403


class UsageNotFound(UsageError):
    status_code = 404


class OverBudget(ServiceError):
    """A request refused because a limit would be exceeded: which one, and when it resets."""

    status_code = 429

    def __init__(self, limit: str, value: str, resets_at: datetime, now: datetime) -> None:
        self.limit, self.resets_at = limit, resets_at
        self.retry_after = max(1, int((resets_at - now).total_seconds() + 0.999))
        super().__init__(
            f"Over budget: this request does not fit what is left of your {limit} limit ({value} "
            f"{LIMIT_WORDS[limit]}); it resets at "
            f"{resets_at:%Y-%m-%d %H:%M:%S} UTC (in {self.retry_after} s)."
        )

    def as_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "resets_at": self.resets_at.isoformat(), "retry_after": self.retry_after}


LIMIT_WORDS = {
    "requests_per_minute": "requests per minute",
    "tokens_per_day": "tokens per day",
    "cost_per_month_usd": "USD per month",
}


# --- token estimates and prices --------------------------------------------------------------------------


def tokens_estimate(*, text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def prompt_tokens_estimate(*, messages: Iterable[dict[str, str]]) -> int:
    # A few tokens of framing per message, as chat formats add them.
    return sum(tokens_estimate(text=m.get("content", "")) + 4 for m in messages)


PriceTable = dict[tuple[str, str], tuple[Decimal, Decimal]]


def price_table() -> PriceTable:
    """Every price, from the cache (shared by every process with Redis); emptied whenever staff edit one."""
    table = cache.get(PRICES_CACHE_KEY)
    if table is None:
        table = {
            (p.provider_kind, p.model_id): (p.input_per_million_usd, p.output_per_million_usd)
            for p in Price.objects.all()
        }
        cache.set(PRICES_CACHE_KEY, table, timeout=3600)
    return table


@receiver([post_save, post_delete], sender=Price)
def _prices_changed(**kwargs: Any) -> None:
    cache.delete(PRICES_CACHE_KEY)


def cost_usd(*, table: PriceTable, kind: str, model_id: str, prompt: int, completion: int) -> Decimal:
    """What the tokens cost, exactly (to the record's 8 decimal places). A model without a price costs 0."""
    rates = table.get((kind, model_id))
    if rates is None:
        return Decimal(0)
    return ((prompt * rates[0] + completion * rates[1]) / 1_000_000).quantize(Decimal("0.00000001"))


def to_micro(cost: Decimal) -> int:
    """Millionths of a dollar for the budget counter, rounded up: a budget never undercounts."""
    return int((cost * 1_000_000).to_integral_value(rounding=ROUND_CEILING))


def cost_micro_usd(*, table: PriceTable, kind: str, model_id: str, prompt: int, completion: int) -> int:
    return to_micro(cost_usd(table=table, kind=kind, model_id=model_id, prompt=prompt, completion=completion))


# --- limits -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int | None = None
    tokens_per_day: int | None = None
    cost_per_month_usd: Decimal | None = None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_day is None and self.cost_per_month_usd is None

    @property
    def cost_micro(self) -> int | None:
        return None if self.cost_per_month_usd is None else int(self.cost_per_month_usd * 1_000_000)

    @classmethod
    def of(cls, budget: Budget | None) -> Limits:
        if budget is None:
            return cls()
        return cls(budget.requests_per_minute, budget.tokens_per_day, budget.cost_per_month_usd)


@receiver([post_save, post_delete], sender=Budget)
def _budget_changed(instance: Budget, **kwargs: Any) -> None:
    # From the API, the page or the admin alike: the next call reads the limits afresh.
    cache.delete(DEFAULT_KEY if instance.user_id is None else _user_key(instance.user_id))


def _user_key(user_id: int) -> str:
    return f"usage:budget:user:{user_id}"


DEFAULT_KEY = "usage:budget:default"


def limits_for(*, user_id: int) -> tuple[Limits, bool]:
    """The limits that apply to a user, and whether they are the user's own (else the instance default).
    Checked on every model call: kept in this process's memory (orchestrator/hotcache.py, which forgets them
    in every process as soon as any budget row is written), else read from the shared cache in one round
    trip, else from the database."""
    return hotcache.get("limits", user_id, lambda: _limits_for(user_id))


def _limits_for(user_id: int) -> tuple[Limits, bool]:
    found = cache.get_many([_user_key(user_id), DEFAULT_KEY])
    own = found.get(_user_key(user_id))
    if own is None:
        budget = Budget.objects.filter(user_id=user_id).first()
        own = Limits.of(budget) if budget else _NO_OWN_BUDGET
        cache.set(_user_key(user_id), own, timeout=settings.USAGE_LIMITS_CACHE_SECONDS)
    if own != _NO_OWN_BUDGET:
        return own, True
    default = found.get(DEFAULT_KEY)
    if default is None:
        default = Limits.of(Budget.objects.filter(is_default=True).first())
        cache.set(DEFAULT_KEY, default, timeout=settings.USAGE_LIMITS_CACHE_SECONDS)
    return default, False


# --- periods ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Periods:
    now: datetime
    minute: int
    day: int
    month: int

    @classmethod
    def at(cls, now: datetime) -> Periods:
        return cls(
            now, int(now.timestamp() // 60), now.year * 10000 + now.month * 100 + now.day, now.year * 100 + now.month
        )

    def resets(self) -> dict[str, datetime]:
        next_minute = datetime.fromtimestamp((self.minute + 1) * 60, tz=UTC)
        tomorrow = datetime.combine(self.now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        days = calendar.monthrange(self.now.year, self.now.month)[1]
        next_month = datetime(self.now.year, self.now.month, days, tzinfo=UTC) + timedelta(days=1)
        return {"requests_per_minute": next_minute, "tokens_per_day": tomorrow, "cost_per_month_usd": next_month}


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _current(field_name: str, period_field: str, period: int) -> Case:
    # A stored window that is not the current one counts as nothing spent.
    return Case(When(**{period_field: period}, then=F(field_name)), default=Value(0))


# --- admission (before the first upstream call) ----------------------------------------------------------


@dataclass
class Admission:
    """What `budget_admit` reserved, handed back to `usage_record_calls` to be settled."""

    counted: bool = False
    periods: Periods | None = None
    tokens: int = 0
    cost_micro: int = 0


def budget_admit(
    *, user: AbstractBaseUser | None, kind: str, model_id: str, prompt_tokens: int, max_tokens: int | None
) -> Admission:
    """Count one request and reserve its tokens (the prompt, estimated, plus `max_tokens`) and their cost,
    or raise OverBudget naming the limit. No database query for a user whose limits are all empty."""
    if user is None or not user.is_authenticated:
        return Admission()
    limits, _ = limits_for(user_id=user.pk)
    if limits.unlimited:
        return Admission()
    periods = Periods.at(_now())
    tokens = prompt_tokens + (max_tokens or 0)
    cost = 0
    if limits.cost_per_month_usd is not None:
        cost = cost_micro_usd(
            table=price_table(), kind=kind, model_id=model_id, prompt=prompt_tokens, completion=max_tokens or 0
        )
    admission = Admission(True, periods, tokens, cost)
    if _admit(user.pk, limits, admission):
        return admission
    # No counter yet (or over a limit): make sure the row exists, whoever creates it (another process may
    # be doing so at this moment), and ask once more. Only the first call or a refusal comes here.
    _counter_create(user.pk, periods)
    if _admit(user.pk, limits, admission):
        return admission
    raise _refusal(user.pk, limits, admission)


def _admit(user_id: int, limits: Limits, admission: Admission) -> bool:
    periods = admission.periods
    assert periods is not None
    minute = _current("minute_requests", "minute", periods.minute)
    day = _current("day_tokens", "day", periods.day)
    month = _current("month_cost_micro_usd", "month", periods.month)
    conditions = []
    if limits.requests_per_minute is not None:
        conditions.append(LessThanOrEqual(minute + 1, limits.requests_per_minute))
    if limits.tokens_per_day is not None:
        conditions.append(LessThanOrEqual(day + admission.tokens, limits.tokens_per_day))
    if limits.cost_micro is not None:
        conditions.append(LessThanOrEqual(month + admission.cost_micro, limits.cost_micro))
    updated = BudgetCounter.objects.filter(*conditions, user_id=user_id).update(
        minute=periods.minute,
        minute_requests=minute + 1,
        day=periods.day,
        day_tokens=day + admission.tokens,
        month=periods.month,
        month_cost_micro_usd=month + admission.cost_micro,
    )
    return updated == 1


def _counter_create(user_id: int, periods: Periods) -> None:
    """The user's counter, started from what the records say was spent this day and month (a counter
    created after limits were first set)."""
    if BudgetCounter.objects.filter(user_id=user_id).exists():
        return
    day_start = datetime.combine(periods.now.date(), datetime.min.time(), tzinfo=UTC)
    month_start = day_start.replace(day=1)
    records = UsageRecord.objects.filter(user_id=user_id)
    day_tokens = records.filter(created_at__gte=day_start).aggregate(
        n=Sum(F("prompt_tokens") + F("completion_tokens"))
    )["n"]
    month_cost = records.filter(created_at__gte=month_start).aggregate(n=Sum("cost_usd"))["n"]
    BudgetCounter.objects.get_or_create(
        user_id=user_id,
        defaults={
            "day": periods.day,
            "day_tokens": day_tokens or 0,
            "month": periods.month,
            "month_cost_micro_usd": int((month_cost or 0) * 1_000_000),
        },
    )


def _refusal(user_id: int, limits: Limits, admission: Admission) -> OverBudget:
    periods = admission.periods
    assert periods is not None
    counter = BudgetCounter.objects.get(user_id=user_id)
    resets = periods.resets()
    minute = counter.minute_requests if counter.minute == periods.minute else 0
    day = counter.day_tokens if counter.day == periods.day else 0
    if limits.requests_per_minute is not None and minute + 1 > limits.requests_per_minute:
        return OverBudget(
            "requests_per_minute", str(limits.requests_per_minute), resets["requests_per_minute"], periods.now
        )
    if limits.tokens_per_day is not None and day + admission.tokens > limits.tokens_per_day:
        return OverBudget("tokens_per_day", str(limits.tokens_per_day), resets["tokens_per_day"], periods.now)
    return OverBudget("cost_per_month_usd", str(limits.cost_per_month_usd), resets["cost_per_month_usd"], periods.now)


# --- records (after the stream) -------------------------------------------------------------------------


@dataclass
class CallRecord:
    """One upstream call as the completion service saw it, filled in while the stream runs."""

    model_ref: str
    provider_name: str
    provider_kind: str
    model_id: str
    private: bool
    key_id: int | None
    started_at: datetime
    started: float  # monotonic
    prompt_estimate: int
    outcome: str = "cancelled"  # until the call says otherwise: a stream stopped mid-way stays so
    latency_ms: int = 0
    first_token_ms: int | None = None
    completion_chars: int = 0
    usage: dict[str, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _labels(call: CallRecord) -> tuple[str, str]:
    return (PRIVATE, PRIVATE) if call.private else (call.provider_name, call.model_id)


def usage_record_calls(
    *, user: AbstractBaseUser | None, kind: str, calls: list[CallRecord], admission: Admission
) -> list[UsageRecord]:
    """Write one record per upstream call, count tokens and cost in Prometheus, and settle the budget
    reservation with what was really used. One trip, after the stream."""
    written = _UsageWrite.of(
        user=user, kind=kind, calls=calls, admission=admission, table=price_table() if calls else {}
    )
    # One transaction, so one commit (on SQLite, one fsync) for the records and the counter together.
    with transaction.atomic():
        written.save()
    return written.records


@dataclass
class _UsageWrite:
    """One request's records and budget settlement, made ready before any transaction opens: a read inside
    a SQLite write transaction (the price table) would make it fail at once when another process writes."""

    user: AbstractBaseUser | None
    admission: Admission
    records: list[UsageRecord]
    tokens_used: int
    cost_used: int

    @classmethod
    def of(
        cls,
        *,
        user: AbstractBaseUser | None,
        kind: str,
        calls: list[CallRecord],
        admission: Admission,
        table: PriceTable,
    ) -> _UsageWrite:
        records = []
        tokens_used, cost_used = 0, 0
        for call in calls:
            estimated = call.usage is None
            prompt = call.prompt_estimate if estimated else call.usage.get("prompt_tokens", 0)
            completion = (
                -(-call.completion_chars // CHARS_PER_TOKEN) if estimated else call.usage.get("completion_tokens", 0)
            )
            if estimated and call.completion_chars == 0 and call.outcome not in ("ok", "cancelled"):
                prompt = 0  # refused before the prompt was read: nothing to estimate
            cost = cost_usd(
                table=table, kind=call.provider_kind, model_id=call.model_id, prompt=prompt, completion=completion
            )
            tokens_used += prompt + completion
            cost_used += to_micro(cost)
            records.append(
                UsageRecord(
                    user=user if user is not None and user.is_authenticated else None,
                    created_at=call.started_at,
                    kind=kind,
                    model=call.model_ref,
                    provider=call.provider_name,
                    provider_private=call.private,
                    key_id=call.key_id,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    estimated=estimated,
                    latency_ms=call.latency_ms,
                    first_token_ms=call.first_token_ms,
                    outcome=call.outcome[:40],
                    cost_usd=cost,
                )
            )
            provider, model = _labels(call)
            outcome = observability.reason_label(call.outcome)
            observability.TOKENS.labels(provider, model, outcome, "prompt").inc(prompt)
            observability.TOKENS.labels(provider, model, outcome, "completion").inc(completion)
            observability.COST.labels(provider, model, outcome).inc(float(cost))
        return cls(user, admission, records, tokens_used, cost_used)

    def save(self) -> None:
        if self.records:
            UsageRecord.objects.bulk_create(self.records)
        user = self.user
        if user is not None and user.is_authenticated and (self.records or self.admission.counted):
            # Also without a reservation: a counter left from earlier limits stays true to what was spent.
            # Without a reservation and without a counter row the UPDATE would change nothing: not sent then.
            if self.admission.counted or _counter_exists(user.pk):
                _settle(user.pk, self.admission, self.tokens_used, self.cost_used)


def usage_record_many(*, batch: list[dict[str, Any]]) -> list[Exception | None]:
    """`usage_record_calls` for several requests in one transaction, so one commit (on SQLite, one fsync)
    for all. Each request's records keep their own savepoint: one that fails is rolled back and reported
    in its place in the answer, the others are written."""
    hotcache.heal_connections()  # called from the event loop's database thread, outside any request cycle
    with hotcache.checked():  # the caches' generation read once for the batch, not once per request
        return _record_many(batch)


def _record_many(batch: list[dict[str, Any]]) -> list[Exception | None]:
    table = price_table()
    writes: list[_UsageWrite | Exception] = []
    for kwargs in batch:
        try:
            writes.append(_UsageWrite.of(**kwargs, table=table))
        except Exception as exc:  # noqa: BLE001 - handed back to the request it belongs to
            writes.append(exc)
    try:
        with transaction.atomic():
            return [_save(write) for write in writes]
    except DatabaseError:
        # Refused at commit (a foreign key checked then, e.g. a user deleted meanwhile): one transaction
        # each, so one bad request costs nobody else their records.
        return [_save(write) for write in writes]


def _save(write: _UsageWrite | Exception) -> Exception | None:
    if isinstance(write, Exception):
        return write
    try:
        with transaction.atomic():  # a savepoint inside the batch's transaction, or a transaction alone
            write.save()
    except Exception as exc:  # noqa: BLE001 - handed back to the request it belongs to
        return exc
    return None


class _Pending:
    """Records waiting for the database thread, on one event loop, and the task writing them."""

    def __init__(self) -> None:
        self.items: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def drain(self) -> None:
        while self.items:
            batch, self.items = self.items, []
            try:
                outcomes = await sync_to_async(usage_record_many)(batch=[kwargs for kwargs, _ in batch])
            except Exception as exc:  # noqa: BLE001 - the whole transaction failed: every request hears it
                outcomes = [exc] * len(batch)
            for (_, done), outcome in zip(batch, outcomes, strict=True):
                if done.done():
                    continue
                if outcome is None:
                    done.set_result(None)
                else:
                    done.set_exception(outcome)


_pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending] = weakref.WeakKeyDictionary()


async def usage_record(
    *, user: AbstractBaseUser | None, kind: str, calls: list[CallRecord], admission: Admission
) -> None:
    """`usage_record_calls` from the event loop, returning once the records are committed. Requests that
    finish while a write is under way are written together by the next one (a group commit): a busy
    server commits once per batch, not once per request."""
    loop = asyncio.get_running_loop()
    pending = _pending.setdefault(loop, _Pending())
    done: asyncio.Future[None] = loop.create_future()
    pending.items.append(({"user": user, "kind": kind, "calls": calls, "admission": admission}, done))
    if pending.writer is None or pending.writer.done():
        pending.writer = loop.create_task(pending.drain())
    await done


def _counter_exists(user_id: int) -> bool:
    """Whether the user has a counter row, from the in-process caches: every process hears at once when one
    is created or deleted (`hotcache.watch_rows`, in apps.py), and a user without limits never gets one."""
    # The query set is made on a miss only: building it costs more than the cached answer.
    return hotcache.get("budget_counter", user_id, lambda: BudgetCounter.objects.filter(user_id=user_id).exists())


def _settle(user_id: int, admission: Admission, tokens: int, cost: int) -> None:
    """Replace the reservation with the real figures (a user without a counter row has none to settle)."""
    periods = Periods.at(_now())
    same_day = admission.periods is not None and admission.periods.day == periods.day
    same_month = admission.periods is not None and admission.periods.month == periods.month
    day_delta = tokens - (admission.tokens if same_day else 0)
    month_delta = cost - (admission.cost_micro if same_month else 0)
    BudgetCounter.objects.filter(user_id=user_id).update(
        day_tokens=Case(When(day=periods.day, then=F("day_tokens") + day_delta), default=Value(tokens)),
        day=periods.day,
        month_cost_micro_usd=Case(
            When(month=periods.month, then=F("month_cost_micro_usd") + month_delta), default=Value(cost)
        ),
        month=periods.month,
    )


# --- budgets: read and set ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetView:
    username: str | None
    limits: Limits
    own: bool
    used_requests_this_minute: int = 0
    used_tokens_today: int = 0
    used_cost_this_month_usd: Decimal = Decimal(0)
    resets: dict[str, datetime] = field(default_factory=dict)

    def remaining(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "requests_per_minute": None
            if lim.requests_per_minute is None
            else max(0, lim.requests_per_minute - self.used_requests_this_minute),
            "tokens_per_day": None
            if lim.tokens_per_day is None
            else max(0, lim.tokens_per_day - self.used_tokens_today),
            "cost_per_month_usd": None
            if lim.cost_per_month_usd is None
            else max(Decimal(0), lim.cost_per_month_usd - self.used_cost_this_month_usd),
        }


def _user_named(username: str) -> AbstractBaseUser:
    user = None if unstorable_reason(username) else get_user_model().objects.filter(username=username).first()
    if user is None:
        raise UsageNotFound(f"No user {username!r}.")
    return user


def budget_get(*, viewer: AbstractBaseUser, username: str | None) -> BudgetView:
    """A user's limits and what is left of them (the user themself or staff); `username` None: the
    instance default (anyone may read it)."""
    if username is None:
        return BudgetView(None, Limits.of(Budget.objects.filter(is_default=True).first()), own=False)
    if not viewer.is_staff and viewer.get_username() != username:
        raise UsageNotFound(f"No user {username!r}.")  # another user's budget is not even confirmed to exist
    user = _user_named(username)
    budget = Budget.objects.filter(user=user).first()
    limits = Limits.of(budget) if budget else Limits.of(Budget.objects.filter(is_default=True).first())
    periods = Periods.at(_now())
    counter = BudgetCounter.objects.filter(user=user).first()
    day_start = datetime.combine(periods.now.date(), datetime.min.time(), tzinfo=UTC)
    records = UsageRecord.objects.filter(user=user)
    # What was used comes from the records (the truth), not the counter (reservations in flight included).
    tokens = records.filter(created_at__gte=day_start).aggregate(n=Sum(F("prompt_tokens") + F("completion_tokens")))
    cost = records.filter(created_at__gte=day_start.replace(day=1)).aggregate(n=Sum("cost_usd"))
    minute = counter.minute_requests if counter is not None and counter.minute == periods.minute else 0
    return BudgetView(
        username,
        limits,
        own=budget is not None,
        used_requests_this_minute=minute,
        used_tokens_today=tokens["n"] or 0,
        used_cost_this_month_usd=cost["n"] or Decimal(0),
        resets=periods.resets(),
    )


def budget_set(
    *,
    actor: AbstractBaseUser,
    username: str | None,
    requests_per_minute: int | None,
    tokens_per_day: int | None,
    cost_per_month_usd: Decimal | None,
) -> BudgetView:
    """Staff set a user's limits (None: unlimited), or the instance default when `username` is None."""
    if not actor.is_staff:
        raise UsageForbidden("Only staff set budgets.")
    values = {
        "requests_per_minute": requests_per_minute,
        "tokens_per_day": tokens_per_day,
        "cost_per_month_usd": cost_per_month_usd,
    }
    if username is None:
        Budget.objects.update_or_create(is_default=True, user=None, defaults=values)
    else:
        Budget.objects.update_or_create(user=_user_named(username), defaults=values)
    return budget_get(viewer=actor, username=username)


def budget_clear(*, actor: AbstractBaseUser, username: str) -> BudgetView:
    """The user follows the instance default again."""
    if not actor.is_staff:
        raise UsageForbidden("Only staff set budgets.")
    user = _user_named(username)
    Budget.objects.filter(user=user).delete()
    return budget_get(viewer=actor, username=username)


# --- reports ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRow:
    key: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class UsageReport:
    group_by: str
    since: date
    until: date
    username: str | None  # None: everyone (staff)
    rows: list[UsageRow]
    totals: UsageRow


def usage_range(*, since: date | None, until: date | None) -> tuple[date, date]:
    until = until or _now().date()
    since = since or until - timedelta(days=29)
    if since > until:
        raise UsageError("'since' is after 'until'.")
    if until >= date.max - timedelta(days=1) or since.year < 1970:
        raise UsageError("The range must lie between 1970 and 9999.")
    if (until - since).days >= MAX_RANGE_DAYS:
        raise UsageError(f"The range is longer than {MAX_RANGE_DAYS} days.")
    return since, until


def usage_report(
    *, viewer: AbstractBaseUser, group_by: str, since: date | None, until: date | None, username: str | None
) -> UsageReport:
    """Requests, tokens and cost grouped by day, model, provider or user. Non-staff see their own only
    (naming a user is staff's); a private provider's name is shown to its owner alone."""
    if group_by not in GROUPS:
        raise UsageError(f"'group_by' must be one of {', '.join(GROUPS)}.")
    since, until = usage_range(since=since, until=until)
    if username and not viewer.is_staff:
        raise UsageForbidden("Only staff see another user's usage.")
    subject = _user_named(username) if username else (None if viewer.is_staff else viewer)
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    records = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
    if subject is not None:
        records = records.filter(user=subject)
    fields = {
        "day": ["day"],
        "model": ["model", "provider_private", "user_id"],
        "provider": ["provider", "provider_private", "user_id"],
        "user": ["user__username"],
    }[group_by]
    if group_by == "day":
        records = records.annotate(day=TruncDate("created_at", tzinfo=UTC))
    grouped = records.values(*fields).annotate(
        requests=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost_usd")
    )
    folded: dict[str, list[Any]] = {}
    for row in grouped:
        key = _row_key(group_by, row, viewer)
        acc = folded.setdefault(key, [0, 0, 0, Decimal(0)])
        acc[0] += row["requests"]
        acc[1] += row["prompt"] or 0
        acc[2] += row["completion"] or 0
        acc[3] += row["cost"] or Decimal(0)
    rows = [UsageRow(k, a[0], a[1], a[2], a[3]) for k, a in folded.items()]
    if group_by == "day":
        rows.sort(key=lambda r: r.key)
    else:
        rows.sort(key=lambda r: (-r.cost_usd, -r.total_tokens, -r.requests, r.key))
    totals = UsageRow(
        "total",
        sum(r.requests for r in rows),
        sum(r.prompt_tokens for r in rows),
        sum(r.completion_tokens for r in rows),
        sum((r.cost_usd for r in rows), Decimal(0)),
    )
    return UsageReport(
        group_by, since, until, username or (None if viewer.is_staff else viewer.get_username()), rows, totals
    )


def _row_key(group_by: str, row: dict[str, Any], viewer: AbstractBaseUser) -> str:
    if group_by == "day":
        return row["day"].isoformat()
    if group_by == "user":
        return row["user__username"] or "(deleted user)"
    if row["provider_private"] and row["user_id"] != viewer.pk:
        return PRIVATE  # someone else's own server: its name is theirs
    return row[group_by]


def usage_csv(*, report: UsageReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([report.group_by, "requests", "prompt_tokens", "completion_tokens", "cost_usd"])
    for row in [*report.rows, report.totals]:
        writer.writerow([row.key, row.requests, row.prompt_tokens, row.completion_tokens, f"{row.cost_usd:.6f}"])
    return out.getvalue()


# --- pages ------------------------------------------------------------------------------------------------


def usage_page_data(
    *, viewer: AbstractBaseUser, since: date | None, until: date | None, username: str | None
) -> dict[str, Any]:
    """Everything the Usage page shows: the report by day, model and provider, and the remaining budget
    of the user shown (none when staff look at everyone)."""
    reports = {
        group: usage_report(viewer=viewer, group_by=group, since=since, until=until, username=username)
        for group in ("day", "model", "provider")
    }
    shown = reports["day"].username
    budget = budget_get(viewer=viewer, username=shown) if shown else None
    return {**reports, "budget": budget, "shown": shown}


def budgets_page_data(*, actor: AbstractBaseUser) -> dict[str, Any]:
    if not actor.is_staff:
        raise UsageForbidden("Only staff set budgets.")
    budgets = Budget.objects.filter(is_default=False).select_related("user").order_by("user__username")
    return {"default": budget_get(viewer=actor, username=None), "budgets": list(budgets)}
