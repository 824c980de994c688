from datetime import datetime

from ninja import Schema
from pydantic import Field

from apikeys.models import ApiKey


class KeyIn(Schema):
    provider: str = Field(description="openai, anthropic, gemini, mistral, genspark, or openai_compatible")
    key: str
    label: str = ""
    base_url: str = Field("", description="Required for openai_compatible")
    shared: bool = Field(False, description="Staff only: a key every user without their own may use")


class KeyPatch(Schema):
    label: str | None = None
    key: str | None = None


class KeyOut(Schema):
    id: int
    provider: str
    provider_kind: str
    label: str
    hint: str
    shared: bool
    created_at: datetime
    updated_at: datetime
    last_tested_at: datetime | None
    last_test_ok: bool | None
    last_test_detail: str
    last_test_latency_ms: int | None
    failing_reason: str

    @classmethod
    def of(cls, key: ApiKey) -> "KeyOut":
        return cls(
            id=key.pk,
            provider=key.provider.name,
            provider_kind=key.provider.kind,
            label=key.label,
            hint=key.hint,
            shared=key.shared,
            created_at=key.created_at,
            updated_at=key.updated_at,
            last_tested_at=key.last_tested_at,
            last_test_ok=key.last_test_ok,
            last_test_detail=key.last_test_detail,
            last_test_latency_ms=key.last_test_latency_ms,
            failing_reason=key.failing_reason,
        )


class KeyTestOut(Schema):
    ok: bool
    detail: str
    latency_ms: int | None
