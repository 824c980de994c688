"""Real processes for the tests that need them: a Celery worker and the ASGI server, started on the
test database and broker, ready when they say so (no fixed sleeps), stopped at the end."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def app_env(**extra: str) -> dict[str, str]:
    """What a child process needs to see what this test process sees: database, broker, cache."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="orchestrator.settings",
        DATABASE_URL=test_database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        VAR_DIR=str(settings.VAR_DIR),
        SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
        # Like the in-process tests: never a real LM Studio, Ollama or llama.cpp (or a stray emulator) on
        # their default ports.
        LMSTUDIO_BASE_URL="http://127.0.0.1:9",
        OLLAMA_BASE_URL="http://127.0.0.1:9",
        LLAMACPP_BASE_URL="http://127.0.0.1:9",
    )
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        env["CELERY_FS_BROKER_DIR"] = str(settings.BROKER_DIR)
    env.update(extra)
    return env


class ManagedProcess:
    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        ready: str,
        pass_fds: tuple[int, ...] = (),
        own_group: bool = False,
        ready_count: int = 1,
    ):
        # own_group: the process gets a process group of its own, and stop() ends the whole group, so
        # children it spawned (llama-server's model processes) cannot outlive the test.
        self.own_group = own_group
        self.name = name
        self.lines: list[str] = []
        self._ready_pattern = re.compile(ready)
        self._ready_left = ready_count  # e.g. one line from each of several web processes
        self._ready = threading.Event()
        self._ended = threading.Event()
        self.process = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            pass_fds=pass_fds,
            start_new_session=own_group,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if self._ready_pattern.search(line):
                self._ready_left -= 1
                if self._ready_left <= 0:
                    self._ready.set()
        self._ended.set()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        # Wake on the ready line or on the process's end, whichever comes first.
        while not self._ready.wait(0.1):
            if self._ended.is_set() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.own_group:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group's id is the leader's pid
            except ProcessLookupError:
                pass  # the whole group has ended already

    def kill(self) -> None:
        """Stop at once, with no clean-up (kill -9): what a crash, or `make run` giving up on a worker that
        would not stop, does."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def wait(self, timeout: float = 60) -> int:
        """The exit code, once the process has ended and all it printed has been read."""
        code = self.process.wait(timeout=timeout)
        self._ended.wait(timeout)
        return code

    def output(self) -> str:
        return "\n".join(self.lines)


def start_celery_worker(name: str = "celery", **env: str) -> ManagedProcess:
    """A Celery worker process, not yet ready; `name` makes its node name (`name@host`), so several can run
    at once."""
    return ManagedProcess(
        f"celery worker {name}",
        [
            sys.executable,
            *("-m", "celery", "-A", "orchestrator", "worker", "-n", f"{name}@%h"),
            *("--pool", "threads", "--concurrency", "2", "--loglevel", "INFO"),
            *("--without-heartbeat", "--without-gossip", "--without-mingle"),
        ],
        app_env(**env),
        ready=rf"{re.escape(name)}@\S+ ready",
    )


@contextmanager
def celery_worker(name: str = "celery", **env: str) -> Iterator[ManagedProcess]:
    worker = start_celery_worker(name, **env)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def bound_socket() -> socket.socket:
    """A listening socket on a port the OS chose, so no port can be taken before the server uses it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def start_web_server(workers: int = 1, loop: str = "uvloop", **env: str) -> tuple[ManagedProcess, str]:
    """The web server `make run` starts (core.webserver: uvicorn, httptools), with `workers` processes on a
    socket this process bound, and its URL; ready once every web process has loaded the app."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = ManagedProcess(
        "web server",
        [
            sys.executable,
            *("-m", "core.webserver", "--fd", str(sock.fileno()), "--workers", str(workers), "--loop", loop),
        ],
        app_env(**env),
        ready=r"Started server process",
        pass_fds=(sock.fileno(),),
        ready_count=workers,
    )
    sock.close()
    return server, f"http://127.0.0.1:{port}"


@contextmanager
def web_server(workers: int = 1, loop: str = "uvloop", **env: str) -> Iterator[tuple[ManagedProcess, str]]:
    server, url = start_web_server(workers, loop, **env)
    try:
        server.wait_ready()
        yield server, url
    finally:
        server.stop()


@contextmanager
def asgi_server(**env: str) -> Iterator[str]:
    """One web server process; its URL."""
    with web_server(**env) as (_, url):
        yield url
