"""Translation between OpenAI's chat-completions wire format and our completion service, as pure
functions and small state holders (no I/O), so the views stay thin and the format is testable alone.

Requests are validated with pydantic in strict mode (OpenAI refuses `"stream": "yes"` and so do we);
unknown fields are ignored, as OpenAI's SDKs send fields we have no use for.

Errors always have OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.

Before the service is called:

    ======  =====================  ========================  =============================================
    status  type                   code                      when
    ======  =====================  ========================  =============================================
    400     invalid_request_error  null                      body not JSON / not an object, missing or badly
                                                             typed field, image/audio/file content, tool
                                                             messages, n != 1, stream_options without stream
    400     invalid_request_error  null                      max_tokens above the model's context length or
                                                             MAX_COMPLETION_TOKENS (param "max_tokens")
    401     invalid_request_error  null                      no `Authorization: Bearer` token (as OpenAI)
    401     invalid_request_error  invalid_api_key           a token that is not a valid, active API token
    404     invalid_request_error  model_not_found           no such model (param "model"); also when the
                                                             provider answers 404 for a model named on
                                                             first use (nothing fell back)
    404     invalid_request_error  null                      the model exists but cannot chat (an embedder)
    404     invalid_request_error  null                      unknown URL under /v1/
    405     invalid_request_error  null                      wrong HTTP method
    413     invalid_request_error  null                      body over Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    ======  =====================  ========================  =============================================

When no model could answer (after retries and fallbacks), by the service's final error `code` (the status
is `orchestrator.failures.failure_http_status`, the same for the REST API; the type and code are OpenAI's):

    ======  =====================  ========================  =============================================
    status  type                   code                      service code(s)
    ======  =====================  ========================  =============================================
    429     requests               budget_exceeded           over_budget: the caller's budget on this
                                                             instance (param names the limit; Retry-After)
    429     requests               rate_limit_exceeded       every candidate whose code is known was
                                                             rate_limited (or quota, mixed)
    429     insufficient_quota     insufficient_quota        every such candidate was out of quota
    400     invalid_request_error  context_length_exceeded   context_length (param "messages")
    400     invalid_request_error  null                      bad_request: the upstream refused the request;
                                                             an `X-Orchestrator-Key` for another provider
    503     server_error           <service code>            nothing could be asked: no_key, unreachable,
                                                             inactive, failed (cooling down), not_loaded,
                                                             load_failed, key_unreadable, blocked; also
                                                             overloaded, and
                                                             rate_limited/quota when other candidates
                                                             failed otherwise
    504     server_error           <service code>            timeout, stalled
    502     server_error           <service code>            auth (our provider key refused), not_found
                                                             (upstream does not know the model),
                                                             server_error, connect, bad_response,
                                                             stream_cut
    502     server_error           <service code>            non-stream only: text came, then the upstream
                                                             failed (a partial answer is not returned as if
                                                             it were whole)
    ======  =====================  ========================  =============================================

Which codes the fallbacks failed with comes from the service's `Fallback` events. A stream that fails
after text was sent cannot change its status: it ends with a `data: {"error": {...}}` line (type
server_error, code = service code) and no `[DONE]`, which OpenAI's SDK raises as `APIError`.

Messages come from the service and its adapters, which already scrub provider keys from them."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from completions.events import CompletionEvent, Delta, Done, Error, Fallback, Start
from completions.services import CompletionResult
from models_mgmt.models import AIModel
from models_mgmt.services import ModelStatus, Status
from orchestrator.failures import FailureCode, failure_http_status
from providers.adapters import ChatParams

FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_calls"})
# Our own validation failures, whose messages are written for the caller and need no "Invalid value" prefix.
_OWN_ERROR_TYPES = frozenset({"unsupported_content", "unsupported_role", "unsupported_n", "stream_options"})


# --- errors -----------------------------------------------------------------------------------------


class GatewayError(Exception):
    """An answer in OpenAI's error shape, with the HTTP status OpenAI would use."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds, sent as the Retry-After header
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> GatewayError:
    return GatewayError(status, message, "invalid_request_error", param=param, code=code)


def missing_api_key() -> GatewayError:
    return invalid_request(
        "You didn't provide an API key. Send your API token in an Authorization header using Bearer auth "
        "(i.e. Authorization: Bearer orch_...).",
        status=401,
    )


def invalid_api_key() -> GatewayError:
    # The token is not echoed, not even masked: the less of it travels back, the better.
    return invalid_request(
        "Incorrect API key provided. Create an API token on the Settings page.", code="invalid_api_key", status=401
    )


def model_not_found(ref: str) -> GatewayError:
    return invalid_request(
        f"The model `{ref}` does not exist or you do not have access to it.", code="model_not_found", status=404
    )


def not_a_chat_model(ref: str) -> GatewayError:
    return invalid_request(
        f"The model `{ref}` is not a chat model and thus not supported in the v1/chat/completions endpoint.",
        param="model",
        status=404,
    )


def unknown_url(method: str, path: str) -> GatewayError:
    return invalid_request(f"Invalid URL ({method} {path})", status=404)


def method_not_allowed(method: str, path: str) -> GatewayError:
    return invalid_request(f"Invalid method for URL ({method} {path})", status=405)


def body_too_large() -> GatewayError:
    return invalid_request("The request body is too large.", status=413)


def service_error(error: Error, earlier: list[FailureCode], *, partial: bool = False) -> GatewayError:
    """The answer for a completion that failed with `error` after fallbacks that failed with `earlier`:
    the status is the one every API gives (`failure_http_status`), the type and code OpenAI's; see the
    module docstring for the table."""
    code, message = error.code, error.message or "The model could not answer."
    partial = partial or error.partial
    status = failure_http_status(code, earlier=earlier, partial=partial)
    if partial:
        return GatewayError(status, f"The answer broke off: {message}", "server_error", code=code)
    if code is FailureCode.OVER_BUDGET and error.budget is not None:
        # The caller's own budget on this instance, before any model was asked.
        budget = error.budget
        return GatewayError(
            status, message, "requests", param=budget.limit, code="budget_exceeded", retry_after=budget.retry_after
        )
    if status == 429:
        if code is FailureCode.QUOTA and all(c == FailureCode.QUOTA for c in earlier):
            return GatewayError(status, message, "insufficient_quota", code="insufficient_quota")
        return GatewayError(status, message, "requests", code="rate_limit_exceeded")
    if status == 404:
        # The provider itself says it has no such model (a `<provider>/<model>` named on first use).
        return invalid_request(message, param="model", code="model_not_found", status=status)
    if code is FailureCode.CONTEXT:
        return invalid_request(message, param="messages", code="context_length_exceeded", status=status)
    if status == 400:
        return invalid_request(message, status=status)
    return GatewayError(status, message, "server_error", code=code)


# --- requests ---------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class StreamOptionsIn(_Strict):
    include_usage: bool | None = None


class MessageIn(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | None = None

    @field_validator("role", mode="before")
    @classmethod
    def _no_tools(cls, value: Any) -> Any:
        if value in ("tool", "function"):
            raise PydanticCustomError(
                "unsupported_role", "Tool and function messages are not supported by this gateway."
            )
        return value

    @field_validator("content", mode="before")
    @classmethod
    def _join_text_parts(cls, value: Any) -> Any:
        """OpenAI's content is a string or a list of typed parts; only text parts make sense here."""
        if not isinstance(value, list):
            return value
        texts: list[str] = []
        for index, part in enumerate(value):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text" or not isinstance(part.get("text"), str):
                shown = f"'{kind}'" if isinstance(kind, str) else "without a valid type"
                raise PydanticCustomError(
                    "unsupported_content",
                    "Content part {index} {shown} is not supported: this gateway accepts text only.",
                    {"index": index, "shown": shown},
                )
            texts.append(part["text"])
        # Parts are separate blocks to the sender; a newline keeps their words from running together.
        return "\n".join(texts)

    @model_validator(mode="after")
    def _content_required(self) -> MessageIn:
        # Only an assistant turn may come without content (OpenAI allows it next to tool calls).
        if self.content is None and self.role != "assistant":
            raise PydanticCustomError("content_missing", "Field required")
        return self


class ChatCompletionIn(_Strict):
    model: str = Field(min_length=1)
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptionsIn | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: list[str] | None = Field(None, max_length=4)
    n: int | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("n")
    @classmethod
    def _only_one_choice(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise PydanticCustomError("unsupported_n", "Only n=1 is supported by this gateway.")
        return value

    @model_validator(mode="after")
    def _options_need_stream(self) -> ChatCompletionIn:
        if self.stream_options is not None and not self.stream:
            raise PydanticCustomError(
                "stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            )
        return self


@dataclass(frozen=True)
class ChatRequest:
    """A validated request, in the service's terms."""

    model: str
    messages: list[dict[str, str]]
    params: ChatParams
    stream: bool
    include_usage: bool


def _param(loc: tuple[int | str, ...]) -> str | None:
    """pydantic's error location as OpenAI writes a parameter: messages[0].content."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _validation_error(exc: ValidationError) -> GatewayError:
    error = exc.errors(include_url=False)[0]
    kind, loc = error["type"], tuple(error["loc"])
    if kind == "json_invalid":
        return invalid_request("We could not parse the JSON body of your request: it is not valid JSON.")
    if kind == "model_type" and not loc:
        return invalid_request("The request body must be a JSON object.")
    param = _param(loc)
    if kind == "stream_options":
        param = "stream_options"
    if kind == "content_missing":  # raised by the message, so pydantic's location stops short of the field
        param = _param((*loc, "content"))
    if kind in ("missing", "content_missing"):
        return invalid_request(f"Missing required parameter: '{param}'.", param=param)
    if kind in _OWN_ERROR_TYPES:
        return invalid_request(error["msg"], param=param)
    return invalid_request(f"Invalid value for '{param}': {error['msg']}.", param=param)


def parse_chat_request(body: bytes) -> ChatRequest:
    """The request body as the service wants it, or a 400 `GatewayError` saying what is wrong."""
    try:
        data = ChatCompletionIn.model_validate_json(body or b"null")
    except ValidationError as exc:
        raise _validation_error(exc) from None
    # "developer" is OpenAI's newer name for the system role; every provider here knows "system".
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.content or ""} for m in data.messages
    ]
    params = ChatParams(
        max_tokens=data.max_completion_tokens or data.max_tokens,
        temperature=data.temperature,
        top_p=data.top_p,
        stop=data.stop or None,
    )
    include_usage = bool(data.stream and data.stream_options and data.stream_options.include_usage)
    return ChatRequest(data.model, messages, params, bool(data.stream), include_usage)


# --- models -----------------------------------------------------------------------------------------


def is_listed(status: ModelStatus) -> bool:
    """Listed: chat models the caller can use now. A not-loaded (or loading) local model counts, as the
    gateway loads it before answering; failing, cooling-down and key-less models do not."""
    return (status.usable or status.status == Status.LOADING) and status.model.can_chat


def model_object(model: AIModel) -> dict[str, Any]:
    return {
        "id": model.ref,
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": model.provider.name,
    }


def model_list(models: list[AIModel]) -> dict[str, Any]:
    return {"object": "list", "data": [model_object(m) for m in models]}


# --- answers ----------------------------------------------------------------------------------------


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def finish_reason(value: str | None) -> str:
    # OpenAI's SDK types accept only its own reasons; anything else a provider says is a plain end.
    return value if value in FINISH_REASONS else "stop"


def orchestrator_info(*, requested: str, model: str | None, fallbacks: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-standard top-level field saying who answered and why it was not the requested model."""
    return {
        "model": model,
        "requested_model": requested,
        "fallbacks": [{k: fb[k] for k in ("from", "to", "reason") if k in fb} for fb in fallbacks],
    }


def completion_object(*, completion_id: str, created: int, requested: str, result: CompletionResult) -> dict[str, Any]:
    """A successful `completion_collect` result as OpenAI's `chat.completion`."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(result.finish_reason),
            }
        ],
        # Null, not zeros, when the provider did not count: made-up numbers would be worse than none.
        "usage": result.usage,
        "system_fingerprint": None,
        "orchestrator": orchestrator_info(requested=requested, model=result.model, fallbacks=result.fallbacks),
    }


@dataclass
class Opening:
    """What happened before the answer began: the model answering, the fallbacks taken, and the event
    that ended the wait (the first `delta`, or `done`/`error` when there was none)."""

    requested: str
    model: str | None = None
    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    fallback_codes: list[FailureCode] = field(default_factory=list)
    first: CompletionEvent | None = None

    def feed(self, event: CompletionEvent) -> bool:
        """Take one event; True once the answer (or its failure) has begun."""
        match event:
            case Start():
                self.model = event.model
            case Fallback():
                self.fallbacks.append(event.as_data())
                self.fallback_codes.append(event.code)
            case Delta() | Error():
                self.first = event
                return True
            case Done():
                self.first = event
                self.model = event.model or self.model
                return True
        return False

    @property
    def failure(self) -> GatewayError | None:
        """The error answer when no model answered at all; None when text (or a clean end) came."""
        if self.first is None:
            return GatewayError(
                502, "The model ended without answering.", "server_error", code=FailureCode.BAD_RESPONSE
            )
        if isinstance(self.first, Error):
            return service_error(self.first, self.fallback_codes)
        return None


def sse(data: Any) -> bytes:
    if isinstance(data, str):
        return f"data: {data}\n\n".encode()
    try:
        payload = orjson.dumps(data)  # once per event of every stream: orjson is several times faster
    except orjson.JSONEncodeError:
        # What orjson refuses and json writes (a lone surrogate in a text, an integer over 64 bits).
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return b"data: " + payload + b"\n\n"


class ChunkWriter:
    """Turns the service's events, once the answer has begun, into `chat.completion.chunk` SSE lines."""

    def __init__(self, *, opening: Opening, include_usage: bool, completion_id: str | None = None) -> None:
        self.opening = opening
        self.include_usage = include_usage
        self.id = completion_id or new_completion_id()
        self.created = int(time.time())
        self.ended = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.opening.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI: null on every chunk but the usage chunk
        chunk.update(extra)
        return chunk

    def head(self) -> bytes:
        """The first chunk: the role, and (fallbacks happen only before it) who answers and why."""
        info = orchestrator_info(
            requested=self.opening.requested, model=self.opening.model, fallbacks=self.opening.fallbacks
        )
        return sse(self._chunk({"role": "assistant", "content": ""}, orchestrator=info))

    def event(self, event: CompletionEvent) -> bytes:
        """The bytes for one event; empty for events with nothing to say to an OpenAI client."""
        if self.ended:
            return b""
        match event:
            case Delta():
                return sse(self._chunk({"content": event.text}))
            case Done():
                self.ended = True
                out = sse(self._chunk({}, finish_reason(event.finish_reason)))
                if self.include_usage:
                    out += sse({**self._chunk({}), "choices": [], "usage": event.usage})
                return out + sse("[DONE]")
            case Error():
                # Text already went out, so the status cannot change: say it in-band as OpenAI does, no [DONE].
                self.ended = True
                message = event.message or "The model failed mid-answer."
                return sse(GatewayError(502, message, "server_error", code=event.code).body())
        return b""
