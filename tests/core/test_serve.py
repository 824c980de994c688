"""`manage.py serve` (what `make run` starts): several web processes on one port whose every accepted
connection has Nagle off, several Celery worker processes, and one stop for them all.

Whether Nagle is off is read from the server's own accepted sockets: pidfd_getfd(2) copies each socket of
the web processes into this test, where getsockopt(TCP_NODELAY) says how the server set it up. With Nagle
on, each keep-alive answer written in two pieces waits for the client's delayed ACK (about 40 ms)."""

from __future__ import annotations

import ctypes
import http.client
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core import webserver
from tests.processes import ManagedProcess, app_env, web_server

SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture
_libc = ctypes.CDLL(None, use_errno=True)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def server_side_nodelay(pids: list[int], client: socket.socket) -> int | None:
    """TCP_NODELAY of the socket one of `pids` accepted for `client`; None if none of them holds it."""
    wanted = client.getsockname()
    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                        continue
                except OSError:
                    continue
                copy = _libc.syscall(SYS_PIDFD_GETFD, pidfd, int(fd), 0)
                if copy < 0:
                    err = ctypes.get_errno()
                    pytest.skip(f"pidfd_getfd is not allowed here: {os.strerror(err)}")
                with socket.socket(fileno=copy) as sock:
                    if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM:
                        continue
                    try:
                        if sock.getpeername() == wanted:
                            return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                    except OSError:
                        continue  # the listening socket has no peer
        finally:
            os.close(pidfd)
    return None


def nodelay_of_connections(port: int, server_pid: int, n: int = 6) -> list[int | None]:
    """Open n keep-alive connections (spread over the web processes by the kernel) and read each one's
    server side."""
    pids = [server_pid, *descendants(server_pid)]
    found = []
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for _ in range(2):  # a keep-alive pair: the second answer is the one Nagle would hold back
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                assert response.status == 200 and response.read() == b'{"status": "ok"}'
            assert conn.sock is not None
            found.append(server_side_nodelay(pids, conn.sock))
        finally:
            conn.close()
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # the OS chooses; serve binds it again a moment later
        return sock.getsockname()[1]


@contextmanager
def serve(var_dir: Path, *args: str, ready: str, ready_count: int = 1) -> Iterator[tuple[ManagedProcess, int]]:
    port = free_port()
    process = ManagedProcess(
        "serve",
        [sys.executable, "manage.py", "serve", "--port", str(port), *args],
        app_env(VAR_DIR=str(var_dir)),  # its own var/: serve empties the metrics folder there
        ready=ready,
        ready_count=ready_count,
    )
    try:
        process.wait_ready()
        yield process, port
    finally:
        process.stop()


def gone(pids: list[int]) -> list[int]:
    """Those of pids still running (a zombie has ended: it only waits to be reaped)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def test_two_web_processes_turn_nagle_off_on_every_connection_and_sigterm_stops_them(tmp_path: Path) -> None:
    with serve(tmp_path, "--web-workers", "2", "--workers", "0", ready="Started server process", ready_count=2) as (
        process,
        port,
    ):
        tree = descendants(process.process.pid)
        assert len([p for p in tree if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]) == 2
        assert nodelay_of_connections(port, process.process.pid) == [1] * 6, process.output()

        process.process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.output()
    assert gone(tree) == []


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_web_server_turns_nagle_off_whatever_the_event_loop(loop: str) -> None:
    """asyncio turns Nagle off only on sockets made with IPPROTO_TCP; uvicorn's own `--workers` makes its
    socket without, and its answers then waited for delayed ACKs."""
    with web_server(workers=2, loop=loop) as (server, url):
        port = int(url.rsplit(":", 1)[1])
        assert nodelay_of_connections(port, server.process.pid) == [1] * 6, server.output()


@pytest.mark.worker
def test_one_process_ending_stops_the_others(tmp_path: Path) -> None:
    with serve(tmp_path, "--web-workers", "1", "--workers", "2", ready=r"worker\d@\S+ ready", ready_count=2) as (
        process,
        port,
    ):
        tree = descendants(process.process.pid)
        names = [Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ") for p in tree]
        assert sum("-n worker1@%h" in n for n in names) == 1 and sum("-n worker2@%h" in n for n in names) == 1
        web = next(p for p, n in zip(tree, names, strict=True) if "core.webserver" in n)
        os.kill(web, signal.SIGKILL)
        assert process.wait(timeout=60) == 1, process.output()
        assert "Stopped because a process ended" in process.output()
    assert gone(tree) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"web_workers": 0, "workers": 0}, "nothing to run"),
        ({"web_workers": -1}, "must be 0 or more"),
        ({"worker_concurrency": 0}, "--worker-concurrency 1 or more"),
    ],
)
def test_bad_process_counts_are_refused_before_anything_starts(options: dict[str, int], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("serve", **options)


def test_a_process_count_from_the_environment_must_be_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_WORKERS", "two")
    with pytest.raises(CommandError, match="WEB_WORKERS must be a whole number, not 'two'"):
        call_command("serve")


def test_the_listening_socket_is_tcp_with_nagle_off_and_an_inherited_one_keeps_its_kind() -> None:
    with webserver.listening_socket("127.0.0.1", 0) as sock:
        assert (sock.family, sock.type, sock.proto) == (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    with socket.socket() as plain:  # as a caller binds one: protocol 0, Nagle on
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        with webserver.inherited_socket(os.dup(plain.fileno())) as sock:
            assert (sock.family, sock.proto) == (socket.AF_INET, socket.IPPROTO_TCP)  # not uvicorn's AF_UNIX
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_the_web_server_wants_at_least_one_process(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        webserver.main(["--workers", "0"])
    assert exit_info.value.code == 2 and "--workers must be at least 1" in capsys.readouterr().err
