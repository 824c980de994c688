"""Shared machinery of the cloud LLM emulators (OpenAI, Mistral, Anthropic, Gemini).

Base URLs to give an adapter (the prefix each provider's SDK puts in its default base URL):
``FakeOpenAI`` and ``FakeMistral``: ``f"{fake.url}/v1"``; ``FakeAnthropic`` and ``FakeGemini``: ``fake.url``.

``CloudFake`` owns everything that is the same for every provider: API keys and models, the chat
request log, the deterministic echo reply (or N words for ``answer with N words``, see long_answer.py)
and the fault queue. A provider subclass only describes
its wire format through a handful of hooks (see "provider hooks" below).

Faults are queued with ``fake.fail(fault, times=None, model=None)`` and pre-empt everything else on
the chat endpoint, auth and validation included: they emulate the state of the service, not a
reaction to the request. Model listings are never affected.

What a client sees, per fault (provider-specific bodies are in each emulator's docstring):

=============  =================================================================================
refuse         TCP connect succeeds, the request is read, the socket is closed without a status
               line (httpx: ``RemoteProtocolError("Server disconnected without sending a
               response.")``). For a real ECONNREFUSED on every endpoint use ``set_down(True)``.
timeout        no status line until the client gives up (read timeout); the server lets go after
               ``hold_seconds`` (30 s), ``clear_faults()`` or ``stop()`` by closing the socket.
401 404 429    the provider's own error response for a bad key, an unknown model, a rate limit
quota 500 503  (``retry-after`` header, or Gemini's ``RetryInfo``), a spent quota (no retry hint),
529 context    a server error, unavailability, overload and a too-long prompt.
malformed      HTTP 200; non-stream: a body that is not JSON (declared ``application/json``);
               stream: a couple of text events, one corrupt ``data:`` line, then the normal rest.
cut            stream: a couple of text events, then the connection drops mid-body (incomplete
               chunked read); non-stream: 200 headers, then the connection drops before the body.
stall          like ``cut``, but the connection stays silent instead, until the client times out
               (released like ``timeout``, then dropped).
error_event    stream: HTTP 200, a couple of text events, the provider's mid-stream error event,
               then a clean end of the stream; non-stream: the same as ``529``.
=============  =================================================================================
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from .base import FakeRequest, FakeResponse, FakeServer, Route, raw_response, sse_response
from .code_mode import code_answer
from .long_answer import long_answer


class Fault(StrEnum):
    REFUSE = "refuse"
    TIMEOUT = "timeout"
    AUTH = "401"
    NOT_FOUND = "404"
    RATE_LIMIT = "429"
    QUOTA = "quota"
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    OVERLOADED = "529"
    CONTEXT = "context"
    MALFORMED = "malformed"
    CUT = "cut"
    STALL = "stall"
    ERROR_EVENT = "error_event"


# Faults answered with the provider's HTTP error instead of a reply.
HTTP_FAULTS = frozenset(
    {
        Fault.AUTH,
        Fault.NOT_FOUND,
        Fault.RATE_LIMIT,
        Fault.QUOTA,
        Fault.SERVER_ERROR,
        Fault.UNAVAILABLE,
        Fault.OVERLOADED,
        Fault.CONTEXT,
    }
)
FEW = 2  # text events a broken stream delivers before it breaks: enough to show partial output
_NEVER_SENT = b"-"  # base._send drops the connection when it pulls the chunk after ``cut_after``


@dataclass
class QueuedFault:
    fault: Fault
    remaining: int | None  # None = until clear_faults()
    model: str | None  # None = every model
    retry_after: str | None = "1"
    retry_after_ms: str | None = None


@dataclass(frozen=True)
class Reply:
    """The deterministic answer: tests can tell which model replied and to what."""

    id: str
    model: str
    words: tuple[str, ...]
    truncated: bool  # cut by the request's max-tokens limit
    prompt_tokens: int  # word counts stand in for token counts

    @property
    def output_tokens(self) -> int:
        return len(self.words)

    @property
    def pieces(self) -> list[str]:
        """One streamed piece per word, each with the white space before it; joined they give ``text``."""
        return list(self.words)

    @property
    def text(self) -> str:
        return "".join(self.words)


@dataclass
class StreamPlan:
    """A provider's stream, split so faults can break it right after the first text events."""

    head: list[Any]  # before the first text event
    texts: list[Any]  # one event per word
    tail: list[Any]  # after the last text event (finish, usage, [DONE]...)
    error: Any  # the provider's mid-stream error event
    garbage: bytes  # a corrupt event, for Fault.MALFORMED
    content_type: str | None = None  # overrides text/event-stream (Gemini without alt=sse)


@dataclass(frozen=True)
class ChatInput:
    texts: list[str]  # every prompt text (system included): what prompt tokens are counted from
    last_user: str
    max_tokens: int | None


def text_of(content: Any) -> str:
    """Text of a message's content: a string or a list of parts (OpenAI/Anthropic blocks, Gemini parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def new_id(prefix: str = "", length: int = 24) -> str:
    return f"{prefix}{uuid.uuid4().hex[:length]}"


def _str_or_none(value: str | float | None) -> str | None:
    return None if value is None else str(value)


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class _AbortingHeaders(dict[str, str]):
    # base._send only buffers the status line until the headers are written; raising while they are
    # read aborts the reply before a byte reaches the socket. socketserver then closes the socket and
    # the base server ignores the OSError.
    def items(self) -> Any:
        raise ConnectionAbortedError("emulated connection drop")


def dropped() -> FakeResponse:
    """A response that closes the connection without sending a status line."""
    return FakeResponse(headers=_AbortingHeaders())


class CloudFake(FakeServer, ABC):
    """Base of the cloud emulators; subclasses register routes and implement the provider hooks."""

    default_models: ClassVar[tuple[str, ...]] = ()
    context_window: ClassVar[int] = 128_000  # quoted by the context-length error of the "context" fault
    id_prefix: ClassVar[str] = ""

    def __init__(
        self,
        keys: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.keys: set[str] = {"test-key"} if keys is None else set(keys)
        self.models: list[str] = list(self.default_models if models is None else models)
        self.context_limit: int | None = None  # prompts with more words get a real context-length error
        self.chunk_delay: float = 0.0  # seconds between streamed events
        self.code_mode = False  # answer requests for code with code (tests/fakes/code_mode.py) instead of the echo
        self.hold_seconds: float = 30.0  # how long "timeout"/"stall" keep a connection silent
        self._cond = threading.Condition()  # guards the fault queue and the chat counters
        self._faults: list[QueuedFault] = []
        self._chat_count = 0
        self._last_chat_body: Any = None
        self._release = 0  # bumped to let held connections go

    # -- fault switches ----------------------------------------------------
    def fail(
        self,
        fault: Fault | str,
        times: int | None = None,
        model: str | None = None,
        *,
        retry_after: str | float | None = "1",
        retry_after_ms: str | float | None = None,
    ) -> None:
        """Queue ``fault`` for the next chat requests (of ``model`` only, if given).

        ``times=None`` keeps it until ``clear_faults()``; queued faults apply in order, so
        ``fail("429", times=2); fail("500", times=1)`` gives 429, 429, 500, then normal replies.
        ``retry_after``/``retry_after_ms`` shape the "429" fault (headers, or Gemini's RetryInfo).
        """
        if times is not None and times < 1:
            raise ValueError("times must be None or >= 1")
        with self._cond:
            self._faults.append(
                QueuedFault(Fault(fault), times, model, _str_or_none(retry_after), _str_or_none(retry_after_ms))
            )

    def clear_faults(self) -> None:
        """Forget every queued fault and let connections held by "timeout"/"stall" go (they are dropped)."""
        with self._cond:
            self._faults.clear()
            self._release += 1
            self._cond.notify_all()

    def on_stop(self) -> None:
        with self._cond:
            self._cond.notify_all()  # held connections re-check ``stopping``

    # -- chat log ----------------------------------------------------------
    @property
    def chat_count(self) -> int:
        with self._cond:
            return self._chat_count

    def last_chat_body(self) -> Any:
        """Parsed JSON body of the last chat request (None if there was none or it was not JSON)."""
        with self._cond:
            return self._last_chat_body

    def wait_for_chat(self, n: int = 1, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` chat requests have arrived in total; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._chat_count >= n, timeout)

    def reset_log(self) -> None:
        super().reset_log()
        with self._cond:
            self._chat_count, self._last_chat_body = 0, None

    # -- plumbing for subclasses ---------------------------------------------
    def api(self, fn: Route) -> Route:
        """Wrap a non-chat route with the provider's auth check."""

        def guarded(req: FakeRequest) -> FakeResponse:
            return self.authorize(req) or fn(req)

        return guarded

    @staticmethod
    def body_of(req: FakeRequest) -> Any:
        """The parsed JSON body, or ``...`` when it is not JSON (None means an empty body)."""
        try:
            return req.json()
        except ValueError:
            return ...

    def chat(self, req: FakeRequest) -> FakeResponse:
        """Route for every chat endpoint: faults first, then auth, validation and the echo reply."""
        body = self.body_of(req)
        fields = body if isinstance(body, dict) else {}
        model, stream = self.chat_model(req, fields), self.wants_stream(req, fields)
        with self._cond:
            self._chat_count += 1
            self._last_chat_body = None if body is ... else body
            self._cond.notify_all()
            queued = self._take_fault(model)
            release = self._release  # read with the fault, so a clear_faults() from now on frees this request
        if queued is not None:
            return self._faulty(queued, req, fields, model, stream, release)
        if denied := self.authorize(req):
            return denied
        if not isinstance(body, dict):
            return self.invalid("request body is not a JSON object")
        if problem := self.check_chat(req, body, model):
            return problem
        reply = self._reply(model, self.chat_input(body))
        if self.context_limit is not None and reply.prompt_tokens > self.context_limit:
            return self.error(Fault.CONTEXT, req, model, tokens=reply.prompt_tokens, limit=self.context_limit)
        if not stream:
            return self.complete(reply, body)
        plan = self.stream_plan(reply, req, body)
        return self._stream([*plan.head, *plan.texts, *plan.tail], plan)

    def _take_fault(self, model: str) -> QueuedFault | None:
        for queued in self._faults:
            if queued.model in (None, model):
                if queued.remaining is not None:
                    queued.remaining -= 1
                    if queued.remaining == 0:
                        self._faults.remove(queued)
                return queued
        return None

    def _hold(self, release: int) -> None:
        """Keep a connection silent until stop(), a clear_faults() after ``release`` or ``hold_seconds``."""
        with self._cond:
            self._cond.wait_for(lambda: self.stopping.is_set() or self._release != release, self.hold_seconds)

    def _reply(self, model: str, given: ChatInput) -> Reply:
        answer = code_answer(system=" ".join(given.texts[:-1]), prompt=given.last_user) if self.code_mode else None
        answer = answer or long_answer(given.last_user)
        # Words keep the white space before them, so line breaks (code in a prompt) survive the echo.
        words = re.findall(r"\s*\S+", answer or f"Echo from {model}: {given.last_user}")
        truncated = given.max_tokens is not None and given.max_tokens < len(words)
        words = words[: given.max_tokens] if truncated else words
        prompt_tokens = sum(len(t.split()) for t in given.texts)
        return Reply(new_id(self.id_prefix), model, tuple(words), truncated, prompt_tokens)

    def _stream(self, events: Iterable[Any], plan: StreamPlan, cut_after: int | None = None) -> FakeResponse:
        resp = sse_response(events, chunk_delay=self.chunk_delay, cut_after=cut_after)
        if plan.content_type:
            resp.headers["Content-Type"] = plan.content_type
        return resp

    def _stalled(self, events: list[Any], release: int) -> Iterator[Any]:
        yield from events
        self._hold(release)
        yield _NEVER_SENT

    def _faulty(
        self, queued: QueuedFault, req: FakeRequest, body: dict[str, Any], model: str, stream: bool, release: int
    ) -> FakeResponse:
        fault = queued.fault
        if fault is Fault.REFUSE:
            return dropped()
        if fault is Fault.TIMEOUT:
            self._hold(release)
            return dropped()
        if fault is Fault.ERROR_EVENT and not stream:
            fault = Fault.OVERLOADED
        if fault in HTTP_FAULTS:
            return self.error(fault, req, model, retry_after=queued.retry_after, retry_after_ms=queued.retry_after_ms)
        if not stream:
            if fault is Fault.MALFORMED:
                return raw_response("<html><body>upstream hiccup</body></html>", content_type="application/json")
            body_gen = self._stalled([], release) if fault is Fault.STALL else iter([_NEVER_SENT])
            headers = {"Content-Type": "application/json"}
            return FakeResponse(200, b"", headers, body_gen, self.chunk_delay, cut_after=0)
        # The stream faults break an otherwise normal reply, so build one from whatever was sent.
        reply = self._reply(model, self.chat_input(body))
        plan = self.stream_plan(reply, req, body)
        k = min(FEW, len(plan.texts))
        head = [*plan.head, *plan.texts[:k]]
        if fault is Fault.MALFORMED:
            return self._stream([*head, plan.garbage, *plan.texts[k:], *plan.tail], plan)
        if fault is Fault.ERROR_EVENT:
            return self._stream([*head, plan.error], plan)
        if fault is Fault.STALL:
            return self._stream(self._stalled(head, release), plan, cut_after=len(head))
        return self._stream([*head, _NEVER_SENT], plan, cut_after=len(head))  # Fault.CUT

    # -- provider hooks --------------------------------------------------------
    def chat_model(self, req: FakeRequest, body: dict[str, Any]) -> str:
        """The model a chat request asks for ("" if none)."""
        model = body.get("model")
        return model if isinstance(model, str) else ""

    def wants_stream(self, req: FakeRequest, body: dict[str, Any]) -> bool:
        return body.get("stream") is True

    @abstractmethod
    def authorize(self, req: FakeRequest) -> FakeResponse | None:
        """None if the request's credentials (and required headers) are fine, else the provider's error."""
        ...

    @abstractmethod
    def check_chat(self, req: FakeRequest, body: dict[str, Any], model: str) -> FakeResponse | None:
        """Provider validation of a chat body, unknown model included; None if it is fine."""
        ...

    @abstractmethod
    def chat_input(self, body: dict[str, Any]) -> ChatInput: ...

    @abstractmethod
    def complete(self, reply: Reply, body: dict[str, Any]) -> FakeResponse:
        """The non-streamed answer."""
        ...

    @abstractmethod
    def stream_plan(self, reply: Reply, req: FakeRequest, body: dict[str, Any]) -> StreamPlan: ...

    @abstractmethod
    def error(
        self,
        fault: Fault,
        req: FakeRequest,
        model: str,
        *,
        retry_after: str | None = "1",
        retry_after_ms: str | None = None,
        tokens: int | None = None,
        limit: int | None = None,
    ) -> FakeResponse:
        """The provider's error response for one of ``HTTP_FAULTS`` (also used for real bad keys etc.)."""
        ...

    @abstractmethod
    def invalid(self, message: str, param: str | None = None) -> FakeResponse:
        """The provider's 400 for a malformed request."""
        ...

    # -- helpers shared by the providers ------------------------------------
    def known(self, model: str) -> bool:
        return model in self.models

    @staticmethod
    def max_tokens_of(*values: Any) -> int | None:
        return next((v for v in map(_positive_int, values) if v is not None), None)

    @staticmethod
    def now() -> int:
        return int(time.time())

    def context_numbers(self, tokens: int | None, limit: int | None) -> tuple[int, int]:
        """(prompt tokens, limit) quoted by a context-length error; invented for the fault."""
        limit = limit or self.context_window
        return (tokens or limit + 1_234), limit


def paginate(items: list[Any], size: int, start: int) -> tuple[list[Any], bool]:
    """One page of ``items`` from index ``start``, and whether more follow."""
    page = items[start : start + size]
    return page, start + size < len(items)


def display_name(model: str, names: dict[str, str]) -> str:
    return names.get(model) or model.replace("-", " ").title()
