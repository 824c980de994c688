"""The upstreams the benchmark talks to, in a process of their own (so their threads do not share a GIL
with the load generator): the project's OpenAI and LM Studio emulators, on OS-chosen loopback ports.

    python -m bench.emulators --lmstudio-models 500

prints one JSON line with the URLs (and a port nothing listens on, for "connection refused"), then
serves until stdin closes or SIGTERM. Each emulator also answers `GET /__bench/count?path=...`: how many
requests that path received, so the benchmark can count upstream requests per model-list refresh."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading

from tests.fakes import base
from tests.fakes.base import FakeRequest, FakeResponse, FakeServer, json_response
from tests.fakes.lmstudio import FakeLMStudio
from tests.fakes.openai import FakeOpenAI

KEY = "test-key-1234"

# socketserver's listen backlog is 5: a burst of 500 connections would be dropped by the kernel before the
# emulator saw them. The tests never need more; the benchmark does.
base._HTTPServer.request_queue_size = 2048


def _add_counter(server: FakeServer) -> None:
    def count(req: FakeRequest) -> FakeResponse:
        path = req.query.get("path")
        return json_response({"count": server.count(path=path) if path else len(server.requests)})

    # Inserted first so that no catch-all or auth check of the emulator sees it.
    server.route("GET", "/__bench/count", count)
    server._routes.insert(0, server._routes.pop())


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lmstudio-models", type=int, default=500)
    args = parser.parse_args(argv)

    openai = FakeOpenAI(keys={KEY})
    # As a real provider does: the next request reuses a streamed answer's connection (for every party).
    openai.keep_streams_alive = True
    lmstudio = FakeLMStudio()
    lmstudio.make_models(args.lmstudio_models)
    for server in (openai, lmstudio):
        _add_counter(server)
        server.start()
    # The request log of FakeServer grows with every request; a benchmark run stays far below any limit.
    print(
        json.dumps({"openai": openai.url, "lmstudio": lmstudio.url, "refused": f"http://127.0.0.1:{free_port()}"}),
        flush=True,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (nohup)
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in (openai, lmstudio):
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
