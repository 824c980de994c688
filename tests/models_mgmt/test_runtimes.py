"""The LM Studio adapter against the emulator: both API versions, every error shape."""

import pytest

from providers.models import Provider
from providers.registry import runtime_for
from providers.runtimes import API_V0, API_V1, UnloadUnsupported, UpstreamError, error_message
from tests.conftest import cloud_provider, point_provider_at
from tests.fakes.base import FakeRequest, FakeResponse, FakeServer, json_response
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db


def test_v1_snapshot_lists_models_with_their_facts(provider: Provider, lmstudio: FakeLMStudio) -> None:
    snapshot = runtime_for(provider).snapshot()
    assert snapshot.ok and snapshot.api == API_V1
    qwen = snapshot.models["qwen/qwen2.5-7b-instruct"]
    assert qwen.loaded and qwen.instance_ids == ("qwen/qwen2.5-7b-instruct",)
    assert qwen.display_name == "Qwen2.5 7B Instruct"
    assert qwen.max_context_length == 32768 and qwen.size_bytes == 4_683_073_952
    assert qwen.details["quantization"] == "Q4_K_M"
    assert not snapshot.models["meta-llama-3.1-8b-instruct"].loaded
    assert snapshot.models["text-embedding-nomic-embed-text-v1.5"].model_type == "embedding"


def test_v0_server_is_detected_by_shape_not_status(lmstudio_v0: FakeLMStudio) -> None:
    provider = point_provider_at(lmstudio_v0)
    snapshot = runtime_for(provider).snapshot()
    assert snapshot.ok and snapshot.api == API_V0
    assert snapshot.models["qwen/qwen2.5-7b-instruct"].loaded
    assert not snapshot.models["google/gemma-3-4b"].loaded
    # The v1 path answered 200 with junk first; the next refresh goes straight to v0: one request.
    lmstudio_v0.reset_log()
    runtime_for(provider).snapshot()
    assert lmstudio_v0.count() == 1


def test_connection_refused_is_a_readable_failure(provider: Provider, lmstudio: FakeLMStudio) -> None:
    lmstudio.set_down(True)
    snapshot = runtime_for(provider).snapshot()
    assert not snapshot.ok
    assert "unreachable" in snapshot.error and lmstudio.url in snapshot.error


def test_malformed_json_is_a_readable_failure(provider: Provider, lmstudio: FakeLMStudio) -> None:
    lmstudio.malformed = True
    snapshot = runtime_for(provider).snapshot()
    assert not snapshot.ok and "not JSON" in snapshot.error


def test_timeout_is_a_readable_failure(provider: Provider, lmstudio: FakeLMStudio, settings) -> None:
    settings.UPSTREAM_READ_TIMEOUT = 0.2
    from providers.http import close_upstream_clients

    close_upstream_clients()  # the pooled client was made with the old timeout
    lmstudio.response_delay = 1.0
    try:
        snapshot = runtime_for(provider).snapshot()
    finally:
        close_upstream_clients()
    assert not snapshot.ok and "did not answer in time" in snapshot.error


class NotLMStudio(FakeServer):
    """Answers every path 200 with JSON of the wrong shape, as another kind of server might."""

    def fallback(self, req: FakeRequest) -> FakeResponse:
        return json_response({"object": "list"})


def test_a_server_that_is_not_lm_studio_is_reported(db: None) -> None:
    with NotLMStudio() as other:
        snapshot = runtime_for(point_provider_at(other)).snapshot()  # type: ignore[arg-type]
    assert not snapshot.ok and "does not speak LM Studio" in snapshot.error


def test_v1_load_and_unload_every_instance(provider: Provider, lmstudio: FakeLMStudio) -> None:
    runtime = runtime_for(provider)
    runtime.load("google/gemma-3-4b", timeout=10)
    assert lmstudio.models["google/gemma-3-4b"].instances == ["google/gemma-3-4b"]
    lmstudio.models["google/gemma-3-4b"].instances.append("google/gemma-3-4b:2")
    runtime.unload(("google/gemma-3-4b", "google/gemma-3-4b:2"))
    assert lmstudio.models["google/gemma-3-4b"].instances == []


@pytest.mark.parametrize("shape", ["object", "string"])
def test_failed_load_carries_lm_studios_reason(provider: Provider, lmstudio: FakeLMStudio, shape: str) -> None:
    lmstudio.fail_load("google/gemma-3-4b", message="Not enough memory to load", status=500, shape=shape)
    with pytest.raises(UpstreamError) as caught:
        runtime_for(provider).load("google/gemma-3-4b", timeout=10)
    assert "Not enough memory to load" in caught.value.message
    assert caught.value.status_code == 500


def test_unknown_model_load_is_not_retryable(provider: Provider, lmstudio: FakeLMStudio) -> None:
    with pytest.raises(UpstreamError) as caught:
        runtime_for(provider).load("no/such-model", timeout=10)
    assert caught.value.status_code == 400 and not caught.value.retryable
    assert "not found" in caught.value.message


def test_v0_loads_just_in_time_and_cannot_unload(lmstudio_v0: FakeLMStudio) -> None:
    provider = point_provider_at(lmstudio_v0)
    runtime = runtime_for(provider)
    runtime.load("google/gemma-3-4b", timeout=10)
    assert lmstudio_v0.models["google/gemma-3-4b"].instances
    assert lmstudio_v0.count("POST", "/v1/chat/completions") == 1
    with pytest.raises(UnloadUnsupported) as caught:
        runtime.unload(("google/gemma-3-4b",))
    assert "v0" in caught.value.message


def test_api_token_is_sent(settings, db: None) -> None:
    settings.LMSTUDIO_API_TOKEN = "lm-secret-token"
    with FakeLMStudio(token="lm-secret-token") as fake:
        snapshot = runtime_for(point_provider_at(fake)).snapshot()
    assert snapshot.ok


def test_wrong_api_token_is_reported(settings, db: None) -> None:
    settings.LMSTUDIO_API_TOKEN = "wrong"
    with FakeLMStudio(token="right") as fake:
        snapshot = runtime_for(point_provider_at(fake)).snapshot()
    assert not snapshot.ok and "401" in snapshot.error
    assert "wrong" not in snapshot.error


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"error": {"message": "boom", "type": "x"}}, "boom"),
        ({"error": "plain"}, "plain"),
        ({"error": {"type": "internal_error"}}, "internal_error"),
        ({"models": []}, None),
        ("text", None),
    ],
)
def test_error_message_reads_both_shapes(payload: object, expected: str | None) -> None:
    assert error_message(payload) == expected


def test_cloud_provider_is_not_a_runtime(db: None) -> None:
    provider = cloud_provider("openai")
    with pytest.raises(UpstreamError):
        runtime_for(provider)
