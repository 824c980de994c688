"""Fake llama.cpp llama-server in router mode (`--models-dir`): GET /models with each model's
`status.value` (unloaded|loading|loaded), POST /models/load answering `{"success": true}` at once while
the load goes on in the background, POST /models/unload, `--models-max` eviction (least recently used),
and the OpenAI-compatible chat. A failed load ends as llama-server reports it: `unloaded` with
`"failed": true` and the model process's exit code.

Run standalone:  python -m tests.fakes.llamacpp --port 8080
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
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

DEFAULT_PORT = 8080


@dataclass
class RouterModel:
    id: str
    status: str = "unloaded"  # unloaded | loading | loaded
    exit_code: int = 0  # non-zero after a failed load, until the next one starts
    last_used: float = 0.0


def _error(message: str, status: int, kind: str) -> FakeResponse:
    return json_response({"error": {"code": status, "message": message, "type": kind}}, status)


class FakeLlamaCpp(FakeServer):
    """`router=False` is a llama-server started with one model (`-m file`): it lists that model, always in
    memory and with no status, and has no /models/load or /models/unload."""

    def __init__(
        self,
        models: Iterable[str] = ("tiny-alpha", "tiny-beta"),
        models_max: int = 0,
        router: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.router = router
        initial = "loaded" if not router else "unloaded"
        self.models: dict[str, RouterModel] = {name: RouterModel(name, initial) for name in models}
        self.models_max = models_max  # 0: no limit
        self.load_delay = 0.0
        self.unload_delay = 0.2  # how long the model process takes to end after an unload
        self.malformed = False
        self.loads_started = 0
        self._cond = threading.Condition()  # guards models, failures, counters
        self._loads_open = threading.Event()
        self._loads_open.set()
        self._failures: dict[str, int] = {}  # model -> the exit code its load process dies with
        self._threads: list[threading.Thread] = []
        self.route("GET", "/health", lambda req: json_response({"status": "ok"}))
        self.route("GET", "/models", self._list)
        self.route("GET", "/v1/models", self._list)
        if router:
            self.route("POST", "/models/load", self._load)
            self.route("POST", "/models/unload", self._unload)
        self.route("POST", "/v1/chat/completions", self._chat)

    # -- knobs -------------------------------------------------------------
    def hold_loads(self) -> None:
        self._loads_open.clear()

    def release_loads(self) -> None:
        self._loads_open.set()

    def on_stop(self) -> None:
        self._loads_open.set()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def fail_load(self, model: str, exit_code: int = 1) -> None:
        with self._cond:
            self._failures[model] = exit_code

    def wait_for_load_started(self, n: int = 1, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.loads_started >= n, timeout)

    def wait_for_status(self, model: str, status: str, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.models[model].status == status, timeout)

    def status_of(self, model: str) -> str:
        with self._cond:
            return self.models[model].status

    # -- HTTP --------------------------------------------------------------
    def _list(self, req: FakeRequest) -> FakeResponse:
        if self.malformed:
            return raw_response("<html>oops</html>")
        with self._cond:
            data = []
            for m in self.models.values():
                entry: dict[str, Any] = {"id": m.id, "object": "model", "owned_by": "llamacpp"}
                if not self.router:
                    data.append(entry | {"meta": {"n_ctx_train": 512}})
                    continue
                status: dict[str, Any] = {"value": m.status, "args": ["llama-server", "--port", "0"]}
                if m.status == "unloaded" and m.exit_code:
                    status |= {"failed": True, "exit_code": m.exit_code}
                data.append(entry | {"status": status, "source": "models_dir"})
        return json_response({"data": data, "object": "list"})

    def _load_in_background(self, model: RouterModel) -> None:
        self._loads_open.wait()
        if self.load_delay:
            self.stopping.wait(self.load_delay)
        with self._cond:
            exit_code = self._failures.get(model.id)
            if exit_code is not None:
                model.status, model.exit_code = "unloaded", exit_code
            else:
                running = [m for m in self.models.values() if m.status == "loaded"]
                if self.models_max and len(running) >= self.models_max:  # evict the least recently used
                    min(running, key=lambda m: m.last_used).status = "unloaded"
                model.status, model.last_used = "loaded", time.monotonic()
            self._cond.notify_all()

    def _start_load(self, model: RouterModel) -> None:
        # Under self._cond. The state turns to "loading" before the answer, as in llama-server.
        model.status, model.exit_code = "loading", 0
        self.loads_started += 1
        self._cond.notify_all()
        thread = threading.Thread(target=self._load_in_background, args=(model,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _load(self, req: FakeRequest) -> FakeResponse:
        name = request_body(req).get("model")
        with self._cond:
            model = self.models.get(name) if isinstance(name, str) else None
            if model is None:
                return _error("model is not found", 404, "not_found_error")
            if model.status in ("loading", "loaded"):
                return _error("model is already running", 400, "invalid_request_error")
            self._start_load(model)
        return json_response({"success": True})

    def _unload(self, req: FakeRequest) -> FakeResponse:
        name = request_body(req).get("model")
        with self._cond:
            model = self.models.get(name) if isinstance(name, str) else None
            if model is None:
                return _error("model is not found", 400, "invalid_request_error")
            if model.status != "loaded":
                return _error("model is not running", 400, "invalid_request_error")
            # As in llama-server, the answer comes before the model process has ended: the model stays
            # "loaded" for a moment, so a client must poll.
            thread = threading.Thread(target=self._unload_in_background, args=(model,), daemon=True)
            self._threads.append(thread)
            thread.start()
        return json_response({"success": True})

    def _unload_in_background(self, model: RouterModel) -> None:
        self.stopping.wait(self.unload_delay)
        with self._cond:
            model.status = "unloaded"
            self._cond.notify_all()

    def _chat(self, req: FakeRequest) -> FakeResponse:
        body = request_body(req)
        name = body.get("model")
        with self._cond:
            model = self.models.get(name) if isinstance(name, str) else None
            if model is None:
                return _error("model not found", 400, "invalid_request_error")
            if model.status != "loaded":  # as with --no-models-autoload
                return _error("model is not loaded", 400, "invalid_request_error")
            model.last_used = time.monotonic()
        return echo_chat(body, model=model.id)


def main(argv: list[str] | None = None) -> int:
    parser = local_server_parser("Emulate llama.cpp's llama-server in router mode.", DEFAULT_PORT)
    args = parser.parse_args(argv)
    fake = FakeLlamaCpp(host=args.host, port=args.port)
    fake.load_delay = args.load_delay
    return serve_until_stopped(fake, parser, "Fake llama-server (router)")


if __name__ == "__main__":
    raise SystemExit(main())
