"""Provider adapters, one per wire format: OpenAI's chat completions (also Mistral, Genspark, LM Studio and
any OpenAI-compatible server), Anthropic's Messages and Gemini's generateContent.

Each turns a chat into the provider's request, its answer (whole or streamed) into `Delta`/`Finish`, and
every failure into a `ProviderError` whose `code` says whether trying again can help."""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from django.conf import settings

from orchestrator.failures import FailureCode
from providers import guard
from providers.http import display_url, upstream_async_client, upstream_request, upstream_send

Message = dict[str, str]


@dataclass(frozen=True)
class ChatParams:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finish:
    finish_reason: str | None
    usage: Usage | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    usage: Usage | None


@dataclass(frozen=True)
class RemoteModel:
    id: str
    display_name: str = ""
    context_length: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


# What a failure was, in words that carry nothing of the upstream's answer: for users who may not read
# the provider's own words (someone else's server, someone else's request).
GENERIC_REASONS = {
    FailureCode.AUTH: "the provider refused the request",
    FailureCode.NOT_FOUND: "the provider does not have this model",
    FailureCode.CONTEXT: "the request was too long for the model",
    FailureCode.BAD_REQUEST: "the provider refused the request as invalid",
    FailureCode.QUOTA: "the provider's quota is spent",
    FailureCode.RATE_LIMITED: "the provider is limiting the request rate",
    FailureCode.SERVER: "the provider failed",
    FailureCode.OVERLOADED: "the provider is overloaded",
    FailureCode.TIMEOUT: "the provider did not answer in time",
    FailureCode.CONNECT: "the provider could not be reached",
    FailureCode.BAD_RESPONSE: "the provider's answer could not be read",
    FailureCode.STREAM_CUT: "the provider's answer broke off",
    FailureCode.STALLED: "the provider's answer stalled",
    FailureCode.BLOCKED: "the address is not allowed",
}


# Failures that may pass if asked again; the rest go straight to a fallback model.
RETRYABLE = frozenset(
    {
        FailureCode.RATE_LIMITED,
        FailureCode.SERVER,
        FailureCode.OVERLOADED,
        FailureCode.TIMEOUT,
        FailureCode.CONNECT,
        FailureCode.BAD_RESPONSE,
        FailureCode.STREAM_CUT,
        FailureCode.STALLED,
    }
)


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        code: FailureCode,
        status_code: int | None = None,
        retry_after: float | None = None,
        label: str = "provider",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.retry_after = retry_after
        self.label = label

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE

    @property
    def public_message(self) -> str:
        """The failure in generic words, e.g. "OpenAI: the provider refused the request: HTTP 401"."""
        reason = GENERIC_REASONS.get(self.code, "the request failed")
        status = f": HTTP {self.status_code}" if self.status_code else ""
        return f"{self.label}: {reason}{status}"


def _loads(data: str | bytes) -> Any:
    """JSON of a stream event (one per event of every stream): orjson, which is several times faster, or json
    for what only json reads (NaN, an escaped lone surrogate), so the same input is accepted as before (orjson
    reads an integer over 64 bits as a float: no count a provider reports comes near). Either raises a
    ValueError on what is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _status_code_class(status: int) -> FailureCode:
    if status in (401, 403):
        return FailureCode.AUTH
    if status == 404:
        return FailureCode.NOT_FOUND
    if status == 413:
        return FailureCode.CONTEXT
    if status == 429:
        return FailureCode.RATE_LIMITED
    if status == 529:
        return FailureCode.OVERLOADED
    if status in (408, 409) or status >= 500:
        return FailureCode.SERVER
    return FailureCode.BAD_REQUEST


def _retry_after(headers: httpx.Headers) -> float | None:
    """`retry-after-ms` (OpenAI) is more precise than `retry-after` (seconds), so it wins."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP date: rare from these APIs, and a plain backoff is fine then
    return None


def _looks_like_context_overflow(message: str) -> bool:
    return bool(re.search(r"context.{0,20}(length|window)|too long|maximum context|exceeds.{0,30}token", message, re.I))


class Adapter(ABC):
    """What every wire format shares: the HTTP exchange, timeouts, SSE framing and error mapping."""

    label = "provider"

    def __init__(self, *, base_url: str, api_key: str | None, label: str | None = None, guarded: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or None
        self.guarded = guarded
        if label:
            self.label = label

    # --- what a wire format defines ---
    @abstractmethod
    def headers(self) -> dict[str, str]: ...

    @abstractmethod
    def chat_request(
        self, model: str, messages: list[Message], params: ChatParams, stream: bool
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """(path, JSON body, query parameters) of a chat request."""

    @abstractmethod
    def parse_completion(self, payload: Any) -> Completion: ...

    @abstractmethod
    def stream_items(self, events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[Delta | Finish]: ...

    @abstractmethod
    def error_of(self, status: int, payload: Any, headers: httpx.Headers) -> ProviderError: ...

    @abstractmethod
    async def list_models(self) -> list[RemoteModel]: ...

    async def check_key(self) -> None:
        """The cheapest authenticated call: listing models."""
        await self.list_models()

    # --- shared machinery ---
    def _scrub(self, message: str) -> str:
        # A provider may echo what it was sent; the key must not travel on in an error message.
        if self.api_key and self.api_key in message:
            message = message.replace(self.api_key, "[key]")
        return message[:500]

    def _error(self, message: str, **kwargs: Any) -> ProviderError:
        return ProviderError(self._scrub(f"{self.label}: {message}"), label=self.label, **kwargs)

    @asynccontextmanager
    async def _exchange(
        self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None, first_byte: float
    ) -> AsyncIterator[httpx.Response]:
        client = upstream_async_client(self.base_url, guarded=self.guarded)
        # httpx's read timeout also runs while waiting for the headers, so it cannot be the idle limit
        # between stream chunks (shorter than the first-byte limit); both are enforced here instead, and
        # httpx's only backs them up.
        backstop = max(first_byte, settings.COMPLETION_IDLE_TIMEOUT) + 5
        timeout = httpx.Timeout(backstop, connect=settings.UPSTREAM_CONNECT_TIMEOUT, pool=first_byte)
        headers = self.headers()
        request = upstream_request(client, method, path, query=query, headers=headers, body=body, timeout=timeout)
        try:
            async with asyncio.timeout(first_byte):
                response = await upstream_send(client, request)
        except TimeoutError:
            raise self._error(f"no answer within {first_byte:g} s", code=FailureCode.TIMEOUT) from None
        except guard.BlockedByGuard as exc:
            # Nothing was sent and nothing read: the message says only why the address is not allowed.
            raise self._error(exc.message, code=FailureCode.BLOCKED) from None
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise self._error(f"cannot connect to {display_url(self.base_url)}", code=FailureCode.CONNECT) from None
        except httpx.TimeoutException:
            raise self._error(f"no answer within {first_byte:g} s", code=FailureCode.TIMEOUT) from None
        except httpx.HTTPError as exc:
            raise self._error(f"connection failed ({type(exc).__name__})", code=FailureCode.CONNECT) from None
        try:
            if response.status_code >= 400:
                try:
                    async with asyncio.timeout(settings.COMPLETION_IDLE_TIMEOUT):
                        raw = await response.aread()
                    payload: Any = json.loads(raw)
                except (ValueError, TimeoutError, httpx.HTTPError):
                    payload = None
                raise self.error_of(response.status_code, payload, response.headers)
            yield response
        finally:
            await response.aclose()

    async def _json(
        self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None, first_byte: float
    ) -> Any:
        async with self._exchange(method, path, body=body, query=query, first_byte=first_byte) as response:
            try:
                async with asyncio.timeout(settings.COMPLETION_IDLE_TIMEOUT):
                    raw = await response.aread()
            except (TimeoutError, httpx.ReadTimeout):
                raise self._error("the answer stalled", code=FailureCode.STALLED) from None
            except httpx.HTTPError:
                raise self._error(
                    "the connection broke before the answer was complete", code=FailureCode.STREAM_CUT
                ) from None
        try:
            return _loads(raw)
        except ValueError:
            raise self._error("sent a reply that is not JSON", code=FailureCode.BAD_RESPONSE) from None

    async def complete(
        self, model: str, messages: list[Message], params: ChatParams, *, timeout: float | None = None
    ) -> Completion:
        """The whole answer in one response. `timeout`: for the whole answer to begin, which the model's whole
        generation comes before (default COMPLETION_TIMEOUT, for calls with next to nothing to generate)."""
        path, body, query = self.chat_request(model, messages, params, stream=False)
        first_byte = settings.COMPLETION_TIMEOUT if timeout is None else timeout
        payload = await self._json("POST", path, body=body, query=query, first_byte=first_byte)
        try:
            return self.parse_completion(payload)
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._error("sent a reply of an unexpected shape", code=FailureCode.BAD_RESPONSE) from None

    async def whole(self, model: str, messages: list[Message], params: ChatParams) -> AsyncIterator[Delta | Finish]:
        """The whole answer asked for in one response, as the items a stream gives (its text, then `Finish`),
        for a caller that wants it whole anyway: no stream to read piece by piece, here or upstream. It must
        arrive within COMPLETION_WHOLE_TIMEOUT; there is no stall to detect between pieces."""
        completion = await self.complete(model, messages, params, timeout=settings.COMPLETION_WHOLE_TIMEOUT)
        if completion.text:
            yield Delta(completion.text)
        yield Finish(completion.finish_reason, completion.usage)

    async def stream(self, model: str, messages: list[Message], params: ChatParams) -> AsyncIterator[Delta | Finish]:
        """Text as it comes, then one `Finish`. A stream that breaks, stalls for COMPLETION_IDLE_TIMEOUT
        or ends without its end marker raises `ProviderError`, after the text already yielded."""
        path, body, query = self.chat_request(model, messages, params, stream=True)
        async with self._exchange("POST", path, body=body, query=query, first_byte=settings.COMPLETION_TIMEOUT) as r:
            finished = False
            try:
                # The idle limit applies to each read from the network, not to each line: most lines come
                # out of a chunk already read, and need neither a timer nor a trip through httpx's decoders.
                chunks = _idle_limited(r.aiter_bytes(), settings.COMPLETION_IDLE_TIMEOUT)
                async for item in self.stream_items(_sse(chunks)):
                    if isinstance(item, Finish) and not finished:
                        # Before the Finish is handed on: a caller typically stops reading (and closes this
                        # generator) as soon as it has it.
                        finished = True
                        await _drain(chunks)
                    yield item
            except (httpx.ReadTimeout, TimeoutError):
                raise self._error(
                    f"the stream stalled for {settings.COMPLETION_IDLE_TIMEOUT:g} s", code=FailureCode.STALLED
                ) from None
            except httpx.HTTPError:
                raise self._error("the stream was cut off", code=FailureCode.STREAM_CUT) from None
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                raise self._error("sent a stream event that could not be read", code=FailureCode.BAD_RESPONSE) from None
            if not finished:
                raise self._error("the stream ended before it was complete", code=FailureCode.STREAM_CUT)


async def _idle_limited(chunks: AsyncIterator[bytes], idle: float) -> AsyncIterator[bytes]:
    """The chunks, failing with TimeoutError when none comes for `idle` seconds."""
    iterator = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        yield chunk


# What may follow the end marker ([DONE], message_stop) before the body ends: a blank line and the chunked
# framing's last chunk, normally in the same packet. Far more, or a wait, is not worth the connection.
_DRAIN_CHUNKS = 16
_DRAIN_SECONDS = 0.5


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read a finished stream to its end, so that the keep-alive connection goes back to the pool: a
    response closed with its body unread closes the connection, and the next request to the upstream pays
    a new TCP (and TLS) handshake. A stream that does not end promptly is simply closed."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            for _ in range(_DRAIN_CHUNKS):
                await anext(chunks)
    except (StopAsyncIteration, TimeoutError, httpx.HTTPError):
        pass


# SSE ends a line at CRLF, LF or CR (and at nothing else: not at U+2028 or a form feed, as str.splitlines would).
_LINE_END = re.compile(r"\r\n|\r|\n")


class _SSEParser:
    """Server-sent events as (event name, data), per the SSE framing rules, from text in pieces as it was read
    (a line, or the CRLF ending it, may be split between two pieces)."""

    def __init__(self) -> None:
        self.event: str | None = None
        self.data: list[str] = []
        self.rest = ""  # the text after the last complete line

    def feed(self, text: str) -> list[tuple[str | None, str]]:
        text = self.rest + text
        # A CR at the very end may be the first half of a CRLF: the next piece must not read its LF as an
        # empty line (which dispatches the event), so the CR waits with the unfinished line.
        held = text.endswith("\r")
        lines = _LINE_END.split(text[:-1] if held else text)
        self.rest = lines.pop() + ("\r" if held else "")
        return self._lines(lines)

    def end(self) -> list[tuple[str | None, str]]:
        """The body ended: its last line counts even without a line break, and so does its last event."""
        events = self._lines(_LINE_END.split(self.rest))
        if self.data:
            events.append((self.event, "\n".join(self.data)))
        self.event, self.data, self.rest = None, [], ""
        return events

    def _lines(self, lines: list[str]) -> list[tuple[str | None, str]]:
        events: list[tuple[str | None, str]] = []
        for line in lines:
            if not line:
                if self.data:
                    events.append((self.event, "\n".join(self.data)))
                self.event, self.data = None, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self.event = value
            elif name == "data":
                self.data.append(value)
        return events


async def _sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str | None, str]]:
    """The events of a body read in chunks (a UTF-8 character may be split between two of them)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parser = _SSEParser()
    async for chunk in chunks:
        for item in parser.feed(decoder.decode(chunk)):
            yield item
    for item in parser.feed(decoder.decode(b"", final=True)) + parser.end():
        yield item


# --- OpenAI chat completions (OpenAI, Mistral, Genspark, LM Studio, any OpenAI-compatible server) ---------

OPENAI_FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls"}


class OpenAIAdapter(Adapter):
    label = "OpenAI"
    # Asks for a usage chunk at the end of a stream; servers with a strict schema refuse the field.
    stream_usage_option = True

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def chat_request(
        self, model: str, messages: list[Message], params: ChatParams, stream: bool
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
        if stream and self.stream_usage_option:
            body["stream_options"] = {"include_usage": True}
        for name in ("max_tokens", "temperature", "top_p", "stop"):
            value = getattr(params, name)
            if value is not None:
                body[name] = value
        return "/chat/completions", body, {}

    def parse_completion(self, payload: Any) -> Completion:
        choice = payload["choices"][0]
        return Completion(
            text=choice["message"].get("content") or "",
            finish_reason=OPENAI_FINISH.get(choice.get("finish_reason"), choice.get("finish_reason")),
            usage=_openai_usage(payload.get("usage")),
        )

    async def stream_items(self, events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[Delta | Finish]:
        finish_reason: str | None = None
        usage: Usage | None = None
        async for _, data in events:
            if data.strip() == "[DONE]":
                yield Finish(finish_reason, usage)
                return
            chunk = _loads(data)
            if "error" in chunk:  # an error after HTTP 200 comes as a data line
                raise self.error_of(500, chunk, httpx.Headers())
            usage = _openai_usage(chunk.get("usage")) or usage
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield Delta(text)
                if choice.get("finish_reason"):
                    finish_reason = OPENAI_FINISH.get(choice["finish_reason"], choice["finish_reason"])

    def error_of(self, status: int, payload: Any, headers: httpx.Headers) -> ProviderError:
        err = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("type") or "")
            kind = f"{err.get('type') or ''} {err.get('code') or ''}"
        else:
            message = str(err or (payload or {}).get("message") or (payload or {}).get("detail") or "")
            kind = f"{(payload or {}).get('type') or ''} {(payload or {}).get('code') or ''}" if payload else ""
        code = _status_code_class(status)
        if "insufficient_quota" in kind or "billing" in kind:
            code = FailureCode.QUOTA
        elif (
            status == 429 and not _retry_after(headers) and re.search(r"quota|usage limit|billing|spend", message, re.I)
        ):
            code = FailureCode.QUOTA  # a spent allowance, not a burst: waiting a second will not help
        elif "model_not_found" in kind or "invalid_model" in kind:
            code = FailureCode.NOT_FOUND
        elif "context_length_exceeded" in kind or (
            code == FailureCode.BAD_REQUEST and _looks_like_context_overflow(message)
        ):
            code = FailureCode.CONTEXT
        elif "invalid_api_key" in kind:
            code = FailureCode.AUTH
        return self._error(
            f"HTTP {status}: {message or 'error'}", code=code, status_code=status, retry_after=_retry_after(headers)
        )

    async def list_models(self) -> list[RemoteModel]:
        payload = await self._json("GET", "/models", first_byte=settings.UPSTREAM_READ_TIMEOUT)
        try:
            return [
                RemoteModel(id=str(m["id"]), context_length=m.get("context_length") or m.get("max_context_length"))
                for m in payload["data"]
            ]
        except (KeyError, TypeError):
            raise self._error("sent a model list of an unexpected shape", code=FailureCode.BAD_RESPONSE) from None


def _openai_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


class MistralAdapter(OpenAIAdapter):
    """OpenAI's wire format, but a strict schema: `stream_options` is refused (usage comes in the last chunk)."""

    label = "Mistral"
    stream_usage_option = False


class GensparkAdapter(OpenAIAdapter):
    """Genspark has no public API; its own app uses an OpenAI-compatible proxy, which may not list models."""

    label = "Genspark"

    async def check_key(self) -> None:
        try:
            await self.list_models()
        except ProviderError as exc:
            if exc.code != FailureCode.NOT_FOUND:
                raise
            await self.complete("gpt-4o-mini", [{"role": "user", "content": "ping"}], ChatParams(max_tokens=1))


# --- Anthropic Messages ---------------------------------------------------------------------------------

ANTHROPIC_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
ANTHROPIC_ERRORS = {
    "authentication_error": FailureCode.AUTH,
    "permission_error": FailureCode.AUTH,
    "not_found_error": FailureCode.NOT_FOUND,
    "request_too_large": FailureCode.CONTEXT,
    "billing_error": FailureCode.QUOTA,
    "rate_limit_error": FailureCode.RATE_LIMITED,
    "api_error": FailureCode.SERVER,
    "overloaded_error": FailureCode.OVERLOADED,
}


def _split_system(messages: list[Message]) -> tuple[str, list[Message]]:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return system, [m for m in messages if m["role"] != "system"]


class AnthropicAdapter(Adapter):
    label = "Anthropic"

    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key or "", "anthropic-version": "2023-06-01"}

    def chat_request(
        self, model: str, messages: list[Message], params: ChatParams, stream: bool
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        system, turns = _split_system(messages)
        body: dict[str, Any] = {
            "model": model,
            "messages": turns,
            # Required by this API; other providers let the model decide.
            "max_tokens": params.max_tokens or settings.COMPLETION_DEFAULT_MAX_TOKENS,
            "stream": stream,
        }
        if system:
            body["system"] = system
        if params.temperature is not None:
            body["temperature"] = params.temperature
        if params.top_p is not None:
            body["top_p"] = params.top_p
        if params.stop:
            body["stop_sequences"] = params.stop
        return "/v1/messages", body, {}

    def parse_completion(self, payload: Any) -> Completion:
        text = "".join(block.get("text", "") for block in payload["content"] if block.get("type") == "text")
        usage = payload.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=ANTHROPIC_FINISH.get(payload.get("stop_reason"), payload.get("stop_reason")),
            usage=Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)),
        )

    async def stream_items(self, events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[Delta | Finish]:
        usage = Usage()
        finish_reason: str | None = None
        async for event, data in events:
            payload = _loads(data)
            kind = event or payload.get("type")
            if kind == "error":  # may come after HTTP 200, e.g. overloaded mid-answer
                raise self.error_of(500, payload, httpx.Headers())
            if kind == "message_start":
                usage.prompt_tokens = int(payload["message"].get("usage", {}).get("input_tokens") or 0)
            elif kind == "content_block_delta":
                text = payload["delta"].get("text")
                if text:
                    yield Delta(text)
            elif kind == "message_delta":
                stop = payload.get("delta", {}).get("stop_reason")
                finish_reason = ANTHROPIC_FINISH.get(stop, stop) if stop else finish_reason
                usage.completion_tokens = int(payload.get("usage", {}).get("output_tokens") or 0)
            elif kind == "message_stop":
                yield Finish(finish_reason, usage)
                return

    def error_of(self, status: int, payload: Any, headers: httpx.Headers) -> ProviderError:
        err = payload.get("error") if isinstance(payload, dict) else None
        err = err if isinstance(err, dict) else {}
        message = str(err.get("message") or "error")
        code = ANTHROPIC_ERRORS.get(str(err.get("type")), _status_code_class(status))
        if code == FailureCode.BAD_REQUEST and _looks_like_context_overflow(message):
            code = FailureCode.CONTEXT
        retry_after = _retry_after(headers)
        if code == FailureCode.RATE_LIMITED and status == 429 and retry_after is None:
            code = FailureCode.QUOTA  # a spend cap answers 429 with no retry-after: waiting will not help
        return self._error(f"HTTP {status}: {message}", code=code, status_code=status, retry_after=retry_after)

    async def list_models(self) -> list[RemoteModel]:
        payload = await self._json(
            "GET", "/v1/models", query={"limit": "100"}, first_byte=settings.UPSTREAM_READ_TIMEOUT
        )
        try:
            return [RemoteModel(id=m["id"], display_name=m.get("display_name") or "") for m in payload["data"]]
        except (KeyError, TypeError):
            raise self._error("sent a model list of an unexpected shape", code=FailureCode.BAD_RESPONSE) from None

    async def check_key(self) -> None:
        await self._json("GET", "/v1/models", query={"limit": "1"}, first_byte=settings.UPSTREAM_READ_TIMEOUT)


# --- Gemini generateContent -----------------------------------------------------------------------------

GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}


class GeminiAdapter(Adapter):
    label = "Gemini"

    def headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key or ""}

    def chat_request(
        self, model: str, messages: list[Message], params: ChatParams, stream: bool
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        system, turns = _split_system(messages)
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
                for m in turns
            ]
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        config = {
            "maxOutputTokens": params.max_tokens,
            "temperature": params.temperature,
            "topP": params.top_p,
            "stopSequences": params.stop,
        }
        config = {k: v for k, v in config.items() if v is not None}
        if config:
            body["generationConfig"] = config
        if stream:
            return f"/v1beta/models/{model}:streamGenerateContent", body, {"alt": "sse"}
        return f"/v1beta/models/{model}:generateContent", body, {}

    @staticmethod
    def _pieces(payload: dict[str, Any]) -> tuple[str, str | None, Usage | None]:
        candidate = (payload.get("candidates") or [{}])[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p.get("text", "") for p in parts)
        reason = candidate.get("finishReason")
        meta = payload.get("usageMetadata")
        usage = (
            Usage(int(meta.get("promptTokenCount") or 0), int(meta.get("candidatesTokenCount") or 0)) if meta else None
        )
        return text, GEMINI_FINISH.get(reason, reason.lower()) if reason else None, usage

    def parse_completion(self, payload: Any) -> Completion:
        if not payload.get("candidates"):
            raise KeyError("candidates")
        text, reason, usage = self._pieces(payload)
        return Completion(text=text, finish_reason=reason, usage=usage)

    async def stream_items(self, events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[Delta | Finish]:
        # Each event is a whole response with the next piece; the stream simply ends (no [DONE]).
        finish_reason: str | None = None
        usage: Usage | None = None
        async for _, data in events:
            payload = _loads(data)
            if "error" in payload:
                raise self.error_of(int(payload["error"].get("code") or 500), payload, httpx.Headers())
            text, reason, piece_usage = self._pieces(payload)
            if text:
                yield Delta(text)
            finish_reason = reason or finish_reason
            usage = piece_usage or usage
        if finish_reason is not None:
            yield Finish(finish_reason, usage)

    def error_of(self, status: int, payload: Any, headers: httpx.Headers) -> ProviderError:
        err = payload.get("error") if isinstance(payload, dict) else None
        err = err if isinstance(err, dict) else {}
        message = str(err.get("message") or "error")
        details = err.get("details") or []
        reasons = {d.get("reason") for d in details if isinstance(d, dict)}
        retry_after = _retry_after(headers)
        for detail in details:
            delay = detail.get("retryDelay") if isinstance(detail, dict) else None
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    retry_after = float(delay[:-1])
                except ValueError:
                    pass
        code = _status_code_class(status)
        if "API_KEY_INVALID" in reasons:
            code = FailureCode.AUTH  # Gemini answers a bad key with 400, not 401
        elif code == FailureCode.BAD_REQUEST and _looks_like_context_overflow(message):
            code = FailureCode.CONTEXT
        elif code == FailureCode.RATE_LIMITED and retry_after is None and "quota" in message.lower():
            code = FailureCode.QUOTA
        elif status == 503:
            code = FailureCode.OVERLOADED
        return self._error(f"HTTP {status}: {message}", code=code, status_code=status, retry_after=retry_after)

    async def list_models(self) -> list[RemoteModel]:
        payload = await self._json(
            "GET", "/v1beta/models", query={"pageSize": "100"}, first_byte=settings.UPSTREAM_READ_TIMEOUT
        )
        try:
            return [
                RemoteModel(
                    id=m["name"].removeprefix("models/"),
                    display_name=m.get("displayName") or "",
                    context_length=m.get("inputTokenLimit"),
                )
                for m in payload.get("models", [])
                if "generateContent" in (m.get("supportedGenerationMethods") or ["generateContent"])
            ]
        except (KeyError, TypeError, AttributeError):
            raise self._error("sent a model list of an unexpected shape", code=FailureCode.BAD_RESPONSE) from None

    async def check_key(self) -> None:
        await self._json("GET", "/v1beta/models", query={"pageSize": "1"}, first_byte=settings.UPSTREAM_READ_TIMEOUT)
