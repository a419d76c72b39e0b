# Photobot: two commands do all the set-up.
#   make run    install, migrate, load styles, create a demo event, serve on 127.0.0.1:8000
#   make test   install dev tools, make sure PostgreSQL and Redis answer, ruff + the whole pytest suite
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: install install-dev run test test-fast lint bench chaos services browser clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q "uv==$(UV_VERSION)"

# `install` writes the .pyc files once: where PYTHONDONTWRITEBYTECODE is set (containers, CI images) every
# `photobot` command would otherwise compile SQLAlchemy & co. from source (`photobot --help` 4.5 s without, 1.6 s
# with). `install-dev` does not: the suite's child processes keep their own bytecode cache (tests/support/processes.py),
# so compiling the whole venv there cost a fresh clone ~10 s and saved nothing (measured).
install: $(UV)  ## .venv with the project and the `photobot` script (from uv.lock)
	$(UV) sync --frozen --no-dev -q --compile-bytecode
	$(BIN)/python -m compileall -q src

install-dev: $(UV)
	$(UV) sync --frozen --extra dev -q

run: install  ## serve on PHOTOBOT_HOST:PHOTOBOT_PORT (127.0.0.1:8000) with SQLite, local storage, simulator
	$(BIN)/photobot bootstrap
	$(BIN)/photobot serve

services:  ## start PostgreSQL and Redis when installed but stopped
	bash scripts/ensure-services.sh

browser:  ## Debian chromium for the browser tests (installed when missing)
	bash scripts/ensure-browser.sh

lint: install-dev  ## ruff, and mypy --strict on src/ (see [tool.mypy] in pyproject.toml)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: install-dev services browser lint  ## the whole suite
	bash scripts/run-tests.sh

test-fast: install-dev  ## without lint and browser set-up
	$(BIN)/pytest -q -x -m "not browser and not slow"

# BENCH_ARGS: --quick (small counts), --only NAME..., --profile (py-spy, a dev dependency, records the service
# during callback ingest and submission), e.g. `make bench BENCH_ARGS="--only callback_ingest --profile"`.
# Load comes from wrk (Debian package, installed here when missing).
bench: install-dev services  ## benchmarks (figures and ratios against same-run floors) -> bench/results/latest.json
	@command -v wrk >/dev/null || (apt-get install -y -q wrk >/dev/null || sudo apt-get install -y -q wrk >/dev/null)
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

chaos: install-dev services  ## the full fault suite (tests/chaos) and fuzzing (tests/fuzz), full numbers
	$(BIN)/pytest -q -p no:cacheprovider tests/chaos tests/fuzz --chaos-full

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .ruff_cache test-output
