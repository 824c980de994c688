from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from providers.adapters import ChatParams


class MessageIn(Schema):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=1_000_000)


class CompletionIn(Schema):
    model: str = Field(description="Numeric id or <provider>/<model id>, e.g. lmstudio/qwen/qwen2.5-7b-instruct")
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool = False
    fallback: bool = Field(True, description="Answer with the suggested alternative if this model fails")
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: list[str] | None = Field(None, max_length=4)
    key_id: int | None = Field(None, description="One of your keys (or a shared one) for this model's provider")

    def chat_params(self) -> ChatParams:
        return ChatParams(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p, stop=self.stop)

    def chat_messages(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]


class CompletionOut(Schema):
    text: str
    model: str | None
    usage: dict[str, int] | None
    finish_reason: str | None
    latency_ms: int
    first_token_ms: int | None
    fallbacks: list[dict[str, str]]
    error: dict[str, Any] | None


class OverBudgetOut(Schema):
    detail: str = Field(description="Which limit, and when it resets")
    limit: Literal["requests_per_minute", "tokens_per_day", "cost_per_month_usd"]
    resets_at: str
    retry_after: int = Field(description="Seconds; also sent as the Retry-After header")
