# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast lint emulator emulators clean browser-deps

# The virtual environment is rebuilt when a requirements file changes.
$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(BIN)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin --url http://$(HOST):$(PORT)/
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

# Browser tests drive Debian's Chromium; install it (and an emoji font for the status icons) if missing.
browser-deps:
	@if ! command -v chromium >/dev/null || [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; fi; \
	fi

test: $(BIN)/.dev browser-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=85 $(PYTEST_ARGS)

# Without the browser and worker-process tests: a quick loop while coding.
test-fast: $(BIN)/.dev
	$(BIN)/python -m pytest -m "not browser and not worker" -q $(PYTEST_ARGS)

lint: $(BIN)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# A stand-in LM Studio on its default port, for trying the app without one.
emulator: $(BIN)/.dev
	$(BIN)/python -m tests.fakes.lmstudio --port 1234

# Every emulator (LM Studio and the cloud providers); prints the environment for `make run`.
emulators: $(BIN)/.dev
	$(BIN)/python -m tests.fakes.serve_all

clean:
	rm -rf $(VENV) var/test-db.sqlite3 .pytest_cache .coverage test-artifacts
