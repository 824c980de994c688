"""Pooled upstream connections are reused: a finished stream hands its keep-alive connection back to the pool.

The upstream is a real loopback HTTP/1.1 server that keeps connections open after a chunked SSE answer (as
OpenAI and most servers do) and counts the connections it accepted."""

import socket
import threading
from collections.abc import Iterator
from contextlib import aclosing

import pytest
from asgiref.sync import async_to_sync

from providers.adapters import ChatParams, Delta, Finish, OpenAIAdapter

MESSAGES = [{"role": "user", "content": "Hi"}]

CHUNKS = [
    b'data: {"choices": [{"delta": {"content": "Hello"}}]}\n\n',
    b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n',
    b"data: [DONE]\n\n",
]


class KeepAliveSSE:
    """Answers every POST with a chunked SSE stream and keeps the connection for the next request. With
    ``hold_end`` it sends the events but never the final chunk, like an upstream that leaves a body open."""

    def __init__(self, *, hold_end: bool = False) -> None:
        self.hold_end = hold_end
        self.connections = 0
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                headers = []
                while (line := reader.readline()) not in (b"\r\n", b""):
                    headers.append(line)
                if not headers:
                    return
                length = next((int(h.split(b":")[1]) for h in headers if h.lower().startswith(b"content-length:")), 0)
                reader.read(length)
                with self._lock:
                    self.requests += 1
                body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in CHUNKS)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + body
                )
                if self.hold_end:
                    self._stop.wait()
                    return
                conn.sendall(b"0\r\n\r\n")
        except OSError:
            return
        finally:
            reader.close()
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        with self._lock:
            for conn in self._open:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def upstream() -> Iterator[KeepAliveSSE]:
    server = KeepAliveSSE()
    yield server
    server.close()


@pytest.fixture
def open_ended() -> Iterator[KeepAliveSSE]:
    server = KeepAliveSSE(hold_end=True)
    yield server
    server.close()


async def _streams(url: str, times: int) -> list[list[object]]:
    adapter = OpenAIAdapter(base_url=url, api_key="sk-test-key", guarded=False)
    results = []
    for _ in range(times):
        items: list[object] = []
        # As the completions service does: stop reading at the Finish and close the stream.
        async with aclosing(adapter.stream("m", MESSAGES, ChatParams())) as stream:
            async for item in stream:
                items.append(item)
                if isinstance(item, Finish):
                    break
        results.append(items)
    return results


def test_sequential_streams_share_one_connection(upstream: KeepAliveSSE) -> None:
    results = async_to_sync(_streams)(upstream.url, 3)

    for items in results:
        assert items == [Delta("Hello"), Finish("stop", None)]
    assert upstream.requests == 3
    assert upstream.connections == 1


def test_a_body_left_open_after_the_end_marker_is_not_waited_for(open_ended: KeepAliveSSE) -> None:
    results = async_to_sync(_streams)(open_ended.url, 2)

    for items in results:
        assert items == [Delta("Hello"), Finish("stop", None)]
    # The first connection could not be handed back (its body never ended), so the second request opened one.
    assert open_ended.requests == 2
    assert open_ended.connections == 2
