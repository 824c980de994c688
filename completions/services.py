"""The one way to a model. Chat, the REST API, the OpenAI-compatible gateway and codegen all call
`completion_stream` (or `completion_collect`), which yields the events of DESIGN §5 (`completions.events`):

    Start{model}  Loading{model}  Delta{text}  Fallback{from,to,reason,code}  Done{...}  Error{code,message}

Before the first `delta`, a failing model is retried (COMPLETION_RETRIES, when retrying can help) and
then replaced by the suggested alternative; a not-loaded LM Studio model is loaded first. After text has
been sent there is no going back: a failure ends the stream with `error`, and the text sent stays sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from completions.events import Budget, CompletionEvent, Delta, Done, Error, Fallback, Loading, Start
from models_mgmt import services as registry
from models_mgmt.models import AIModel
from models_mgmt.services import Status
from orchestrator import deferred, hotcache, observability
from orchestrator.errors import ServiceError
from orchestrator.failures import FailureCode
from providers.adapters import Adapter, ChatParams, Finish, Message, ProviderError
from providers.adapters import Delta as Piece
from providers.crypto import DecryptError
from providers.models import ApiKey
from providers.registry import adapter_for
from providers.services import apikey_for_call, apikey_mark_working, apikey_plaintext
from usage.models import RequestKind
from usage.services import (
    Admission,
    CallRecord,
    OverBudget,
    budget_admit,
    prompt_tokens_estimate,
    usage_record,
)


class ParamsError(ServiceError):
    """Parameters no model should be sent (400), e.g. a `max_tokens` no context can hold."""


def completion_params_check(*, model: AIModel, params: ChatParams) -> None:
    """`max_tokens` may not exceed the model's context length nor MAX_COMPLETION_TOKENS: an absurd value
    is the caller's mistake to be told about, not a figure to pass upstream (or to reserve a budget for)."""
    if params.max_tokens is None:
        return
    if params.max_tokens > settings.MAX_COMPLETION_TOKENS:
        raise ParamsError(
            f"max_tokens is {params.max_tokens}, above this instance's limit of {settings.MAX_COMPLETION_TOKENS}."
        )
    if model.context_length and params.max_tokens > model.context_length:
        raise ParamsError(
            f"max_tokens is {params.max_tokens}, above {model.ref}'s context length of {model.context_length} tokens."
        )


@dataclass
class CompletionResult:
    text: str = ""
    model: str | None = None
    usage: dict[str, int] | None = None
    finish_reason: str | None = None
    latency_ms: int = 0
    first_token_ms: int | None = None
    fallbacks: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    # The error as its event, and every fallback's code: for the caller's HTTP status (not sent as such).
    failure: Error | None = field(default=None, repr=False)
    fallback_codes: list[FailureCode] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Ready:
    adapter: Adapter
    key: ApiKey | None


@dataclass(frozen=True)
class _NotReady:
    code: FailureCode
    reason: str
    needs_load: bool = False


def _plan(model: AIModel, user: AbstractBaseUser | None, key_id: int | None) -> _Ready | _NotReady:
    """Can `model` be called now, and with what? Asks no network for a model known to be unusable.
    `key_id` names the caller's key for this model's provider (else their default key is used)."""
    # A cloud model's key is read once, for its status and for the call (one query, not two).
    key = None if model.is_local else apikey_for_call(user=user, provider=model.provider, key_id=key_id)
    keys = {} if key is None else {model.provider_id: key}
    status = registry.model_status(model=model, user=user, keys=keys)
    if status.status in (Status.NOT_LOADED, Status.LOADING):
        return _NotReady(FailureCode.NOT_LOADED, f"{model.ref} is not loaded", needs_load=True)
    if not status.usable:
        # An unusable model's state (no_key, unreachable, inactive, failed) is the code it fails with.
        return _NotReady(FailureCode(status.status), status.reason or status.status)
    if model.is_local:
        return _Ready(adapter_for(model.provider, None), None)
    if key is None:
        return _NotReady(FailureCode.NO_KEY, f"No API key for {model.provider.get_kind_display()}")
    try:
        return _Ready(adapter_for(model.provider, apikey_plaintext(key)), key)
    except DecryptError as exc:
        return _NotReady(FailureCode.KEY_UNREADABLE, str(exc))


def _answered(model: AIModel, key: ApiKey | None) -> None:
    """A call went through: the model is healthy, the key works, and a model named on first use joins the
    registry as the caller's own."""
    registry.model_remember(model=model)
    registry.model_record_success(model=model)
    if key is not None:
        apikey_mark_working(key=key)


async def _load(model: AIModel) -> str | None:
    """Load a local model through the worker and wait for it; None when loaded, else why not."""
    try:
        await sync_to_async(registry.model_load_start)(model=model)
    except registry.ModelError as exc:
        return exc.message
    status = await registry.model_wait_for_load(model_id=model.pk, timeout=settings.MODEL_LOAD_TIMEOUT)
    # The worker changed the row; what this process holds still says "loading".
    await sync_to_async(model.refresh_from_db)()
    if status.status == Status.LOADED:
        return None
    return status.reason or f"{model.ref} is {status.label}"


def _retry_wait(exc: ProviderError, attempt: int) -> float | None:
    """Seconds to wait before asking again, or None when asking again is pointless or too slow."""
    if not exc.retryable or attempt >= settings.COMPLETION_RETRIES:
        return None
    wait = exc.retry_after if exc.retry_after is not None else 0.25 * (2**attempt)
    return wait if wait <= settings.COMPLETION_MAX_RETRY_WAIT else None


async def completion_stream(
    *,
    user: AbstractBaseUser | None,
    model: AIModel,
    messages: list[Message],
    params: ChatParams | None = None,
    fallback: bool = True,
    key_id: int | None = None,
    kind: str = RequestKind.CHAT,
    whole: bool = False,
) -> AsyncIterator[CompletionEvent]:
    """The events of one completion, observed: a span, metrics per model, one log line at the end, and a
    usage record per upstream call, written once the stream is over (however it ended).
    `key_id` names one of the caller's keys for `model`'s provider; without it their default key is used.
    `kind` says who asked (the chat calls without it, hence its default), for the usage records.
    `whole`: ask each model for its whole answer in one response rather than a stream (`Adapter.whole`); the
    events are the same, with all the text in one `Delta`."""
    started = time.monotonic()
    seen = _Observed(requested=model.ref, labels=_labels(model.ref, model.provider.is_private))
    accounting = _Accounting(user=user, prompt_tokens=prompt_tokens_estimate(messages=messages))
    try:
        events = _completion_events(
            user=user,
            model=model,
            messages=messages,
            params=params,
            fallback=fallback,
            key_id=key_id,
            accounting=accounting,
            whole=whole,
        )
        async with aclosing(events) as stream:
            async for event in stream:
                match event:
                    case Delta():
                        if seen.first_token is None:
                            seen.first_token = time.monotonic() - started
                    case Start():
                        seen.answering = event.model
                        seen.labels = _labels(event.model, event.private)
                    case Fallback():
                        origin, target = (
                            (PRIVATE_LABEL, PRIVATE_LABEL) if event.private else (event.from_model, event.to_model)
                        )
                        seen.fallbacks.append((origin, target, observability.reason_label(event.code)))
                    case Done():
                        seen.outcome = "ok"
                    case Error():
                        seen.outcome = observability.reason_label(event.code)
                yield event
    finally:
        if accounting.calls or accounting.admission.counted:
            # Shielded: a client that goes away cancels this generator, but not the record of what it cost.
            # A server that says so writes it once its response is out (orchestrator/deferred.py).
            await deferred.now_or_after_response(
                partial(usage_record, user=user, kind=kind, calls=accounting.calls, admission=accounting.admission)
            )
        seen.elapsed = time.monotonic() - started
        seen.user_id = getattr(user, "pk", None)
        seen.last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        # The metrics, the span and the log line say nothing the caller waits for: after the response when the
        # server defers (the span keeps the call's own start and end times), else now.
        deferred.call_after_response(seen.record)


@dataclass
class _Observed:
    """What the metrics, the span and the log line say about one completion, gathered while it runs."""

    requested: str
    labels: tuple[str, str]
    answering: str = ""
    outcome: str = "cancelled"
    first_token: float | None = None  # seconds from the start
    fallbacks: list[tuple[str, str, str]] = field(default_factory=list)
    elapsed: float = 0.0
    user_id: int | None = None
    last_user: str = ""
    started_ns: int = field(default_factory=time.time_ns)

    def record(self) -> None:
        answering = self.answering or self.requested
        if self.first_token is not None:
            observability.TIME_TO_FIRST_TOKEN.labels(*self.labels).observe(self.first_token)
        for origin, target, reason in self.fallbacks:
            observability.FALLBACKS.labels(origin, target, reason).inc()
        observability.COMPLETIONS.labels(*self.labels, self.outcome).inc()
        observability.COMPLETION_LATENCY.labels(*self.labels).observe(self.elapsed)
        call = observability.tracer().start_span(
            "llm.completion",
            attributes={"llm.requested_model": self.requested, "llm.model": answering, "llm.outcome": self.outcome},
            start_time=self.started_ns,
        )
        call.end(end_time=self.started_ns + int(self.elapsed * 1e9))
        observability.log.info(
            "completion",
            trace_id=observability.trace_id_of(call),
            user_id=self.user_id,
            requested_model=self.requested,
            model=answering,
            outcome=self.outcome,
            latency_ms=int(self.elapsed * 1000),
            **observability.prompt_fingerprint(self.last_user),
        )


# A private provider's name and models are its owner's business, and /metrics is shared.
PRIVATE_LABEL = "private"


def _labels(ref: str, private: bool) -> tuple[str, str]:
    if private:
        return PRIVATE_LABEL, PRIVATE_LABEL
    provider, _, model_id = ref.partition("/")
    return provider, model_id


@dataclass
class _Accounting:
    """What the usage records need, gathered while the stream runs: the budget reservation and one
    `CallRecord` per upstream call."""

    user: AbstractBaseUser | None
    prompt_tokens: int
    admission: Admission = field(default_factory=Admission)
    calls: list[CallRecord] = field(default_factory=list)


def _admit_and_plan(
    model: AIModel, user: AbstractBaseUser | None, key_id: int | None, params: ChatParams, accounting: _Accounting
) -> _Ready | _NotReady:
    """The budget check and the first plan in one trip to the database thread: the check is a cache read
    (no query) for a user without limits, and one conditional UPDATE for a user with some."""
    accounting.admission = budget_admit(
        user=user,
        kind=model.provider.kind,
        model_id=model.model_id,
        prompt_tokens=accounting.prompt_tokens,
        max_tokens=params.max_tokens,
    )
    return _plan(model, user, key_id)


async def _completion_events(
    *,
    user: AbstractBaseUser | None,
    model: AIModel,
    messages: list[Message],
    params: ChatParams | None,
    fallback: bool,
    key_id: int | None,
    accounting: _Accounting,
    whole: bool,
) -> AsyncIterator[CompletionEvent]:
    params = params or ChatParams()
    started = time.monotonic()
    tried: list[int | None] = []
    current = model
    while True:
        tried.append(current.pk)
        # A named key is for the requested model's provider; a fallback model uses the caller's default key.
        current_key = key_id if current is model else None
        if current is model:
            try:
                # On the event loop when the caches hold the key (a cloud model of a user without limits);
                # a local model's status may ask its server, so that goes to the thread.
                plan = await hotcache.run(
                    _admit_and_plan, current, user, current_key, params, accounting, here=not current.is_local
                )
            except OverBudget as exc:
                budget = Budget(**exc.as_dict())
                yield Error(FailureCode.OVER_BUDGET, exc.message, current.ref, budget=budget)
                return
        else:
            plan = await sync_to_async(_plan)(current, user, current_key)
        if isinstance(plan, _NotReady) and plan.needs_load:
            # Said before the (possibly long) load, so the caller can show it while it happens.
            yield Loading(current.ref, private=current.provider.is_private)
            why_not = await _load(current)
            if why_not is None:
                plan = await sync_to_async(_plan)(current, user, current_key)
            else:
                plan = _NotReady(FailureCode.LOAD_FAILED, why_not)
        if isinstance(plan, _NotReady):
            code, reason = plan.code, plan.reason
        else:
            attempt = _Attempt()
            # Closed explicitly, so a caller that stops listening also closes the upstream connection at once.
            call = _call(current, plan, messages, params, started, attempt, accounting, whole)
            async with aclosing(call) as events:
                async for event in events:
                    yield event
            if attempt.final:
                return
            code, reason = attempt.code, attempt.reason
        if not fallback or (current.pk is None and code == FailureCode.NOT_FOUND):
            # A model named on first use that its provider does not have: the provider's own "not found"
            # is the answer, not some other model's.
            yield Error(code, reason, current.ref)
            return
        suggestion = await sync_to_async(registry.model_suggest_alternative)(model=current, user=user, exclude=tried)
        if suggestion is None:
            message = f"{reason} — and no other model is available to answer instead."
            yield Error(code, message, current.ref)
            return
        yield Fallback(
            current.ref,
            suggestion.model.ref,
            reason,
            code,
            private=current.provider.is_private or suggestion.model.provider.is_private,
        )
        current = suggestion.model


@dataclass
class _Attempt:
    """How calling one model ended: `final` when the stream is over (answered, or failed after text was
    sent); otherwise `code` and `reason` say why the next model should be tried."""

    final: bool = False
    code: FailureCode = FailureCode.SERVER
    reason: str = ""


async def _call(
    model: AIModel,
    plan: _Ready,
    messages: list[Message],
    params: ChatParams,
    started: float,
    attempt: _Attempt,
    accounting: _Accounting,
    whole: bool,
) -> AsyncIterator[CompletionEvent]:
    """Call the model, retrying where it can help; records in `attempt` how it ended, and every upstream
    call (each try) in `accounting`."""
    ask = plan.adapter.whole if whole else plan.adapter.stream
    tries = 0
    while True:
        yield Start(model.ref, tries + 1, private=model.provider.is_private)
        sent_text = False
        record = _call_record(model, plan, accounting.prompt_tokens)
        accounting.calls.append(record)
        try:
            async with aclosing(ask(model.model_id, messages, params)) as items:
                async for item in items:
                    if isinstance(item, Piece):
                        if not sent_text:
                            record.first_token_ms = int((time.monotonic() - record.started) * 1000)
                        sent_text = True
                        record.completion_chars += len(item.text)
                        record.latency_ms = int((time.monotonic() - record.started) * 1000)
                        yield Delta(item.text)
                    elif isinstance(item, Finish):
                        record.outcome = "ok"
                        record.usage = item.usage.as_dict() if item.usage else None
                        record.latency_ms = int((time.monotonic() - record.started) * 1000)
                        key_failing = plan.key is not None and plan.key.failing_reason
                        if model.pk is None or model.failure_count or model.cooldown_until or key_failing:
                            # Only then is there anything to record: otherwise no trip to the database thread.
                            await sync_to_async(_answered)(model, plan.key)
                        yield Done(
                            model.ref,
                            item.usage.as_dict() if item.usage else None,
                            item.finish_reason,
                            int((time.monotonic() - started) * 1000),
                        )
                        attempt.final = True
                        return
        except ProviderError as exc:
            record.outcome = str(exc.code)
            record.latency_ms = int((time.monotonic() - record.started) * 1000)
            await sync_to_async(registry.health_record_failure)(
                model=model, error=exc, key_id=plan.key.pk if plan.key else None
            )
            if sent_text:
                # Text already reached the caller: no fallback can take it back. End clearly, keep it.
                yield Error(exc.code, exc.message, model.ref, partial=True)
                attempt.final = True
                return
            wait = _retry_wait(exc, tries)
            if wait is None:
                attempt.code, attempt.reason = exc.code, exc.message
                return
            await asyncio.sleep(wait)
            tries += 1


def _call_record(model: AIModel, plan: _Ready, prompt_tokens: int) -> CallRecord:
    return CallRecord(
        model_ref=model.ref,
        provider_name=model.provider.name,
        provider_kind=model.provider.kind,
        model_id=model.model_id,
        private=model.provider.is_private,
        key_id=plan.key.pk if plan.key else None,
        started_at=datetime.now(tz=UTC),
        started=time.monotonic(),
        prompt_estimate=prompt_tokens,
    )


async def completion_collect(
    *,
    user: AbstractBaseUser | None,
    model: AIModel,
    messages: list[Message],
    params: ChatParams | None = None,
    fallback: bool = True,
    key_id: int | None = None,
    kind: str = RequestKind.CHAT,
    whole: bool = False,
) -> CompletionResult:
    """The non-streaming form: the same events, gathered. `whole`: as for `completion_stream` (for a caller
    that waits for the whole answer anyway: no stream upstream to read piece by piece)."""
    result = CompletionResult()
    parts: list[str] = []
    started = time.monotonic()
    events = completion_stream(
        user=user,
        model=model,
        messages=messages,
        params=params,
        fallback=fallback,
        key_id=key_id,
        kind=kind,
        whole=whole,
    )
    async for event in events:
        match event:
            case Delta():
                if result.first_token_ms is None:
                    result.first_token_ms = int((time.monotonic() - started) * 1000)
                parts.append(event.text)
            case Fallback():
                result.fallbacks.append(event.as_data())
                result.fallback_codes.append(event.code)
            case Done():
                result.model = event.model
                result.usage = event.usage
                result.finish_reason = event.finish_reason
            case Error():
                result.error = event.as_data()
                result.failure = event
                result.model = result.model or event.model
    result.text = "".join(parts)
    result.latency_ms = int((time.monotonic() - started) * 1000)
    return result
