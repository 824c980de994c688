"""Fake LM Studio server: native REST API (v1 or v0) plus the OpenAI-compatible /v1.

Run standalone to try the app without LM Studio:
    python -m tests.fakes.lmstudio --port 1234
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .base import (
    FakeRequest,
    FakeResponse,
    FakeServer,
    json_response,
    local_server_parser,
    raw_response,
    serve_until_stopped,
    sse_response,
)
from .code_mode import code_answer

DEFAULT_PORT = 1234
DEFAULT_CONTEXT = 4096  # what LM Studio uses when a load does not ask for a context length


@dataclass
class FakeModel:
    key: str
    display_name: str = ""
    type: str = "llm"  # "llm" | "embedding"
    publisher: str = "lmstudio-community"
    architecture: str = "llama"
    size_bytes: int = 4_920_734_272
    params_string: str | None = "7B"
    max_context_length: int = 32768
    quantization: str = "Q4_K_M"
    vision: bool = False
    tool_use: bool = False
    instances: list[str] = field(default_factory=list)  # ids of loaded instances
    context_lengths: dict[str, int] = field(default_factory=dict)  # per instance id, when not default

    def __post_init__(self) -> None:
        if not self.display_name:
            self.display_name = self.key.rsplit("/", 1)[-1].replace("-", " ").title()

    def context_of(self, instance_id: str) -> int:
        return self.context_lengths.get(instance_id, min(DEFAULT_CONTEXT, self.max_context_length))


def default_models() -> list[FakeModel]:
    """A small, realistic library: one loaded chat model, two idle ones, one embedder."""
    return [
        FakeModel(
            "qwen/qwen2.5-7b-instruct",
            "Qwen2.5 7B Instruct",
            publisher="qwen",
            architecture="qwen2",
            size_bytes=4_683_073_952,
            params_string="7B",
            max_context_length=32768,
            tool_use=True,
            instances=["qwen/qwen2.5-7b-instruct"],
        ),
        FakeModel(
            "meta-llama-3.1-8b-instruct",
            "Meta Llama 3.1 8B Instruct",
            architecture="llama",
            size_bytes=4_920_734_272,
            params_string="8B",
            max_context_length=131072,
            tool_use=True,
        ),
        FakeModel(
            "google/gemma-3-4b",
            "Gemma 3 4B",
            publisher="google",
            architecture="gemma3",
            size_bytes=3_341_081_536,
            params_string="4B",
            max_context_length=131072,
            vision=True,
        ),
        FakeModel(
            "text-embedding-nomic-embed-text-v1.5",
            "Nomic Embed Text v1.5",
            type="embedding",
            publisher="nomic-ai",
            architecture="nomic-bert",
            size_bytes=84_106_624,
            params_string="137M",
            max_context_length=2048,
        ),
    ]


@dataclass
class _Failure:
    message: str
    status: int
    shape: Literal["object", "string"]
    remaining: int | None  # None = fail forever


def _text(content: Any) -> str:
    # OpenAI content is a string or, for multimodal messages, a list of typed parts.
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return " ".join(str(p.get("text", "")) for p in parts)
    return "" if content is None else str(content)


def _bits(quantization: str) -> int | None:
    match = re.search(r"\d+", quantization)
    return int(match.group()) if match else None


def _v1_error(message: str, param: str, status: int = 400) -> FakeResponse:
    error = {"message": message, "type": "invalid_request", "code": "model_not_found", "param": param}
    return json_response({"error": error}, status)


class FakeLMStudio(FakeServer):
    def __init__(
        self,
        api: Literal["v1", "v0"] = "v1",
        models: Iterable[FakeModel] | None = None,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        if api not in ("v1", "v0"):
            raise ValueError(f"api must be 'v1' or 'v0', not {api!r}")
        self.api = api
        self.token = token
        initial = default_models() if models is None else models
        self.models: dict[str, FakeModel] = {m.key: m for m in initial}
        self.load_delay: float = 0.0
        self.malformed = False
        self.stream_chunk_delay: float = 0.0
        self.code_mode = False  # answer requests for code with code (tests/fakes/code_mode.py) instead of the echo
        self.stream_cut_after: int | None = None
        self.loads_started = 0
        self._cond = threading.Condition()  # guards models' instances, failures and counters
        self._loads_open = threading.Event()
        self._loads_open.set()
        self._load_epoch = 0  # loads held before abandon_held_loads() end without loading
        self._failures: dict[str, _Failure] = {}
        self._jit_locks: dict[str, threading.Lock] = {}
        self._ids = itertools.count(1)
        # Downloads: what the catalogue offers (key -> size), the jobs, and how far each status poll moves one
        # (progress follows the polls, so a test sees "downloading" then "completed" without any timing).
        self.catalogue: dict[str, int] = {"qwen/qwen3-4b": 2_500_000_000}
        self.download_step = 1_000_000_000
        self.download_failures: dict[str, str] = {}
        self._jobs: dict[str, dict[str, Any]] = {}

        self.route("GET", "/lmstudio-greeting", lambda req: json_response({"lmstudio": True}))
        # LM Studio 0.4 (v1) still serves the v0 API, so v0 clients keep working against it.
        self.route("GET", "/api/v0/models", self._v0_models)
        self.route("POST", "/api/v0/chat/completions", self._chat)
        self.route("GET", "/v1/models", self._openai_models)
        self.route("POST", "/v1/chat/completions", self._chat)
        if api == "v1":
            self.route("GET", "/api/v1/models", self._v1_models)
            self.route("POST", "/api/v1/models/load", self._v1_load)
            self.route("POST", "/api/v1/models/unload", self._v1_unload)
            self.route("POST", "/api/v1/models/download", self._v1_download)
            self.route("GET", "/api/v1/models/download/status/{job_id}", self._v1_download_status)

    # -- knobs -------------------------------------------------------------
    def add_model(self, key: str, **fields: Any) -> FakeModel:
        model = FakeModel(key=key, **fields)
        with self._cond:
            self.models[key] = model
        return model

    def remove_model(self, key: str) -> None:
        with self._cond:
            self.models.pop(key, None)

    def make_models(self, n: int) -> list[FakeModel]:
        """Add n synthetic models (varied architectures, a few vision ones) for scale tests."""
        shapes = [
            ("llama", "8B", 4_920_734_272),
            ("qwen2", "7B", 4_683_073_952),
            ("mistral", "7B", 4_368_439_584),
            ("gemma3", "4B", 3_341_081_536),
            ("phi3", "3.8B", 2_393_232_672),
        ]
        added: list[FakeModel] = []
        for i in itertools.count():
            if len(added) == n:
                break
            key = f"synthetic/test-model-{i:04d}"
            if key in self.models:
                continue
            arch, params, size = shapes[i % len(shapes)]
            added.append(
                self.add_model(
                    key,
                    publisher="synthetic",
                    architecture=arch,
                    params_string=params,
                    size_bytes=size + i,
                    max_context_length=8192 << (i % 5),
                    vision=i % 7 == 0,
                    tool_use=i % 2 == 0,
                )
            )
        return added

    def hold_loads(self) -> None:
        self._loads_open.clear()

    def release_loads(self) -> None:
        self._loads_open.set()

    def abandon_held_loads(self) -> None:
        """End the loads now held without loading anything, as a server that dropped them would (their
        client is gone); loads that arrive later are held as before if loads were held."""
        with self._cond:
            self._load_epoch += 1
        holding = not self._loads_open.is_set()
        self._loads_open.set()  # wakes every held load; each sees the new epoch and gives up
        if holding:
            self._loads_open.clear()

    def on_stop(self) -> None:
        self._loads_open.set()

    def wait_for_load_started(self, n: int = 1, timeout: float = 10.0) -> bool:
        """Block until at least n loads (in total) have arrived; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.loads_started >= n, timeout)

    def wait_for_loaded(self, key: str, timeout: float = 10.0) -> bool:
        """Block until ``key`` has a loaded instance; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: key in self.models and bool(self.models[key].instances), timeout)

    def fail_load(
        self,
        key: str,
        message: str = "Failed to load model: insufficient memory",
        status: int = 500,
        shape: Literal["object", "string"] = "object",
        times: int | None = None,
    ) -> None:
        """Make loads of ``key`` fail: always (times=None) or for the next ``times`` loads."""
        if shape not in ("object", "string"):
            raise ValueError(f"shape must be 'object' or 'string', not {shape!r}")
        with self._cond:
            self._failures[key] = _Failure(message, status, shape, times)

    def clear_failures(self) -> None:
        with self._cond:
            self._failures.clear()

    # -- HTTP --------------------------------------------------------------
    def handle(self, req: FakeRequest) -> FakeResponse | None:
        if self.token and req.headers.get("authorization") != f"Bearer {self.token}":
            error = {
                "message": "Invalid or missing API token",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
            return json_response({"error": error}, 401)
        return super().handle(req)

    def fallback(self, req: FakeRequest) -> FakeResponse:
        # Real LM Studio quirk: unknown endpoints are a 200 whose body is an error string.
        message = f"Unexpected endpoint or method. ({req.method} {req.path}). Returning 200 anyway"
        return json_response({"error": message})

    def _snapshot(self) -> list[FakeModel]:
        with self._cond:
            return list(self.models.values())

    @staticmethod
    def _body(req: FakeRequest) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _model_list(self, payload: dict[str, Any]) -> FakeResponse:
        return raw_response("<html>oops</html>") if self.malformed else json_response(payload)

    def _v1_models(self, req: FakeRequest) -> FakeResponse:
        models = [
            {
                "type": m.type,
                "publisher": m.publisher,
                "key": m.key,
                "display_name": m.display_name,
                "architecture": m.architecture,
                "quantization": {"name": m.quantization, "bits_per_weight": _bits(m.quantization)},
                "size_bytes": m.size_bytes,
                "params_string": m.params_string,
                "loaded_instances": [
                    {"id": i, "config": {"context_length": m.context_of(i)}} for i in list(m.instances)
                ],
                "max_context_length": m.max_context_length,
                "format": "gguf",
                "capabilities": {"vision": m.vision, "trained_for_tool_use": m.tool_use},
            }
            for m in self._snapshot()
        ]
        return self._model_list({"models": models})

    def _v0_models(self, req: FakeRequest) -> FakeResponse:
        data = []
        for m in self._snapshot():
            instances = list(m.instances)
            entry: dict[str, Any] = {
                "id": m.key,
                "object": "model",
                "type": "embeddings" if m.type == "embedding" else "vlm" if m.vision else m.type,
                "publisher": m.publisher,
                "arch": m.architecture,
                "compatibility_type": "gguf",
                "quantization": m.quantization,
                "state": "loaded" if instances else "not-loaded",
                "max_context_length": m.max_context_length,
            }
            if instances:
                entry["loaded_context_length"] = m.context_of(instances[0])
            entry["capabilities"] = ["tool_use"] if m.tool_use else []
            data.append(entry)
        return self._model_list({"object": "list", "data": data})

    def _openai_models(self, req: FakeRequest) -> FakeResponse:
        data = [{"id": m.key, "object": "model", "owned_by": "organization_owner"} for m in self._snapshot()]
        return self._model_list({"object": "list", "data": data})

    def _load(self, model: FakeModel, context_length: int | None) -> str | FakeResponse:
        """Shared by explicit and just-in-time loads: returns the new instance id or an error."""
        with self._cond:
            self.loads_started += 1
            epoch = self._load_epoch
            self._cond.notify_all()
        self._loads_open.wait()
        if self.load_delay:
            self.stopping.wait(self.load_delay)
        with self._cond:
            if epoch != self._load_epoch:
                return json_response({"error": {"message": "Load abandoned", "type": "internal_error"}}, 500)
            failure = self._failures.get(model.key)
            if failure is not None:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        del self._failures[model.key]
                error: Any = failure.message
                if failure.shape == "object":
                    error = {"message": failure.message, "type": "internal_error"}
                return json_response({"error": error}, failure.status)
            instance_id, n = model.key, 2
            while instance_id in model.instances:  # LM Studio numbers extra copies key:2, key:3...
                instance_id, n = f"{model.key}:{n}", n + 1
            model.instances.append(instance_id)
            self._cond.notify_all()
            if context_length:
                model.context_lengths[instance_id] = context_length
            return instance_id

    def _v1_load(self, req: FakeRequest) -> FakeResponse:
        body = self._body(req)
        key = body.get("model")
        model = self.models.get(key) if isinstance(key, str) else None
        if model is None:
            return _v1_error(f"Model '{key}' not found" if key else "Missing required field 'model'", "model")
        started = time.monotonic()
        result = self._load(model, body.get("context_length"))
        if isinstance(result, FakeResponse):
            return result
        return json_response(
            {
                "type": model.type,
                "instance_id": result,
                "load_time_seconds": round(time.monotonic() - started, 3),
                "status": "loaded",
            }
        )

    def _v1_unload(self, req: FakeRequest) -> FakeResponse:
        instance_id = self._body(req).get("instance_id")
        with self._cond:
            for model in self.models.values():
                if instance_id in model.instances:
                    model.instances.remove(instance_id)
                    model.context_lengths.pop(instance_id, None)
                    return json_response({"instance_id": instance_id})
        return _v1_error(f"Model instance '{instance_id}' not found", "instance_id")

    def _v1_download(self, req: FakeRequest) -> FakeResponse:
        key = self._body(req).get("model")
        with self._cond:
            if isinstance(key, str) and key in self.models:
                return json_response({"status": "already_downloaded"})
            if not isinstance(key, str) or key not in self.catalogue:
                return _v1_error(f"Could not find model '{key}' in the catalog", "model", 404)
            job_id = f"job_{next(self._ids):010x}"
            self._jobs[job_id] = {
                "key": key,
                "job_id": job_id,
                "status": "downloading",
                "total_size_bytes": self.catalogue[key],
                "downloaded_bytes": 0,
                "started_at": "2026-11-29T12:00:00.000Z",
            }
            return json_response({k: v for k, v in self._jobs[job_id].items() if k != "key"})

    def _v1_download_status(self, req: FakeRequest) -> FakeResponse:
        with self._cond:
            job = self._jobs.get(req.params["job_id"])
            if job is None:
                return _v1_error(f"Download job '{req.params['job_id']}' not found", "job_id", 404)
            if job["status"] == "downloading":
                if job["key"] in self.download_failures:
                    job |= {"status": "failed", "message": self.download_failures[job["key"]]}
                else:
                    job["downloaded_bytes"] = min(job["total_size_bytes"], job["downloaded_bytes"] + self.download_step)
                    job["bytes_per_second"] = self.download_step
                    if job["downloaded_bytes"] == job["total_size_bytes"]:
                        job |= {"status": "completed", "completed_at": "2026-11-29T12:01:00.000Z"}
                        job.pop("bytes_per_second")
                        self.models[job["key"]] = FakeModel(job["key"], size_bytes=job["total_size_bytes"])
            return json_response({k: v for k, v in job.items() if k != "key"})

    def _chat(self, req: FakeRequest) -> FakeResponse:
        body = self._body(req)
        name = body.get("model")
        model = next((m for m in self._snapshot() if name == m.key or name in m.instances), None)
        if model is None:
            error = {
                "message": "Model not found",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
            return json_response({"error": error}, 404)
        # One just-in-time load per model: concurrent requests wait for it instead of loading copies.
        with self._cond:
            jit_lock = self._jit_locks.setdefault(model.key, threading.Lock())
        with jit_lock:
            if not model.instances:
                result = self._load(model, None)
                if isinstance(result, FakeResponse):
                    return result

        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        last_user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        others = " ".join(_text(m.get("content")) for m in messages if m.get("role") != "user")
        answer = code_answer(system=others, prompt=last_user) if self.code_mode else None
        # Each piece keeps the white space before it, so line breaks (code in a prompt) survive the echo.
        words = re.findall(r"\s*\S+", answer or f"Echo: {last_user}")
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if isinstance(limit, int) and 0 < limit < len(words):
            words, finish = words[:limit], "length"
        pieces = words
        prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        common = {
            "id": f"chatcmpl-{next(self._ids)}",
            "created": int(time.time()),
            "model": name,
            "system_fingerprint": model.key,
        }

        if not body.get("stream"):
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces)},
                "logprobs": None,
                "finish_reason": finish,
            }
            return json_response({**common, "object": "chat.completion", "choices": [choice], "usage": usage})

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**common, "object": "chat.completion.chunk", "choices": [choice]}

        events: list[Any] = [
            chunk({"role": "assistant", "content": p} if i == 0 else {"content": p}) for i, p in enumerate(pieces)
        ]
        events.append(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**common, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        events.append("[DONE]")
        return sse_response(events, chunk_delay=self.stream_chunk_delay, cut_after=self.stream_cut_after)


def main(argv: list[str] | None = None) -> int:
    parser = local_server_parser("Emulate an LM Studio server for local testing.", DEFAULT_PORT)
    parser.add_argument("--api", choices=["v1", "v0"], default="v1")
    parser.add_argument("--models", type=int, default=0, metavar="N", help="extra synthetic models")
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    args = parser.parse_args(argv)

    fake = FakeLMStudio(api=args.api, token=args.token, host=args.host, port=args.port)
    fake.load_delay = args.load_delay
    fake.make_models(args.models)
    return serve_until_stopped(fake, parser, f"Fake LM Studio ({args.api})")


if __name__ == "__main__":
    raise SystemExit(main())
