"""Starts what a benchmark needs, on loopback only and on ports the OS chooses, and stops it again:
the emulators (their own process), a fresh SQLite database in a temporary VAR_DIR, and uvicorn."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
KEY = "test-key-1234"  # what the cloud emulators accept


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends SIGTERM to it when the benchmark dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Process:
    """A child process whose output is collected; stopped by its own pid (SIGTERM, then SIGKILL)."""

    def __init__(
        self, name: str, args: Sequence[str], env: dict[str, str], pass_fds: tuple[int, ...] = (), cwd: Path = ROOT
    ):
        self.name = name
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            pass_fds=pass_fds,
            preexec_fn=_die_with_parent,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip())

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for_line(self, predicate, timeout: float) -> str:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.lines):
                line = self.lines[seen]
                seen += 1
                if predicate(line):
                    return line
            if self.popen.poll() is not None and seen >= len(self.lines):
                break
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not start:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                if self.popen.stdin:
                    self.popen.stdin.close()
            except OSError:
                pass
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def run(args: Sequence[str], env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    """A loopback port free at this instant (the OS chose it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """pid and every process below it, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(parents.get(current, []))
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def rss_kib(pids: Sequence[int], field_name: str = "VmRSS") -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field_name + ":"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


class RssSampler:
    """The largest summed RSS of a process tree, sampled every `interval` seconds while running."""

    def __init__(self, pids: list[int], interval: float = 0.05) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, rss_kib(self.pids))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, rss_kib(self.pids))


@dataclass
class Server:
    url: str
    process: Process
    workers: int

    @property
    def pids(self) -> list[int]:
        return descendants(self.process.pid)


@dataclass
class Setup:
    """Everything a benchmark needs to know about the running system."""

    var_dir: Path
    env: dict[str, str]
    openai_url: str  # the OpenAI emulator, without /v1
    lmstudio_url: str
    refused_url: str
    app: dict = field(default_factory=dict)  # what bench/setup_app.py printed
    emulator_pid: int = 0

    def upstream_count(self, base: str, path: str) -> int:
        return httpx.get(f"{base}/__bench/count", params={"path": path}, timeout=10).json()["count"]


class Harness:
    """`with Harness(...) as setup:` emulators, a migrated database with a user, a token and keys, and
    uvicorn with `workers` processes (started by `start_server`, so a caller can wrap it, e.g. in a profiler)."""

    def __init__(self, *, lmstudio_models: int = 500, extra_env: dict[str, str] | None = None) -> None:
        self.lmstudio_models = lmstudio_models
        self.extra_env = extra_env or {}
        self.processes: list[Process] = []
        self.var_dir = Path(tempfile.mkdtemp(prefix="bench-var-"))

    def __enter__(self) -> Setup:
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> Setup:
        emulators = Process(
            "emulators",
            [PYTHON, "-m", "bench.emulators", "--lmstudio-models", str(self.lmstudio_models)],
            self._base_env(),
        )
        self.processes.append(emulators)
        urls = json.loads(emulators.wait_for_line(lambda line: line.startswith("{"), timeout=30))
        env = self._app_env(urls)
        run([PYTHON, "manage.py", "migrate", "--noinput"], env)
        app = json.loads(run([PYTHON, "bench/setup_app.py", "--refused-url", urls["refused"]], env).splitlines()[-1])
        return Setup(
            self.var_dir, env, urls["openai"], urls["lmstudio"], urls["refused"], app=app, emulator_pid=emulators.pid
        )

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The embedded default: SQLite, local-memory cache, file-system broker; nothing from outside.
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY", "KEY_ENCRYPTION_KEYS"):
            env.pop(name, None)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = str(ROOT)
        return env

    def _app_env(self, urls: dict[str, str]) -> dict[str, str]:
        env = self._base_env()
        env.update(
            DJANGO_SETTINGS_MODULE="orchestrator.settings",
            VAR_DIR=str(self.var_dir),
            LMSTUDIO_BASE_URL=urls["lmstudio"],
            OPENAI_BASE_URL=f"{urls['openai']}/v1",
            # No key is stored for these; pointed at a refusing loopback port all the same.
            ANTHROPIC_BASE_URL=urls["refused"],
            GEMINI_BASE_URL=urls["refused"],
            MISTRAL_BASE_URL=f"{urls['refused']}/v1",
            GENSPARK_BASE_URL=f"{urls['refused']}/v1",
            LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        return env

    def start_server(self, setup: Setup, *, workers: int, wrap: Sequence[str] = (), root: Path = ROOT) -> Server:
        """uvicorn on --host/--port as `make run` starts it. (Not --fd as tests/processes.py does: uvicorn
        wraps an inherited descriptor as an AF_UNIX socket, so asyncio then leaves Nagle's algorithm on for
        its TCP connections, and every small response waits ~40 ms for a delayed ACK.) `root`: the source
        tree to serve, for comparing two versions of the code on one database (bench/compare.py)."""
        port = free_port()
        args = [
            *wrap,
            PYTHON,
            "-m",
            "uvicorn",
            "orchestrator.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backlog",
            "2048",
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "info",
        ]
        if workers > 1:
            args += ["--workers", str(workers)]
        # e.g. BENCH_UVICORN="--http httptools --loop uvloop": the same options for every server of the run.
        args += shlex.split(os.environ.get("BENCH_UVICORN", ""))
        server = Process("uvicorn", args, {**setup.env, "PYTHONPATH": str(root)}, cwd=root)
        self.processes.append(server)
        started = 0

        def ready(line: str) -> bool:
            nonlocal started
            started += "Started server process" in line
            return started >= workers

        server.wait_for_line(ready, timeout=90)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    return Server(url, server, workers)
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn does not answer /healthz:\n" + "\n".join(server.lines[-40:]))
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        shutil.rmtree(self.var_dir, ignore_errors=True)
