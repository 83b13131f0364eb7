# connects: make run (the product on SQLite with demo data), make test (every test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Two installs, each stamped with the checksum of pyproject.toml: what running needs
# (`make run`), and that plus the dev extras (`make test`, bench, screenshots).
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.installed-run-$(SUM)
DEV_STAMP := $(VENV)/.installed-dev-$(SUM)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test bench screenshots venv venv-dev clean

venv: $(RUN_STAMP)

venv-dev: $(DEV_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-run-* && touch $@

# The dev extras include the runtime: a dev install also stamps the run install.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-run-* $(VENV)/.installed-dev-* && touch $(RUN_STAMP) $@

run: $(RUN_STAMP)
	$(BIN)/connects serve --demo --host $(HOST) --port $(PORT)

test: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: $(RUN_STAMP)
	$(BIN)/python -m bench

screenshots: $(DEV_STAMP)
	$(BIN)/python -m connects.web.screenshots --out docs/screenshots

clean:
	rm -rf $(VENV) connects.db connects.db-wal connects.db-shm .pytest_cache
