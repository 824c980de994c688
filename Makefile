# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# make run WEB_WORKERS=2 WORKERS=2: web server processes on the one port, Celery worker processes (default 1
# and 1; unset here, serve reads them from the environment or .env).

.PHONY: run test test-fast lint emulator emulators clean browser-deps sandbox-deps llama-server

# The virtual environment is rebuilt when a requirements file changes.
$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# A real inference engine for tests/engine: llama-cpp-python compiles llama.cpp once (about 5 minutes on
# 2 cores); pip caches the built wheel, so a later install on the same machine takes seconds. GGML_NATIVE=OFF
# builds for AVX2, not this CPU's own extensions, so the cached wheel runs on any machine of this kind;
# LLAVA_BUILD=OFF skips the multimodal library the tests never load.
$(BIN)/.engine: $(BIN)/.dev requirements-engine.txt
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(BIN)/python -m pip install --quiet -r requirements-engine.txt
	touch $@

# llama.cpp's own llama-server (router mode) for tests/engine, built from source once per machine into
# ~/.cache/ai-orchestrator/llama-server-<version> (about 10 minutes of both cores; later runs find it there).
llama-server: $(BIN)/.dev
	PYTHON=$(BIN)/python scripts/build-llama-server.sh

run: $(BIN)/.runtime sandbox-deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin --url http://$(HOST):$(PORT)/
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT) \
	  $(if $(WEB_WORKERS),--web-workers $(WEB_WORKERS)) $(if $(WORKERS),--workers $(WORKERS))

# Browser tests drive Debian's Chromium; install it (and an emoji font for the status icons) if missing.
browser-deps:
	@if ! command -v chromium >/dev/null || [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; fi; \
	fi

test: $(BIN)/.dev $(BIN)/.engine llama-server browser-deps sandbox-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=85 $(PYTEST_ARGS)

# Without the browser, worker-process and engine tests: a quick loop while coding.
test-fast: $(BIN)/.dev
	$(BIN)/python -m pytest -m "not browser and not worker and not engine" -q $(PYTEST_ARGS)

lint: $(BIN)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# A stand-in LM Studio on its default port, for trying the app without one.
emulator: $(BIN)/.dev
	$(BIN)/python -m tests.fakes.lmstudio --port 1234

# Every emulator (LM Studio and the cloud providers); prints the environment for `make run`.
# EMULATOR_ARGS="--chunk-delay 0.3" (or --no-code-mode, --load-delay S): see python -m tests.fakes.serve_all -h
emulators: $(BIN)/.dev
	$(BIN)/python -m tests.fakes.serve_all $(EMULATOR_ARGS)

clean:
	rm -rf $(VENV) var/test-db.sqlite3 var/test-db.sqlite3-wal var/test-db.sqlite3-shm var/sandbox-env .pytest_cache .coverage test-artifacts

# Benchmarks (see bench/RESULTS.md): make bench [N=1000] [N_STREAM=500] [RPS_C=50] [C=200] [WEB_WORKERS=2]
# [ONLY=overhead,stream,rps,streams,listing,fallback,page] [LITELLM=0]. The peer, LiteLLM's proxy, lives in a
# virtual environment of its own, built once per machine from bench/requirements-litellm.txt (never 1.107.0,
# a compromised release: bench/harness.py refuses any version but the pinned one).
LITELLM_VERSION := 1.106.2
LITELLM_ENV ?= $(HOME)/.cache/ai-orchestrator/bench-litellm-$(LITELLM_VERSION)
.PHONY: bench
bench: $(BIN)/.dev browser-deps $(LITELLM_ENV)/.installed
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	LITELLM_ENV=$(LITELLM_ENV) $(BIN)/python bench/run.py
	$(BIN)/python bench/usage_accounting.py
	@# The chat page's streaming in a real browser (issue 11), once bench/chat_stream.py exists.
	@if [ -f bench/chat_stream.py ]; then $(BIN)/python bench/chat_stream.py; fi

$(LITELLM_ENV)/.installed: bench/requirements-litellm.txt
	test -x $(LITELLM_ENV)/bin/python || $(BIN)/python -m venv $(LITELLM_ENV)
	$(LITELLM_ENV)/bin/python -m pip install --quiet --upgrade pip
	$(LITELLM_ENV)/bin/python -m pip install --quiet -r bench/requirements-litellm.txt
	@found=$$($(LITELLM_ENV)/bin/python -c "import importlib.metadata as m; print(m.version('litellm'))"); \
	  if [ "$$found" != "$(LITELLM_VERSION)" ]; then \
	    echo "REFUSED: $(LITELLM_ENV) holds LiteLLM $$found, not $(LITELLM_VERSION)"; exit 1; fi
	touch $@

# What usage accounting costs on the hot path (side by side, one run): make bench-usage [N=300]
.PHONY: bench-usage
bench-usage: $(BIN)/.runtime
	$(BIN)/python bench/usage_accounting.py

# The backend generator runs generated projects' tests under bubblewrap, on a Python environment of its
# own (requirements-sandbox.txt, in var/sandbox-env). Installs bwrap if missing; the environment is built
# once (its stamp file is compared with the requirements file, so a later run costs a second).
sandbox-deps: $(BIN)/.runtime
	@if ! command -v bwrap >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq bubblewrap >/dev/null; fi; \
	fi
	$(BIN)/python manage.py prepare_sandbox
