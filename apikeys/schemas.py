from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from ninja import Schema
from pydantic import Field

from providers.http import display_url
from providers.models import ApiKey


class KeyIn(Schema):
    provider: str = Field(description="openai, anthropic, gemini, mistral, genspark, or openai_compatible")
    key: str
    label: str = ""
    base_url: str = Field("", description="Required for openai_compatible")
    shared: bool = Field(False, description="Staff only: a key every user without their own may use")
    make_default: bool | None = Field(
        None, description="Use this key unless a request names another (your first key for a provider always is)"
    )


class KeyPatch(Schema):
    label: str | None = None
    key: str | None = None
    is_default: bool | None = Field(None, description="true: make this the default key for its provider")


class KeyOut(Schema):
    id: int
    provider: str
    provider_kind: str
    provider_private: bool
    base_url: str | None
    label: str
    hint: str
    shared: bool
    is_default: bool
    created_at: datetime
    updated_at: datetime
    last_tested_at: datetime | None
    last_test_ok: bool | None
    last_test_detail: str
    last_test_latency_ms: int | None
    failing_reason: str

    @classmethod
    def of(cls, key: ApiKey, user: AbstractBaseUser) -> "KeyOut":
        # Test results of a shared key are staff's to see: they may carry the provider's words about it.
        results = not key.shared or user.is_staff
        return cls(
            id=key.pk,
            provider=key.provider.name,
            provider_kind=key.provider.kind,
            provider_private=key.provider.is_private,
            base_url=display_url(key.provider.base_url) if key.provider.base_url else None,
            label=key.label,
            hint=key.hint,
            shared=key.shared,
            is_default=key.is_default,
            created_at=key.created_at,
            updated_at=key.updated_at,
            last_tested_at=key.last_tested_at if results else None,
            last_test_ok=key.last_test_ok if results else None,
            last_test_detail=key.last_test_detail if results else "",
            last_test_latency_ms=key.last_test_latency_ms if results else None,
            failing_reason=key.failing_reason if results else "",
        )


class KeyTestOut(Schema):
    ok: bool
    detail: str
    latency_ms: int | None
