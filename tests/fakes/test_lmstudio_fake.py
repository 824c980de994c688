"""Self-check of the LM Studio emulator (no Django): run with ``pytest -p no:django``."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.lmstudio import FakeLMStudio

QWEN = "qwen/qwen2.5-7b-instruct"
LLAMA = "meta-llama-3.1-8b-instruct"


@pytest.fixture
def fake() -> Iterator[FakeLMStudio]:
    with FakeLMStudio() as server:
        yield server


@pytest.fixture
def client(fake: FakeLMStudio) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5) as c:
        yield c


def test_greeting_and_unknown_paths_answer_200(client: httpx.Client) -> None:
    assert client.get("/lmstudio-greeting").json() == {"lmstudio": True}
    r = client.delete("/api/v1/nope")
    assert r.status_code == 200
    assert r.json()["error"] == "Unexpected endpoint or method. (DELETE /api/v1/nope). Returning 200 anyway"
    with FakeLMStudio(api="v0") as v0:
        r = httpx.get(f"{v0.url}/api/v1/models")
        assert r.status_code == 200 and "Unexpected endpoint" in r.json()["error"]
        (model,) = [m for m in httpx.get(f"{v0.url}/api/v0/models").json()["data"] if m["id"] == QWEN]
        assert (model["state"], model["loaded_context_length"], model["type"]) == ("loaded", 4096, "llm")


def test_v1_models_load_unload(fake: FakeLMStudio, client: httpx.Client) -> None:
    models = {m["key"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert len(models) == 4 and models[QWEN]["loaded_instances"][0]["id"] == QWEN
    assert models[LLAMA]["loaded_instances"] == [] and models[LLAMA]["quantization"]["bits_per_weight"] == 4
    assert models["google/gemma-3-4b"]["capabilities"]["vision"] is True
    r = client.post("/api/v1/models/load", json={"model": LLAMA, "context_length": 8192})
    assert r.json()["instance_id"] == LLAMA and r.json()["status"] == "loaded"
    assert client.post("/api/v1/models/load", json={"model": LLAMA}).json()["instance_id"] == f"{LLAMA}:2"
    (m,) = [m for m in client.get("/api/v1/models").json()["models"] if m["key"] == LLAMA]
    assert [(i["id"], i["config"]["context_length"]) for i in m["loaded_instances"]] == [
        (LLAMA, 8192),
        (f"{LLAMA}:2", 4096),
    ]
    assert client.post("/api/v1/models/unload", json={"instance_id": LLAMA}).json() == {"instance_id": LLAMA}
    assert fake.models[LLAMA].instances == [f"{LLAMA}:2"]
    r = client.post("/api/v1/models/load", json={"model": "nope"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_found"
    assert client.post("/api/v1/models/unload", json={"instance_id": "nope"}).status_code == 400
    assert fake.count("POST", "/api/v1/models/load") == 3 and fake.count() == 7
    fake.reset_log()
    assert fake.requests == []


def test_held_load_and_failures(fake: FakeLMStudio, client: httpx.Client) -> None:
    fake.hold_loads()
    results: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: results.append(client.post("/api/v1/models/load", json={"model": LLAMA})))
    worker.start()
    assert fake.wait_for_load_started(1, timeout=5)
    assert fake.models[LLAMA].instances == [] and not results
    fake.release_loads()
    worker.join(5)
    assert results[0].json()["instance_id"] == LLAMA

    fake.fail_load("google/gemma-3-4b", times=1)
    r = client.post("/api/v1/models/load", json={"model": "google/gemma-3-4b"})
    assert r.status_code == 500 and r.json()["error"]["type"] == "internal_error"
    assert client.post("/api/v1/models/load", json={"model": "google/gemma-3-4b"}).status_code == 200
    fake.fail_load(QWEN, "boom", status=400, shape="string")
    assert client.post("/api/v1/models/load", json={"model": QWEN}).json() == {"error": "boom"}
    assert fake.loads_started == 4


def test_chat_completion_with_jit_load(fake: FakeLMStudio, client: httpx.Client) -> None:
    body = {"model": LLAMA, "messages": [{"role": "user", "content": "hello big world"}], "max_tokens": 2}
    data = client.post("/v1/chat/completions", json=body).json()
    assert data["choices"][0]["message"]["content"] == "Echo: hello"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert fake.models[LLAMA].instances == [LLAMA]
    r = client.post("/v1/chat/completions", json={**body, "model": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert QWEN in ids and len(ids) == 4


def test_chat_streaming_and_cut(fake: FakeLMStudio, client: httpx.Client) -> None:
    body = {
        "model": QWEN,
        "messages": [{"role": "user", "content": "a b c"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Echo: a b c" and chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4

    fake.stream_cut_after = 2
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/v1/chat/completions", json=body) as r,
    ):
        received.extend(r.iter_lines())
    assert sum(line.startswith("data: ") for line in received) == 2


def test_auth_and_malformed() -> None:
    with FakeLMStudio(token="secret") as fake:
        r = httpx.get(f"{fake.url}/api/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        fake.malformed = True
        r = httpx.get(f"{fake.url}/api/v1/models", headers={"Authorization": "Bearer secret"})
        assert r.status_code == 200 and r.text.startswith("<html>")


def test_down_switch_and_delay(fake: FakeLMStudio, client: httpx.Client) -> None:
    port = fake.port
    assert client.get("/lmstudio-greeting").status_code == 200  # leaves a keep-alive connection
    fake.set_down(True)
    fake.set_down(True)
    with pytest.raises(httpx.ConnectError):
        client.get("/lmstudio-greeting")
    fake.set_down(False)
    assert fake.port == port and client.get("/lmstudio-greeting").status_code == 200
    fake.response_delay = 0.3
    with pytest.raises(httpx.ReadTimeout):
        client.get("/lmstudio-greeting", timeout=0.05)


def test_stop_is_prompt_with_a_held_load() -> None:
    fake = FakeLMStudio().start()
    fake.hold_loads()

    def load() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server goes away mid-request, on purpose
            httpx.post(f"{fake.url}/api/v1/models/load", json={"model": LLAMA})

    threading.Thread(target=load, daemon=True).start()
    assert fake.wait_for_load_started(timeout=5)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.url}/lmstudio-greeting")


@pytest.mark.parametrize("inherited", [signal.SIG_DFL, signal.SIG_IGN], ids=["sigint-default", "sigint-ignored"])
def test_cli_serves_and_exits_cleanly_on_ctrl_c(inherited: signal.Handlers) -> None:
    # SIG_IGN: started as a background job or under nohup, the emulator must still stop on Ctrl-C.
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.lmstudio", "--port", "0", "--models", "3"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, inherited),
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith("Fake LM Studio (v1) listening on http://127.0.0.1:")
        url = banner.split()[6]
        assert len(httpx.get(f"{url}/api/v1/models").json()["models"]) == 7
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=5)
        assert proc.returncode == 0 and "Traceback" not in err
    finally:
        proc.kill()
