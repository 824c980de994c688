"""A real inference engine for the tests: llama.cpp, through llama-cpp-python's OpenAI-compatible server,
serving a tiny random-weight model that tests/engine/tiny_gguf.py writes. One server for the whole
session (loading the model takes about a second); `make test` installs the engine (requirements-engine.txt)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.processes import ManagedProcess

MODEL_ALIAS = "tiny"
CONTEXT = 512
READY_LINE = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
START_TIMEOUT = 60.0
INSTALL_HINT = (
    "the engine tests need llama-cpp-python's server, gguf and numpy: `make test` installs them, or "
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" .venv/bin/pip install -r requirements-engine.txt'
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine: talks to a real llama.cpp server (llama-cpp-python) on a tiny model")


@dataclass(frozen=True)
class Engine:
    url: str  # http://127.0.0.1:<port>; the OpenAI-compatible API is under /v1
    model: str  # the alias it serves the model under
    process: ManagedProcess


def _require_engine() -> None:
    missing = [name for name in ("llama_cpp", "gguf", "numpy") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not importable: {INSTALL_HINT}", pytrace=False)
    if importlib.util.find_spec("llama_cpp.server") is None or importlib.util.find_spec("fastapi") is None:
        pytest.fail(f"llama-cpp-python is installed without its [server] extra: {INSTALL_HINT}", pytrace=False)


def _write_tiny_model(directory: Path) -> Path:
    # Imported here, after _require_engine: without gguf installed the failure names the install step.
    from tests.engine.tiny_gguf import write_tiny_model

    return write_tiny_model(directory / "tiny.gguf")


def _wait_for_model_list(url: str, process: ManagedProcess) -> None:
    """The model loads before the server listens, so this answers at once; bounded all the same."""
    deadline = time.monotonic() + 10
    while True:
        try:
            listed = httpx.get(f"{url}/v1/models", timeout=5).json()
            if MODEL_ALIAS in {m["id"] for m in listed["data"]}:
                return
            reason = f"it lists {listed}"
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            reason = repr(exc)
        if time.monotonic() > deadline or process.process.poll() is not None:
            process.stop()
            pytest.fail(f"llama.cpp server not ready ({reason}):\n{process.output()[-4000:]}", pytrace=False)
        time.sleep(0.1)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    _require_engine()
    model_path = _write_tiny_model(tmp_path_factory.mktemp("engine"))
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")}  # they would override the flags
    env["PYTHONUNBUFFERED"] = "1"
    server = ManagedProcess(
        "llama.cpp server",
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            "0",  # the OS chooses a free port; uvicorn says which in its "running on" line
            "--n_ctx",
            str(CONTEXT),
            "--n_threads",
            "1",
        ],
        env,
        ready=READY_LINE.pattern,
    )
    try:
        server.wait_ready(timeout=START_TIMEOUT)
    except RuntimeError as exc:
        pytest.fail(str(exc)[-4000:], pytrace=False)
    try:
        port = next(int(m.group(1)) for line in server.lines if (m := READY_LINE.search(line)))
        url = f"http://127.0.0.1:{port}"
        _wait_for_model_list(url, server)
        yield Engine(url=url, model=MODEL_ALIAS, process=server)
    finally:
        server.stop()


# --- llama.cpp's own llama-server, in router mode ------------------------------------------------------

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-llama-server.sh"
BUILD_TIMEOUT = 45 * 60  # a first build on 2 cores takes about 10 minutes; a cached one returns at once
ROUTER_READY = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
ROUTER_MODELS = ("tiny-alpha", "tiny-beta")


@dataclass(frozen=True)
class Router:
    url: str
    models: tuple[str, ...]
    process: ManagedProcess


def llama_server_binary() -> Path:
    """The cached llama-server, built from source by the project's script if this machine has none yet."""
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        done = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{BUILD_SCRIPT.name} did not finish within {BUILD_TIMEOUT // 60} minutes", pytrace=False)
    binary = Path(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    if done.returncode != 0 or binary is None or not binary.is_file():
        pytest.fail(f"building llama-server failed ({BUILD_SCRIPT}):\n{done.stderr[-4000:]}", pytrace=False)
    return binary


@pytest.fixture(scope="session")
def llama_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """`llama-server --models-dir` with two tiny models, neither loaded: the app loads and unloads them."""
    _require_engine()
    binary = llama_server_binary()
    models_dir = tmp_path_factory.mktemp("llama-models")
    from tests.engine.tiny_gguf import write_tiny_model  # after _require_engine, as in _write_tiny_model

    for name in ROUTER_MODELS:
        write_tiny_model(models_dir / f"{name}.gguf")
    args = [
        str(binary),
        "--models-dir",
        str(models_dir),
        "--models-max",
        "2",
        "--no-models-autoload",
        "-c",
        str(CONTEXT),
        "-t",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        "0",  # the OS chooses; llama-server says which in its "listening on" line
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}  # they would override the flags
    server = ManagedProcess("llama-server (router)", args, env, ready=ROUTER_READY.pattern, own_group=True)
    try:
        server.wait_ready(timeout=START_TIMEOUT)
    except RuntimeError as exc:
        pytest.fail(str(exc)[-4000:], pytrace=False)
    try:
        port = next(int(m.group(1)) for line in server.lines if (m := ROUTER_READY.search(line)))
        yield Router(url=f"http://127.0.0.1:{port}", models=ROUTER_MODELS, process=server)
    finally:
        server.stop()
