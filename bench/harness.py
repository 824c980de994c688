"""Starts what a benchmark needs, on loopback only and on ports the OS chooses, and stops it again:
the emulators (their own process), a fresh SQLite database in a temporary VAR_DIR, the app (as `make run`
starts it, `manage.py serve`, or a bare uvicorn for the profiler and A/B compares) and LiteLLM's proxy,
the peer of issue 11, from a virtual environment of its own."""

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

# The peer of issue 11. 1.107.0 was a compromised release: never that one, and nothing but the pinned one.
LITELLM_VERSION = "1.106.2"
LITELLM_COMPROMISED = {"1.107.0"}
LITELLM_ENV = Path(
    os.environ.get("LITELLM_ENV") or Path.home() / ".cache" / "ai-orchestrator" / f"bench-litellm-{LITELLM_VERSION}"
)
LITELLM_MASTER_KEY = "sk-bench-litellm-master-key"


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
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str],
        pass_fds: tuple[int, ...] = (),
        cwd: Path = ROOT,
        *,
        group: bool = False,
        log: Path | None = None,
    ):
        """`group`: the process leads a process group of its own (what it starts stays in it), and `stop`
        kills whatever of that group outlives it. `log`: its output goes to this file rather than through a
        pipe to a thread of the benchmark: a server logging every request would otherwise cost the load
        generator CPU time."""
        self.name = name
        self.group = group
        self.log = log
        self._lines: list[str] = []
        self.popen = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=log.open("w") if log else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            pass_fds=pass_fds,
            preexec_fn=_die_with_parent,
            start_new_session=group,
        )
        if log is None:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._lines.append(line.rstrip())

    @property
    def lines(self) -> list[str]:
        if self.log is None:
            return self._lines
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for_line(self, predicate, timeout: float) -> str:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            lines = self.lines
            while seen < len(lines):
                line = lines[seen]
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
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.group:
            # Its group id is its pid: children it did not stop (it was killed, or they hung) go too.
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def litellm_check(env_dir: Path = LITELLM_ENV) -> Path:
    """The LiteLLM environment's python, after checking it holds exactly the pinned version; fails loudly
    otherwise (`make bench` builds the environment from bench/requirements-litellm.txt)."""
    python = env_dir / "bin" / "python"
    if not python.exists():
        raise SystemExit(
            f"No LiteLLM environment at {env_dir}. `make bench` creates it from bench/requirements-litellm.txt; "
            "or run without the peer: --no-litellm."
        )
    found = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    if found in LITELLM_COMPROMISED:
        raise SystemExit(f"REFUSED: {env_dir} holds LiteLLM {found}, a compromised release. Delete that directory.")
    if found != LITELLM_VERSION:
        raise SystemExit(f"REFUSED: {env_dir} holds LiteLLM {found or '(none)'}; the benchmark needs {LITELLM_VERSION}")
    return python


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


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


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
    url: str  # without a path; the OpenAI-style API is under /v1
    process: Process
    workers: int
    name: str = "uvicorn"

    @property
    def pids(self) -> list[int]:
        return descendants(self.process.pid)

    @property
    def web_pids(self) -> list[int]:
        """Its processes but the Celery worker `manage.py serve` starts beside the web server: that one idles
        during a benchmark, and LiteLLM has nothing like it, so its CPU and memory are left out."""
        return [pid for pid in self.pids if b"celery" not in _cmdline(pid)]


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
            # Not the machine's own ports 11434 and 8080: a real server there would change the figures.
            OLLAMA_BASE_URL=urls["refused"],
            LLAMACPP_BASE_URL=urls["refused"],
            ANTHROPIC_BASE_URL=urls["refused"],
            GEMINI_BASE_URL=urls["refused"],
            MISTRAL_BASE_URL=f"{urls['refused']}/v1",
            GENSPARK_BASE_URL=f"{urls['refused']}/v1",
            LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        return env

    def start_server(self, setup: Setup, *, workers: int, wrap: Sequence[str] = (), root: Path = ROOT) -> Server:
        """A bare uvicorn on --host/--port, for the profiler (`wrap`) and A/B compares; `make bench` measures
        `start_serve`, what `make run` runs. (Not --fd as tests/processes.py does: uvicorn
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

    def start_serve(self, setup: Setup, *, web_workers: int) -> Server:
        """The app as `make run` starts it: `manage.py serve`, its web processes and a Celery worker beside
        them, in a process group of its own. Returns once `serve` has started its children; `wait_ready`
        then waits for every web process. Start two of these one after the other, not at once: `serve`
        empties VAR_DIR/prometheus when it starts, and two doing that at the same instant can collide."""
        port = free_port()
        args = [PYTHON, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
        # One Celery worker, whatever WORKERS says in the caller's environment: it idles during the run.
        args += ["--web-workers", str(web_workers), "--workers", "1"]
        name = f"manage.py serve --web-workers {web_workers}"
        log = self.var_dir / f"serve-{port}.log"
        process = Process(name, args, setup.env, group=True, log=log)
        self.processes.append(process)
        process.wait_for_line(lambda line: line.startswith("Serving on "), timeout=60)
        return Server(f"http://127.0.0.1:{port}", process, web_workers, name=f"app {web_workers} web")

    def start_litellm(self, setup: Setup, env_dir: Path = LITELLM_ENV) -> Server:
        """LiteLLM's proxy (the pinned version, from its own virtual environment), one worker, no database,
        in front of the same OpenAI emulator: model `gpt-4o-mini` is the emulator's, as the app's
        `openai/gpt-4o-mini` is. Its config lives in the run's temporary directory. Returns at once;
        `wait_ready` polls its health endpoint."""
        python = litellm_check(env_dir)
        home = self.var_dir / "litellm"
        home.mkdir(exist_ok=True)
        config = {
            "model_list": [
                {
                    "model_name": "gpt-4o-mini",
                    "litellm_params": {
                        "model": "openai/gpt-4o-mini",
                        "api_base": f"{setup.openai_url}/v1",
                        "api_key": KEY,
                    },
                }
            ],
            # No callbacks of any kind: nothing logged anywhere, nothing sent anywhere.
            "litellm_settings": {"callbacks": [], "success_callback": [], "failure_callback": [], "telemetry": False},
            "general_settings": {
                "master_key": LITELLM_MASTER_KEY,
                "disable_spend_logs": True,
                "disable_error_logs": True,
            },
        }
        (home / "config.yaml").write_text(json.dumps(config, indent=2))  # JSON is YAML
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONUNBUFFERED": "1",
            # Everything it would fetch from the internet, it takes from its own package instead.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOCAL_BLOG_POSTS": "True",
            "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
            "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
            "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
            "HF_HUB_OFFLINE": "1",
            # Production mode: no .env file read; no UI, no docs; errors only.
            "LITELLM_MODE": "PRODUCTION",
            "DISABLE_ADMIN_UI": "True",
            "NO_DOCS": "True",
            "LITELLM_LOG": "ERROR",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        args = [
            str(python),
            "-m",
            "litellm.proxy.proxy_cli",
            "--config",
            str(home / "config.yaml"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ]
        process = Process(f"LiteLLM {LITELLM_VERSION}", args, env, cwd=home, group=True, log=home / "proxy.log")
        self.processes.append(process)
        return Server(f"http://127.0.0.1:{port}", process, 1, name="LiteLLM")

    def wait_ready(self, server: Server, *, health: str = "/healthz", timeout: float = 120) -> Server:
        """Polls `health` until it answers 200 (and, for the app, until every web process has said it
        started: uvicorn logs "Started server process" once per process)."""
        deadline = time.monotonic() + timeout
        while True:
            if server.process.popen.poll() is not None:
                raise RuntimeError(f"{server.name} ended:\n" + "\n".join(server.process.lines[-40:]))
            try:
                if httpx.get(f"{server.url}{health}", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} does not answer {health}:\n" + "\n".join(server.process.lines[-40:]))
            time.sleep(0.1)
        if server.name.startswith("app"):
            started = 0

            def all_started(line: str) -> bool:
                nonlocal started
                started += "Started server process" in line
                return started >= server.workers

            server.process.wait_for_line(all_started, timeout=max(5.0, deadline - time.monotonic()))
        return server

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        shutil.rmtree(self.var_dir, ignore_errors=True)
