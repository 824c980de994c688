"""Every kind of provider, declared once: its chat adapter (wire format), its local runtime if it has one,
where its default base URL comes from, and whether it needs a key. Adding a kind is one class (an adapter
or a runtime) and one entry in REGISTRY; nothing else branches on the kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

from providers.adapters import (
    Adapter,
    AnthropicAdapter,
    GeminiAdapter,
    GensparkAdapter,
    MistralAdapter,
    OpenAIAdapter,
)
from providers.kinds import ProviderKind
from providers.runtimes import LlamaCppRuntime, LMStudioRuntime, LocalRuntime, OllamaRuntime, UpstreamError

if TYPE_CHECKING:
    from providers.models import Provider


@dataclass(frozen=True)
class ProviderSpec:
    kind: ProviderKind
    adapter: type[Adapter]
    # The setting naming the default base URL of an instance-wide provider of this kind ("" = none: each
    # provider of the kind names its own, like any OpenAI-compatible server).
    base_url_setting: str
    runtime: type[LocalRuntime] | None = None
    # A local server takes no user key; an optional bearer token for it comes from this setting.
    token_setting: str = ""
    # Where its OpenAI-style chat API lives below the base URL, when not at the base URL itself.
    chat_path: str = ""

    @property
    def is_local(self) -> bool:
        return self.runtime is not None

    @property
    def needs_key(self) -> bool:
        return not self.is_local

    @property
    def label(self) -> str:
        return self.kind.label


REGISTRY: dict[str, ProviderSpec] = {
    spec.kind.value: spec
    for spec in (
        ProviderSpec(
            ProviderKind.LMSTUDIO,
            OpenAIAdapter,
            "LMSTUDIO_BASE_URL",
            runtime=LMStudioRuntime,
            token_setting="LMSTUDIO_API_TOKEN",
            chat_path="v1",
        ),
        ProviderSpec(
            ProviderKind.OLLAMA,
            OpenAIAdapter,
            "OLLAMA_BASE_URL",
            runtime=OllamaRuntime,
            token_setting="OLLAMA_API_TOKEN",
            chat_path="v1",
        ),
        ProviderSpec(
            ProviderKind.LLAMACPP,
            OpenAIAdapter,
            "LLAMACPP_BASE_URL",
            runtime=LlamaCppRuntime,
            token_setting="LLAMACPP_API_KEY",
            chat_path="v1",
        ),
        ProviderSpec(ProviderKind.OPENAI, OpenAIAdapter, "OPENAI_BASE_URL"),
        ProviderSpec(ProviderKind.ANTHROPIC, AnthropicAdapter, "ANTHROPIC_BASE_URL"),
        ProviderSpec(ProviderKind.GOOGLE, GeminiAdapter, "GEMINI_BASE_URL"),
        ProviderSpec(ProviderKind.MISTRAL, MistralAdapter, "MISTRAL_BASE_URL"),
        ProviderSpec(ProviderKind.GENSPARK, GensparkAdapter, "GENSPARK_BASE_URL"),
        ProviderSpec(ProviderKind.OPENAI_COMPATIBLE, OpenAIAdapter, ""),
    )
}

LOCAL_KINDS = frozenset(kind for kind, spec in REGISTRY.items() if spec.is_local)
CLOUD_KINDS = frozenset(kind for kind, spec in REGISTRY.items() if not spec.is_local)


def spec_of(kind: str) -> ProviderSpec:
    return REGISTRY[kind]


def join_url(base_url: str, path: str) -> str:
    """Paths are joined, never concatenated into whatever the base URL holds."""
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}" if path else base_url.rstrip("/")


def adapter_for(provider: Provider, api_key: str | None) -> Adapter:
    spec = spec_of(provider.kind)
    if spec.token_setting:
        api_key = getattr(settings, spec.token_setting, "") or None
    return spec.adapter(
        base_url=join_url(provider.effective_base_url, spec.chat_path),
        api_key=api_key,
        label=spec.label,
        guarded=provider.guarded,
    )


def runtime_for(provider: Provider) -> LocalRuntime:
    spec = spec_of(provider.kind)
    if spec.runtime is None:
        raise UpstreamError(f"{spec.label} is not a local runtime", retryable=False)
    token = getattr(settings, spec.token_setting, "") if spec.token_setting else ""
    return spec.runtime(base_url=provider.effective_base_url, token=token or None, guarded=provider.guarded)
