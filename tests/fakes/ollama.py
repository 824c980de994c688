"""Fake Ollama server: /api/tags (downloaded), /api/ps (in memory), /api/generate (prompt-less load, and
unload with keep_alive 0), and the OpenAI-compatible /v1 chat. Loads can be slow (`load_delay`), held
(`hold_loads` / `release_loads`) or failing (`fail_load`, in Ollama's `{"error": "..."}` shape); the base
class gives the request log, `response_delay`, `set_down` and `malformed` replies.

Run standalone to try the app without Ollama:
    python -m tests.fakes.ollama --port 11434
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .base import (
    FakeRequest,
    FakeResponse,
    FakeServer,
    json_response,
    local_server_parser,
    raw_response,
    serve_until_stopped,
)
from .local_chat import echo_chat, request_body

DEFAULT_PORT = 11434


@dataclass
class OllamaModel:
    name: str  # name:tag, as Ollama lists it
    family: str = "llama"
    parameter_size: str = "3.2B"
    quantization_level: str = "Q4_K_M"
    size: int = 2_019_393_189
    context_length: int = 4096
    loaded: bool = False
    keep_alive: Any = None  # what the last load asked for

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


def default_models() -> list[OllamaModel]:
    return [
        OllamaModel("llama3.2:3b", loaded=True),
        OllamaModel("qwen2.5:7b", family="qwen2", parameter_size="7.6B", size=4_683_087_332, context_length=8192),
        OllamaModel("nomic-embed-text:latest", family="nomic-bert", parameter_size="137M", size=274_302_450),
    ]


@dataclass
class _Failure:
    message: str
    status: int
    remaining: int | None


class FakeOllama(FakeServer):
    def __init__(self, models: Iterable[OllamaModel] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.models: dict[str, OllamaModel] = {m.name: m for m in (default_models() if models is None else models)}
        self.load_delay = 0.0
        self.malformed = False
        self.stream_chunk_delay = 0.0
        self.stream_cut_after: int | None = None
        self.loads_started = 0
        self._cond = threading.Condition()  # guards models, failures and the counter
        self._loads_open = threading.Event()
        self._loads_open.set()
        self._failures: dict[str, _Failure] = {}
        self.route("GET", "/", lambda req: raw_response("Ollama is running", content_type="text/plain"))
        self.route("GET", "/api/version", lambda req: json_response({"version": "0.12.0"}))
        self.route("GET", "/api/tags", self._tags)
        self.route("GET", "/api/ps", self._ps)
        self.route("POST", "/api/generate", self._generate)
        self.route("GET", "/v1/models", self._openai_models)
        self.route("POST", "/v1/chat/completions", self._chat)

    # -- knobs -------------------------------------------------------------
    def add_model(self, name: str, **fields: Any) -> OllamaModel:
        model = OllamaModel(name, **fields)
        with self._cond:
            self.models[name] = model
        return model

    def hold_loads(self) -> None:
        self._loads_open.clear()

    def release_loads(self) -> None:
        self._loads_open.set()

    def on_stop(self) -> None:
        self._loads_open.set()

    def wait_for_load_started(self, n: int = 1, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.loads_started >= n, timeout)

    def fail_load(self, name: str, message: str, status: int = 500, times: int | None = None) -> None:
        """Make loads of `name` fail with Ollama's own words: always, or for the next `times` loads."""
        with self._cond:
            self._failures[name] = _Failure(message, status, times)

    def evict(self, name: str) -> None:
        """What Ollama does by itself when keep_alive runs out or memory is needed."""
        with self._cond:
            self.models[name].loaded = False

    def loaded(self) -> list[str]:
        with self._cond:
            return sorted(m.name for m in self.models.values() if m.loaded)

    # -- HTTP --------------------------------------------------------------
    def _list(self, models: list[OllamaModel], running: bool) -> FakeResponse:
        if self.malformed:
            return raw_response("<html>oops</html>")
        entries = []
        for m in models:
            entry: dict[str, Any] = {
                "name": m.name,
                "model": m.name,
                "size": m.size,
                "digest": f"{abs(hash(m.name)):064x}"[:64],
                "details": m.details(),
            }
            if running:
                entry |= {"expires_at": "2318-01-01T00:00:00Z", "size_vram": m.size, "context_length": m.context_length}
            else:
                entry["modified_at"] = "2026-11-01T10:00:00Z"
            entries.append(entry)
        return json_response({"models": entries})

    def _tags(self, req: FakeRequest) -> FakeResponse:
        with self._cond:
            models = list(self.models.values())
        return self._list(models, running=False)

    def _ps(self, req: FakeRequest) -> FakeResponse:
        with self._cond:
            models = [m for m in self.models.values() if m.loaded]
        return self._list(models, running=True)

    def _done(self, name: str, reason: str) -> FakeResponse:
        now = datetime.now(UTC).isoformat()
        return json_response({"model": name, "created_at": now, "response": "", "done": True, "done_reason": reason})

    def _load(self, model: OllamaModel, keep_alive: Any) -> FakeResponse | None:
        with self._cond:
            self.loads_started += 1
            self._cond.notify_all()
        self._loads_open.wait()
        if self.load_delay:
            self.stopping.wait(self.load_delay)
        with self._cond:
            failure = self._failures.get(model.name)
            if failure is not None:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        del self._failures[model.name]
                return json_response({"error": failure.message}, failure.status)
            model.loaded, model.keep_alive = True, keep_alive
        return None

    def _generate(self, req: FakeRequest) -> FakeResponse:
        body = request_body(req)
        name = body.get("model")
        model = self.models.get(name) if isinstance(name, str) else None
        if model is None:
            return json_response({"error": f"model '{name}' not found"}, 404)
        if body.get("prompt"):
            return json_response({"error": "this emulator only loads and unloads through /api/generate"}, 400)
        if body.get("keep_alive") == 0:
            with self._cond:
                model.loaded = False
            return self._done(model.name, "unload")
        return self._load(model, body.get("keep_alive")) or self._done(model.name, "load")

    def _openai_models(self, req: FakeRequest) -> FakeResponse:
        with self._cond:
            names = list(self.models)
        return json_response(
            {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "library"} for n in names]}
        )

    def _chat(self, req: FakeRequest) -> FakeResponse:
        body = request_body(req)
        name = body.get("model")
        model = self.models.get(name) if isinstance(name, str) else None
        if model is None:
            error = {"message": f'model "{name}" not found, try pulling it first', "type": "api_error"}
            return json_response({"error": error}, 404)
        if not model.loaded:  # Ollama loads a model a request names, just in time
            failed = self._load(model, None)
            if failed is not None:
                return failed
        return echo_chat(body, model=model.name, chunk_delay=self.stream_chunk_delay, cut_after=self.stream_cut_after)


def main(argv: list[str] | None = None) -> int:
    parser = local_server_parser("Emulate an Ollama server for local testing.", DEFAULT_PORT)
    args = parser.parse_args(argv)
    fake = FakeOllama(host=args.host, port=args.port)
    fake.load_delay = args.load_delay
    return serve_until_stopped(fake, parser, "Fake Ollama")


if __name__ == "__main__":
    raise SystemExit(main())
