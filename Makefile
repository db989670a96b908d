# One entry point for people and CI. Everything installs itself from the lock file.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SOURCES := hygiene hygiene_demo benchmarks tests

.PHONY: setup browser demo test test-fast lint typecheck unit bench lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hygiene demo

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) browser
	$(BIN)/pytest -n 2 -q

# The layout tests drive Debian's chromium (never a browser download): as root, install
# it when it is missing; otherwise say how.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the layout tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "the layout tests need /usr/bin/chromium: run make test as root or apt-get install chromium" >&2; \
	    exit 1; \
	  fi; }

test: lint typecheck unit

# The pure tests only (no server, no process; tests/conftest.py): the edit loop.
# Two workers: at ~950 pure tests they save more than they cost to start (30 s vs 50 s).
test-fast: $(STAMP)
	$(BIN)/pytest -q -n 2 -m "not integration"

# Benchmarks live outside the packages (benchmarks/); docs/benchmarks.md has the figures.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.scan
	$(BIN)/python -m benchmarks.startup
	$(BIN)/python -m benchmarks.rules
	$(BIN)/python -m benchmarks.collector
	$(BIN)/python -m benchmarks.discovery

lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock
	$(PYTHON) -m uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -c requirements.lock -o requirements-runtime.lock

clean:
	rm -rf $(VENV) reports/out .pytest_cache .mypy_cache .ruff_cache
