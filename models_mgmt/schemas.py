from datetime import datetime

from ninja import Schema
from pydantic import ConfigDict, Field

from models_mgmt.services import ModelStatus, Suggestion, SyncResult, job_progress
from providers.runtimes import DownloadJob


class ModelOut(Schema):
    id: int
    ref: str
    provider: str
    provider_kind: str
    model_id: str
    display_name: str
    model_type: str
    context_length: int | None
    size_bytes: int | None
    is_local: bool
    active: bool
    priority: int
    source: str
    status: str
    icon: str
    reason: str
    failure_count: int
    cooldown_until: datetime | None

    @staticmethod
    def row(status: ModelStatus) -> dict[str, object]:
        """The fields as plain values, for a listing written without building and validating each entry
        (for 500 models that was most of the listing's time). Its keys are exactly this schema's fields."""
        m = status.model
        return {
            "id": m.pk,
            "ref": m.ref,
            "provider": m.provider.name,
            "provider_kind": m.provider.kind,
            "model_id": m.model_id,
            "display_name": m.name,
            "model_type": m.model_type,
            "context_length": m.context_length,
            "size_bytes": m.size_bytes,
            "is_local": m.is_local,
            "active": m.active,
            "priority": m.priority,
            "source": m.source,
            "status": status.status,
            "icon": status.icon,
            "reason": status.reason,
            "failure_count": m.failure_count,
            "cooldown_until": m.cooldown_until,
        }

    @classmethod
    def of(cls, status: ModelStatus) -> "ModelOut":
        return cls(**cls.row(status))


class LoadIn(Schema):
    """Load options; each server takes some of them (LM Studio 0.4+ all, Ollama context_length, llama.cpp
    none): one it does not take is a 400. None of them: the server's defaults."""

    model_config = ConfigDict(extra="forbid")

    context_length: int | None = Field(None, ge=64, le=10_000_000, description="Tokens of context to load with.")
    eval_batch_size: int | None = Field(None, ge=1, le=1_000_000)
    flash_attention: bool | None = None
    num_experts: int | None = Field(None, ge=1, le=1024, description="Experts to use (mixture-of-experts models).")
    offload_kv_cache_to_gpu: bool | None = None


class ServerIn(Schema):
    kind: str = Field(description="lmstudio, ollama or llamacpp", max_length=32)
    base_url: str = Field(description="Where it listens, e.g. http://gpu.lan:11434", max_length=2000)
    name: str = Field(
        "", description="Its models' refs start with it; made from the kind and host if empty.", max_length=64
    )


class ServerOut(Schema):
    name: str
    kind: str
    base_url: str
    private: bool


class DownloadIn(Schema):
    provider: str = Field(description="The local server's provider name, e.g. lmstudio.", max_length=64)
    model: str = Field(description="What the server downloads: a catalogue id or a Hugging Face URL.", max_length=500)


class DownloadOut(Schema):
    provider: str
    job_id: str
    status: str = Field(description="downloading | paused | completed | failed | already_downloaded")
    downloaded_bytes: int | None
    total_size_bytes: int | None
    bytes_per_second: float | None
    progress: float | None = Field(description="0 to 1, when the server says how big the download is")
    error: str

    @classmethod
    def of(cls, provider: str, job: DownloadJob) -> "DownloadOut":
        return cls(provider=provider, progress=job_progress(job), **job.__dict__)


class LoadOut(Schema):
    status: str
    model: str


class AlternativeOut(Schema):
    model: ModelOut
    tier: str
    reason: str

    @classmethod
    def of(cls, suggestion: Suggestion) -> "AlternativeOut":
        return cls(model=ModelOut.of(suggestion.status), tier=suggestion.tier, reason=suggestion.reason)


class ResetOut(Schema):
    reset: int


class SyncProviderOut(Schema):
    provider: str
    ok: bool
    error: str
    listed: int
    added: int
    updated: int
    missing: list[str]

    @classmethod
    def of(cls, result: SyncResult) -> "SyncProviderOut":
        return cls(**result.__dict__)


class SyncOut(Schema):
    providers: list[SyncProviderOut]


class ErrorOut(Schema):
    detail: str
