"""The events of one completion (DESIGN §5), one class each, as `completion_stream` yields them:

    Start{model, attempt}  Loading{model}  Delta{text}  Fallback{from, to, reason, code}  Done{...}  Error{code, ...}

`as_data()` is the event's JSON object and `sse()` its Server-Sent Event (`event: <name>` then `data: <json>`),
byte for byte what the chat page and REST clients read. `private` marks an event about a model on a
user's private provider, kept out of shared metrics."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.failures import FailureCode


class _Event(ABC):
    __slots__ = ()
    name: ClassVar[str]

    @abstractmethod
    def as_data(self) -> dict[str, Any]:
        """The event's JSON payload, as the chat page and API clients read it."""

    def sse(self) -> bytes:
        return f"event: {self.name}\ndata: {json.dumps(self.as_data(), ensure_ascii=False)}\n\n".encode()


@dataclass(frozen=True, slots=True)
class Start(_Event):
    """A call to `model` begins (`attempt` counts the tries of this model, from 1)."""

    name: ClassVar[str] = "start"
    model: str
    attempt: int
    private: bool = field(default=False, compare=False, kw_only=True)

    def as_data(self) -> dict[str, Any]:
        return {"model": self.model, "attempt": self.attempt}


@dataclass(frozen=True, slots=True)
class Loading(_Event):
    """A local model is being loaded before it is asked; said before the (possibly long) wait."""

    name: ClassVar[str] = "loading"
    model: str
    private: bool = field(default=False, compare=False, kw_only=True)

    def as_data(self) -> dict[str, Any]:
        return {"model": self.model}


@dataclass(frozen=True, slots=True)
class Delta(_Event):
    name: ClassVar[str] = "delta"
    text: str
    private: bool = field(default=False, compare=False, kw_only=True)

    def as_data(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True, slots=True)
class Fallback(_Event):
    """`from_model` failed with `code` before any text; `to_model` is asked instead."""

    name: ClassVar[str] = "fallback"
    from_model: str
    to_model: str
    reason: str
    code: FailureCode
    private: bool = field(default=False, compare=False, kw_only=True)

    def as_data(self) -> dict[str, Any]:
        return {"from": self.from_model, "to": self.to_model, "reason": self.reason, "code": self.code}


@dataclass(frozen=True, slots=True)
class Done(_Event):
    name: ClassVar[str] = "done"
    model: str
    usage: dict[str, int] | None
    finish_reason: str | None
    latency_ms: int
    private: bool = field(default=False, compare=False, kw_only=True)

    def as_data(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "usage": self.usage,
            "finish_reason": self.finish_reason,
            "latency_ms": self.latency_ms,
        }


@dataclass(frozen=True, slots=True)
class Budget:
    """Which limit of the caller's budget refused a request, and when it frees up again."""

    limit: str
    resets_at: str  # ISO 8601
    retry_after: int  # seconds

    def as_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "resets_at": self.resets_at, "retry_after": self.retry_after}


@dataclass(frozen=True, slots=True)
class Error(_Event):
    """The completion failed. `partial`: after text was sent (which stays sent). `budget`: set when the
    code is `over_budget`."""

    name: ClassVar[str] = "error"
    code: FailureCode
    message: str
    model: str
    partial: bool = False
    budget: Budget | None = None
    private: bool = field(default=False, compare=False, kw_only=True)

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message, "model": self.model}
        if self.partial:
            data["partial"] = True
        if self.budget is not None:
            data.update(self.budget.as_dict())
        return data


CompletionEvent = Start | Loading | Delta | Fallback | Done | Error
