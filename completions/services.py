"""The one way to a model. Chat, the REST API, the OpenAI-compatible gateway and codegen all call
`completion_stream` (or `completion_collect`), which yields the events of DESIGN §5:

    start{model}  loading{model}  delta{text}  fallback{from,to,reason}  done{...}  error{code,message}

Before the first `delta`, a failing model is retried (COMPLETION_RETRIES, when retrying can help) and
then replaced by the suggested alternative; a not-loaded LM Studio model is loaded first. After text has
been sent there is no going back: a failure ends the stream with `error`, and the text sent stays sent."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from apikeys.crypto import DecryptError
from apikeys.services import apikey_for_call, apikey_mark_refused, apikey_plaintext
from completions.adapters import Adapter, ChatParams, Delta, ErrorCode, Finish, Message, ProviderError, adapter_for
from models_mgmt import services as registry
from models_mgmt.models import AIModel
from models_mgmt.services import Status
from orchestrator import observability


@dataclass(frozen=True)
class CompletionEvent:
    type: str
    data: dict[str, Any]

    def sse(self) -> bytes:
        return f"event: {self.type}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n".encode()


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

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Ready:
    adapter: Adapter
    key_id: int | None


@dataclass(frozen=True)
class _NotReady:
    code: str
    reason: str
    needs_load: bool = False


def _plan(model: AIModel, user: AbstractBaseUser | None) -> _Ready | _NotReady:
    """Can `model` be called now, and with what? Asks no network for a model known to be unusable."""
    # A cloud model's key is read once, for its status and for the call (one query, not two).
    key = None if model.is_local else apikey_for_call(user=user, provider=model.provider)
    keys = {} if key is None else {model.provider_id: key}
    status = registry.model_status(model=model, user=user, keys=keys)
    if status.status in (Status.NOT_LOADED, Status.LOADING):
        return _NotReady("not_loaded", f"{model.ref} is not loaded", needs_load=True)
    if not status.usable:
        return _NotReady(status.status, status.reason or status.status)
    if model.is_local:
        return _Ready(adapter_for(model.provider, None), None)
    if key is None:
        return _NotReady(Status.NO_KEY, f"No API key for {model.provider.get_kind_display()}")
    try:
        return _Ready(adapter_for(model.provider, apikey_plaintext(key)), key.pk)
    except DecryptError as exc:
        return _NotReady("key_unreadable", str(exc))


def _record_failure(model: AIModel, exc: ProviderError, key_id: int | None) -> None:
    registry.model_record_failure(model=model, reason=exc.message, retryable=exc.retryable)
    if exc.code == ErrorCode.AUTH and key_id is not None:
        from apikeys.models import ApiKey

        key = ApiKey.objects.filter(pk=key_id).first()
        if key is not None:
            apikey_mark_refused(key=key, reason=exc.message)


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
) -> AsyncIterator[CompletionEvent]:
    """The events of one completion, observed: a span, metrics per model, one log line at the end."""
    started = time.monotonic()
    answering, outcome, first_token = model.ref, "cancelled", False
    call = observability.tracer().start_span("llm.completion", attributes={"llm.requested_model": model.ref})
    try:
        events = _completion_events(user=user, model=model, messages=messages, params=params, fallback=fallback)
        async with aclosing(events) as stream:
            async for event in stream:
                if event.type == "start":
                    answering = event.data["model"]
                elif event.type == "delta" and not first_token:
                    first_token = True
                    observability.TIME_TO_FIRST_TOKEN.labels(*_labels(answering)).observe(time.monotonic() - started)
                elif event.type == "fallback":
                    observability.FALLBACKS.labels(
                        event.data["from"], event.data["to"], observability.reason_label(event.data.get("code", ""))
                    ).inc()
                elif event.type == "done":
                    outcome = "ok"
                elif event.type == "error":
                    outcome = observability.reason_label(event.data.get("code", "error"))
                yield event
    finally:
        elapsed = time.monotonic() - started
        observability.COMPLETIONS.labels(*_labels(answering), outcome).inc()
        observability.COMPLETION_LATENCY.labels(*_labels(answering)).observe(elapsed)
        call.set_attribute("llm.model", answering)
        call.set_attribute("llm.outcome", outcome)
        call.end()
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        observability.log.info(
            "completion",
            trace_id=observability.trace_id_of(call),
            user_id=getattr(user, "pk", None),
            requested_model=model.ref,
            model=answering,
            outcome=outcome,
            latency_ms=int(elapsed * 1000),
            **observability.prompt_fingerprint(last_user),
        )


def _labels(ref: str) -> tuple[str, str]:
    provider, _, model_id = ref.partition("/")
    return provider, model_id


async def _completion_events(
    *,
    user: AbstractBaseUser | None,
    model: AIModel,
    messages: list[Message],
    params: ChatParams | None,
    fallback: bool,
) -> AsyncIterator[CompletionEvent]:
    params = params or ChatParams()
    started = time.monotonic()
    tried: list[int] = []
    current = model
    while True:
        tried.append(current.pk)
        plan = await sync_to_async(_plan)(current, user)
        if isinstance(plan, _NotReady) and plan.needs_load:
            # Said before the (possibly long) load, so the caller can show it while it happens.
            yield CompletionEvent("loading", {"model": current.ref})
            why_not = await _load(current)
            plan = await sync_to_async(_plan)(current, user) if why_not is None else _NotReady("load_failed", why_not)
        if isinstance(plan, _NotReady):
            code, reason = plan.code, plan.reason
        else:
            attempt = _Attempt()
            # Closed explicitly, so a caller that stops listening also closes the upstream connection at once.
            async with aclosing(_call(current, plan, messages, params, started, attempt)) as events:
                async for event in events:
                    yield event
            if attempt.final:
                return
            code, reason = attempt.code, attempt.reason
        if not fallback:
            yield CompletionEvent("error", {"code": code, "message": reason, "model": current.ref})
            return
        suggestion = await sync_to_async(registry.model_suggest_alternative)(model=current, user=user, exclude=tried)
        if suggestion is None:
            message = f"{reason} — and no other model is available to answer instead."
            yield CompletionEvent("error", {"code": code, "message": message, "model": current.ref})
            return
        yield CompletionEvent(
            "fallback", {"from": current.ref, "to": suggestion.model.ref, "reason": reason, "code": code}
        )
        current = suggestion.model


@dataclass
class _Attempt:
    """How calling one model ended: `final` when the stream is over (answered, or failed after text was
    sent); otherwise `code` and `reason` say why the next model should be tried."""

    final: bool = False
    code: str = ""
    reason: str = ""


async def _call(
    model: AIModel,
    plan: _Ready,
    messages: list[Message],
    params: ChatParams,
    started: float,
    attempt: _Attempt,
) -> AsyncIterator[CompletionEvent]:
    """Call the model, retrying where it can help; records in `attempt` how it ended."""
    tries = 0
    while True:
        yield CompletionEvent("start", {"model": model.ref, "attempt": tries + 1})
        sent_text = False
        try:
            async with aclosing(plan.adapter.stream(model.model_id, messages, params)) as items:
                async for item in items:
                    if isinstance(item, Delta):
                        sent_text = True
                        yield CompletionEvent("delta", {"text": item.text})
                    elif isinstance(item, Finish):
                        if model.failure_count or model.cooldown_until:
                            # Only a model with failures on record has anything to forget: otherwise no
                            # trip to the database thread (model_record_success would do nothing either).
                            await sync_to_async(registry.model_record_success)(model=model)
                        yield CompletionEvent(
                            "done",
                            {
                                "model": model.ref,
                                "usage": item.usage.as_dict() if item.usage else None,
                                "finish_reason": item.finish_reason,
                                "latency_ms": int((time.monotonic() - started) * 1000),
                            },
                        )
                        attempt.final = True
                        return
        except ProviderError as exc:
            await sync_to_async(_record_failure)(model, exc, plan.key_id)
            if sent_text:
                # Text already reached the caller: no fallback can take it back. End clearly, keep it.
                yield CompletionEvent(
                    "error", {"code": exc.code, "message": exc.message, "model": model.ref, "partial": True}
                )
                attempt.final = True
                return
            wait = _retry_wait(exc, tries)
            if wait is None:
                attempt.code, attempt.reason = exc.code, exc.message
                return
            await asyncio.sleep(wait)
            tries += 1


async def completion_collect(
    *,
    user: AbstractBaseUser | None,
    model: AIModel,
    messages: list[Message],
    params: ChatParams | None = None,
    fallback: bool = True,
) -> CompletionResult:
    """The non-streaming form: the same events, gathered."""
    result = CompletionResult()
    parts: list[str] = []
    started = time.monotonic()
    async for event in completion_stream(user=user, model=model, messages=messages, params=params, fallback=fallback):
        if event.type == "delta":
            if result.first_token_ms is None:
                result.first_token_ms = int((time.monotonic() - started) * 1000)
            parts.append(event.data["text"])
        elif event.type == "fallback":
            result.fallbacks.append(event.data)
        elif event.type == "done":
            result.model = event.data["model"]
            result.usage = event.data["usage"]
            result.finish_reason = event.data["finish_reason"]
        elif event.type == "error":
            result.error = event.data
            result.model = result.model or event.data.get("model")
    result.text = "".join(parts)
    result.latency_ms = int((time.monotonic() - started) * 1000)
    return result
