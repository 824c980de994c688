"""The provider registry: every kind declared once, and what it builds from a provider row."""

import pytest
from django.contrib.auth.models import User

from providers.adapters import AnthropicAdapter, GeminiAdapter, MistralAdapter, OpenAIAdapter
from providers.kinds import ProviderKind
from providers.models import Provider
from providers.registry import CLOUD_KINDS, LOCAL_KINDS, REGISTRY, adapter_for, join_url, runtime_for, spec_of
from providers.runtimes import LlamaCppRuntime, LMStudioRuntime, OllamaRuntime, UpstreamError


def test_every_kind_is_declared_once() -> None:
    assert set(REGISTRY) == {kind.value for kind in ProviderKind}
    assert LOCAL_KINDS == {"lmstudio", "ollama", "llamacpp"} and LOCAL_KINDS.isdisjoint(CLOUD_KINDS)
    assert LOCAL_KINDS | CLOUD_KINDS == set(REGISTRY)


@pytest.mark.parametrize(
    ("kind", "adapter", "needs_key"),
    [
        ("openai", OpenAIAdapter, True),
        ("anthropic", AnthropicAdapter, True),
        ("google", GeminiAdapter, True),
        ("mistral", MistralAdapter, True),
        ("openai_compatible", OpenAIAdapter, True),
        ("lmstudio", OpenAIAdapter, False),
        ("ollama", OpenAIAdapter, False),
        ("llamacpp", OpenAIAdapter, False),
    ],
)
def test_spec_declares_the_wire_format_and_key_needs(kind: str, adapter: type, needs_key: bool) -> None:
    spec = spec_of(kind)
    assert spec.adapter is adapter and spec.needs_key is needs_key and spec.is_local is (not needs_key)


def test_paths_are_joined_not_concatenated() -> None:
    assert join_url("http://h:1234/", "v1") == "http://h:1234/v1"
    assert join_url("http://h:1234", "/v1") == "http://h:1234/v1"
    assert join_url("http://h/api/", "") == "http://h/api"


@pytest.mark.django_db
def test_adapter_for_uses_the_base_url_setting_and_the_local_token(settings) -> None:  # noqa: ANN001
    settings.OPENAI_BASE_URL = "https://openai.example/v1"
    settings.LMSTUDIO_BASE_URL = "http://127.0.0.1:1234"
    settings.LMSTUDIO_API_TOKEN = "lm-token-123"
    cloud = adapter_for(Provider(kind="openai", name="openai"), "sk-user-key")
    assert cloud.base_url == "https://openai.example/v1" and cloud.api_key == "sk-user-key" and not cloud.guarded
    local = adapter_for(Provider(kind="lmstudio", name="lmstudio"), None)
    assert local.base_url == "http://127.0.0.1:1234/v1" and local.api_key == "lm-token-123"


@pytest.mark.django_db
def test_only_a_non_staff_users_own_provider_is_guarded(alice: User, bob: User) -> None:
    def provider(owner: User | None) -> Provider:
        return Provider(kind="openai_compatible", name="x", base_url="https://x.example/v1", owner=owner)

    assert adapter_for(provider(alice), "k").guarded
    assert not adapter_for(provider(bob), "k").guarded  # staff may point anywhere
    assert not adapter_for(provider(None), "k").guarded  # instance-wide: settings or staff


@pytest.mark.django_db
def test_runtime_for_builds_a_local_runtime_and_refuses_a_cloud_kind() -> None:
    assert isinstance(
        runtime_for(Provider(kind="lmstudio", name="lmstudio", base_url="http://127.0.0.1:9")), LMStudioRuntime
    )
    with pytest.raises(UpstreamError, match="not a local runtime"):
        runtime_for(Provider(kind="openai", name="openai"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "runtime", "url_setting", "token_setting"),
    [
        ("ollama", OllamaRuntime, "OLLAMA_BASE_URL", "OLLAMA_API_TOKEN"),
        ("llamacpp", LlamaCppRuntime, "LLAMACPP_BASE_URL", "LLAMACPP_API_KEY"),
    ],
)
def test_the_local_servers_runtimes_and_chat_urls(
    settings,
    alice: User,
    kind: str,
    runtime: type,
    url_setting: str,
    token_setting: str,  # noqa: ANN001
) -> None:
    setattr(settings, url_setting, "http://gpu.example:1111/")
    setattr(settings, token_setting, "tok-1")
    built = runtime_for(Provider(kind=kind, name=kind))
    assert isinstance(built, runtime) and built.base_url == "http://gpu.example:1111"
    assert built.headers == {"Authorization": "Bearer tok-1"}
    chat = adapter_for(Provider(kind=kind, name=kind), None)
    assert chat.base_url == "http://gpu.example:1111/v1" and chat.api_key == "tok-1" and not chat.guarded
    own = Provider(kind=kind, name="mine", base_url="http://10.0.0.5:1111", owner=alice)
    assert adapter_for(own, None).guarded and own.guarded
