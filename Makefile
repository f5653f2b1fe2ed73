# The two commands of the README: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt typecheck bench bench-actions bench-warmpath bench-writeback browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

# Re-install whenever the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway serve

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench.runtime
	$(BIN)/python -m bench.actions
	$(BIN)/python -m bench.warmpath

# The action round trip against a bare aiohttp handler (SPEC 10), about a minute.
bench-actions: $(STAMP)
	$(BIN)/python -m bench.actions

# Metadata lookups cold (the store) against warm (the caches), and group commit.
bench-warmpath: $(STAMP)
	$(BIN)/python -m bench.warmpath

bench-writeback: $(STAMP)
	$(BIN)/python -m bench.writeback

# The headless-Chromium test serves the unmodified ryuu.js from npm; it needs Debian's chromium
# too (`apt-get install chromium`). Without either, that test skips and says which is missing.
browser-deps:
	npm ci --prefix tests/browser --no-audit --no-fund

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/browser/node_modules
