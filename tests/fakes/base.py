"""Reusable loopback HTTP server for emulating third-party APIs in tests.

Subclasses register routes (or override ``handle``); the base provides the
request log, latency injection, SSE streaming with mid-stream cuts and a
"down" switch that really closes the listening socket.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class FakeRequest:
    """One request as received; also the record kept in the request log."""

    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]  # keys lower-cased: HTTP header names are case-insensitive
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from ``{name}`` route segments

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[bytes] | None = None  # set => chunked streaming response
    chunk_delay: float = 0.0  # seconds before each streamed chunk
    cut_after: int | None = None  # drop the connection after this many chunks


Route = Callable[[FakeRequest], FakeResponse]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> FakeResponse:
    body = json.dumps(data).encode()
    return FakeResponse(status, body, {"Content-Type": "application/json", **(headers or {})})


def raw_response(body: bytes | str, status: int = 200, content_type: str = "text/html") -> FakeResponse:
    """Arbitrary bytes, e.g. a malformed body where JSON is expected."""
    data = body.encode() if isinstance(body, str) else body
    return FakeResponse(status, data, {"Content-Type": content_type})


def sse_event(data: Any, event: str | None = None) -> bytes:
    """Frame one SSE event; non-strings are JSON-encoded (``[DONE]`` stays a raw string)."""
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def sse_response(
    events: Iterable[Any], status: int = 200, chunk_delay: float = 0.0, cut_after: int | None = None
) -> FakeResponse:
    """Stream ``events``: bytes are written verbatim, anything else goes through ``sse_event``.

    ``cut_after=n`` sends n chunks then closes the socket without the final
    zero-length chunk, so clients see a truncated body rather than a clean end.
    """
    chunks = (e if isinstance(e, bytes) else sse_event(e) for e in events)
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    return FakeResponse(status, b"", headers, chunks, chunk_delay, cut_after)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # so set_down(False) can rebind the port at once

    def __init__(self, owner: FakeServer) -> None:
        self.owner = owner
        self.dead = False  # set under owner._conn_lock before open connections are killed
        self.conns: set[socket.socket] = set()
        super().__init__((owner.host, owner.port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Writes to sockets we deliberately killed (down switch, cuts, stop) are expected.
        if not isinstance(sys.exc_info()[1], (OSError, ValueError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers; clients pool connections
    # Headers and body go out in separate writes; with Nagle on, a pooled connection waits ~40 ms for the
    # client's delayed ACK before the body leaves, on every response.
    disable_nagle_algorithm = True
    server_version = "FakeServer"
    sys_version = ""
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.owner._conn_lock:
            self.server.conns.add(self.connection)
            if self.server.dead:  # accepted in the instant the server went down
                _kill(self.connection)

    def finish(self) -> None:
        with self.server.owner._conn_lock:
            self.server.conns.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _dispatch(self) -> None:
        owner = self.server.owner
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        req = FakeRequest(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        owner._record(req)
        if owner.response_delay:
            owner.stopping.wait(owner.response_delay)
        try:
            resp = owner.handle(req) or owner.fallback(req)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must surface as a 500, not a hang
            traceback.print_exc()
            resp = json_response({"error": f"fake server crashed: {exc!r}"}, 500)
        self._send(resp)

    def _send(self, resp: FakeResponse) -> None:
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if resp.stream is None:
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
            return
        # Chunked framing lets clients tell a clean end from an abrupt cut.
        self.send_header("Transfer-Encoding", "chunked")
        if not self.server.owner.keep_streams_alive:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        stopping = self.server.owner.stopping
        for sent, chunk in enumerate(c for c in resp.stream if c):
            if resp.cut_after is not None and sent >= resp.cut_after:
                return _kill(self.connection)
            if resp.chunk_delay and stopping.wait(resp.chunk_delay):
                return _kill(self.connection)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    # Every verb goes through the same dispatcher; routing happens in FakeServer.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


def _kill(sock: socket.socket) -> None:
    # shutdown() (not just close) so threads blocked reading this socket wake up.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class FakeServer:
    """Threaded HTTP server on loopback; use as a context manager or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port  # 0 until start(), then the real port (kept across set_down)
        self.response_delay: float = 0.0
        self.stopping = threading.Event()  # set by stop(); waits inside handlers use it
        # Real providers keep a streamed answer's connection open for the next request; the tests' servers
        # close it (a test that counts connections or cuts a stream wants each stream on its own).
        self.keep_streams_alive = False
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []
        self._log: list[FakeRequest] = []
        self._log_lock = threading.Lock()
        self._conn_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- routing -----------------------------------------------------------
    def route(self, method: str, path: str, fn: Route) -> None:
        """Register ``fn`` for ``method path``; ``{name}`` segments land in ``req.params``."""
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+?)", re.escape(path))
        self._routes.append((method.upper(), re.compile(regex), fn))

    def handle(self, req: FakeRequest) -> FakeResponse | None:
        """Override for cross-cutting checks (auth...); None falls through to ``fallback``."""
        for method, regex, fn in self._routes:
            match = regex.fullmatch(req.path)
            if match and method == req.method:
                return fn(replace(req, params=match.groupdict()))
        return None

    def fallback(self, req: FakeRequest) -> FakeResponse:
        return json_response({"error": f"no route for {req.method} {req.path}"}, 404)

    # -- request log -------------------------------------------------------
    def _record(self, req: FakeRequest) -> None:
        with self._log_lock:
            self._log.append(req)

    @property
    def requests(self) -> list[FakeRequest]:
        """Snapshot of every request received, oldest first."""
        with self._log_lock:
            return list(self._log)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper()) and (path is None or r.path == path)
        )

    def reset_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    # -- lifecycle ---------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_down(self) -> bool:
        return self._httpd is None

    def _listen(self) -> None:
        self._httpd = _HTTPServer(self)
        self.port = self._httpd.server_address[1]
        # Short poll interval: shutdown() (stop / set_down) returns within ~50 ms.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name=f"{type(self).__name__}:{self.port}", daemon=True
        )
        self._thread.start()

    def _close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        with self._conn_lock:
            httpd.dead = True
            conns = list(httpd.conns)
        httpd.shutdown()
        httpd.server_close()
        for conn in conns:  # a crashed server takes its keep-alive connections with it
            _kill(conn)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def start(self) -> Self:
        with self._state_lock:
            self.stopping.clear()
            if self._httpd is None:
                self._listen()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.on_stop()
        with self._state_lock:
            self._close()

    def on_stop(self) -> None:
        """Hook: release anything a handler may be blocked on, so stop() is prompt."""

    def set_down(self, down: bool) -> None:
        """Down: connections are refused (and open ones dropped). Up: listen on the same port."""
        with self._state_lock:
            if down:
                self._close()
            elif self._httpd is None:
                self._listen()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_until_stopped(fake: FakeServer, parser: argparse.ArgumentParser, banner: str) -> int:
    """Run an emulator from the command line until Ctrl-C or SIGTERM, then stop it cleanly."""
    try:
        fake.start()
    except OSError as exc:
        parser.exit(1, f"Cannot listen on {fake.host}:{fake.port}: {exc}\n")
    print(f"{banner} listening on {fake.url} — Ctrl-C to stop", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())  # `kill` stops it as cleanly as Ctrl-C
    # Started from a shell that ignores SIGINT (a background job, nohup, some CI runners), Python inherits
    # the ignore and Ctrl-C would do nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


def local_server_parser(description: str, default_port: int) -> argparse.ArgumentParser:
    """The command line every local-server emulator takes: where to listen, and how long a load takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--load-delay", type=float, default=0.0, metavar="SECONDS")
    return parser
