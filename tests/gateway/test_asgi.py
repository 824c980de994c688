"""The gateway's hot path (gateway/asgi.py) in real uvicorn processes: it answers as the Django view does
(status, body, headers), streams unbuffered, records usage, stops the upstream call when the client goes
away; and its in-process caches follow every change at once, in both of two server processes, whichever
process (or the test itself) made it. With REDIS_URL set the processes agree through Redis, otherwise
through the generation file in VAR_DIR."""

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.services import api_token_create, api_token_revoke
from models_mgmt.services import model_set_active
from providers.models import ApiKey
from tests.completions.conftest import Cloud, start_cloud
from tests.fakes.cloud import Fault
from tests.processes import asgi_server
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/v1/chat/completions"
GPT = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello there"}]
ENV = {
    "LMSTUDIO_BASE_URL": "http://127.0.0.1:9",
    "COMPLETION_TIMEOUT": "5",
    "COMPLETION_WHOLE_TIMEOUT": "5",
    "COMPLETION_IDLE_TIMEOUT": "3",
}
# What the middleware adds (or the views set) that a JSON or event-stream client may see.
COMPARED_HEADERS = (
    "content-type",
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "x-frame-options",
    "retry-after",
    "x-orchestrator-model",
)


@pytest.fixture(scope="module")
def servers(django_db_setup: None) -> Iterator[tuple[str, str]]:
    with asgi_server(**ENV) as first, asgi_server(**ENV) as second:
        yield first, second


@pytest.fixture
def cloud(alice: User) -> Iterator[Cloud]:
    with ExitStack() as stack:
        yield start_cloud(stack, "openai", alice)


def token_of(user: User) -> str:
    return api_token_create(user=user, name="hot")[1]


def chat(server: str, token: str | None, body: object = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    payload = body if isinstance(body, str) else json.dumps(body or {"model": GPT, "messages": HELLO})
    headers.setdefault("Content-Type", "application/json")
    return httpx.post(f"{server}{URL}", content=payload, headers=headers, timeout=30)


def wait_for(condition: object, timeout: float = 10) -> bool:
    """Polls what the server writes after its response has gone out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


# --- the same answers as the Django view ---------------------------------------------------------------


def test_answers_as_the_django_view_does(servers: tuple[str, str], cloud: Cloud, alice: User) -> None:
    token = token_of(alice)
    cases = [
        (None, None, {}),
        ("orch_not-a-token", None, {}),
        (token, "{not json", {}),
        (token, {"model": "openai/no-such-model", "messages": HELLO}, {}),
        (token, {"model": GPT, "messages": HELLO, "max_tokens": 10**9}, {}),
        (token, None, {"X-Orchestrator-Key": "abc"}),
        (token, None, {"X-Orchestrator-Key": "999999"}),
        (token, None, {}),
    ]
    django = Client()
    for bearer, body, headers in cases:
        hot = chat(servers[0], bearer, body, **headers)
        extra = {"HTTP_AUTHORIZATION": f"Bearer {bearer}"} if bearer else {}
        extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        payload = body if isinstance(body, str) else json.dumps(body or {"model": GPT, "messages": HELLO})
        view = django.post(URL, data=payload, content_type="application/json", **extra)
        case = (bearer and bearer[:8], body, headers)
        assert hot.status_code == view.status_code, case
        hot_body, view_body = hot.json(), view.json()
        if "error" in view_body:
            assert hot_body == view_body, case
        else:
            assert hot_body["choices"] == view_body["choices"] and hot_body["usage"] == view_body["usage"], case
        for name in COMPARED_HEADERS:
            assert hot.headers.get(name) == view.headers.get(name), (case, name)


def test_other_methods_and_paths_are_django_s(servers: tuple[str, str], alice: User) -> None:
    response = httpx.get(f"{servers[0]}{URL}", headers={"Authorization": f"Bearer {token_of(alice)}"})
    assert response.status_code == 405 and response.json()["error"]["message"].startswith("Invalid method")
    assert httpx.get(f"{servers[0]}/healthz").status_code == 200


def test_a_host_not_allowed_gets_django_s_400(servers: tuple[str, str], alice: User) -> None:
    response = chat(servers[0], token_of(alice), Host="evil.example")
    assert response.status_code == 400 and "error" not in response.text


# --- streams -----------------------------------------------------------------------------------------------


def test_a_stream_is_unbuffered_uncompressed_and_recorded(servers: tuple[str, str], cloud: Cloud, alice: User) -> None:
    body = {"model": GPT, "messages": HELLO, "stream": True}
    response = chat(servers[0], token_of(alice), body, **{"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["x-accel-buffering"] == "no" and response.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff" and response.headers["x-frame-options"] == "DENY"
    assert response.text.endswith("data: [DONE]\n\n") and "Echo" in response.text
    assert wait_for(lambda: UsageRecord.objects.filter(user=alice, outcome="ok").count() == 1)
    record = UsageRecord.objects.get(user=alice)
    assert record.kind == "gateway" and record.completion_tokens > 0


def test_a_client_gone_mid_stream_stops_the_upstream_call(servers: tuple[str, str], cloud: Cloud, alice: User) -> None:
    cloud.fake.fail(Fault.STALL, times=1)
    body = json.dumps({"model": GPT, "messages": HELLO, "stream": True})
    headers = {"Authorization": f"Bearer {token_of(alice)}", "Content-Type": "application/json"}
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", f"{servers[0]}{URL}", content=body, headers=headers) as response:
            assert response.status_code == 200
            next(response.iter_raw())  # the first chunk: the answer has begun, then the upstream stalls
    # Recorded as cancelled (the client left), not as stalled (which the idle timeout would say later).
    assert wait_for(lambda: UsageRecord.objects.filter(user=alice).exists(), timeout=2.5)
    assert UsageRecord.objects.get(user=alice).outcome == "cancelled"


def test_a_non_streamed_answer_is_recorded(servers: tuple[str, str], cloud: Cloud, alice: User) -> None:
    assert chat(servers[1], token_of(alice)).status_code == 200
    assert wait_for(lambda: UsageRecord.objects.filter(user=alice, outcome="ok").count() == 1)


# --- the caches, across two processes ----------------------------------------------------------------------


def both(servers: tuple[str, str], token: str) -> list[int]:
    return [chat(server, token).status_code for server in servers]


def test_a_revoked_token_is_refused_by_both_processes_at_once(
    servers: tuple[str, str], cloud: Cloud, alice: User
) -> None:
    token, raw = api_token_create(user=alice, name="soon revoked")
    assert both(servers, raw) == [200, 200]  # now cached in both
    api_token_revoke(user=alice, token_id=token.pk)
    assert both(servers, raw) == [401, 401]


def test_a_user_switched_off_is_refused_by_both_at_once(servers: tuple[str, str], cloud: Cloud, alice: User) -> None:
    raw = token_of(alice)
    assert both(servers, raw) == [200, 200]
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert both(servers, raw) == [401, 401]


def test_a_key_changed_through_one_process_is_used_by_the_other_at_once(
    servers: tuple[str, str], cloud: Cloud, alice: User
) -> None:
    raw = token_of(alice)
    assert both(servers, raw) == [200, 200]
    key = ApiKey.objects.get(owner=alice)
    cloud.fake.keys = {"sk-the-new-key-0001"}  # the old key is refused from now on
    changed = httpx.patch(
        f"{servers[0]}/api/keys/{key.pk}",
        json={"key": "sk-the-new-key-0001"},
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert changed.status_code == 200
    assert both(servers[::-1], raw) == [200, 200]
    # And deleted: neither process still holds it.
    assert httpx.delete(f"{servers[1]}/api/keys/{key.pk}", headers={"Authorization": f"Bearer {raw}"}).is_success
    calls = cloud.fake.chat_count
    assert both(servers, raw) == [503, 503] and cloud.fake.chat_count == calls


def test_a_model_switched_off_is_refused_by_both_at_once(servers: tuple[str, str], cloud: Cloud, alice: User) -> None:
    raw = token_of(alice)
    assert both(servers, raw) == [200, 200]
    model_set_active(model=cloud.model, active=False)
    calls = cloud.fake.chat_count
    assert both(servers, raw) == [503, 503] and cloud.fake.chat_count == calls
    model_set_active(model=cloud.model, active=True)
    assert both(servers, raw) == [200, 200]


def test_alice_s_cached_key_never_serves_bob_or_charlie(
    servers: tuple[str, str], cloud: Cloud, alice: User, bob: User, charlie: User
) -> None:
    assert both(servers, token_of(alice)) == [200, 200]  # alice's key is in both caches now
    calls = cloud.fake.chat_count
    for user in (bob, charlie):
        responses = [chat(server, token_of(user)) for server in servers]
        assert [r.status_code for r in responses] == [503, 503]
        assert all(r.json()["error"]["code"] == "no_key" for r in responses)
    assert cloud.fake.chat_count == calls


def test_a_body_over_the_upload_limit_is_413_after_the_token(servers: tuple[str, str], alice: User) -> None:
    # Django's default DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB), as the servers run.
    big = json.dumps({"model": GPT, "messages": [{"role": "user", "content": "x" * 3_000_000}]})
    assert chat(servers[0], "orch_not-a-token", big).status_code == 401
    response = chat(servers[0], token_of(alice), big)
    assert response.status_code == 413 and response.json()["error"]["type"] == "invalid_request_error"
